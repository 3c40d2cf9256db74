// pix2seqd in the browser: the <pix2seqd-segmenter> custom element, plus the helpers the demo page
// (app.js) shares with it: model loading (progress, Cache API, URL rules), backend choice
// (WebGPU or the CPU engine in a Web Worker), image decoding and result normalisation.
//
// One ES module; everything it needs is found relative to its own URL:
//   ./pkg/pix2seqd.js (+ pix2seqd_bg.wasm)   the engine (wasm-bindgen, --target web)
//   ./worker.js                              the CPU engine in a Web Worker
//   ./models/default.json (+ .safetensors)   the default model
//
//   <script type="module" src="element.js"></script>
//   <pix2seqd-segmenter src="photo.jpg" steps="4"></pix2seqd-segmenter>

import { errorMessage, get, plain } from "./shared.js";

export { errorMessage, plain };

export const PKG_URL = new URL("./pkg/pix2seqd.js", import.meta.url).href;
export const WORKER_URL = new URL("./worker.js", import.meta.url).href;
export const DEFAULT_MODEL_URL = new URL("./models/default.json", import.meta.url).href;
export const CACHE_NAME = "pix2seqd-models-v1";
/** Images larger than this on the long side are drawn scaled down to it. */
export const MAX_SIDE = 4096;

// ---------------------------------------------------------------------------------------------
// small helpers


export function formatBytes(n) {
  if (!Number.isFinite(n)) return "?";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function formatMs(ms) {
  if (ms == null || !Number.isFinite(ms)) return "—";
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 100) return `${ms.toFixed(0)} ms`;
  return `${ms.toFixed(1)} ms`;
}

