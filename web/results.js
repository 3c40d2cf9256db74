// What the engine returns, made usable: the result with every documented field, the classes it
// contains, durations and sizes as text, the overlay drawn into a 2D canvas, a fingerprint of the
// segment-id map.

import { get } from "./shared.js";

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

/** Several durations in one unit, written once at the end: "3.49 · 2.62 s", "41.0 · 39.5 ms". */
export function formatMsSeries(list) {
  const xs = Array.from(list ?? [], Number).filter(Number.isFinite);
  if (!xs.length) return "—";
  if (Math.max(...xs) >= 1000) return `${xs.map((x) => (x / 1000).toFixed(2)).join(" · ")} s`;
  return `${xs.map((x) => (x >= 100 ? x.toFixed(0) : x.toFixed(1))).join(" · ")} ms`;
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

/**
 * Puts a streaming result over the live video: `result.overlay` drawn at opacity 1 (the segments'
 * own colours), made translucent (`opacity`) where there is a segment and clear where there is
 * none, so the <video> under the canvas shows through between masks.
 */
export function drawMaskOverVideo(canvas, ctx2d, result, opacity) {
  const o = result.overlay;
  const px = o instanceof Uint8ClampedArray ? o : new Uint8ClampedArray(o.buffer, o.byteOffset, o.byteLength);
  const ids = result.segmentIds;
  const alpha = Math.round(255 * opacity);
  for (let i = 0, n = result.width * result.height; i < n; i++) px[4 * i + 3] = ids[i] ? alpha : 0;
  drawOverlay(canvas, ctx2d, { ...result, overlay: px });
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
