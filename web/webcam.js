// Webcam and video files: the <video> plays under the latest mask; the newest frame wins, frames
// that arrive while one is segmented are skipped (never a queue); freeze, fps and mask lag.

import { errorMessage } from "./shared.js";
import { fingerprint, formatMs } from "./results.js";
import { segmentOptions } from "./controls.js";
import { segmentWith, useSlot, videoSlot } from "./slots.js";
import { clearError, fpsText, renderTimings, setState, setStatus, showError } from "./status.js";
import { release } from "./stills.js";
import { app, els, engineReady, loop, numParam, pub, webcamApi } from "./state.js";
import { clearResultView, drawResult, setMode, showReadback, showStage } from "./view.js";

/** Drawn on the GPU, only every readbackEvery-th frame comes back (segments, hover, ids). */
const READBACK_EVERY = numParam("readbackEvery", 0, 1000) ?? 10;

Object.assign(webcamApi, {
  /** Freezes the current frame: the loop keeps segmenting that same frame. */
  pause() {
    freeze(true);
  },
  resume() {
    freeze(false);
  },
});

function cameraMessage(e) {
  switch (e?.name) {
    case "NotAllowedError":
    case "PermissionDeniedError":
      return "Camera permission was denied: allow camera access for this page in the browser's site settings, then try again.";
    case "NotFoundError":
    case "DevicesNotFoundError":
    case "OverconstrainedError":
      return "No camera was found: connect a camera, or open a photo or a video file instead.";
    case "NotReadableError":
    case "TrackStartError":
      return "The camera could not be started: another application may be using it.";
    case "SecurityError":
      return "Camera use is not allowed in this context (a permissions policy or an insecure page blocks it).";
    case "AbortError":
      return "Starting the camera was interrupted; try again.";
    default:
      return `Could not start the camera: ${errorMessage(e)}`;
  }
}

export async function startWebcam() {
  clearError();
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new Error(
      window.isSecureContext
        ? "This browser offers no camera access (getUserMedia is missing)."
        : "Camera access is not allowed in this context: open the page over HTTPS or from localhost.",
    );
  }
  els.webcam.disabled = true;
  setStatus("Starting the camera…");
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 640 }, height: { ideal: 480 } },
      audio: false,
    });
  } catch (e) {
    throw new Error(cameraMessage(e));
  } finally {
    els.webcam.disabled = false;
  }
  stopLoop();
  loop.stream = stream;
  const v = els.video;
  v.srcObject = stream;
  v.loop = false;
  await playVideo("the camera");
  await beginLoop("webcam");
}

export async function openVideoFile(file) {
  clearError();
  stopLoop();
  const v = els.video;
  loop.objectUrl = URL.createObjectURL(file);
  v.srcObject = null;
  v.src = loop.objectUrl;
  v.loop = true;
  try {
    await playVideo(`'${file.name}'`);
  } catch (e) {
    stopLoop();
    showError(`Could not play '${file.name}': the browser cannot decode this video (${errorMessage(e)}).`);
    return;
  }
  els.imageinfo.textContent = `${file.name} · ${v.videoWidth}×${v.videoHeight} video, looping`;
  try {
    await beginLoop("video");
  } catch (e) {
    stopLoop();
    showError(errorMessage(e));
  }
}

async function playVideo(what) {
  const v = els.video;
  v.muted = true;
  v.playsInline = true;
  await new Promise((resolve, reject) => {
    if (v.readyState >= 1 && v.videoWidth) return resolve();
    const ok = () => {
      cleanup();
      resolve();
    };
    const bad = () => {
      cleanup();
      reject(new Error(v.error?.message || `no video from ${what}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no video from ${what} after 15 s`));
    }, 15000);
    const cleanup = () => {
      clearTimeout(timer);
      v.removeEventListener("loadedmetadata", ok);
      v.removeEventListener("error", bad);
    };
    v.addEventListener("loadedmetadata", ok);
    v.addEventListener("error", bad);
  });
  await v.play();
}