function shortUrl(url) {
  try {
    const u = new URL(url);
    return u.origin === location.origin ? u.pathname.replace(/^\//, "") + u.search : u.href;
  } catch {
    return String(url);
  }
}

/** Puts a result's RGBA overlay into a 2D canvas, sized to the result. */
export function drawOverlay(canvas, ctx2d, result) {
  if (canvas.width !== result.width || canvas.height !== result.height) {
    canvas.width = result.width;
    canvas.height = result.height;
  }
  const o = result.overlay;
  const data = o instanceof Uint8ClampedArray ? o : new Uint8ClampedArray(o.buffer, o.byteOffset, o.byteLength);
  ctx2d.putImageData(new ImageData(data, result.width, result.height), 0, 0);
}

/** The engine's Result with every documented field present (null where absent). */
export function normalizeResult(r) {
  const ms = get(r, "ms");
  const num = (v) => (v == null ? null : Number(v));
  const segments = Array.from(get(r, "segments") ?? [], (s) => ({
    id: num(get(s, "id")),
    class: num(get(s, "class")),
    label: String(get(s, "label") ?? `class ${get(s, "class")}`),
    isThing: Boolean(get(s, "isThing")),
    instance: num(get(s, "instance")),
    area: num(get(s, "area")) ?? 0,
    bbox: Array.from(get(s, "bbox") ?? [0, 0, 0, 0], Number),
    color: Array.from(get(s, "color") ?? [128, 128, 128], Number),
  }));
  const perStep = get(ms, "decoderPerStep");
  return {
    backend: get(r, "backend") ?? null,
    width: num(get(r, "width")),
    height: num(get(r, "height")),
    ms: {
      ingest: num(get(ms, "ingest")),
      encoder: num(get(ms, "encoder")),
      decoder: num(get(ms, "decoder")),
      decoderPerStep: perStep == null ? null : Array.from(perStep, Number),
      readout: num(get(ms, "readout")),
      postprocess: num(get(ms, "postprocess")),
      total: num(get(ms, "total")),
      source: get(ms, "source") ?? null,
    },
    segments,
    segmentIds: get(r, "segmentIds") ?? null,
    overlay: get(r, "overlay") ?? null,
    drawn: Boolean(get(r, "drawn")),
    conditionedOn: num(get(r, "conditionedOn")) ?? 0,
  };
}

/** Classes present in a result: [{class, label, color, isThing, count, area}] by area. */
export function summarizeSegments(result, classes = []) {
  const byClass = new Map();
  for (const s of result.segments) {
    let e = byClass.get(s.class);
    if (!e) {
      const c = classes.find((k) => k.id === s.class);
      e = { class: s.class, label: s.label, isThing: s.isThing, color: c?.color ?? s.color, count: 0, area: 0, ids: [] };
      byClass.set(s.class, e);
    }
    e.count += 1;
    e.area += s.area;
    e.ids.push(s.id);
  }
  return [...byClass.values()].sort((a, b) => b.area - a.area);
}

// ---------------------------------------------------------------------------------------------
// the wasm module

let wasmPromise = null;

/** Imports ./pkg/pix2seqd.js and runs its init() once; rejects with a readable message. */
export function loadWasm() {
  if (!wasmPromise) {
    wasmPromise = (async () => {
      let mod;
      try {
        mod = await import(PKG_URL);
      } catch (e) {
        throw new Error(
          `Could not load the engine module ${shortUrl(PKG_URL)} (${errorMessage(e)}); build it with \`cargo xtask web\`.`,
        );
      }
      try {
        await mod.default();
      } catch (e) {
        throw new Error(`Could not start the engine's WebAssembly: ${errorMessage(e)}`);
      }
      return mod;
    })();
    wasmPromise.catch(() => {
      wasmPromise = null;
    });
  }
  return wasmPromise;
}

// ---------------------------------------------------------------------------------------------
// model URL rules, download with progress, Cache API

/**
 * Resolves a model card URL and the weights beside it (same stem, `.safetensors`).
 * Cross-origin URLs are refused unless `allowCrossOrigin`.
 */
export function resolveModelUrl(spec, { base = document.baseURI, allowCrossOrigin = false } = {}) {
  let url;
  try {
    url = new URL(spec, base);
  } catch {
    throw new Error(`The model URL '${spec}' is not a valid URL.`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Error(`The model URL '${spec}' must be an http(s) URL.`);
  }
  if (url.origin !== location.origin && !allowCrossOrigin) {
    throw new Error(
      `Refusing to load a model from another origin (${url.origin}): add &allowCrossOrigin=1 to the page URL if you trust that site.`,
    );
  }
  if (!/\.json$/i.test(url.pathname)) {
    throw new Error(`The model URL must point to the model card (.json), not '${spec}'.`);
  }
  const weights = new URL(url.href);
  weights.pathname = url.pathname.replace(/\.json$/i, ".safetensors");
  return { jsonUrl: url.href, weightsUrl: weights.href };
}

async function openCache() {
  try {
    if (typeof caches === "undefined") return null;
    return await caches.open(CACHE_NAME);
  } catch {
    return null; // e.g. not a secure context, or storage disabled
  }
}

function validatorOf(headers) {
  return [headers.get("etag") ?? "", headers.get("last-modified") ?? "", headers.get("content-length") ?? ""].join("|");
}

/** fetch() with a byte-count progress callback ({loaded, total}; total 0 when unknown). */
export async function fetchBytes(url, onProgress, what = "file") {
  let res;
  try {
    res = await fetch(url, { cache: "no-cache" });
  } catch (e) {
    throw new Error(`Could not download the ${what} ${shortUrl(url)}: ${errorMessage(e)} (offline, or the server does not allow it).`);
  }
  if (!res.ok) throw new Error(`Could not download the ${what} ${shortUrl(url)}: HTTP ${res.status} ${res.statusText}`.trim() + ".");
  const total = Number(res.headers.get("content-length")) || 0;
  if (!res.body || !res.body.getReader) {
    const bytes = new Uint8Array(await res.arrayBuffer());
    onProgress?.({ loaded: bytes.length, total: bytes.length });
    return { bytes, headers: res.headers };
  }
  const reader = res.body.getReader();
  const chunks = [];
  let loaded = 0;
  onProgress?.({ loaded, total });
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    onProgress?.({ loaded, total });
  }
  const bytes = new Uint8Array(loaded);
  let off = 0;
  for (const c of chunks) {
    bytes.set(c, off);
    off += c.length;
  }
  return { bytes, headers: res.headers };
}

/**
 * Loads a model card (always asked for fresh: it is small) and its weights (from the Cache API when
 * the cached copy belongs to the same card and the server's copy has not changed).
 * Resolves {json, weights, fromCache, jsonUrl, weightsUrl, name}.
 */
export async function loadModel(jsonUrl, weightsUrl, { onProgress } = {}) {
  const cache = await openCache();
  let jsonText = null;
  let jsonFromNetwork = true;
  try {
    const res = await fetch(jsonUrl, { cache: "no-cache" });
    if (!res.ok) throw new Error(`HTTP ${res.status} ${res.statusText}`.trim());
    jsonText = await res.text();
  } catch (e) {
    const cached = cache && (await cache.match(jsonUrl));
    if (!cached) throw new Error(`Could not load the model card ${shortUrl(jsonUrl)}: ${errorMessage(e)}.`);
    jsonText = await cached.text();
    jsonFromNetwork = false;
  }
  let card;
  try {
    card = JSON.parse(jsonText);
  } catch (e) {
    throw new Error(`The model card ${shortUrl(jsonUrl)} is not valid JSON (${errorMessage(e)}).`);
  }
  const name = card?.config?.name ?? card?.name ?? shortUrl(jsonUrl);

  let weights = null;
  let fromCache = false;
  if (cache) {
    try {
      const [cj, cw] = await Promise.all([cache.match(jsonUrl), cache.match(weightsUrl)]);
      if (cj && cw && (await cj.text()) === jsonText) {
        let fresh = !jsonFromNetwork;
        if (!fresh) {
          const head = await fetch(weightsUrl, { method: "HEAD", cache: "no-cache" }).catch(() => null);
          fresh = !head || !head.ok || validatorOf(head.headers) === cw.headers.get("x-pix2seqd-validator");
        }
        if (fresh) {
          weights = new Uint8Array(await cw.arrayBuffer());
          fromCache = true;
          onProgress?.({ loaded: weights.length, total: weights.length, fromCache: true });
        }
      }
    } catch (e) {
      console.warn("pix2seqd: model cache lookup failed", e);
    }
  }
  if (!weights) {
    const { bytes, headers } = await fetchBytes(weightsUrl, onProgress, "model weights");
    weights = bytes;
    if (cache) {
      try {
        await cache.put(
          weightsUrl,
          new Response(bytes, {
            headers: {
              "content-type": "application/octet-stream",
              "content-length": String(bytes.length),
              "x-pix2seqd-validator": validatorOf(headers),
            },
          }),
        );
        await cache.put(jsonUrl, new Response(jsonText, { headers: { "content-type": "application/json" } }));
      } catch (e) {
        console.warn("pix2seqd: could not cache the model", e);
      }
    }
  }
  return { json: jsonText, weights, fromCache, jsonUrl, weightsUrl, name };
}

// ---------------------------------------------------------------------------------------------
// backend choice

/** Limits the engine asks of a device (the WebGPU defaults). */
const NEEDED_LIMITS = {
  maxStorageBuffersPerShaderStage: 8,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupStorageSize: 16384,
  maxStorageBufferBindingSize: 128 * 1024 * 1024,
};

function describeAdapter(info) {
  if (!info) return "";
  const parts = [info.description, [info.vendor, info.architecture].filter(Boolean).join(" "), info.device];
  return parts.find((p) => p && String(p).trim()) || "unnamed adapter";
}

/** Asks navigator.gpu for an adapter: {adapter, info, name, isFallback, reason}. */
export async function probeWebGPU() {
  if (typeof navigator === "undefined" || !navigator.gpu) {
    return { adapter: null, reason: "No WebGPU in this browser" };
  }
  let adapter = null;
  try {
    adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  } catch (e) {
    return { adapter: null, reason: `WebGPU adapter request failed (${errorMessage(e)})` };
  }
  if (!adapter) {
    return { adapter: null, reason: "WebGPU is present but no GPU adapter is available (disabled or blocklisted)" };
  }
  let info = adapter.info;
  if (!info && adapter.requestAdapterInfo) info = await adapter.requestAdapterInfo().catch(() => null);
  info = info || {};
  const isFallback = Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter);
  const name = describeAdapter(info);
  const text = `${info.vendor ?? ""} ${info.architecture ?? ""} ${info.description ?? ""} ${info.device ?? ""}`;
  const isSwiftShader = /swiftshader/i.test(text);
  const lacking = Object.entries(NEEDED_LIMITS)
    .filter(([k, v]) => adapter.limits && adapter.limits[k] !== undefined && adapter.limits[k] < v)
    .map(([k, v]) => `${k} ${adapter.limits[k]} < ${v}`);
  return {
    adapter,
    info: {
      vendor: info.vendor ?? "",
      architecture: info.architecture ?? "",
      device: info.device ?? "",
      description: info.description ?? "",
      isFallbackAdapter: isFallback,
    },
    name,
    isFallback,
    isSwiftShader,
    lacking,
  };
}

