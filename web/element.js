// pix2seqd in the browser: the <pix2seqd-segmenter> custom element, the one module an embedder
// loads. It imports its siblings, each found relative to its own URL:
//   ./engine.js, ./wasm.js                   backend choice, the wasm loader, the CPU worker proxy
//   ./models.js                              model URL rules, download, Cache API
//   ./images.js, ./results.js, ./shared.js   image decoding, result helpers, shared helpers
//   ./worker.js                              the CPU engine in a Web Worker
//   ./pkg/pix2seqd.js (+ pix2seqd_bg.wasm)   the engine (wasm-bindgen, --target web)
//   ./models/objects.json (+ .safetensors)   the default model
//
//   <script type="module" src="element.js"></script>
//   <pix2seqd-segmenter src="photo.jpg" steps="4"></pix2seqd-segmenter>

import { createEngine } from "./engine.js";
import { imageToRGBA } from "./images.js";
import { DEFAULT_MODEL_URL, loadModel, resolveModelUrl } from "./models.js";
import { drawOverlay, formatBytes, formatMs, normalizeResult, summarizeSegments } from "./results.js";
import { errorMessage, plain } from "./shared.js";


/** One model download and one engine per (model URL, backend preference), shared by elements. */
const sharedEngines = new Map();

function getSharedEngine(jsonUrl, weightsUrl, pref) {
  const key = `${jsonUrl}\n${pref}`;
  let rec = sharedEngines.get(key);
  if (!rec) {
    rec = { key, listeners: new Set(), queue: Promise.resolve(), model: null };
    rec.ready = (async () => {
      rec.model = await loadModel(jsonUrl, weightsUrl, {
        onProgress: (p) => rec.listeners.forEach((fn) => fn(p)),
      });
      const created = await createEngine(rec.model, pref);
      Object.assign(rec, created, { info: plain(created.engine.info()) });
      return rec;
    })();
    rec.ready.catch(() => sharedEngines.delete(key));
    sharedEngines.set(key, rec);
  }
  return rec;
}

/** Runs fn(engine) after every earlier call on the same shared engine (one segment at a time). */
function onEngine(rec, fn) {
  const run = rec.queue.then(() => fn(rec.engine));
  rec.queue = run.catch(() => {});
  return run;
}

async function recreateShared(rec) {
  try {
    rec.engine.free();
  } catch {}
  const created = await createEngine(rec.model, rec.backend === "webgpu" ? "webgpu" : "cpu");
  Object.assign(rec, created, { info: plain(created.engine.info()) });
}

const ELEMENT_CSS = `
:host { display: inline-block; position: relative; max-width: 100%; font: 13px/1.4 system-ui, sans-serif;
  color: inherit; --p2s-accent: #6d5dfc; --p2s-radius: 10px; }
:host([hidden]) { display: none; }
.frame { position: relative; display: inline-block; vertical-align: top; max-width: 100%; margin: 0; line-height: 0; border-radius: var(--p2s-radius); overflow: hidden;
  background: repeating-conic-gradient(#8881 0 25%, #8882 0 50%) 0 0 / 16px 16px; min-height: 48px; min-width: 64px; }
img { display: block; max-width: 100%; height: auto; }
canvas { position: absolute; inset: 0; width: 100%; height: 100%; opacity: 0; transition: opacity .25s; }
canvas.on { opacity: 1; }
.busy { position: absolute; top: 8px; right: 8px; width: 18px; height: 18px; border-radius: 50%;
  border: 2px solid #fff8; border-top-color: var(--p2s-accent); animation: spin .8s linear infinite; display: none; }
:host([state="loading"]) .busy, :host([state="running"]) .busy { display: block; }
@keyframes spin { to { transform: rotate(360deg); } }
.tip { position: absolute; pointer-events: none; line-height: 1.2; padding: 3px 7px; border-radius: 6px;
  background: #000c; color: #fff; font-size: 12px; white-space: nowrap; transform: translate(-50%, -130%); display: none; }
.legend { display: flex; max-width: 100%; flex-wrap: wrap; gap: 4px 6px; margin-top: 6px; }
.legend:empty { display: none; }
.chip { display: inline-flex; align-items: center; gap: 5px; padding: 1px 8px 1px 4px; border-radius: 999px;
  background: #8882; font-size: 12px; }
.sw { width: 10px; height: 10px; border-radius: 3px; box-shadow: inset 0 0 0 1px #0003; }
.status { margin-top: 4px; opacity: .75; font-size: 12px; }
.status.error { opacity: 1; color: #d33; font-weight: 600; }
@media (prefers-color-scheme: dark) { .status.error { color: #ff7b7b; } }
`;