async function beginLoop(kind) {
  if (!app.engine) {
    setStatus("Waiting for the model…");
    await engineReady;
  }
  const session = loop.session;
  const streamSlot = await videoSlot();
  if (session !== loop.session) return; // stopped while the webcam model loaded
  useSlot(streamSlot ?? app.slots.image);
  setMode(kind);
  loop.active = true;
  loop.kind = kind;
  loop.session++;
  loop.frameIndex = 0;
  loop.frozen = null;
  loop.freezeNext = false;
  loop.times = [];
  loop.lastTime = -1;
  loop.lastMediaTime = -1;
  loop.maskLagMs = null;
  Object.assign(webcamApi, { frames: 0, fps: 0, readbacks: 0, skipped: 0, lastIds: null, lastIdsHead: null, history: [], paused: false, kind });
  app.engine.reset(); // a new clip: forget the video history (stable instance colours from here)
  clearResultView();
  const v = els.video;
  showStage(v.videoWidth || 640, v.videoHeight || 480);
  if (kind === "webcam") {
    els.webcam.setAttribute("aria-pressed", "true");
    els.webcam.querySelector(".label").textContent = "Stop webcam";
    els.imageinfo.textContent = `Camera · ${v.videoWidth}×${v.videoHeight}`;
  }
  els.freeze.setAttribute("aria-pressed", "false");
  els.freeze.textContent = "Freeze frame";
  setState("running");
  const vm = pub.videoModel;
  setStatus(
    (kind === "webcam" ? "Webcam running" : "Video running") +
      (vm.state === "failed" ? ` with ${app.model.name} frame by frame: the webcam model ${vm.name} could not load (${vm.error})` : ` · model ${app.model.name}`),
  );
  scheduleFrame();
}

export function stopLoop() {
  const wasActive = loop.active;
  loop.active = false;
  loop.session++;
  loop.frozen = null;
  const v = els.video;
  if (loop.stream) {
    for (const t of loop.stream.getTracks()) t.stop();
    loop.stream = null;
  }
  if (v.srcObject || v.src) {
    v.pause();
    v.srcObject = null;
    v.removeAttribute("src");
    v.load();
  }
  if (loop.objectUrl) {
    URL.revokeObjectURL(loop.objectUrl);
    loop.objectUrl = null;
  }
  els.webcam.setAttribute("aria-pressed", "false");
  els.webcam.querySelector(".label").textContent = "Webcam";
  webcamApi.paused = false;
  if (wasActive) {
    webcamApi.fps = 0;
    useSlot(app.slots.image);
    setMode(app.source ? "image" : "idle");
  }
  return wasActive;
}

function scheduleFrame() {
  if (!loop.active) return;
  const session = loop.session;
  const v = els.video;
  if (typeof v.requestVideoFrameCallback === "function") {
    v.requestVideoFrameCallback((now, meta) => onFrame(session, meta));
  } else {
    requestAnimationFrame(() => onFrame(session, null));
  }
}

export function freeze(on) {
  if (!loop.active) return;
  if (on) {
    if (!loop.frozen) loop.freezeNext = true;
  } else {
    loop.frozen = null;
    loop.freezeNext = false;
  }
  webcamApi.paused = on;
  els.freeze.setAttribute("aria-pressed", String(on));
  els.freeze.textContent = on ? "Resume" : "Freeze frame";
  setStatus(on ? "Frame frozen: segmenting the same frame" : loop.kind === "webcam" ? "Webcam running" : "Video running");
}

/** The current video frame as RGBA: VideoFrame.copyTo when it works, else a 2D canvas. */
async function grabFrame(reuse) {
  const v = els.video;
  const vw = v.videoWidth;
  const vh = v.videoHeight;
  if (!vw || !vh) return null;
  if (loop.useVideoFrame) {
    let vf = null;
    try {
      vf = new VideoFrame(v);
      if (!vf.format) throw new Error("VideoFrame has no readable pixel format");
      const w = vf.visibleRect.width;
      const h = vf.visibleRect.height;
      const size = w * h * 4;
      if (vf.allocationSize({ format: "RGBA" }) !== size) throw new Error("unexpected RGBA layout");
      const buf = reuse && loop.buf && loop.buf.byteLength === size ? loop.buf : new Uint8Array(size);
      await vf.copyTo(buf, { format: "RGBA" });
      if (reuse) loop.buf = buf;
      webcamApi.grab = `VideoFrame.copyTo (${vf.format} → RGBA)`;
      return { rgba: buf, width: w, height: h };
    } catch (e) {
      loop.useVideoFrame = false;
      console.info("pix2seqd: VideoFrame.copyTo(RGBA) unavailable, using a 2D canvas:", errorMessage(e));
    } finally {
      vf?.close();
    }
  }
  if (!loop.canvas || loop.canvas.width !== vw || loop.canvas.height !== vh) {
    loop.canvas = typeof OffscreenCanvas !== "undefined" ? new OffscreenCanvas(vw, vh) : Object.assign(document.createElement("canvas"), { width: vw, height: vh });
    loop.ctx = loop.canvas.getContext("2d", { willReadFrequently: true });
  }
  loop.ctx.drawImage(v, 0, 0, vw, vh);
  webcamApi.grab = "2D canvas getImageData";
  return { rgba: loop.ctx.getImageData(0, 0, vw, vh).data, width: vw, height: vh };
}