/**
 * Picks the backend for a preference "auto" | "webgpu" | "cpu":
 * {backend: "webgpu"|"cpu", reason, probe}. A software (fallback) adapter counts as no GPU unless
 * "webgpu" is forced.
 */
export async function chooseBackend(pref = "auto") {
  if (pref === "cpu") return { backend: "cpu", reason: "CPU path requested (backend=cpu)", probe: null };
  const probe = await probeWebGPU();
  if (!probe.adapter) return { backend: "cpu", reason: probe.reason, probe };
  if (pref !== "webgpu") {
    if (probe.isFallback) {
      const what = probe.isSwiftShader ? "SwiftShader" : probe.name;
      return { backend: "cpu", reason: `Software GPU adapter (${what}): the CPU path is faster`, probe };
    }
    if (probe.lacking.length) {
      return { backend: "cpu", reason: `GPU lacks what the engine needs (${probe.lacking.join(", ")})`, probe };
    }
  }
  const reason =
    pref === "webgpu"
      ? probe.isFallback
        ? "WebGPU forced on a software adapter (backend=webgpu): slow"
        : "WebGPU requested (backend=webgpu)"
      : `GPU adapter: ${probe.name}`;
  return { backend: "webgpu", reason, probe };
}

// ---------------------------------------------------------------------------------------------
// the CPU engine in a Web Worker, with the Engine's interface

