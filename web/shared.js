// Helpers shared by the custom element / page module (element.js) and the CPU Web Worker
// (worker.js). No DOM here: the worker imports it too.

export function errorMessage(e) {
  if (e == null) return "Unknown error";
  if (typeof e === "string") return e;
  if (e.message) return String(e.message);
  try {
    return String(e);
  } catch {
    return "Unknown error";
  }
}

/** A field of an object or a Map (wasm-bindgen may hand either). */
export const get = (o, k) => (o == null ? undefined : o instanceof Map ? o.get(k) : o[k]);

/** A plain, structured-clone-safe copy of a value the engine returned (objects or Maps). */
export function plain(value) {
  if (value == null || typeof value !== "object") return value;
  if (ArrayBuffer.isView(value)) return value;
  if (value instanceof Map) {
    const o = {};
    for (const [k, v] of value) o[k] = plain(v);
    return o;
  }
  if (Array.isArray(value)) return value.map(plain);
  const o = {};
  for (const k of Object.keys(value)) o[k] = plain(value[k]);
  return o;
}

/** A URL as short as it can be written for a message: a path on this origin, else the whole URL. */
export function shortUrl(url) {
  try {
    const u = new URL(url);
    return u.origin === location.origin ? u.pathname.replace(/^\//, "") + u.search : u.href;
  } catch {
    return String(url);
  }
}
