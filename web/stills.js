// Still images: a photo opened, dropped, pasted or picked from the gallery is decoded, shown and
// segmented; progress per sampling step, cancel, and a newer request superseding the one in flight.
// (Imports webcam.js and is imported by it: a photo stops the webcam, and a webcam frame that ends
// releases the engine to a photo waiting for it. Only functions cross, at call time.)

import { decodeImageFile, imageToRGBA, MAX_SIDE } from "./images.js";
import { formatMs } from "./results.js";
import { errorMessage, plain } from "./shared.js";
import { controlOptions, segmentOptions } from "./controls.js";
import { renderEngine } from "./engine-card.js";
import { segmentWith } from "./slots.js";
import { clearError, renderTimings, setState, setStatus, settledState, showError } from "./status.js";
import { app, els, pub } from "./state.js";
import { clearResultView, drawResult, setMode, showReadback, showStage } from "./view.js";
import { openVideoFile, stopLoop } from "./webcam.js";

export async function openFile(file) {
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
  pub.progress = null; // no still image in flight
  els.stepProgress.hidden = true;
  els.cancel.hidden = true;
}

/** Stops the still image in flight (CPU engine: its worker restarts); false when it cannot. */
export function cancelRun() {
  return Boolean(app.busy && app.mode === "image" && app.engine?.cancel?.());
}

export async function runStill() {
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

export function release() {
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
