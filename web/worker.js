// pix2seqd CPU engine in a Web Worker.
//
// The page (app.js) and the custom element (element.js) start this module worker when WebGPU is
// missing or only a software adapter is available. It runs the engine's CPU path
// (`Engine.create(json, weights, "cpu")`) off the main thread.
//
// Messages in  (each with a numeric `id`):
//   {type: "create", json: string, weights: Uint8Array}
//   {type: "segment", rgba: Uint8Array|Uint8ClampedArray, width, height, options, progress}
//                                              (rgba transferred; progress: report steps)
//   {type: "reset"}
//   {type: "stats"}
//   {type: "crash"}   testing aid: an uncaught error, as a trap in the engine gives
// Messages out (same `id`):
//   {type: "created", info, version}        {type: "result", result, workerMs}
//   {type: "progress", done, steps}         (before the result, once per finished step)
//   {type: "ok"}    {type: "stats", stats}  {type: "error", message, fatal}
// `fatal`: the engine trapped (WebAssembly.RuntimeError) and this worker cannot go on; the page
// (element.js WorkerEngine) starts a new one.
// Requests are handled one at a time, in order.

import { errorMessage, get, plain } from "./shared.js";
import { loadWasm } from "./wasm.js";

let engine = null;
let queue = Promise.resolve();

function transferable(view) {
  if (!view || !ArrayBuffer.isView(view)) return null;
  const buf = view.buffer;
  if (!(buf instanceof ArrayBuffer)) return null; // SharedArrayBuffer / wasm memory
  if (view.byteOffset !== 0 || view.byteLength !== buf.byteLength) return null;
  return buf;
}

function post(msg, transfer = []) {
  try {
    self.postMessage(msg, transfer);
  } catch {
    self.postMessage(msg); // not transferable after all: copy
  }
}

async function handle(msg) {
  const id = msg.id;
  try {
    switch (msg.type) {
      case "create": {
        const mod = await loadWasm();
        if (engine) {
          try {
            engine.free();
          } catch {}
          engine = null;
        }
        engine = await mod.Engine.create(msg.json, msg.weights, "cpu");
        post({ type: "created", id, info: plain(engine.info()), version: mod.version ? mod.version() : null });
        return;
      }
      case "segment": {
        if (!engine) throw new Error("The CPU engine is not created yet.");
        const t0 = performance.now();
        const options = { ...(msg.options || {}) };
        if (msg.progress) options.onStep = (done, steps) => post({ type: "progress", id, done, steps });
        const r = await engine.segment(msg.rgba, msg.width, msg.height, options);
        const workerMs = performance.now() - t0;
        const result = plain(r);
        // Typed arrays stay typed arrays (plain() keeps views); copy views on wasm memory.
        for (const k of ["segmentIds", "overlay"]) {
          const v = get(r, k);
          if (v && ArrayBuffer.isView(v) && !transferable(v)) result[k] = v.slice();
          else if (v) result[k] = v;
        }
        const transfer = [result.segmentIds, result.overlay].map(transferable).filter(Boolean);
        post({ type: "result", id, result, workerMs }, transfer);
        return;
      }
      case "reset":
        if (engine) engine.reset();
        post({ type: "ok", id });
        return;
      case "crash":
        setTimeout(() => {
          throw new Error("crash requested by the page (testing aid)");
        });
        return;
      case "stats":
        post({ type: "stats", id, stats: engine ? plain(engine.stats()) : null });
        return;
      default:
        throw new Error(`Unknown message type '${msg.type}'.`);
    }
  } catch (e) {
    const fatal = typeof WebAssembly !== "undefined" && e instanceof WebAssembly.RuntimeError;
    post({ type: "error", id, message: fatal ? `the engine trapped: ${errorMessage(e)}` : errorMessage(e), fatal });
  }
}

self.onmessage = (ev) => {
  const msg = ev.data || {};
  queue = queue.then(() => handle(msg));
};