let sheet = null;
function elementSheet() {
  if (!sheet) {
    sheet = new CSSStyleSheet();
    sheet.replaceSync(ELEMENT_CSS);
  }
  return sheet;
}

export class Pix2seqdSegmenter extends HTMLElement {
  static get observedAttributes() {
    return ["src", "model", "steps", "backend", "td", "seed", "opacity", "outline"];
  }

  constructor() {
    super();
    const root = this.attachShadow({ mode: "open" });
    // A constructed stylesheet, not a <style> element: pages with a Content-Security-Policy
    // without 'unsafe-inline' for styles (as docs/web-api.md recommends) still style the element.
    root.adoptedStyleSheets = [elementSheet()];
    root.innerHTML = `<figure class="frame" part="frame">
        <img part="image" alt="">
        <canvas part="overlay" aria-hidden="true"></canvas>
        <div class="busy" aria-hidden="true"></div>
        <div class="tip" aria-hidden="true"></div>
      </figure>
      <div class="legend" part="legend" aria-label="Classes found"></div>
      <div class="status" part="status" role="status" aria-live="polite"></div>`;
    this._img = root.querySelector("img");
    this._canvas = root.querySelector("canvas");
    this._legend = root.querySelector(".legend");
    this._status = root.querySelector(".status");
    this._tip = root.querySelector(".tip");
    this._gen = 0;
    this._scheduled = false;
    this.result = null;
    this.engineInfo = null;
    this._canvas.parentElement.addEventListener("pointermove", (ev) => this._hover(ev));
    this._canvas.parentElement.addEventListener("pointerleave", () => (this._tip.style.display = "none"));
  }

  connectedCallback() {
    this._schedule();
  }

  attributeChangedCallback(name, oldValue, newValue) {
    if (oldValue !== newValue && this.isConnected) this._schedule();
  }

  /** "loading" | "running" | "done" | "error" (also the `state` attribute). */
  get state() {
    return this.getAttribute("state");
  }

  get src() {
    return this.getAttribute("src");
  }
  set src(v) {
    this.setAttribute("src", v);
  }
  get model() {
    return this.getAttribute("model");
  }
  set model(v) {
    this.setAttribute("model", v);
  }
  get steps() {
    return this.getAttribute("steps");
  }
  set steps(v) {
    this.setAttribute("steps", v);
  }

  /** Runs again now (e.g. after the image at the same URL changed). */
  run() {
    return this._run();
  }

  _schedule() {
    if (this._scheduled) return;
    this._scheduled = true;
    queueMicrotask(() => {
      this._scheduled = false;
      if (this.isConnected) this._run();
    });
  }

  _setState(state, text, isError = false) {
    this.setAttribute("state", state);
    this._status.textContent = text ?? "";
    this._status.classList.toggle("error", isError);
    this._status.setAttribute("role", isError ? "alert" : "status");
  }

  _options() {
    const o = {};
    const n = (name) => {
      const v = this.getAttribute(name);
      if (v == null || v === "") return undefined;
      const x = Number(v);
      return Number.isFinite(x) ? x : undefined;
    };
    const steps = n("steps");
    if (steps !== undefined) o.steps = Math.max(1, Math.min(100, Math.round(steps)));
    const td = n("td");
    if (td !== undefined) o.td = Math.max(0, td);
    const seed = n("seed");
    if (seed !== undefined) o.seed = Math.max(0, Math.round(seed));
    const opacity = n("opacity");
    if (opacity !== undefined) o.opacity = Math.max(0, Math.min(1, opacity));
    const outline = this.getAttribute("outline");
    if (outline != null) o.outline = !/^(false|0|off|no)$/i.test(outline);
    return o;
  }

  async _loadImage(src) {
    const url = new URL(src, document.baseURI);
    const img = this._img;
    if (img.src !== url.href) {
      if (url.origin !== location.origin) img.crossOrigin = "anonymous";
      else img.removeAttribute("crossorigin");
      this._canvas.classList.remove("on");
      img.src = url.href;
    }
    try {
      await img.decode();
    } catch {
      throw new Error(`Could not load the image '${src}': missing, or not an image the browser can decode.`);
    }
    return imageToRGBA(img, img.naturalWidth || 640, img.naturalHeight || 480);
  }

