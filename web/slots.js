// Engine slots: the image model's engine and its webcam model's, the one in use adopted into the
// page (canvas kind, info, counters), GPU device-loss recovery, and one segment call with it.

import { createEngine, WorkerEngine } from "./engine.js";
import { applyModelDefaults } from "./controls.js";
import { renderEngine } from "./engine-card.js";
import { loadModel, resolveModelUrl } from "./models.js";
import { formatBytes, normalizeResult } from "./results.js";
import { errorMessage, plain } from "./shared.js";
import { setStatus, showError } from "./status.js";
import { app, canvasEl, els, params, pub } from "./state.js";
import { loadWasm } from "./wasm.js";

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

/** The image model's slot, in use from now on; startEngine() starts its engine. */
export function setImageModel(model) {
  app.slot = app.slots.image = { model, engine: null, backend: null, reason: "" };
}

/** Starts the image model's engine on the backend `pref` asks for (or the one it can). */
export async function startEngine(pref) {
  const created = await createEngine(app.slots.image.model, pref);
  adoptEngine(created.engine, created.backend, created.reason, created.probe);
}

/** Makes `engine` the one in use (of the current slot); `freshCanvas`: another engine drew before. */
function adoptEngine(engine, backend, reason, probe, freshCanvas = false) {
  Object.assign(app.slot, { engine, backend, reason });
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
  renderEngine();
}

/**
 * Whether to draw into a WebGPU canvas. `?draw=gpu|2d` decides; otherwise yes, except on a
 * software (fallback) adapter: in headless Chromium's SwiftShader, once any canvas hands out a
 * WebGPU texture, every later mapAsync in the page fails ("A valid external Instance reference no
 * longer exists"), which would end all read-backs. There the overlay comes back with the result
 * and is drawn into a 2D canvas; the segmentation still runs on WebGPU.
 */
function wantsGpuDraw(adapter) {
  const draw = (params.get("draw") || "auto").toLowerCase();
  if (draw === "gpu") return true;
  if (draw === "2d") return false;
  return !(adapter?.isFallbackAdapter || app.probe?.isFallback);
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
export async function segmentWith(rgba, width, height, optionsFor, disposable) {
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

/**
 * The webcam model's slot, loaded and started on first use (same backend as the image model), or
 * null when the image model names none or it could not load (then the image model streams).
 */
let videoSlotLoading = null;
export async function videoSlot() {
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
export function useSlot(slot) {
  if (!slot || slot === app.slot) return;
  app.slot = slot;
  adoptEngine(slot.engine, slot.backend, slot.reason, undefined, true);
  if (!app.samplerTouched) applyModelDefaults(app.info?.model); // each card's steps and td
}

/** The file name of a model card URL (what the page calls a model before its card is read). */
export function cardFileName(url) {
  return decodeURIComponent(new URL(url).pathname.split("/").pop());
}

/** Reads the image model card's webcam model (relative to the card) or ?videoModel=URL|none. */
export function findVideoModel() {
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
