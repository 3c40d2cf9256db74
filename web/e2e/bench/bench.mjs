// Timing functions for run.mjs, on `window.bench`: onnxruntime-web's wasm provider on the ONNX
// exports, and the page's own CPU worker (engine.js WorkerEngine, as the page runs it) on the model
// file. Both return medians in ms of {encoder, step}. One page per onnxruntime-web thread count:
// `ort.env.wasm.numThreads` is read once, when the first session starts.

import { WorkerEngine } from "../../engine.js";

const ORT_URL = "/node_modules/onnxruntime-web/dist/ort.wasm.min.mjs";
let ort = null;
const sessions = new Map();
const engines = new Map();

const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

async function loadOrt(threads) {
  if (!ort) {
    ort = await import(ORT_URL);
    ort.env.wasm.numThreads = threads;
    ort.env.wasm.proxy = false;
  }
  return ort;
}

function randomFeed(shapes) {
  const feed = {};
  for (const [name, shape] of Object.entries(shapes)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    // Values in the ranges the graphs see (image [0, 1], analog bits and features about ±1);
    // gamma is a time in (0, 1). Timing does not depend on them.
    for (let i = 0; i < data.length; i++) data[i] = Math.random() * 2 - 1;
    if (name === "image" || name === "gamma") data.forEach((v, i) => (data[i] = Math.abs(v)));
    feed[name] = new ort.Tensor("float32", data, shape);
  }
  return feed;
}

/** A session and its input, warmed up once (the first run allocates). */
async function ortSession(url, shapes) {
  if (!sessions.has(url)) {
    const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
    const session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
    const feed = randomFeed(shapes);
    await session.run(feed);
    sessions.set(url, { session, feed });
  }
  return sessions.get(url);
}

async function timeRuns(run, iters) {
  const times = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    await run();
    times.push(performance.now() - t0);
  }
  return median(times);
}

/** onnxruntime-web at `threads` (fixed for this page on its first call). */
async function ortMeasure(spec, threads, iters) {
  await loadOrt(threads);
  const out = {};
  for (const [key, url, shapes] of [["encoder", spec.encoder, spec.encoderInputs], ["step", spec.decoder, spec.decoderInputs]]) {
    const { session, feed } = await ortSession(url, shapes);
    out[key] = await timeRuns(() => session.run(feed), iters);
  }
  return { ...out, threads: ort.env.wasm.numThreads, isolated: self.crossOriginIsolated };
}

const segmentOnce = (engine, [height, width]) =>
  engine.segment(testImage(width, height), width, height, { steps: 1, profile: true });

/** The worker's engine for a model, warmed up once. */
async function workerEngine(spec) {
  if (!engines.has(spec.card)) {
    const json = await (await fetch(spec.card)).text();
    const weights = new Uint8Array(await (await fetch(spec.weights)).arrayBuffer());
    const engine = await WorkerEngine.create(json, weights);
    await segmentOnce(engine, spec.image);
    engines.set(spec.card, engine);
  }
  return engines.get(spec.card);
}

function testImage(width, height) {
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      rgba.set([(x * 255) / width, (y * 255) / height, (((x >> 5) + (y >> 5)) % 3) * 120, 255], i);
    }
  }
  return rgba;
}

/** The page's CPU worker: one-step segmentations at the model's input size, the engine's own
 * stage times (result.ms). */
async function workerMeasure(spec, iters) {
  const engine = await workerEngine(spec);
  const runs = [];
  for (let i = 0; i < iters; i++) runs.push((await segmentOnce(engine, spec.image)).ms);
  return {
    encoder: median(runs.map((ms) => ms.encoder)),
    step: median(runs.map((ms) => ms.decoderPerStep[0] ?? ms.decoder)),
    info: engine.info(),
  };
}

window.bench = { ortMeasure, workerMeasure };
document.getElementById("status").textContent = "ready";
