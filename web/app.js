// pix2seqd demo page. Plain ES module, no framework.
//
// Page contract (docs/web-api.md, design §9):
//   document.body.dataset.state: "loading" | "ready" | "running" | "done" | "error"
//   window.pix2seqd = {lastResult, engineInfo, stats(), frames, webcam: {frames, fps, lastIds, pause(), resume()},
//                      videoModel: {url, name, state, error}, …}

import { WorkerEngine, createEngine } from "./engine.js";
import { MAX_SIDE, decodeImageFile, imageToRGBA } from "./images.js";
import { DEFAULT_MODEL_URL, loadModel, resolveModelUrl } from "./models.js";
import {
  drawMaskOverVideo,
  drawOverlay,
  fingerprint,
  formatBytes,
  formatMs,
  formatMsSeries,
  normalizeResult,
  summarizeSegments,
} from "./results.js";
import { errorMessage, plain } from "./shared.js";
import { loadWasm } from "./wasm.js";
import { initDownloads } from "./downloads.js";
import { initHover } from "./hover.js";
import { fetchSample, loadSamples, renderGallery } from "./gallery.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

const els = {
  file: $("file"),
  videofile: $("videofile"),
  webcam: $("webcam"),
  freeze: $("freeze"),
  dropzone: $("dropzone"),
  empty: $("empty"),
  stage: $("stage"),
  preview: $("preview"),
  video: $("video"),
  hover: $("hover"),
  tooltip: $("tooltip"),
  loadcard: $("loadcard"),
  loadTitle: $("load-title"),
  progress: $("progress"),
  progressText: $("progress-text"),
  imageinfo: $("imageinfo"),
  status: $("status"),
  error: $("error"),
  untrained: $("untrained"),
  backend: $("backend"),
  adapter: $("adapter"),
  backendNote: $("backend-note"),
  facts: $("engine-facts"),
  legend: $("legend"),
  segcount: $("segcount"),
  timings: $("timings"),
  steps: $("steps"),
  td: $("td"),
  opacity: $("opacity"),
  outline: $("outline"),
  seed: $("seed"),
  modelPick: $("model-pick"),
  model: $("model"),
  version: $("version"),
  gallery: $("gallery"),
  cancel: $("cancel"),
  stepProgress: $("step-progress"),
  galleryList: $("gallery-list"),
};
// #canvas can be replaced (a canvas keeps the context type it got first).
const canvasEl = () => $("canvas");

const app = {
  engine: null,
  backend: null, // "webgpu" | "cpu"
  reason: "",
  probe: null,
  info: null,
  model: null, // {json, weights, fromCache, jsonUrl, weightsUrl, name} of the engine in use
  // Engines by use: `image` (the loaded model) and `video` (its webcam model, loaded on first use);
  // `slot` is the one in use. A slot: {model, engine, backend, reason}.
  slots: { image: null, video: null },
  slot: null,
  canvasKind: null, // "webgpu" | "2d"
  gpuDraw: false, // results are drawn into a WebGPU canvas on the GPU (else a 2D canvas)
  stats: null, // the engine's GPU object counters after the last frame
  ctx2d: null,
  mode: "idle", // "idle" | "image" | "webcam" | "video"
  source: null, // still image: {name, rgba, width, height, naturalWidth, naturalHeight, scaled}
  busy: false,
  rerun: false,
  result: null, // last read-back result (has segmentIds)
  stageMs: null, // per-stage ms of the last read-back
  lastWallMs: null,
  measured: null, // the last still image: {ms, steps, width, height, model, backend} (Engine card)
};
let engineReadyResolve, engineReadyReject;
const engineReady = new Promise((res, rej) => {
  engineReadyResolve = res;
  engineReadyReject = rej;
});
engineReady.catch(() => {});

const loop = {
  active: false,
  session: 0,
  kind: null,
  stream: null,
  objectUrl: null,
  frameIndex: 0,
  frozen: null,
  freezeNext: false,
  useVideoFrame: typeof VideoFrame !== "undefined",
  grabMethod: null,
  buf: null,
  times: [],
  lastTime: -1,
  lastMediaTime: -1,
  maskLagMs: null, // segmentation time of the mask on screen (the live video runs ahead of it)
};

const webcamApi = {
  frames: 0,
  fps: 0,
  readbacks: 0,
  skipped: 0,
  lastIds: null,
  lastIdsHead: null,
  history: [], // the last read-backs: {frame, ids, frozen}
  paused: false,
  kind: null,
  grab: null,
  /** Freezes the current frame: the loop keeps segmenting that same frame. */
  pause() {
    freeze(true);
  },
  resume() {
    freeze(false);
  },
};

