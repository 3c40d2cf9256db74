// Models: the URL rules (same origin unless allowed; the weights beside the card), the download
// with progress, and the Cache API copy that spares a reload the download.

import { errorMessage, shortUrl } from "./shared.js";

/** The model the page and the element load without a `model`: objects (staged by cargo xtask web). */
export const DEFAULT_MODEL_URL = new URL("./models/objects.json", import.meta.url).href;
export const CACHE_NAME = "pix2seqd-models-v1";

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