function spawnWorker() {
  try {
    return new Worker(WORKER_URL, { type: "module", name: "pix2seqd-cpu" });
  } catch (e) {
    // element.js served from another origin than the page: a same-origin blob that imports it.
    const shim = new Blob([`import ${JSON.stringify(WORKER_URL)};`], { type: "text/javascript" });
    return new Worker(URL.createObjectURL(shim), { type: "module", name: "pix2seqd-cpu" });
  }
}

export class WorkerEngine {
  constructor(worker) {
    this.worker = worker;
    this.pending = new Map();
    this.nextId = 1;
    this._info = null;
    this._dead = null;
    this.version = null;
    worker.onmessage = (ev) => {
      const m = ev.data || {};
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.type === "error") p.reject(new Error(m.message));
      else p.resolve(m);
    };
    worker.onerror = (ev) => {
      ev.preventDefault?.();
      this._fail(`The CPU worker stopped (${ev.message || "worker.js or the engine module failed to load"}).`);
    };
    worker.onmessageerror = () => this._fail("The CPU worker sent a message that could not be read.");
  }

  _fail(message) {
    this._dead = message;
    for (const p of this.pending.values()) p.reject(new Error(message));
    this.pending.clear();
  }

  _call(msg, transfer = []) {
    if (this._dead) return Promise.reject(new Error(this._dead));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      try {
        this.worker.postMessage({ ...msg, id }, transfer);
      } catch (e) {
        this.pending.delete(id);
        reject(e);
      }
    });
  }

  /** Starts a worker and creates the CPU engine in it (rejects with the engine's message). */
  static async create(json, weights) {
    const w = new WorkerEngine(spawnWorker());
    try {
      const r = await w._call({ type: "create", json, weights });
      w._info = plain(r.info);
      w.version = r.version;
      return w;
    } catch (e) {
      w.free();
      throw e;
    }
  }

  info() {
    return this._info;
  }

  /** Like Engine.segment; the rgba buffer is transferred to the worker (detached here). */
  async segment(rgba, width, height, options = {}) {
    let data = rgba;
    if (!(data.buffer instanceof ArrayBuffer) || data.byteOffset !== 0 || data.byteLength !== data.buffer.byteLength) {
      data = data.slice();
    }
    const r = await this._call({ type: "segment", rgba: data, width, height, options }, [data.buffer]);
    return r.result;
  }

  reset() {
    this._call({ type: "reset" }).catch(() => {});
  }

  stats() {
    return { buffers: 0, bufferBytes: 0, bindGroups: 0, pipelines: 0, shaderModules: 0, submits: 0, dispatches: 0 };
  }

  lost() {
    return null;
  }

  attachCanvas() {
    throw new Error("The CPU engine draws nothing itself: draw result.overlay.");
  }

  free() {
    this._fail("The CPU engine was released.");
    this.worker.terminate();
  }
}

/**
 * Creates an engine for a loaded model and a backend preference: WebGPU when chosen and it starts,
 * else the CPU engine in a worker. Resolves {engine, backend, reason, probe, wasm}.
 */