const pub = {
  started: true,
  lastResult: null,
  /** Sampling steps of the still image in flight: {done, steps} (CPU engine), else null. */
  progress: null,
  engineInfo: null,
  frames: 0,
  backend: null,
  backendReason: null,
  model: null,
  version: null,
  webcam: webcamApi,
  /** The webcam model (the image model card's metadata.video_model, or ?videoModel=URL). */
  videoModel: { url: null, name: null, state: "none", error: null },
  /** Testing aid: loses the GPU device as a driver reset would; the next segmentation recovers. */
  loseDevice() {
    app.engine?.loseDevice?.();
  },
  /** Testing aid: crashes the CPU worker as a trap in the engine would; it restarts. */
  crashWorker() {
    app.engine?.crash?.();
  },
  /** GPU object counters, as of the last finished frame (the engine is busy during one). */
  stats() {
    return app.stats;
  },
  /** segmentIds of the last read-back result (kept out of lastResult to keep it small). */
  segmentIds() {
    return app.result?.segmentIds ?? null;
  },
};
window.pix2seqd = pub;

const downloads = initDownloads(
  { overlay: $("dl-overlay"), coco: $("dl-coco"), segments: $("dl-segments") },
  () => {
    const r = app.result;
    if (!r?.segmentIds || !pub.lastResult) return null;
    return {
      result: r,
      publicResult: pub.lastResult,
      canvas: canvasEl(),
      classes: app.info?.model?.classes ?? [],
      cardJson: app.model?.json ?? "",
      name: app.mode === "image" ? app.source?.name : `${app.mode}-frame.png`,
    };
  },
  showError,
);

// ---------------------------------------------------------------------------------------------
// state, status, errors

function setState(s) {
  document.body.dataset.state = s;
}

function setStatus(text) {
  els.status.textContent = text;
  els.status.title = text;
}

function showError(message) {
  els.error.textContent = message;
  els.error.hidden = false;
  setState("error");
  setStatus("Error");
  console.warn("pix2seqd:", message);
}

function clearError() {
  els.error.hidden = true;
  els.error.textContent = "";
  // A new action after an error: the page is no longer in its error state.
  if (document.body.dataset.state === "error") setState(settledState());
}

function settledState() {
  if (!app.engine) return "loading";
  return app.result || app.lastWallMs != null ? "done" : "ready";
}

window.addEventListener("error", (ev) => {
  if (/ResizeObserver loop/.test(ev.message || "")) return;
  showError(`Unexpected error: ${ev.message || "unknown"}`);
});
window.addEventListener("unhandledrejection", (ev) => {
  showError(`Unexpected error: ${errorMessage(ev.reason)}`);
});

// ---------------------------------------------------------------------------------------------
// controls

function intParam(name, lo, hi) {
  const v = params.get(name);
  if (v == null || v === "" || !Number.isFinite(Number(v))) return null;
  return Math.min(hi, Math.max(lo, Number(v)));
}

function controlOptions() {
  return {
    steps: Number(els.steps.value),
    td: Number(els.td.value),
    seed: Math.max(0, Math.floor(Number(els.seed.value) || 0)),
    opacity: Number(els.opacity.value),
    outline: els.outline.checked,
  };
}

/**
 * Engine options for one image or frame. Drawn into the WebGPU canvas, `readback` says whether
 * the maps come back too; otherwise the result always comes back with its RGBA overlay.
 */
function segmentOptions(backend, video, readback, overVideo = false) {
  const onGpu = backend === "webgpu" && app.gpuDraw;
  const o = { ...controlOptions(), video, draw: onGpu, readback: onGpu ? readback : true, overlay: !onGpu };
  // Streaming into the 2D canvas: the overlay comes in the segments' own colours (opacity 1) and
  // the page lays it, made translucent, over the live <video> (drawMaskOverVideo).
  if (overVideo && !onGpu) o.opacity = 1;
  return o;
}

function showControlValues() {
  $("steps-value").textContent = els.steps.value;
  $("td-value").textContent = Number(els.td.value).toFixed(2);
  $("opacity-value").textContent = Number(els.opacity.value).toFixed(2);
}

let debounceTimer = 0;
function onControlChange() {
  showControlValues();
  clearTimeout(debounceTimer);
  debounceTimer = setTimeout(() => {
    if (app.mode === "image") runStill(); // supersedes a run in flight
  }, 250);
}

// Set once the user moves the steps or td slider: from then on, switching between the image and
// the webcam model keeps the user's sampler instead of each model card's default.
let samplerTouched = false;

function applyModelDefaults(model) {
  const steps = intParam("steps", 1, 20) ?? Math.min(20, Math.max(1, Math.round(model?.steps ?? 4)));
  const td = intParam("td", 0, 4) ?? Math.min(4, Math.max(0, Number(model?.td ?? 1)));
  els.steps.value = String(steps);
  els.td.value = String(Math.round(td * 4) / 4);
  const seed = intParam("seed", 0, 4294967295);
  if (seed != null) els.seed.value = String(Math.floor(seed));
  const opacity = intParam("opacity", 0, 1);
  if (opacity != null) els.opacity.value = String(opacity);
  if (params.get("outline") === "0") els.outline.checked = false;
  showControlValues();
}

// ---------------------------------------------------------------------------------------------
// engine

