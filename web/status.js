// The page's state attribute, status line and error box, and the timings card (per-stage times,
// the wall time of a photo, the webcam/video rate).

import { formatMs, formatMsSeries } from "./results.js";
import { errorMessage } from "./shared.js";
import { app, els, webcamApi } from "./state.js";

export function setState(s) {
  document.body.dataset.state = s;
}

export function setStatus(text) {
  els.status.textContent = text;
  els.status.title = text;
}

export function showError(message) {
  els.error.textContent = message;
  els.error.hidden = false;
  setState("error");
  setStatus("Error");
  console.warn("pix2seqd:", message);
}

export function clearError() {
  els.error.hidden = true;
  els.error.textContent = "";
  // A new action after an error: the page is no longer in its error state.
  if (document.body.dataset.state === "error") setState(settledState());
}

export function settledState() {
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

/** The webcam/video rate as shown: the status line and the timings card both read this. */
export function fpsText() {
  return webcamApi.fps ? webcamApi.fps.toFixed(1) : "—";
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

export function renderTimings(frameTotal) {
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
