// The demo page's state, one copy of each piece: the page's elements, its URL parameters, the
// engine slots (`app.slot` is the one in use; the engine, backend, reason and model in use are read
// from it), the webcam/video loop, and the page contract for scripts (`window.pix2seqd`, whose
// engine fields read the same state). The other page modules import from here; this one imports
// nothing of theirs.

export const $ = (id) => document.getElementById(id);
export const params = new URLSearchParams(location.search);

/** A numeric URL parameter clamped to [lo, hi] (fractions kept: td and opacity have them), or null. */
export function numParam(name, lo, hi) {
  const v = params.get(name);
  if (v == null || v === "" || !Number.isFinite(Number(v))) return null;
  return Math.min(hi, Math.max(lo, Number(v)));
}

export const els = {
  file: $("file"),
  videofile: $("videofile"),
  webcam: $("webcam"),
  freeze: $("freeze"),
  dropzone: $("dropzone"),
  empty: $("empty"),
  stage: $("stage"),
  preview: $("preview"),
  video: $("video"),
  hover: $("hover"),
  tooltip: $("tooltip"),
  loadcard: $("loadcard"),
  loadTitle: $("load-title"),
  progress: $("progress"),
  progressText: $("progress-text"),
  imageinfo: $("imageinfo"),
  status: $("status"),
  error: $("error"),
  untrained: $("untrained"),
  backend: $("backend"),
  adapter: $("adapter"),
  backendNote: $("backend-note"),
  facts: $("engine-facts"),
  legend: $("legend"),
  segcount: $("segcount"),
  timings: $("timings"),
  steps: $("steps"),
  td: $("td"),
  opacity: $("opacity"),
  outline: $("outline"),
  seed: $("seed"),
  modelPick: $("model-pick"),
  model: $("model"),
  version: $("version"),
  gallery: $("gallery"),
  cancel: $("cancel"),
  stepProgress: $("step-progress"),
  galleryList: $("gallery-list"),
};
// #canvas can be replaced (a canvas keeps the context type it got first).
export const canvasEl = () => $("canvas");

export const app = {
  // Engines by use: `image` (the loaded model) and `video` (its webcam model, loaded on first use);
  // `slot` is the one in use. A slot: {model, engine, backend, reason}, where model is
  // {json, weights, fromCache, jsonUrl, weightsUrl, name} and backend "webgpu" | "cpu".
  slots: { image: null, video: null },
  slot: null,
  get engine() {
    return this.slot?.engine ?? null;
  },
  get backend() {
    return this.slot?.backend ?? null;
  },
  get reason() {
    return this.slot?.reason ?? "";
  },
  get model() {
    return this.slot?.model ?? null;
  },
  probe: null, // the WebGPU adapter probe of the first engine start
  info: null, // info() of the engine in use
  canvasKind: null, // "webgpu" | "2d"
  gpuDraw: false, // results are drawn into a WebGPU canvas on the GPU (else a 2D canvas)
  stats: null, // the engine's GPU object counters after the last frame
  ctx2d: null,
  mode: "idle", // "idle" | "image" | "webcam" | "video"
  source: null, // still image: {name, rgba, width, height, naturalWidth, naturalHeight, scaled}
  busy: false,
  rerun: false,
  // Set once the user moves the steps or td slider: from then on, switching between the image and
  // the webcam model keeps the user's sampler instead of each model card's default.
  samplerTouched: false,
  result: null, // last read-back result (has segmentIds)
  stageMs: null, // per-stage ms of the last read-back
  lastWallMs: null,
  measured: null, // the last still image: {ms, steps, width, height, model, backend} (Engine card)
};

let engineReadyResolve, engineReadyReject;
/** Settles once the image model's engine has started (or failed to). */
export const engineReady = new Promise((res, rej) => {
  engineReadyResolve = res;
  engineReadyReject = rej;
});
engineReady.catch(() => {});
export const settleEngineReady = (error) => (error ? engineReadyReject(error) : engineReadyResolve());

/** The webcam/video loop (webcam.js). */
export const loop = {
  active: false,
  session: 0,
  kind: null,
  stream: null,
  objectUrl: null,
  frameIndex: 0,
  frozen: null,
  freezeNext: false,
  useVideoFrame: typeof VideoFrame !== "undefined",
  grabMethod: null,
  buf: null,
  times: [],
  lastTime: -1,
  lastMediaTime: -1,
  maskLagMs: null, // segmentation time of the mask on screen (the live video runs ahead of it)
};

/** `window.pix2seqd.webcam`; webcam.js adds pause() and resume(). */
export const webcamApi = {
  frames: 0,
  fps: 0,
  readbacks: 0,
  skipped: 0,
  lastIds: null,
  lastIdsHead: null,
  history: [], // the last read-backs: {frame, ids, frozen}
  paused: false,
  kind: null,
  grab: null,
};

/** The page contract for scripts and tests: `window.pix2seqd`. */
export const pub = {
  started: true,
  lastResult: null,
  /** Sampling steps of the still image in flight: {done, steps} (CPU engine), else null. */
  progress: null,
  frames: 0,
  version: null,
  webcam: webcamApi,
  /** The webcam model (the image model card's metadata.video_model, or ?videoModel=URL). */
  videoModel: { url: null, name: null, state: "none", error: null },
  get engineInfo() {
    return app.info;
  },
  get backend() {
    return app.backend;
  },
  get backendReason() {
    return app.slot?.engine ? app.reason : null;
  },
  get gpuDraw() {
    return app.gpuDraw;
  },
  /** The image model as downloaded: {url, weightsUrl, name, bytes, fromCache}. */
  get model() {
    const m = app.slots.image?.model;
    return m ? { url: m.jsonUrl, weightsUrl: m.weightsUrl, name: m.name, bytes: m.weights.length, fromCache: m.fromCache } : null;
  },
  /** Testing aid: loses the GPU device as a driver reset would; the next segmentation recovers. */
  loseDevice() {
    app.engine?.loseDevice?.();
  },
  /** Testing aid: crashes the CPU worker as a trap in the engine would; it restarts. */
  crashWorker() {
    app.engine?.crash?.();
  },
  /** GPU object counters, as of the last finished frame (the engine is busy during one). */
  stats() {
    return app.stats;
  },
  /** segmentIds of the last read-back result (kept out of lastResult to keep it small). */
  segmentIds() {
    return app.result?.segmentIds ?? null;
  },
};
window.pix2seqd = pub;