function ensureCanvas(kind, fresh = false) {
  let c = canvasEl();
  if (app.canvasKind && (app.canvasKind !== kind || fresh)) {
    const replacement = document.createElement("canvas");
    for (const a of c.attributes) replacement.setAttribute(a.name, a.value);
    c.replaceWith(replacement);
    c = replacement;
    app.ctx2d = null;
  }
  app.canvasKind = kind;
  if (kind === "2d" && !app.ctx2d) app.ctx2d = c.getContext("2d");
  return c;
}

async function startEngine(pref) {
  const created = await createEngine(app.model, pref);
  app.slot = app.slots.image = { model: app.model, engine: null, backend: null, reason: "" };
  adoptEngine(created.engine, created.backend, created.reason, created.probe);
}

/** Makes `engine` the one in use (of the current slot); `freshCanvas`: another engine drew before. */
function adoptEngine(engine, backend, reason, probe, freshCanvas = false) {
  app.engine = engine;
  app.backend = backend;
  app.reason = reason;
  if (app.slot) Object.assign(app.slot, { engine, backend, reason });
  if (probe !== undefined) app.probe = probe;
  app.info = plain(engine.info());
  app.stats = plain(engine.stats());
  // The CPU worker restarts itself after a crash; say what failed.
  if (engine instanceof WorkerEngine) engine.onCrash = (message) => showError(message);
  app.gpuDraw = backend === "webgpu" && wantsGpuDraw(app.info.adapter);
  if (app.gpuDraw) {
    // a WebGPU canvas stays configured for the device that drew into it last: a new one per engine
    const c = ensureCanvas("webgpu", freshCanvas);
    engine.attachCanvas(c);
  } else {
    ensureCanvas("2d");
  }
  pub.engineInfo = app.info;
  pub.backend = backend;
  pub.gpuDraw = app.gpuDraw;
  pub.backendReason = reason;
  renderEngine();
}

/**
 * Whether to draw into a WebGPU canvas. `?draw=gpu|2d` decides; otherwise yes, except on a
 * software (fallback) adapter: in headless Chromium's SwiftShader, once any canvas hands out a
 * WebGPU texture, every later mapAsync in the page fails ("A valid external Instance reference no
 * longer exists"), which would end all read-backs. There the overlay comes back with the result
 * and is drawn into a 2D canvas; the segmentation still runs on WebGPU.
 */
const READBACK_EVERY = intParam("readbackEvery", 0, 1000) ?? 10;

function wantsGpuDraw(adapter) {
  const draw = (params.get("draw") || "auto").toLowerCase();
  if (draw === "gpu") return true;
  if (draw === "2d") return false;
  return !(adapter?.isFallbackAdapter || app.probe?.isFallback);
}

function adapterName(a) {
  if (!a) return "";
  const name = a.name && String(a.name).trim();
  if (name) return name;
  return [a.vendor, a.architecture].filter((x) => x && String(x).trim()).join(" ") || a.deviceType || "unnamed adapter";
}

function renderEngine() {
  const info = app.info || {};
  const m = info.model || {};
  const gpu = app.backend === "webgpu";
  els.backend.textContent = gpu ? "WebGPU" : "CPU (Web Worker)";
  els.backend.dataset.backend = app.backend;
  els.backend.title = app.reason;

  let adapter;
  if (gpu) {
    const a = info.adapter;
    adapter = adapterName(a) || app.probe?.name || "GPU";
    if (a?.isFallbackAdapter || app.probe?.isFallback) adapter += " (software)";
  } else {
    adapter = app.probe?.name ? `${app.probe.name} (not used)` : "no GPU adapter in use";
  }
  els.adapter.textContent = adapter;
  els.adapter.title = `Adapter: ${adapter}`;

  let speed;
  if (gpu && (info.adapter?.isFallbackAdapter || app.probe?.isFallback)) {
    speed = "A software GPU emulates WebGPU on the CPU.";
  } else if (gpu) {
    speed = "Runs on your GPU.";
  } else {
    speed = "Runs on the CPU in a Web Worker (WebAssembly, one thread), so the page stays responsive.";
  }
  // Only what this page measured on this machine: no promise made up front.
  const run = app.measured;
  speed +=
    run && run.model === app.model?.name && run.backend === app.backend
      ? ` Here a photo took ${formatMs(run.ms)} (${run.steps} step${run.steps === 1 ? "" : "s"}, ${run.width}×${run.height}); fewer steps are faster.`
      : " The time per photo on this machine shows here after the first one; fewer steps are faster.";
  els.backendNote.innerHTML = "";
  const strong = document.createElement("strong");
  strong.textContent = `${app.reason}.`;
  els.backendNote.append(strong, " ", speed);

  const facts = [
    ["Model", m.name ?? app.model?.name ?? "—"],
    ["Input", m.imageSize ? `${m.imageSize[1]}×${m.imageSize[0]}` : "—"],
    ["Mask", m.maskSize ? `${m.maskSize[1]}×${m.maskSize[0]}` : "—"],
    ["Classes", m.classes ? `${m.classes.filter((c) => c.name !== "void").length}` : "—"],
    ["Video", m.videoPrevMasks ? `${m.videoPrevMasks} previous masks` : "single images"],
    ["Weights", m.trained === false ? "untrained (random)" : m.trained ? "trained" : "—"],
    ["Download", app.model ? `${formatBytes(app.model.weights.length)}${app.model.fromCache ? ", from cache" : ""}` : "—"],
  ];
  if (m.purpose) facts.splice(1, 0, ["Purpose", m.purpose]);
  const vm = pub.videoModel;
  if (vm.url) {
    const state = app.slot && app.slot === app.slots.video ? "in use" : { none: "", idle: "loaded when the webcam starts", loading: "loading…", ready: "ready", failed: `could not load: ${vm.error}` }[vm.state];
    facts.push(["Webcam model", state ? `${vm.name} (${state})` : vm.name]);
  }
  els.facts.replaceChildren(
    ...facts.flatMap(([k, v]) => {
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = v;
      return [dt, dd];
    }),
  );
  els.untrained.hidden = m.trained !== false;
}

