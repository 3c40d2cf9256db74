// The sampler and overlay controls (steps, td, seed, opacity, outlines): their values as engine
// options, and their defaults from the model card and the URL.

import { $, app, els, numParam, params } from "./state.js";

export function controlOptions() {
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
export function segmentOptions(backend, video, readback, overVideo = false) {
  const onGpu = backend === "webgpu" && app.gpuDraw;
  const o = { ...controlOptions(), video, draw: onGpu, readback: onGpu ? readback : true, overlay: !onGpu };
  // Streaming into the 2D canvas: the overlay comes in the segments' own colours (opacity 1) and
  // the page lays it, made translucent, over the live <video> (drawMaskOverVideo).
  if (overVideo && !onGpu) o.opacity = 1;
  return o;
}

export function showControlValues() {
  $("steps-value").textContent = els.steps.value;
  $("td-value").textContent = Number(els.td.value).toFixed(2);
  $("opacity-value").textContent = Number(els.opacity.value).toFixed(2);
}

/** The model card's steps and td (or the URL's), and the URL's seed, opacity and outline. */
export function applyModelDefaults(model) {
  const steps = numParam("steps", 1, 20) ?? Math.min(20, Math.max(1, Math.round(model?.steps ?? 4)));
  const td = numParam("td", 0, 4) ?? Math.min(4, Math.max(0, Number(model?.td ?? 1)));
  els.steps.value = String(steps);
  els.td.value = String(Math.round(td * 4) / 4);
  const seed = numParam("seed", 0, 4294967295);
  if (seed != null) els.seed.value = String(Math.floor(seed));
  const opacity = numParam("opacity", 0, 1);
  if (opacity != null) els.opacity.value = String(opacity);
  if (params.get("outline") === "0") els.outline.checked = false;
  showControlValues();
}