export async function createEngine(model, pref = "auto") {
  const choice = await chooseBackend(pref);
  let reason = choice.reason;
  if (choice.backend === "webgpu") {
    const wasm = await loadWasm();
    try {
      const engine = await wasm.Engine.create(model.json, model.weights, "webgpu");
      return { engine, backend: "webgpu", reason, probe: choice.probe, wasm };
    } catch (e) {
      reason = `WebGPU engine could not start (${errorMessage(e)}); using the CPU path`;
    }
  }
  const engine = await WorkerEngine.create(model.json, model.weights);
  return { engine, backend: "cpu", reason, probe: choice.probe, wasm: null };
}

// ---------------------------------------------------------------------------------------------
// images

function sniffImageType(bytes) {
  const b = bytes;
  const at = (i, s) => [...s].every((ch, j) => b[i + j] === ch.charCodeAt(0));
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "jpeg";
  if (b.length >= 8 && b[0] === 0x89 && at(1, "PNG")) return "png";
  if (b.length >= 12 && at(0, "RIFF") && at(8, "WEBP")) return "webp";
  if (b.length >= 6 && at(0, "GIF8")) return "gif";
  if (b.length >= 2 && at(0, "BM")) return "bmp";
  if (b.length >= 12 && at(4, "ftyp") && (at(8, "avif") || at(8, "avis"))) return "avif";
  return null;
}

/** Decodes an image File/Blob into an ImageBitmap, with a readable error naming the file. */
export async function decodeImageFile(file) {
  const name = file.name || "image";
  const head = new Uint8Array(await file.slice(0, 32).arrayBuffer());
  const kind = sniffImageType(head);
  const isSvg = /svg/i.test(file.type) || /\.svg$/i.test(name);
  if (!kind && !isSvg) {
    throw new Error(
      file.size === 0
        ? `Could not decode '${name}': the file is empty.`
        : `Could not decode '${name}': not a JPEG, PNG or WebP image.`,
    );
  }
  try {
    if (isSvg) {
      const url = URL.createObjectURL(file);
      try {
        const img = new Image();
        img.src = url;
        await img.decode();
        return await createImageBitmap(img);
      } finally {
        URL.revokeObjectURL(url);
      }
    }
    return await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch (e) {
    throw new Error(`Could not decode '${name}': the ${kind ? kind.toUpperCase() : "image"} data is damaged or unsupported.`);
  }
}

/**
 * Draws an image source into RGBA8 pixels, scaled down only when its long side exceeds MAX_SIDE.
 * Returns {rgba: Uint8ClampedArray, width, height, naturalWidth, naturalHeight, scaled}.
 */
export function imageToRGBA(source, naturalWidth, naturalHeight, maxSide = MAX_SIDE) {
  if (!naturalWidth || !naturalHeight) throw new Error("The image has no size.");
  const scale = Math.min(1, maxSide / Math.max(naturalWidth, naturalHeight));
  const width = Math.max(1, Math.round(naturalWidth * scale));
  const height = Math.max(1, Math.round(naturalHeight * scale));
  const canvas =
    typeof OffscreenCanvas !== "undefined"
      ? new OffscreenCanvas(width, height)
      : Object.assign(document.createElement("canvas"), { width, height });
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(source, 0, 0, width, height);
  let data;
  try {
    data = ctx.getImageData(0, 0, width, height).data;
  } catch (e) {
    throw new Error(`Cannot read the image's pixels (${errorMessage(e)}): serve it from this site or with CORS.`);
  }
  return { rgba: data, width, height, naturalWidth, naturalHeight, scaled: scale < 1 };
}

/** FNV-1a hash of a typed array's bytes, as 8 hex digits: a fingerprint of segmentIds. */
export function fingerprint(view) {
  if (!view) return null;
  const b = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) {
    h ^= b[i];
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, "0");
}

// ---------------------------------------------------------------------------------------------
// <pix2seqd-segmenter>

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

export class Pix2seqdSegmenter extends HTMLElement {
  static get observedAttributes() {
    return ["src", "model", "steps", "backend", "td", "seed", "opacity", "outline"];
  }

  constructor() {
    super();
    const root = this.attachShadow({ mode: "open" });
    root.innerHTML = `<style>${ELEMENT_CSS}</style>
      <figure class="frame" part="frame">
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