/**
 * How far the mask lags behind the live picture, when the model is slower than the camera (the
 * video keeps playing under the last mask).
 */
function lagText() {
  const lag = loop.maskLagMs;
  return app.gpuDraw || !(lag > 100) ? "" : ` · mask ${formatMs(lag)} behind the camera`;
}

function noteFps() {
  const now = performance.now();
  loop.times.push(now);
  while (loop.times.length > 2 && now - loop.times[0] > 2000) loop.times.shift();
  const n = loop.times.length;
  if (n >= 2) webcamApi.fps = ((n - 1) * 1000) / (loop.times[n - 1] - loop.times[0]);
}

async function onFrame(session, meta) {
  if (!loop.active || session !== loop.session) return;
  scheduleFrame(); // register for the next frame first: frames that arrive while busy are skipped
  if (app.busy) {
    webcamApi.skipped++;
    return;
  }
  const v = els.video;
  if (!loop.frozen && !meta) {
    // requestAnimationFrame fallback: only new frames
    if (v.currentTime === loop.lastTime) return;
    loop.lastTime = v.currentTime;
  }
  if (loop.kind === "video" && meta && meta.mediaTime < loop.lastMediaTime && !loop.frozen) app.engine.reset(); // the clip looped
  if (meta) loop.lastMediaTime = meta.mediaTime;

  app.busy = true;
  try {
    const gpu = app.backend === "webgpu";
    let frame;
    let disposable;
    if (loop.frozen) {
      frame = loop.frozen;
      disposable = false;
    } else {
      frame = await grabFrame(gpu);
      if (!frame) return;
      disposable = !gpu;
      if (loop.freezeNext) {
        // pause(): this frame is the one fed from now on
        loop.frozen = { width: frame.width, height: frame.height, rgba: frame.rgba.slice() };
        loop.freezeNext = false;
      }
    }
    if (session !== loop.session) return;
    const index = loop.frameIndex++;
    // Drawn on the GPU, only every readbackEvery-th frame comes back (segments, hover, ids).
    const readback = !gpu || (READBACK_EVERY > 0 && index % READBACK_EVERY === 0);
    // A frozen frame is drawn with its own pixels; a live one over the playing video.
    const overVideo = frame !== loop.frozen;
    const t0 = performance.now();
    const r = await segmentWith(
      frame.rgba,
      frame.width,
      frame.height,
      (backend) => segmentOptions(backend, true, readback, overVideo),
      disposable,
    );
    const wall = performance.now() - t0;
    if (session !== loop.session) return;
    drawResult(r, overVideo);
    loop.maskLagMs = wall;
    pub.frames++;
    webcamApi.frames++;
    noteFps();
    if (r.segmentIds) {
      webcamApi.readbacks++;
      webcamApi.lastIds = fingerprint(r.segmentIds);
      webcamApi.lastIdsHead = Array.from(r.segmentIds.subarray(0, 16));
      webcamApi.history.push({ frame: index, ids: webcamApi.lastIds, frozen: frame === loop.frozen });
      if (webcamApi.history.length > 12) webcamApi.history.shift();
      showReadback(r, wall, { frame: index, lastIds: webcamApi.lastIds });
    }
    // The status line and the timings card show the same rate, updated together.
    renderTimings(r.ms.total ?? wall);
    setState("done");
    if (!loop.frozen) setStatus(`${loop.kind === "webcam" ? "Webcam" : "Video"} · ${fpsText()} fps${lagText()}`);
  } catch (e) {
    if (session === loop.session) {
      const what = loop.kind === "video" ? "Video" : "Webcam";
      stopLoop();
      showError(`${what} segmentation failed: ${errorMessage(e)}`);
    }
  } finally {
    release();
  }
}