/** GPU device lost: a new Engine from the cached model bytes (the CPU path if that fails). */
async function recoverDevice(why) {
  setStatus("GPU device was lost; recreating…");
  els.backendNote.textContent = `GPU device was lost (${why}); recreating the engine…`;
  try {
    app.engine.free();
  } catch {}
  try {
    const wasm = await loadWasm();
    const engine = await wasm.Engine.create(app.model.json, app.model.weights, "webgpu");
    adoptEngine(engine, "webgpu", `GPU device was lost (${why}) and recreated`);
  } catch (e) {
    const engine = await WorkerEngine.create(app.model.json, app.model.weights);
    adoptEngine(engine, "cpu", `GPU device was lost and could not be recreated (${errorMessage(e)}): using the CPU path`);
  }
  if (app.mode === "webcam" || app.mode === "video") app.engine.reset();
}

/**
 * One segment call with device-loss recovery. optionsFor(backend) builds the options for the
 * backend in use; `disposable`: the rgba buffer may be transferred to the worker.
 */
async function segmentWith(rgba, width, height, optionsFor, disposable) {
  for (let attempt = 0; ; attempt++) {
    const engine = app.engine;
    const backend = app.backend;
    if (backend === "webgpu") {
      const lost = engine.lost?.();
      if (lost && attempt < 2) {
        await recoverDevice(lost);
        continue;
      }
    }
    if (backend === "webgpu" && app.gpuDraw) {
      const c = canvasEl();
      if (c.width !== width || c.height !== height) {
        c.width = width;
        c.height = height;
      }
    }
    const data = backend === "cpu" && !disposable ? rgba.slice() : rgba;
    try {
      const raw = await engine.segment(data, width, height, optionsFor(backend));
      return normalizeResult(raw);
    } catch (e) {
      const lost = backend === "webgpu" ? engine.lost?.() : null;
      if (lost && attempt < 2) {
        await recoverDevice(lost);
        disposable = false;
        continue;
      }
      throw e;
    }
  }
}

function release() {
  app.busy = false;
  try {
    if (app.engine) app.stats = plain(app.engine.stats());
  } catch {
    // a worker engine, or an engine being replaced: keep the last counters
  }
  if (app.rerun) {
    app.rerun = false;
    queueMicrotask(runStill);
  }
}

// ---------------------------------------------------------------------------------------------
// showing results

function publicResult(r, extra = {}) {
  return {
    backend: r.backend,
    width: r.width,
    height: r.height,
    ms: r.ms,
    segments: r.segments.map((s) => ({ ...s })),
    drawn: r.drawn,
    conditionedOn: r.conditionedOn,
    ...extra,
  };
}

function drawResult(r, video = false) {
  const c = canvasEl();
  if (r.overlay && app.canvasKind === "2d") {
    if (video) drawMaskOverVideo(c, app.ctx2d, r, controlOptions().opacity);
    else drawOverlay(c, app.ctx2d, r);
  }
  if (r.overlay || r.drawn) c.classList.add("on");
}

function showReadback(r, wallMs, extra) {
  app.result = r;
  app.stageMs = r.ms;
  pub.lastResult = publicResult(r, { wallMs, ...extra });
  renderLegend(r);
  hover.reset();
  downloads.update();
}

