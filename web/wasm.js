// The engine's WebAssembly module (wasm-bindgen, --target web), loaded once per page or worker:
// element.js's engines and the CPU worker (worker.js) both use this loader.

import { errorMessage, shortUrl } from "./shared.js";

export const PKG_URL = new URL("./pkg/pix2seqd.js", import.meta.url).href;

let wasmPromise = null;

// A module of one function that uses a v128 instruction: it validates only where WebAssembly SIMD
// exists. The engine is built with simd128 (.cargo/config.toml), so without it nothing can run.
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11,
]);

export function hasWasmSimd() {
  try {
    return WebAssembly.validate(SIMD_PROBE);
  } catch {
    return false;
  }
}

/** Imports ./pkg/pix2seqd.js and runs its init() once; rejects with a readable message. */
export function loadWasm() {
  if (!wasmPromise) {
    wasmPromise = (async () => {
      if (!hasWasmSimd()) {
        throw new Error(
          "This browser lacks WebAssembly SIMD, which the engine needs (Chrome and Edge 91+, Firefox 89+, Safari 16.4+).",
        );
      }
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
