// pix2seqd demo page. Plain ES modules, no framework, no bundler: index.html loads this module,
// which boots the page (model download, engine start, the model picker and the sample gallery) and
// imports its siblings, one concern each: state.js (all the page's state and window.pix2seqd),
// status.js (state attribute, status line, errors, timings), controls.js, slots.js (engine slots),
// engine-card.js, view.js (result, legend, hover, downloads), stills.js, webcam.js, inputs.js.
//
// Page contract (docs/web-api.md, README "The web page"):
//   document.body.dataset.state: "loading" | "ready" | "running" | "done" | "error"
//   window.pix2seqd = {lastResult, engineInfo, stats(), frames, webcam: {frames, fps, lastIds, pause(), resume()},
//                      videoModel: {url, name, state, error}, …}

import { fetchSample, loadSamples, renderGallery } from "./gallery.js";
import { DEFAULT_MODEL_URL, loadModel, resolveModelUrl } from "./models.js";
import { formatBytes } from "./results.js";
import { errorMessage } from "./shared.js";
import { loadWasm } from "./wasm.js";
import { applyModelDefaults } from "./controls.js";
import { renderEngine } from "./engine-card.js";
import "./inputs.js";
import { cardFileName, findVideoModel, setImageModel, startEngine } from "./slots.js";
import { renderTimings, setState, setStatus, showError } from "./status.js";
import { openFile, runStill } from "./stills.js";
import { app, els, engineReady, params, pub, settleEngineReady } from "./state.js";
import { setMode } from "./view.js";

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
    setImageModel(await loadModel(jsonUrl, weightsUrl, { onProgress: showProgress }));
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
    settleEngineReady();
    if (app.mode === "image") runStill();
  } catch (e) {
    els.loadcard.hidden = true;
    if (!app.engine) {
      els.backend.textContent = "No engine";
      els.backendNote.textContent = "The engine did not start: see the message above.";
    }
    showError(errorMessage(e));
    settleEngineReady(e);
  }
}

boot();