function renderLegend(r) {
  const classes = app.info?.model?.classes ?? [];
  const rows = summarizeSegments(r, classes);
  const total = r.width * r.height || 1;
  els.segcount.textContent = r.segments.length ? String(r.segments.length) : "";
  if (!rows.length) {
    els.legend.innerHTML = '<li class="placeholder">No segments found (everything is void).</li>';
    return;
  }
  els.legend.replaceChildren(
    ...rows.map((e) => {
      const li = document.createElement("li");
      li.tabIndex = 0;
      li.dataset.class = String(e.class);
      const sw = document.createElement("span");
      sw.className = "sw";
      sw.style.background = `rgb(${e.color.join(",")})`;
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = e.label;
      const kind = document.createElement("span");
      kind.className = "kind";
      kind.textContent = e.isThing ? `${e.count} instance${e.count === 1 ? "" : "s"}` : "stuff";
      name.append(kind);
      const meta = document.createElement("span");
      meta.className = "meta";
      const pct = (100 * e.area) / total;
      meta.textContent = pct >= 10 ? `${pct.toFixed(0)}%` : `${pct.toFixed(1)}%`;
      const bar = document.createElement("span");
      bar.className = "bar";
      const fill = document.createElement("i");
      fill.style.width = `${Math.max(1, Math.min(100, pct))}%`;
      fill.style.background = sw.style.background;
      bar.append(fill);
      li.append(sw, name, meta, bar);
      li.setAttribute("aria-label", `${e.label}: ${e.isThing ? `${e.count} instances, ` : ""}${meta.textContent} of the image`);
      const on = () => hover.setHighlight(new Set(e.ids), `class:${e.class}`);
      const off = () => hover.setHighlight(null, "");
      li.addEventListener("pointerenter", on);
      li.addEventListener("pointerleave", off);
      li.addEventListener("focus", on);
      li.addEventListener("blur", off);
      return li;
    }),
  );
}

function clearResultView() {
  app.result = null;
  app.stageMs = null;
  app.lastWallMs = null;
  canvasEl().classList.remove("on");
  els.legend.innerHTML = '<li class="placeholder">No result yet.</li>';
  els.segcount.textContent = "";
  hover.setHighlight(null, "");
  renderTimings();
  downloads.update();
}

function timingRows() {
  const rows = [];
  const ms = app.stageMs;
  if (ms) {
    rows.push(["Ingest", formatMs(ms.ingest)]);
    rows.push(["Encoder", formatMs(ms.encoder)]);
    const steps = ms.decoderPerStep;
    const n = steps?.length;
    rows.push([n ? `Decoder (${n} step${n === 1 ? "" : "s"})` : "Decoder", formatMs(ms.decoder)]);
    if (n) rows.push(["Per step", formatMsSeries(steps), "steps"]);
    rows.push(["Readout", formatMs(ms.readout)]);
    rows.push(["Post-processing", formatMs(ms.postprocess)]);
  }
  return rows;
}

function renderTimings(frameTotal) {
  const rows = timingRows();
  const ms = app.stageMs;
  const total = frameTotal ?? ms?.total ?? null;
  const parts = [];
  const add = (k, v, cls = "") => {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v;
    if (cls) {
      dt.className = cls;
      dd.className = cls;
    }
    parts.push(dt, dd);
  };
  for (const [k, v, cls] of rows) add(k, v, cls);
  add("Total", formatMs(total), "total");
  if (app.lastWallMs != null && app.mode === "image") add("Wall (page)", formatMs(app.lastWallMs));
  if (app.mode === "webcam" || app.mode === "video") {
    add("FPS", fpsText(), "fps");
    add("Frames", `${webcamApi.frames} (${webcamApi.skipped} skipped)`);
  }
  if (ms?.source) {
    const src = document.createElement("dd");
    src.className = "src";
    src.textContent =
      ms.source === "gpu-timestamps"
        ? "Stages measured with GPU timestamp queries."
        : ms.source === "wall-clock"
          ? "Stages measured by wall clock."
          : "Only the total is measured on this backend.";
    parts.push(src);
  }
  els.timings.replaceChildren(...parts);
}

// ---------------------------------------------------------------------------------------------
// hover (hover.js)

const hover = initHover({
  stage: els.stage,
  hover: els.hover,
  tooltip: els.tooltip,
  dropzone: els.dropzone,
  canvas: canvasEl,
  result: () => app.result,
});

// ---------------------------------------------------------------------------------------------
// still images

function setMode(mode) {
  app.mode = mode;
  document.body.classList.remove("mode-idle", "mode-image", "mode-webcam", "mode-video");
  document.body.classList.add(`mode-${mode}`);
  els.freeze.hidden = !(mode === "webcam" || mode === "video");
}

function showStage(width, height) {
  els.empty.hidden = true;
  els.stage.hidden = false;
  els.stage.style.setProperty("--ar", `${width} / ${height}`);
  hover.resize();
}

async function openFile(file) {
  if (!file) return;
  if (/^video\//.test(file.type) || /\.(mp4|webm|mov|m4v|ogv|mkv)$/i.test(file.name)) {
    return openVideoFile(file);
  }
  clearError();
  setStatus(`Decoding ${file.name}…`);
  let bitmap;
  let image;
  try {
    bitmap = await decodeImageFile(file);
    image = imageToRGBA(bitmap, bitmap.width, bitmap.height);
  } catch (e) {
    bitmap?.close?.();
    showError(errorMessage(e));
    return;
  }
  stopLoop();
  setMode("image");
  app.source = { name: file.name, ...image };
  const p = els.preview;
  p.width = image.width;
  p.height = image.height;
  p.getContext("2d").drawImage(bitmap, 0, 0, image.width, image.height);
  bitmap.close?.();
  clearResultView();
  showStage(image.width, image.height);
  els.imageinfo.textContent =
    `${file.name} · ${image.naturalWidth}×${image.naturalHeight}` +
    (image.scaled
      ? ` · drawn scaled down to ${image.width}×${image.height} (images larger than ${MAX_SIDE} px on the long side are scaled down)`
      : "");
  if (app.engine) runStill();
  else if (!app.model) setStatus("Image ready; waiting for the model…");
}

