// Engines: the backend choice (WebGPU on a hardware adapter, else the CPU engine in a Web Worker)
// and the worker proxy, which has the wasm Engine's interface and restarts its worker after a
// crash or a cancel.

import { errorMessage, plain } from "./shared.js";
import { loadWasm } from "./wasm.js";

export const WORKER_URL = new URL("./worker.js", import.meta.url).href;


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
  constructor() {
    this.pending = new Map();
    this.nextId = 1;
    this._info = null;
    this._dead = null;
    this._model = null; // {json, weights}: to create the engine again in a restarted worker
    this._restarting = null;
    this.restarts = 0;
    /** Called with a sentence when the worker crashed (it is being restarted). */
    this.onCrash = null;
    this.version = null;
    this._attach(spawnWorker());
  }

  _attach(worker) {
    this.worker = worker;
    worker.onmessage = (ev) => {
      const m = ev.data || {};
      const p = this.pending.get(m.id);
      if (!p) return;
      if (m.type === "progress") {
        p.onStep?.(m.done, m.steps);
        return;
      }
      this.pending.delete(m.id);
      // A trap inside the engine (WebAssembly.RuntimeError) leaves its instance unusable.
      if (m.type === "error" && m.fatal) this._crash(m.message);
      if (m.type === "error") p.reject(new Error(m.message));
      else p.resolve(m);
    };
    worker.onerror = (ev) => {
      ev.preventDefault?.();
      this._crash(ev.message || "worker.js or the engine module failed to load");
    };
    worker.onmessageerror = () => this._crash("it sent a message that could not be read");
  }

  /**
   * The worker died or its engine trapped: fail what was in flight with a message naming the
   * cause, then start a new worker with the same model, so the next call works again.
   */
  _crash(reason) {
    if (this._dead) return;
    const why = String(reason).replace(/\.$/, "");
    if (!this._model) {
      this._fail(`The CPU worker stopped (${why}).`);
      return;
    }
    const message = `The CPU worker crashed (${why}); it was restarted, so the next image runs on a fresh engine.`;
    this._restart(message, false);
    this.onCrash?.(message);
  }

  /**
   * Cancels the call in flight: a busy worker reads no message until its call returns, so it is
   * stopped and a new one started with the same model (about as long as loading the model).
   * Resolves false when nothing was running.
   */
  cancel() {
    const busy = [...this.pending.values()].some((p) => p.kind === "segment");
    if (!busy || !this._model || this._dead) return false;
    this._restart("Cancelled.", true);
    return true;
  }

  /** Fails the calls in flight with `message`, then replaces the worker (same model). */
  _restart(message, cancelled) {
    this._fail(message, cancelled);
    this.worker.terminate();
    this.restarts++;
    this._restarting = (async () => {
      this._attach(spawnWorker());
      this._dead = null;
      try {
        await this._call({ type: "create", json: this._model.json, weights: this._model.weights });
      } catch (e) {
        this._dead = `The CPU worker could not be restarted: ${errorMessage(e)}`;
      } finally {
        this._restarting = null;
      }
    })();
  }

  _fail(message, cancelled = false) {
    this._dead = message;
    for (const p of this.pending.values()) p.reject(Object.assign(new Error(message), { cancelled }));
    this.pending.clear();
  }

  async _call(msg, transfer = [], onStep = null) {
    if (this._restarting && msg.type !== "create") await this._restarting;
    if (this._dead) throw new Error(this._dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onStep, kind: msg.type });
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
    const w = new WorkerEngine();
    try {
      const r = await w._call({ type: "create", json, weights });
      w._info = plain(r.info);
      w.version = r.version;
      w._model = { json, weights };
      return w;
    } catch (e) {
      w.free();
      throw e;
    }
  }

  /** Testing aid: makes the worker throw an uncaught error, as a trap in the engine would. */
  crash() {
    this.worker.postMessage({ type: "crash", id: 0 });
  }

  info() {
    return this._info;
  }

  /**
   * Like Engine.segment, `options.onStep(done, steps)` included; the rgba buffer is transferred to
   * the worker (detached here).
   */
  async segment(rgba, width, height, options = {}) {
    let data = rgba;
    if (!(data.buffer instanceof ArrayBuffer) || data.byteOffset !== 0 || data.byteLength !== data.buffer.byteLength) {
      data = data.slice();
    }
    const { onStep, ...rest } = options; // a function cannot be posted: the worker reports steps
    const msg = { type: "segment", rgba: data, width, height, options: rest, progress: typeof onStep === "function" };
    const r = await this._call(msg, [data.buffer], onStep);
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
    this._model = null;
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