  async _run() {
    const gen = ++this._gen;
    const stale = () => gen !== this._gen;
    const src = this.getAttribute("src");
    const pref = (this.getAttribute("backend") || "auto").toLowerCase();
    try {
      if (!["auto", "webgpu", "cpu"].includes(pref)) throw new Error(`backend="${pref}" is not one of auto, webgpu, cpu.`);
      const { jsonUrl, weightsUrl } = resolveModelUrl(this.getAttribute("model") || DEFAULT_MODEL_URL, {
        allowCrossOrigin: true, // an attribute the page author wrote, not a URL parameter
      });
      this._setState("loading", "Loading model…");
      const rec = getSharedEngine(jsonUrl, weightsUrl, pref);
      const onProgress = (p) => {
        if (stale() || p.fromCache) return;
        const pct = p.total ? ` ${Math.round((100 * p.loaded) / p.total)}%` : ` ${formatBytes(p.loaded)}`;
        this._setState("loading", `Loading model…${pct}`);
      };
      rec.listeners.add(onProgress);
      let imagePromise = src ? this._loadImage(src) : null;
      imagePromise?.catch(() => {});
      try {
        await rec.ready;
      } finally {
        rec.listeners.delete(onProgress);
      }
      if (stale()) return;
      this.engineInfo = rec.info;
      if (!src) {
        this._setState("done", "Set the src attribute to an image.");
        return;
      }
      const image = await imagePromise;
      if (stale()) return;
      this._setState("running", "Segmenting…");
      const options = { ...this._options(), draw: false, overlay: true, readback: true, video: false };
      let raw;
      for (let attempt = 0; ; attempt++) {
        try {
          raw = await onEngine(rec, (engine) => engine.segment(image.rgba.slice(), image.width, image.height, options));
          break;
        } catch (e) {
          const lost = rec.backend === "webgpu" && rec.engine.lost && rec.engine.lost();
          if (!lost || attempt > 0) throw e;
          this._setState("running", "GPU device was lost; recreating…");
          await onEngine(rec, () => recreateShared(rec));
        }
      }
      if (stale()) return;
      const result = normalizeResult(raw);
      this._draw(result);
      this.result = result;
      const n = result.segments.length;
      const modelName = rec.info?.model?.name ?? rec.model?.name ?? "model";
      this._setState(
        "done",
        `${modelName} · ${rec.backend === "webgpu" ? "WebGPU" : "CPU"} · ${formatMs(result.ms.total)} · ${n} segment${n === 1 ? "" : "s"}` +
          (image.scaled ? ` · scaled to ${image.width}×${image.height}` : ""),
      );
      this.dispatchEvent(new CustomEvent("pix2seqd-result", { detail: result, bubbles: true, composed: true }));
    } catch (e) {
      if (stale()) return;
      const message = errorMessage(e);
      this.result = null;
      this._setState("error", message, true);
      this.dispatchEvent(new CustomEvent("pix2seqd-error", { detail: { message }, bubbles: true, composed: true }));
    }
  }

  _draw(result) {
    const c = this._canvas;
    if (result.overlay) {
      drawOverlay(c, c.getContext("2d"), result);
      c.classList.add("on");
    }
    const classes = this.engineInfo?.model?.classes ?? [];
    this._legend.replaceChildren(
      ...summarizeSegments(result, classes).map((e) => {
        const chip = document.createElement("span");
        chip.className = "chip";
        chip.setAttribute("part", "chip");
        const sw = document.createElement("span");
        sw.className = "sw";
        sw.style.background = `rgb(${e.color.join(",")})`;
        chip.append(sw, document.createTextNode(e.isThing && e.count > 1 ? `${e.label} ×${e.count}` : e.label));
        return chip;
      }),
    );
  }

  _hover(ev) {
    const r = this.result;
    if (!r || !r.segmentIds) return;
    const rect = this._canvas.getBoundingClientRect();
    const x = Math.floor(((ev.clientX - rect.left) / rect.width) * r.width);
    const y = Math.floor(((ev.clientY - rect.top) / rect.height) * r.height);
    const tip = this._tip;
    if (x < 0 || y < 0 || x >= r.width || y >= r.height) {
      tip.style.display = "none";
      return;
    }
    const id = r.segmentIds[y * r.width + x];
    const seg = id ? r.segments.find((s) => s.id === id) : null;
    if (!seg) {
      tip.style.display = "none";
      return;
    }
    tip.textContent = seg.isThing && seg.instance != null ? `${seg.label} #${seg.instance}` : seg.label;
    tip.style.left = `${ev.clientX - rect.left}px`;
    tip.style.top = `${ev.clientY - rect.top}px`;
    tip.style.display = "block";
  }
}

if (!customElements.get("pix2seqd-segmenter")) {
  customElements.define("pix2seqd-segmenter", Pix2seqdSegmenter);
}
