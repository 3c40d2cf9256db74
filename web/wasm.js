// The engine's WebAssembly module (wasm-bindgen, --target web), loaded once per page or worker:
// element.js's engines and the CPU worker (worker.js) both use this loader.

import { errorMessage, shortUrl } from "./shared.js";

export const PKG_URL = new URL("./pkg/pix2seqd.js", import.meta.url).href;

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