/** Sampling progress of the still image in flight (the CPU engine reports its steps). */
function showSteps(src, done, steps) {
  if (src !== app.source || !app.busy) return;
  pub.progress = { done, steps };
  els.stepProgress.max = steps;
  els.stepProgress.value = done;
  els.stepProgress.hidden = false;
  setStatus(`Segmenting ${src.name}… step ${done} of ${steps}`);
}

function endSteps() {
  els.stepProgress.hidden = true;
  els.cancel.hidden = true;
}

/** Stops the still image in flight (CPU engine: its worker restarts); false when it cannot. */
function cancelRun() {
  return Boolean(app.busy && app.mode === "image" && app.engine?.cancel?.());
}

async function runStill() {
  if (app.mode !== "image" || !app.source || !app.engine) return;
  if (app.busy) {
    // A newer request supersedes the one in flight: cancelled where the engine can (CPU), else
    // run as soon as it is done.
    app.rerun = true;
    cancelRun();
    return;
  }
  app.busy = true;
  const src = app.source;
  clearError();
  setState("running");
  setStatus(`Segmenting ${src.name}…`);
  pub.progress = null;
  els.cancel.hidden = !app.engine.cancel;
  try {
    const t0 = performance.now();
    const r = await segmentWith(
      src.rgba,
      src.width,
      src.height,
      (backend) => ({ ...segmentOptions(backend, false, true), onStep: (done, steps) => showSteps(src, done, steps) }),
      false,
    );
    const wall = performance.now() - t0;
    if (src === app.source && app.mode === "image") {
      drawResult(r);
      app.lastWallMs = wall;
      const steps = r.ms.decoderPerStep?.length || controlOptions().steps;
      app.measured = { ms: wall, steps, width: r.width, height: r.height, model: app.model?.name, backend: app.backend };
      renderEngine();
      pub.frames++;
      showReadback(r, wall, { source: src.name });
      renderTimings();
      setState("done");
      const n = r.segments.length;
      setStatus(`${n} segment${n === 1 ? "" : "s"} in ${formatMs(r.ms.total ?? wall)}`);
    }
  } catch (e) {
    if (e?.cancelled) {
      setState(settledState());
      setStatus(app.rerun ? "Superseded: segmenting again with the new input…" : "Cancelled");
    } else if (src === app.source) showError(`Segmentation failed: ${errorMessage(e)}`);
  } finally {
    endSteps();
    release();
  }
}

// ---------------------------------------------------------------------------------------------
// webcam and video files: newest frame wins, never a queue

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

async function startWebcam() {
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

async function openVideoFile(file) {
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

function stopLoop() {
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

/**
 * The webcam model's slot, loaded and started on first use (same backend as the image model), or
 * null when the image model names none or it could not load (then the image model streams).
 */
let videoSlotLoading = null;
async function videoSlot() {
  const vm = pub.videoModel;
  if (app.slots.video) return app.slots.video;
  if (!vm.url || vm.state === "failed") return null;
  videoSlotLoading ??= loadVideoSlot();
  return videoSlotLoading;
}

async function loadVideoSlot() {
  const vm = pub.videoModel;
  vm.state = "loading";
  renderEngine();
  els.webcam.disabled = true;
  setStatus(`Loading the webcam model ${vm.name}…`);
  let engine = null;
  try {
    const model = await loadModel(vm.url, vm.weightsUrl, {
      onProgress: (p) => setStatus(`Loading the webcam model ${vm.name}… ${p.total ? `${Math.round((100 * p.loaded) / p.total)}%` : formatBytes(p.loaded)}`),
    });
    setStatus(`Starting the webcam model ${model.name}…`);
    const created = await createEngine(model, app.slots.image.backend);
    engine = created.engine;
    if (!plain(engine.info())?.model?.videoPrevMasks) {
      throw new Error(`${model.name} is not a video model (it takes no previous masks)`);
    }
    // same backend as the image model: keep its reason (why this backend), not "backend requested"
    const image = app.slots.image;
    app.slots.video = { model, engine, backend: created.backend, reason: created.backend === image.backend ? image.reason : created.reason };
    vm.state = "ready";
    return app.slots.video;
  } catch (e) {
    engine?.free?.();
    vm.state = "failed";
    vm.error = errorMessage(e).replace(/\.$/, "");
    return null;
  } finally {
    els.webcam.disabled = false;
    renderEngine();
  }
}

/** Switches the engine in use (photos: the image model; webcam and video: its webcam model). */
function useSlot(slot) {
  if (!slot || slot === app.slot) return;
  app.slot = slot;
  app.model = slot.model;
  adoptEngine(slot.engine, slot.backend, slot.reason, undefined, true);
  if (!samplerTouched) applyModelDefaults(app.info?.model); // each card's steps and td
}

/** The file name of a model card URL (what the page calls a model before its card is read). */
function cardFileName(url) {
  return decodeURIComponent(new URL(url).pathname.split("/").pop());
}

/** Reads the image model card's webcam model (relative to the card) or ?videoModel=URL|none. */
function findVideoModel() {
  const vm = pub.videoModel;
  let spec = params.get("videoModel");
  let base = location.href;
  if (spec == null) {
    try {
      spec = JSON.parse(app.model.json)?.metadata?.video_model ?? null;
    } catch {
      spec = null;
    }
    base = app.model.jsonUrl;
  }
  if (!spec || spec === "none" || app.info?.model?.videoPrevMasks) return; // a video model streams itself
  try {
    const { jsonUrl, weightsUrl } = resolveModelUrl(String(spec), { base, allowCrossOrigin: params.get("allowCrossOrigin") === "1" });
    Object.assign(vm, { url: jsonUrl, weightsUrl, name: cardFileName(jsonUrl).replace(/\.json$/i, ""), state: "idle" });
  } catch (e) {
    Object.assign(vm, { url: String(spec), name: String(spec), state: "failed", error: errorMessage(e).replace(/\.$/, "") });
  }
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

function freeze(on) {
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

/** The webcam/video rate as shown: the status line and the timings card both read this. */
function fpsText() {
  return webcamApi.fps ? webcamApi.fps.toFixed(1) : "—";
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

// ---------------------------------------------------------------------------------------------
// inputs

els.file.addEventListener("change", () => {
  const f = els.file.files?.[0];
  els.file.value = "";
  openFile(f);
});
els.videofile.addEventListener("change", () => {
  const f = els.videofile.files?.[0];
  els.videofile.value = "";
  if (f) openVideoFile(f);
});
els.webcam.addEventListener("click", async () => {
  if (loop.active && loop.kind === "webcam") {
    stopLoop();
    setState(settledState());
    setStatus("Webcam stopped");
    if (app.mode === "image") runStill();
    return;
  }
  try {
    await startWebcam();
  } catch (e) {
    showError(errorMessage(e));
  }
});
els.freeze.addEventListener("click", () => freeze(!webcamApi.paused));
els.cancel.addEventListener("click", () => {
  app.rerun = false;
  cancelRun();
});

for (const el of [els.steps, els.td, els.opacity]) el.addEventListener("input", onControlChange);
for (const el of [els.steps, els.td]) el.addEventListener("input", () => (samplerTouched = true));
els.outline.addEventListener("change", onControlChange);
els.seed.addEventListener("change", onControlChange);

// drag and drop anywhere on the viewer (and don't let a drop elsewhere navigate away)
let dragDepth = 0;
const hasFiles = (ev) => [...(ev.dataTransfer?.types ?? [])].includes("Files");
els.dropzone.addEventListener("dragenter", (ev) => {
  ev.preventDefault();
  dragDepth++;
  els.dropzone.classList.add("dragging");
});
els.dropzone.addEventListener("dragover", (ev) => {
  ev.preventDefault();
  if (ev.dataTransfer) ev.dataTransfer.dropEffect = "copy";
});
els.dropzone.addEventListener("dragleave", () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (!dragDepth) els.dropzone.classList.remove("dragging");
});
function handleDrop(ev) {
  ev.preventDefault();
  dragDepth = 0;
  els.dropzone.classList.remove("dragging");
  const file = ev.dataTransfer?.files?.[0];
  if (file) openFile(file);
  else showError("Drop an image file (JPEG, PNG or WebP) from your computer.");
}
els.dropzone.addEventListener("drop", (ev) => {
  ev.stopPropagation();
  handleDrop(ev);
});
window.addEventListener("dragover", (ev) => {
  if (hasFiles(ev)) ev.preventDefault();
});
window.addEventListener("drop", (ev) => {
  if (hasFiles(ev)) handleDrop(ev);
});
els.dropzone.addEventListener("keydown", (ev) => {
  if ((ev.key === "Enter" || ev.key === " ") && ev.target === els.dropzone) {
    ev.preventDefault();
    els.file.click();
  }
});
window.addEventListener("paste", (ev) => {
  const file = [...(ev.clipboardData?.files ?? [])].find((f) => f.type.startsWith("image/"));
  if (file) openFile(file);
});

// ---------------------------------------------------------------------------------------------
// model picker (web/models/index.json, when present)

async function populateModelPicker(currentJsonUrl) {
  try {
    const res = await fetch("models/index.json", { cache: "no-cache" });
    if (!res.ok) return;
    const index = await res.json();
    const models = index.models ?? [];
    if (!models.length) return;
    let found = false;
    const options = models.map((m) => {
      const url = new URL(`models/${m.config}`, location.href).href;
      const o = new Option(m.name, `models/${m.config}`);
      if (url === currentJsonUrl) {
        o.selected = true;
        found = true;
      }
      return o;
    });
    if (!found) {
      const o = new Option("custom (URL)", "", true, true);
      o.disabled = true;
      options.unshift(o);
    }
    els.model.replaceChildren(...options);
    els.modelPick.hidden = false;
    els.model.addEventListener("change", () => {
      const p = new URLSearchParams(location.search);
      p.set("model", els.model.value);
      location.search = p.toString();
    });
  } catch {
    /* no index: no picker */
  }
}

// ---------------------------------------------------------------------------------------------
// sample gallery (samples/samples.json)

/** The image model's name as its card's file names it (`objects` for models/objects.json). */
function imageModelStem() {
  const url = app.slots.image?.model?.jsonUrl ?? new URL(params.get("model") || DEFAULT_MODEL_URL, location.href).href;
  return cardFileName(url).replace(/\.json$/i, "");
}

/** Segments a sample with its model: here when that model is loaded, else on a reload with it. */
async function pickSample(sample) {
  if (sample.model !== imageModelStem()) {
    const p = new URLSearchParams(location.search);
    p.set("model", `models/${sample.model}.json`);
    p.set("sample", sample.file);
    location.search = p.toString();
    return;
  }
  try {
    setStatus(`Loading the sample ${sample.file}…`);
    await openFile(await fetchSample(sample));
  } catch (e) {
    showError(errorMessage(e));
  }
}

async function initSamples() {
  const samples = await loadSamples();
  renderGallery(els.gallery, els.galleryList, samples, pickSample);
  // ?sample=FILE (a gallery click that needed another model): open it once the model is there.
  const wanted = samples.find((s) => s.file === params.get("sample"));
  if (wanted) {
    await engineReady;
    if (wanted.model === imageModelStem() && !app.source) pickSample(wanted);
  }
}

// ---------------------------------------------------------------------------------------------
// boot

function showProgress(p) {
  if (p.fromCache) {
    els.progress.value = 1;
    els.progressText.textContent = `${formatBytes(p.loaded)} from cache`;
    return;
  }
  if (p.total) {
    els.progress.max = 1;
    els.progress.value = p.loaded / p.total;
    els.progressText.textContent = `${formatBytes(p.loaded)} of ${formatBytes(p.total)}`;
  } else {
    els.progress.removeAttribute("value"); // indeterminate
    els.progressText.textContent = `${formatBytes(p.loaded)}`;
  }
}

async function boot() {
  setState("loading");
  setMode("idle");
  applyModelDefaults(null);
  renderTimings();
  const pref = (params.get("backend") || "auto").toLowerCase();
  try {
    if (!["auto", "webgpu", "cpu"].includes(pref)) {
      throw new Error(`Unknown backend '${params.get("backend")}': use backend=webgpu, backend=cpu or leave it out.`);
    }
    const { jsonUrl, weightsUrl } = resolveModelUrl(params.get("model") || DEFAULT_MODEL_URL, {
      base: location.href,
      allowCrossOrigin: params.get("allowCrossOrigin") === "1",
    });
    populateModelPicker(jsonUrl);
    initSamples().catch(() => {});
    setStatus("Loading the model…");
    els.loadTitle.textContent = `Loading the model ${cardFileName(jsonUrl)}…`;
    app.model = await loadModel(jsonUrl, weightsUrl, { onProgress: showProgress });
    pub.model = {
      url: jsonUrl,
      weightsUrl,
      name: app.model.name,
      bytes: app.model.weights.length,
      fromCache: app.model.fromCache,
    };
    els.loadTitle.textContent = `Starting the engine (${app.model.name})…`;
    setStatus("Starting the engine (the first start on a GPU compiles its kernels)…");
    await startEngine(pref);
    findVideoModel();
    renderEngine();
    applyModelDefaults(app.info?.model);
    els.loadcard.hidden = true;
    const how = app.model.fromCache ? "loaded from cache" : "downloaded";
    setStatus(`Model ${app.model.name} ${how} (${formatBytes(app.model.weights.length)})`);
    loadWasm()
      .then((w) => {
        pub.version = w.version?.();
        els.version.textContent = `pix2seqd ${pub.version}`;
      })
      .catch(() => {
        if (app.engine?.version) els.version.textContent = `pix2seqd ${app.engine.version}`;
      });
    setState(app.source ? "running" : "ready");
    engineReadyResolve();
    if (app.mode === "image") runStill();
  } catch (e) {
    els.loadcard.hidden = true;
    if (!app.engine) {
      els.backend.textContent = "No engine";
      els.backendNote.textContent = "The engine did not start: see the message above.";
    }
    showError(errorMessage(e));
    engineReadyReject(e);
  }
}

boot();
