// Browser tests of the pix2seqd page, the CPU fallback and the custom element.
// Playwright (playwright-core) drives the system Chromium headless; `cargo xtask test-web` builds,
// serves web/ and runs this with:
//   PIX2SEQD_URL   base URL of the served web/ folder (e.g. http://127.0.0.1:8123/)
//   PIX2SEQD_Y4M   absolute path of the fake-camera clip (.y4m); without it Chromium's own pattern
//   PIX2SEQD_DATA  absolute path of the shared data folder (../shared/data)
//   PIX2SEQD_SCREENSHOTS  optional: folder for uploaded-photo.png, gallery-dark.png, webcam.png
//                         (1280x800), phone.png (390 px wide) and webcam-gpu-canvas.png
//   PIX2SEQD_CLI          optional: the pix2seqd binary that reads the page's COCO download back
//                         (default target/release/pix2seqd, else target/debug/pix2seqd)
//   PIX2SEQD_CHROMIUM     optional: browser binary (default /usr/bin/chromium)
//   PIX2SEQD_E2E_ONLY     optional: run only the cases whose names contain one of these
//                         '|'-separated words (e.g. "webgpu|embed")
// Prints one line per case: `ok - name (details)` or `not ok - name: reason`; exits 1 on a failure.
// SwiftShader (the only WebGPU adapter in headless CI) is ~50x slower than the CPU path, so
// WebGPU cases use the tiny model and small inputs.

import { chromium } from "playwright-core";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const BASE = (process.env.PIX2SEQD_URL || "http://127.0.0.1:8080/").replace(/\/?$/, "/");
const Y4M = process.env.PIX2SEQD_Y4M || "";
const DATA = process.env.PIX2SEQD_DATA || path.resolve(here, "../../../shared/data");
const SHOTS = process.env.PIX2SEQD_SCREENSHOTS || "";
const CHROMIUM = process.env.PIX2SEQD_CHROMIUM || "/usr/bin/chromium";
const ONLY = (process.env.PIX2SEQD_E2E_ONLY || "").split("|").map((s) => s.trim().toLowerCase()).filter(Boolean);
const CASE_TIMEOUT_MS = Number(process.env.PIX2SEQD_CASE_TIMEOUT_MS || 180_000);

const PHOTO = path.join(DATA, "coco-panoptic-sample/images/000000142238.jpg");
const WEB = path.resolve(here, "..");
const ROOT = path.resolve(WEB, "..");
/** The project's CLI, for reading the COCO files the page writes (`eval pq`); optional. */
const CLI =
  process.env.PIX2SEQD_CLI ||
  ["target/release/pix2seqd", "target/debug/pix2seqd"].map((p) => path.join(ROOT, p)).find((p) => fs.existsSync(p)) ||
  "";
/** The models the page's picker must list: exactly the shipped ones (assets/models/*.json). */
const SHIPPED = fs
  .readdirSync(path.join(ROOT, "assets/models"))
  .filter((n) => n.endsWith(".json"))
  .map((n) => n.replace(/\.json$/, ""))
  .sort();
const CAMVID_DIR = path.join(DATA, "camvid/test/images");

const NETWORK_ARGS = [
  "--no-sandbox",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-gpu",
];
const WEBGPU_ARGS = ["--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader"];
const CAMERA_ARGS = [
  "--use-fake-ui-for-media-stream",
  "--use-fake-device-for-media-stream",
  ...(Y4M ? [`--use-file-for-fake-video-capture=${Y4M}`] : []),
];

const url = (p) => new URL(p, BASE).href;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// harness

const results = [];
const contexts = [];
const tmpDirs = [];

async function launch(args) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pix2seqd-e2e-"));
  tmpDirs.push(dir);
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args,
    viewport: { width: 1280, height: 800 },
  });
  contexts.push(context);
  return context;
}

let gpuContext = null;
async function gpuBrowser() {
  if (!gpuContext) gpuContext = await launch([...NETWORK_ARGS, ...WEBGPU_ARGS, ...CAMERA_ARGS]);
  return gpuContext;
}
let plainContext = null;
async function plainBrowser() {
  if (!plainContext) plainContext = await launch([...NETWORK_ARGS, ...CAMERA_ARGS]);
  return plainContext;
}

/** A page that records console errors and uncaught exceptions. */
async function newPage(context) {
  const page = await context.newPage();
  page.consoleErrors = [];
  page.on("console", (m) => {
    if (m.type() === "error" && !/favicon/.test(m.text())) page.consoleErrors.push(m.text());
  });
  page.on("pageerror", (e) => page.consoleErrors.push(`pageerror: ${e.message}`));
  return page;
}

/** Runs one case; `timeoutMs` overrides the default for cases that do much on SwiftShader. */
async function runCase(name, fn, { timeoutMs = CASE_TIMEOUT_MS } = {}) {
  if (ONLY.length && !ONLY.some((o) => name.toLowerCase().includes(o))) return;
  const pages = [];
  const t0 = Date.now();
  let timer;
  try {
    const detail = await Promise.race([
      fn((p) => (pages.push(p), p)),
      new Promise((_, rej) => {
        timer = setTimeout(() => rej(new Error(`timed out after ${timeoutMs / 1000} s`)), timeoutMs);
      }),
    ]);
    // The served pages carry a Content-Security-Policy: anything it blocks fails the case.
    for (const p of pages) {
      const csp = (p.consoleErrors ?? []).find((e) => /Content Security Policy|Refused to (load|execute|apply|evaluate|create|compile)/i.test(e));
      if (csp) throw new Error(`CSP violation: ${csp}`);
    }
    const secs = ((Date.now() - t0) / 1000).toFixed(1);
    console.log(`ok - ${name} (${detail ? `${detail}, ` : ""}${secs} s)`);
    results.push({ name, ok: true });
  } catch (e) {
    let extra = "";
    for (const p of pages) {
      try {
        const st = await Promise.race([
          p.evaluate(() => ({
            state: document.body.dataset.state,
            error: document.getElementById("error")?.textContent ?? "",
            status: document.getElementById("status")?.textContent ?? "",
            backend: window.pix2seqd?.backend ?? null,
            reason: window.pix2seqd?.backendReason ?? null,
          })),
          sleep(3000).then(() => null),
        ]);
        if (st) extra += `\n    page state=${st.state} status=${JSON.stringify(st.status)} error=${JSON.stringify(st.error)}`;
        if (st?.backend) extra += `\n    backend=${st.backend} reason=${JSON.stringify(st.reason)}`;
      } catch {}
      if (p.consoleErrors?.length) extra += `\n    console errors:\n      ${p.consoleErrors.slice(-12).join("\n      ")}`;
    }
    console.log(`not ok - ${name}: ${e.message.split("\n")[0]}${extra}`);
    results.push({ name, ok: false });
  } finally {
    clearTimeout(timer);
    for (const p of pages) await p.close().catch(() => {});
  }
}

function assert(cond, message) {
  if (!cond) throw new Error(message);
}

/** Opens the page and waits until the model is loaded (state ready) or an error shows. */
async function openApp(page, query = "", { expectError = false } = {}) {
  await page.goto(url(`index.html${query}`));
  await page.waitForFunction(() => ["ready", "done", "error"].includes(document.body.dataset.state), null, {
    timeout: 150_000,
  });
  const st = await page.evaluate(() => ({
    state: document.body.dataset.state,
    error: document.getElementById("error").textContent,
  }));
  if (!expectError && st.state === "error") throw new Error(`page error while loading: ${st.error}`);
  return st;
}

/** Runs `action` and waits for a new result (pix2seqd.frames grows) or an error. */
async function actAndWait(page, action, timeout = 90_000) {
  const before = await page.evaluate(() => window.pix2seqd?.frames ?? 0);
  await action();
  await page.waitForFunction(
    (n) => (document.body.dataset.state === "done" && window.pix2seqd.frames > n) || document.body.dataset.state === "error",
    before,
    { timeout, polling: 100 },
  );
  const st = await page.evaluate(() => ({
    state: document.body.dataset.state,
    error: document.getElementById("error").textContent,
    result: window.pix2seqd.lastResult,
    backendText: document.getElementById("backend").textContent,
    adapterText: document.getElementById("adapter").textContent,
  }));
  if (st.state === "error") throw new Error(`page error: ${st.error}`);
  return st;
}

/** Fails with the page's error message when the page is in its error state. */
async function failOnPageError(page) {
  const e = await page.evaluate(() => (document.body.dataset.state === "error" ? document.getElementById("error").textContent : ""));
  if (e) throw new Error(`page error: ${e}`);
}

/** Waits until the webcam loop has segmented `n` frames; fails with the page's error if one shows. */
async function webcamFrames(page, n, polling = 100) {
  await page.waitForFunction((n) => window.pix2seqd.webcam.frames >= n || document.body.dataset.state === "error", n, {
    timeout: 150_000,
    polling,
  });
  await failOnPageError(page);
}

/** The share of pixels that differ (any channel by more than 8) between two PNG screenshots. */
async function changedShare(page, a, b) {
  return page.evaluate(
    async ([a, b]) => {
      const pixels = async (b64) => {
        const bmp = await createImageBitmap(new Blob([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], { type: "image/png" }));
        const c = new OffscreenCanvas(bmp.width, bmp.height);
        const ctx = c.getContext("2d");
        ctx.drawImage(bmp, 0, 0);
        return ctx.getImageData(0, 0, bmp.width, bmp.height).data;
      };
      const [pa, pb] = [await pixels(a), await pixels(b)];
      if (pa.length !== pb.length) return 1;
      let n = 0;
      for (let i = 0; i < pa.length; i += 4) {
        if (Math.abs(pa[i] - pb[i]) > 8 || Math.abs(pa[i + 1] - pb[i + 1]) > 8 || Math.abs(pa[i + 2] - pb[i + 2]) > 8) n++;
      }
      return n / (pa.length / 4);
    },
    [a.toString("base64"), b.toString("base64")],
  );
}

function describe(r) {
  const ms = r.ms?.total != null ? `${Math.round(r.ms.total)} ms` : "? ms";
  return `backend=${r.backend}, ${r.width}x${r.height}, ${r.segments.length} segments, total ${ms}`;
}

function firstCamvidImage() {
  const names = fs.readdirSync(CAMVID_DIR).filter((n) => /\.(jpe?g|png)$/i.test(n)).sort();
  assert(names.length, `no images in ${CAMVID_DIR}`);
  return path.join(CAMVID_DIR, names[0]);
}

// ---------------------------------------------------------------------------------------------
// cases

async function main() {
  console.log(`# pix2seqd e2e: ${BASE} (chromium ${CHROMIUM}; y4m ${Y4M || "none: Chromium's test pattern"})`);
  assert(fs.existsSync(PHOTO), `missing ${PHOTO} (PIX2SEQD_DATA=${DATA})`);

  await runCase("upload photo, default model, CPU path", async (track) => {
    const page = track(await newPage(await gpuBrowser()));
    await openApp(page, "?backend=cpu&opacity=1&outline=0");
    const noteBefore = await page.locator("#backend-note").textContent();
    assert(!/few hundred|milliseconds/.test(noteBefore), `engine note before a run: '${noteBefore}'`);
    const st = await actAndWait(page, () => page.setInputFiles("#file", PHOTO));
    assert(st.result.backend === "cpu", `backend ${st.result.backend}, expected cpu`);
    assert(st.result.segments.length > 0, "no segments");
    assert(/CPU/.test(st.backendText), `#backend says '${st.backendText}'`);
    // The CPU path is the wasm SIMD build on the worker's one thread, and the Engine card says so;
    // its fast kernels match their plain twins in this very build (the worker's wasm).
    const cpuPath = await page.evaluate(() => window.pix2seqd.engineInfo.cpuPath);
    assert(cpuPath === "wasm SIMD128, 1 thread", `engine info cpuPath '${cpuPath}'`);
    const facts = await page.locator("#engine-facts").textContent();
    assert(facts.includes("CPU pathwasm SIMD128, 1 thread"), `engine card facts '${facts}'`);
    const check = await page.evaluate(async () => {
      const mod = await import("./pkg/pix2seqd.js");
      await mod.default();
      try {
        return mod.cpuSelfCheck();
      } catch (e) {
        return { error: String(e?.message ?? e) };
      }
    });
    assert(!check.error && check.cases >= 40 && check.cpuPath === cpuPath, `wasm CPU self-check: ${JSON.stringify(check)}`);
    const seg = st.result.segments[0];
    assert(typeof seg.label === "string" && typeof seg.isThing === "boolean" && seg.area > 0, `bad segment ${JSON.stringify(seg)}`);
    // The default model is the shipped `objects`: the rugby players are person instances.
    const people = st.result.segments.filter((s) => s.label === "person" && s.isThing);
    assert(people.length >= 2, `expected person instances, got ${describe(st.result)}`);
    const legend = await page.locator("#legend li:not(.placeholder)").count();
    assert(legend > 0, "legend is empty");
    // A colour per instance: two people are drawn in two colours (each segment says which).
    const colours = new Set(people.map((s) => s.color.join(",")));
    assert(colours.size === people.length, `person colours ${people.map((s) => s.color.join("/")).join(" ")}`);
    // ... and that is the colour on the canvas (opacity 1, no outlines: the colour itself), while the
    // legend keeps the class colour.
    const drawn = await page.evaluate(() => {
      const r = window.pix2seqd.lastResult;
      const ids = window.pix2seqd.segmentIds();
      const c = document.getElementById("canvas");
      const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      const out = [];
      for (const s of r.segments.filter((s) => s.isThing).slice(0, 6)) {
        const at = ids.indexOf(s.id);
        out.push({ id: s.id, color: s.color, drawn: [px[4 * at], px[4 * at + 1], px[4 * at + 2]] });
      }
      const person = window.pix2seqd.engineInfo.model.classes.find((k) => k.name === "person");
      const row = document.querySelector('#legend li[data-class="' + person.id + '"] .sw');
      return { out, classColor: person.color, legendColor: row && getComputedStyle(row).backgroundColor };
    });
    for (const d of drawn.out) assert(d.color.join() === d.drawn.join(), `segment ${d.id}: reported ${d.color}, drawn ${d.drawn}`);
    assert(drawn.legendColor === `rgb(${drawn.classColor.join(", ")})`, `legend ${drawn.legendColor}, class ${drawn.classColor}`);
    // Per-step timings: the unit once, at the end ("3.49 s · 2.62 s ms" was the bug).
    const perStep = await page.evaluate(() => document.querySelector("#timings dd.steps")?.textContent ?? "");
    assert(/^\d+(\.\d+)?( · \d+(\.\d+)?)* (ms|s)$/.test(perStep), `per-step timings '${perStep}'`);
    const series = await page.evaluate(async () => (await import("./results.js")).formatMsSeries([3490, 2620]));
    assert(series === "3.49 · 2.62 s", `formatMsSeries gives '${series}'`);
    // The Engine card reports what this page measured, no promise made up front.
    const note = await page.locator("#backend-note").textContent();
    assert(!/few hundred/.test(note) && /Here a photo took \d/.test(note), `engine note '${note}'`);
    // The picker lists the shipped models only (no `default` alias, no test fixtures).
    const picker = await page.evaluate(() => [...document.querySelectorAll("#model option")].map((o) => o.value));
    assert(
      JSON.stringify(picker) === JSON.stringify(SHIPPED.map((m) => `models/${m}.json`)),
      `picker lists ${picker.join(", ")}, shipped are ${SHIPPED.join(", ")}`,
    );
    return `${describe(st.result)}, ${people.length} person instances in ${colours.size} colours, ${legend} legend rows, steps '${perStep}'`;
  });

  await runCase("upload photo, tiny model, WebGPU path", async (track) => {
    const page = track(await newPage(await gpuBrowser()));
    await openApp(page, "?model=models/test/tiny.json&backend=webgpu");
    const st = await actAndWait(page, () => page.setInputFiles("#file", PHOTO));
    assert(st.result.backend === "webgpu", `backend ${st.result.backend}, expected webgpu`);
    assert(st.result.segments.length > 0, "no segments");
    assert(/WebGPU/.test(st.backendText), `#backend says '${st.backendText}'`);
    // hover: the label under the pointer
    const box = await page.locator("#canvas").boundingBox();
    let label = "";
    for (const [fx, fy] of [[0.5, 0.5], [0.3, 0.6], [0.7, 0.4], [0.2, 0.2], [0.8, 0.8]]) {
      await page.mouse.move(box.x + box.width * fx, box.y + box.height * fy);
      label = await page.evaluate(() => {
        const t = document.getElementById("tooltip");
        return t.hidden ? "" : t.textContent;
      });
      if (label && !/^void/.test(label)) break;
    }
    assert(label, "no hover label");
    return `${describe(st.result)}, adapter '${st.adapterText}', hover '${label.replace(/\s+/g, " ").slice(0, 40)}'`;
  });

  await runCase("GPU device lost: the page recreates the engine and goes on", async (track) => {
    const page = track(await newPage(await gpuBrowser()));
    await openApp(page, "?model=models/test/tiny.json&backend=webgpu");
    const first = await actAndWait(page, () => page.setInputFiles("#file", PHOTO));
    assert(first.result.backend === "webgpu", `backend ${first.result.backend}`);
    await page.evaluate(() => window.pix2seqd.loseDevice());
    // the next segmentation finds the device lost, recreates the engine and gets a result
    const again = await actAndWait(page, () => page.setInputFiles("#file", firstCamvidImage()), 120_000);
    const note = await page.evaluate(() => window.pix2seqd.backendReason);
    assert(again.result.segments.length > 0, "no segments after recovery");
    assert(/lost/i.test(note) && /recreated/i.test(note), `backend reason '${note}'`);
    return `after loseDevice(): ${describe(again.result)}; '${note}'`;
  }, { timeoutMs: Math.max(CASE_TIMEOUT_MS, 240_000) }); // two engines compile their pipelines on SwiftShader

  await runCase("reload uses the cached model", async (track) => {
    const page = track(await newPage(await gpuBrowser()));
    await openApp(page, "?model=models/test/tiny.json&backend=cpu");
    await openApp(page, "?model=models/test/tiny.json&backend=cpu");
    const m = await page.evaluate(() => ({ model: window.pix2seqd.model, status: document.getElementById("status").textContent }));
    assert(m.model?.fromCache === true, `fromCache=${m.model?.fromCache}`);
    assert(/from cache/.test(m.status), `status '${m.status}'`);
    // The fixture is untrained: the banner says so, and no longer that "a trained model comes later".
    const banner = await page.locator("#untrained");
    const text = await banner.textContent();
    assert((await banner.isVisible()) && /test fixture/.test(text) && !/comes later/.test(text), `banner '${text}'`);
    return `status '${m.status}'; banner '${text.trim().replace(/\s+/g, " ").slice(0, 60)}…'`;
  });

  await runCase("drop a CamVid image on the drop zone, shipped street model", async (track) => {
    const page = track(await newPage(await gpuBrowser()));
    // The trained CamVid model from assets/models (staged as models/street.json), CPU path.
    await openApp(page, "?model=models/street.json&backend=cpu&steps=1");
    const file = firstCamvidImage();
    const b64 = fs.readFileSync(file).toString("base64");
    const st = await actAndWait(page, () =>
      page.evaluate(
        ({ b64, name }) => {
          const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
          const dt = new DataTransfer();
          dt.items.add(new File([bytes], name, { type: "image/jpeg" }));
          const zone = document.getElementById("dropzone");
          for (const type of ["dragenter", "dragover", "drop"]) {
            zone.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt }));
          }
        },
        { b64, name: path.basename(file) },
      ),
    );
    assert(st.result.segments.length > 0, "no segments");
    assert(st.result.width === 480 && st.result.height === 360, `size ${st.result.width}x${st.result.height}`);
    const labels = [...new Set(st.result.segments.map((s) => s.label))];
    const street = ["sky", "building", "pole", "road", "pavement", "tree", "sign-symbol", "fence", "car", "pedestrian", "bicyclist"];
    assert(labels.every((l) => street.includes(l)), `labels ${labels} are not CamVid's: the street model did not load`);
    // A street scene: the trained model finds the road and the buildings (or the sky).
    assert(labels.includes("road") && (labels.includes("building") || labels.includes("sky")), `labels ${labels}`);
    // Every legend row shows: no scroll box hides street's many classes.
    const lg = await page.evaluate(() => {
      const ul = document.getElementById("legend");
      return { rows: ul.children.length, scroll: ul.scrollHeight, client: ul.clientHeight };
    });
    assert(lg.rows === labels.length && lg.scroll <= lg.client + 1, `legend: ${lg.rows} rows, ${lg.scroll} px in a ${lg.client} px box`);
    return `${path.basename(file)}: ${describe(st.result)}, labels ${labels.join(" ")}, ${lg.rows} legend rows all shown`;
  });

  await runCase("webcam with the default model streams its webcam model, photos go back to objects", async (track) => {
    const page = track(await newPage(await plainBrowser()));
    await openApp(page, "?backend=cpu");
    const before = await page.evaluate(() => ({ vm: { ...window.pix2seqd.videoModel }, name: window.pix2seqd.engineInfo.model.name }));
    assert(before.name === "objects", `default model '${before.name}'`);
    assert(before.vm.state === "idle" && /objects-video\.json$/.test(before.vm.url), `webcam model ${JSON.stringify(before.vm)}`);
    await page.click("#webcam");
    await webcamFrames(page, 3);
    const during = await page.evaluate(() => ({
      name: window.pix2seqd.engineInfo.model.name,
      prev: window.pix2seqd.engineInfo.model.videoPrevMasks,
      vm: window.pix2seqd.videoModel.state,
      status: document.getElementById("status").textContent,
      facts: document.getElementById("engine-facts").textContent,
      steps: [Number(document.getElementById("steps").value), window.pix2seqd.engineInfo.model.steps],
    }));
    assert(during.steps[0] === during.steps[1], `steps slider ${during.steps[0]}, the webcam model's card says ${during.steps[1]}`);
    assert(during.name === "objects-video" && during.prev === 2 && during.vm === "ready", `webcam ran ${JSON.stringify(during)}`);
    // One rate: the status line and the timings card agree whenever they are read.
    for (let k = 0; k < 3; k++) {
      await webcamFrames(page, 4 + k);
      const fps = await page.evaluate(() => ({
        status: document.getElementById("status").textContent,
        card: document.querySelector("#timings dd.fps")?.textContent,
      }));
      const m = /· (\S+) fps/.exec(fps.status);
      assert(m && m[1] === fps.card, `status '${fps.status}' vs timings card '${fps.card}'`);
    }
    // The camera stays live under the last mask: two snapshots between two mask updates differ.
    // At the card's steps the CPU path updates the mask about every 0.5 s, less than two
    // snapshots take here; at 12 steps an update takes seconds, so the snapshots fit between two.
    // (The value only, no input event: the loop reads it per frame, and the page does not take it
    // for the user's choice, which would keep it for the photo below.)
    const setSteps = (v) => page.evaluate((v) => (document.getElementById("steps").value = v), v);
    await setSteps("12");
    const slowFrom = await page.evaluate(() => window.pix2seqd.webcam.frames);
    await webcamFrames(page, slowFrom + 2);
    let live = null;
    for (let attempt = 0; attempt < 5 && !live; attempt++) {
      const n0 = await page.evaluate(() => window.pix2seqd.webcam.frames);
      const a = await page.locator("#stage").screenshot();
      await sleep(400);
      const b = await page.locator("#stage").screenshot();
      const n1 = await page.evaluate(() => window.pix2seqd.webcam.frames);
      if (n0 === n1) live = { changed: await changedShare(page, a, b) };
    }
    assert(live, "no two snapshots fell between two mask updates");
    await setSteps(String(during.steps[0]));
    // An opaque canvas with the frame baked in changes a few edge pixels at most.
    assert(live.changed > 0.01, `${(100 * live.changed).toFixed(2)}% of the picture changed between two mask updates: the camera is not live`);
    const lag = await page.locator("#status").textContent();
    const liveShare = `${(100 * live.changed).toFixed(1)}% of the picture changed between two mask updates`;
    assert(/mask .* behind the camera/.test(lag), `status does not say how old the mask is: '${lag}'`);
    assert(/objects-video \(in use\)/.test(during.facts), `facts '${during.facts}'`);
    await page.click("#webcam"); // stop
    const st = await actAndWait(page, () => page.setInputFiles("#file", PHOTO));
    const [after, steps, cardSteps] = await page.evaluate(() => [
      window.pix2seqd.engineInfo.model.name,
      Number(document.getElementById("steps").value),
      window.pix2seqd.engineInfo.model.steps,
    ]);
    assert(after === "objects", `photo segmented by '${after}'`);
    assert(steps === cardSteps, `steps slider ${steps} after the webcam, objects' card says ${cardSteps}`);
    const people = st.result.segments.filter((s) => s.label === "person" && s.isThing).length;
    assert(people >= 2, `photo after the webcam: ${describe(st.result)}`);
    return `webcam: ${during.name} (${during.status}), ${liveShare}; photo: ${after}, ${people} person instances`;
  });

  await runCase("webcam model that cannot load: the webcam runs the image model and says why", async (track) => {
    const page = track(await newPage(await plainBrowser()));
    await openApp(page, "?model=models/street.json&backend=cpu&steps=1&videoModel=models/no-such-model.json");
    const imageModel = await page.evaluate(() => window.pix2seqd.engineInfo.model.name);
    await page.click("#webcam");
    await webcamFrames(page, 2);
    const st = await page.evaluate(() => ({
      vm: { ...window.pix2seqd.videoModel },
      name: window.pix2seqd.engineInfo.model.name,
      facts: document.getElementById("engine-facts").textContent,
    }));
    await page.click("#webcam");
    assert(st.vm.state === "failed" && /no-such-model/.test(st.vm.error), `webcam model ${JSON.stringify(st.vm)}`);
    assert(st.name === imageModel, `webcam ran '${st.name}', not the image model '${imageModel}'`);
    assert(/could not load/.test(st.facts), `facts '${st.facts}'`);
    return `'${st.vm.error}'`;
  });

  await runCase("webcam, tiny trained video model, WebGPU: fps, no GPU object growth, stable ids", async (track) => {
    const page = track(await newPage(await gpuBrowser()));
    // tiny-video: trained, so its streaming state settles on a still frame (random weights don't)
    await openApp(page, "?model=models/test/tiny-video.json&backend=webgpu");
    // SwiftShader is a fallback adapter: the page draws into a 2D canvas and reads every frame back
    assert(await page.evaluate(() => window.pix2seqd.gpuDraw === false), "gpuDraw is on for a software adapter");
    await page.click("#webcam");
    await webcamFrames(page, 10, 50);
    const s10 = await page.evaluate(() => ({ stats: window.pix2seqd.stats(), frames: window.pix2seqd.webcam.frames }));
    await webcamFrames(page, 30, 50);
    const s30 = await page.evaluate(() => ({ stats: window.pix2seqd.stats(), frames: window.pix2seqd.webcam.frames }));
    const cam = await page.evaluate(() => {
      const w = window.pix2seqd.webcam;
      return { fps: w.fps, frames: w.frames, skipped: w.skipped, readbacks: w.readbacks, grab: w.grab, result: window.pix2seqd.lastResult };
    });
    assert(cam.fps > 0, `fps ${cam.fps}`);
    assert(cam.readbacks >= 3, `only ${cam.readbacks} read-backs`);
    assert(cam.result && cam.result.backend === "webgpu", `lastResult backend ${cam.result?.backend}`);
    const counts = (s) => `buffers ${s.buffers}, bindGroups ${s.bindGroups}, pipelines ${s.pipelines}`;
    for (const k of ["buffers", "bindGroups", "pipelines"]) {
      assert(typeof s10.stats?.[k] === "number", `stats().${k} missing: ${JSON.stringify(s10.stats)}`);
      assert(s30.stats[k] <= s10.stats[k], `${k} grew from ${s10.stats[k]} (frame ${s10.frames}) to ${s30.stats[k]} (frame ${s30.frames})`);
    }
    // a static input: freeze the frame, then two consecutive read-backs must give the same ids
    await page.evaluate(() => window.pix2seqd.webcam.pause());
    await page.waitForFunction(
      () => window.pix2seqd.webcam.history.filter((h) => h.frozen).length >= 8 || document.body.dataset.state === "error",
      null,
      { timeout: 150_000, polling: 50 },
    );
    await failOnPageError(page);
    const hist = await page.evaluate(() => window.pix2seqd.webcam.history.filter((h) => h.frozen));
    const [a, b] = hist.slice(-2);
    assert(a.ids === b.ids, `ids changed on a frozen frame: frame ${a.frame} ${a.ids} vs frame ${b.frame} ${b.ids}; frozen history ${hist.map((h) => h.ids).join(" ")}`);
    await page.click("#webcam"); // stop
    return `${cam.frames} frames at ${cam.fps.toFixed(1)} fps (${cam.skipped} skipped, ${cam.readbacks} read-backs, ${cam.grab}); frame ${s10.frames}: ${counts(s10.stats)}; frame ${s30.frames}: ${counts(s30.stats)}; frozen ids ${a.ids} = ${b.ids}`;
  }, { timeoutMs: Math.max(CASE_TIMEOUT_MS, 300_000) }); // ~40 frames of 1-2 s each on SwiftShader

  await runCase("webcam drawn into the WebGPU canvas, no read-back: frames, no GPU object growth", async (track) => {
    // draw=gpu forces the canvas path the page uses on real GPUs; readbackEvery=0 because in
    // headless SwiftShader any WebGPU canvas texture breaks every later mapAsync of the page.
    const page = track(await newPage(await gpuBrowser()));
    await openApp(page, "?model=models/test/tiny.json&backend=webgpu&draw=gpu&readbackEvery=0");
    assert(await page.evaluate(() => window.pix2seqd.gpuDraw === true), "gpuDraw is not on with draw=gpu");
    await page.click("#webcam");
    const snap = () =>
      page.evaluate(() => {
        if (document.body.dataset.state === "error") return { error: document.getElementById("error").textContent };
        return { stats: window.pix2seqd.stats(), frames: window.pix2seqd.webcam.frames, w: window.pix2seqd.webcam };
      });
    await webcamFrames(page, 10, 50);
    const s10 = await snap();
    assert(!s10.error, `page error: ${s10.error}`);
    await webcamFrames(page, 30, 50);
    const s30 = await snap();
    assert(!s30.error, `page error: ${s30.error}`);
    assert(s30.w.fps > 0, `fps ${s30.w.fps}`);
    assert(s30.w.readbacks === 0, `${s30.w.readbacks} read-backs with readbackEvery=0`);
    for (const k of ["buffers", "bindGroups", "pipelines"]) {
      assert(s30.stats[k] <= s10.stats[k], `${k} grew from ${s10.stats[k]} (frame ${s10.frames}) to ${s30.stats[k]} (frame ${s30.frames})`);
    }
    // the canvas shows drawn frames: a screenshot of it is a detailed picture, not a flat fill
    // (a flat 320x180 PNG is well under 1 KB)
    const png = await page.locator("#canvas").screenshot();
    if (SHOTS) fs.writeFileSync(path.join(SHOTS, "webcam-gpu-canvas.png"), png);
    const box = await page.locator("#canvas").boundingBox();
    assert(png.length > 8000, `the WebGPU canvas looks blank (${png.length}-byte PNG)`);
    await page.click("#webcam");
    const c = (s) => `buffers ${s.stats.buffers}, bindGroups ${s.stats.bindGroups}, pipelines ${s.stats.pipelines}`;
    return `${s30.frames} frames at ${s30.w.fps.toFixed(1)} fps, canvas shown at ${Math.round(box.width)}x${Math.round(box.height)} (${png.length}-byte PNG); frame ${s10.frames}: ${c(s10)}; frame ${s30.frames}: ${c(s30)}`;
  });

  await runCase("CPU fallback without WebGPU", async (track) => {
    const page = track(await newPage(await plainBrowser()));
    await openApp(page, "");
    const before = await page.evaluate(() => ({
      backend: document.getElementById("backend").textContent,
      note: document.getElementById("backend-note").textContent,
      gpu: !!navigator.gpu,
    }));
    assert(/CPU/.test(before.backend), `#backend says '${before.backend}'`);
    assert(/WebGPU|adapter|GPU/i.test(before.note), `no reason given: '${before.note}'`);
    const st = await actAndWait(page, () => page.setInputFiles("#file", PHOTO));
    assert(st.result.backend === "cpu", `backend ${st.result.backend}`);
    assert(st.result.segments.length > 0, "no segments");
    return `#backend '${before.backend}', reason '${before.note.split(".")[0]}', ${describe(st.result)}`;
  });

  await runCase("corrupt file shows an error naming it", async (track) => {
    const page = track(await newPage(await gpuBrowser()));
    await openApp(page, "?model=models/test/tiny.json&backend=cpu");
    const garbage = Buffer.alloc(1024);
    for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 7919 + 13) & 0xff;
    await page.setInputFiles("#file", { name: "broken.jpg", mimeType: "image/jpeg", buffer: garbage });
    await page.waitForFunction(() => document.body.dataset.state === "error", null, { timeout: 30_000 });
    const msg = await page.locator("#error").textContent();
    const visible = await page.locator("#error").isVisible();
    const role = await page.locator("#error").getAttribute("role");
    assert(visible && role === "alert", "the #error element is not visible as an alert");
    assert(/broken\.jpg/.test(msg), `message does not name the file: '${msg}'`);
    // a damaged JPEG (right signature, truncated data) names the file too
    const truncated = fs.readFileSync(PHOTO).subarray(0, 600);
    await page.setInputFiles("#file", { name: "cut.jpg", mimeType: "image/jpeg", buffer: truncated });
    await page.waitForFunction(() => /cut\.jpg/.test(document.getElementById("error").textContent), null, { timeout: 30_000 });
    const msg2 = await page.locator("#error").textContent();
    return `'${msg}' / '${msg2}'`;
  });

  await runCase("cross-origin model URL is refused", async (track) => {
    const page = track(await newPage(await gpuBrowser()));
    const st = await openApp(page, "?model=http://example.invalid/models/m.json", { expectError: true });
    assert(st.state === "error", `state ${st.state}`);
    assert(/origin/i.test(st.error) && /allowCrossOrigin/.test(st.error), `message: '${st.error}'`);
    return `'${st.error}'`;
  });

  await runCase("embed: the live example segments the astronaut sample with objects", async (track) => {
    const page = track(await newPage(await gpuBrowser()));
    const res = await page.goto(url("embed.html"));
    assert(res.headers()["content-security-policy"], "embed.html has no Content-Security-Policy");
    await page.waitForFunction(
      () => {
        const el = document.querySelector("pix2seqd-segmenter");
        return el && ["done", "error"].includes(el.getAttribute("state")) && (el.result || el.getAttribute("state") === "error");
      },
      null,
      { timeout: 120_000, polling: 100 },
    );
    const st = await page.evaluate(() => {
      const el = document.querySelector("pix2seqd-segmenter");
      const status = el.shadowRoot.querySelector(".status").textContent;
      const chip = el.shadowRoot.querySelector(".chip");
      return {
        state: el.getAttribute("state"),
        status,
        styled: chip ? getComputedStyle(chip).borderRadius : null,
        result: el.result && { backend: el.result.backend, width: el.result.width, height: el.result.height, ms: el.result.ms, segments: el.result.segments },
      };
    });
    assert(st.state === "done", `element state ${st.state}: ${st.status}`);
    assert(st.result && Array.isArray(st.result.segments), "no element.result");
    const people = st.result.segments.filter((s) => s.label === "person");
    assert(people.length >= 1, `no person on the astronaut photo: ${describe(st.result)}`);
    assert(people.every((s) => Array.isArray(s.color) && s.color.length === 3), "segments carry no color");
    // the shadow root is styled under the CSP (a constructed stylesheet, no <style>)
    assert(st.styled === "999px", `legend chips unstyled (border-radius ${st.styled})`);
    // the steps attribute re-runs
    await page.evaluate(() => {
      const el = document.querySelector("pix2seqd-segmenter");
      window.__events = 0;
      el.addEventListener("pix2seqd-result", () => window.__events++);
      el.setAttribute("steps", "1");
    });
    await page.waitForFunction(() => window.__events >= 1, null, { timeout: 90_000 });
    return `${describe(st.result)}, labels ${[...new Set(st.result.segments.map((s) => s.label))].join(" ")}, status '${st.status}', re-ran on steps change`;
  });

  await runCase("embed: the documented snippet works on a plain static host with the listed files", async (track) => {
    // Exactly the files embed.html lists, under /pix2seqd/, and the snippet's page, served by a
    // bare static server (with the CSP the docs recommend): nothing else of web/ is reachable.
    const html = fs.readFileSync(path.join(WEB, "embed.html"), "utf8");
    const list = /<ul id="files"[^>]*>([\s\S]*?)<\/ul>/.exec(html);
    assert(list, "embed.html has no <ul id=\"files\">");
    const files = [...list[1].matchAll(/<code>([^<]+)<\/code>/g)].map((m) => m[1]);
    const unescape = (t) => t.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&amp;/g, "&");
    const snippet = unescape(/<code id="snippet">([\s\S]*?)<\/code>/.exec(html)[1]);
    const img = /src="\/images\/([^"]+)"/.exec(snippet);
    assert(img && fs.existsSync(path.join(WEB, "samples", img[1])), `the snippet's image is not a sample: ${img?.[1]}`);
    const site = fs.mkdtempSync(path.join(os.tmpdir(), "pix2seqd-static-"));
    tmpDirs.push(site);
    for (const f of files) {
      const from = path.join(WEB, f);
      assert(fs.existsSync(from), `embed.html lists ${f}, which web/ does not have`);
      fs.mkdirSync(path.dirname(path.join(site, "pix2seqd", f)), { recursive: true });
      fs.copyFileSync(from, path.join(site, "pix2seqd", f));
    }
    fs.mkdirSync(path.join(site, "images"));
    fs.copyFileSync(path.join(WEB, "samples", img[1]), path.join(site, "images", img[1]));
    fs.writeFileSync(path.join(site, "index.html"), `<!doctype html><meta charset="utf-8"><title>docs</title>\n${snippet}\n`);
    const types = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm", ".json": "application/json", ".jpg": "image/jpeg" };
    const requested = [];
    const server = http.createServer((req, res) => {
      const p = decodeURIComponent(new URL(req.url, "http://x").pathname);
      requested.push(p);
      const file = path.join(site, p === "/" ? "index.html" : p);
      if (!file.startsWith(site) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
        res.writeHead(404).end("not found");
        return;
      }
      res.writeHead(200, {
        "content-type": types[path.extname(file)] ?? "application/octet-stream",
        "content-security-policy": "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self' blob:; style-src 'self'; img-src 'self' data: blob:",
      });
      fs.createReadStream(file).pipe(res);
    });
    await new Promise((r) => server.listen(0, "127.0.0.1", r));
    try {
      const page = track(await newPage(await plainBrowser()));
      await page.goto(`http://127.0.0.1:${server.address().port}/`);
      await page.waitForFunction(
        () => ["done", "error"].includes(document.querySelector("pix2seqd-segmenter")?.getAttribute("state")),
        null,
        { timeout: 120_000, polling: 200 },
      );
      const st = await page.evaluate(() => {
        const el = document.querySelector("pix2seqd-segmenter");
        return { state: el.getAttribute("state"), status: el.shadowRoot.querySelector(".status").textContent, labels: el.result?.segments.map((s) => s.label) ?? [] };
      });
      const missing = requested.filter((p) => !fs.existsSync(path.join(site, p)) && p !== "/" && !/favicon/.test(p));
      assert(st.state === "done", `element ${st.state}: ${st.status}; 404s: ${missing.join(", ")}`);
      assert(st.labels.includes("person"), `labels ${st.labels.join(" ")}`);
      return `${files.length} files + the snippet; ${st.status}`;
    } finally {
      server.close();
    }
  });

  await runCase("gallery: a click on a sample segments it; downloads parse, the COCO pair reads back", async (track) => {
    const page = track(await newPage(await plainBrowser()));
    await openApp(page, "?backend=cpu");
    await page.waitForSelector("#gallery:not([hidden]) .sample", { timeout: 30_000 });
    const samples = JSON.parse(fs.readFileSync(path.join(WEB, "samples/samples.json"), "utf8")).samples;
    const tiles = await page.evaluate(() => [...document.querySelectorAll("#gallery .sample")].map((b) => ({ file: b.dataset.file, title: b.title })));
    assert(tiles.length === samples.length, `${tiles.length} tiles for ${samples.length} samples`);
    for (const [k, s] of samples.entries()) {
      for (const field of ["licence", "author", "source"]) {
        assert(tiles[k].title.includes(s[field]), `tooltip of ${s.file} lacks its ${field}: '${tiles[k].title}'`);
      }
    }
    const first = samples[0];
    const st = await actAndWait(page, () => page.click(`#gallery .sample[data-file="${first.file}"]`));
    assert(st.result.source === first.file, `segmented '${st.result.source}', clicked ${first.file}`);
    assert(st.result.segments.length > 0, `no segments on ${first.file}`);

    // Downloads: each button gives files that parse.
    const got = new Map();
    page.on("download", async (d) => got.set(d.suggestedFilename(), await d.path()));
    const waitFor = async (names) => {
      for (let t = 0; t < 100 && !names.every((n) => got.get(n)); t++) await sleep(100);
      for (const n of names) assert(got.get(n), `no download ${n} (got ${[...got.keys()].join(", ")})`);
    };
    const stem = first.file.replace(/\.[^.]*$/, "");
    const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const pngSize = (buf) => [buf.readUInt32BE(16), buf.readUInt32BE(20)];
    await page.click("#dl-overlay");
    await page.click("#dl-segments");
    await page.click("#dl-coco");
    const names = [`${stem}_overlay.png`, `${stem}_segments.json`, `${stem}_panoptic.png`, `${stem}_panoptic.json`];
    await waitFor(names);
    const overlay = fs.readFileSync(got.get(names[0]));
    assert(overlay.subarray(0, 8).equals(PNG), "the overlay is not a PNG");
    assert(pngSize(overlay).join() === `${st.result.width},${st.result.height}`, `overlay PNG ${pngSize(overlay)}`);
    const segs = JSON.parse(fs.readFileSync(got.get(names[1]), "utf8"));
    assert(segs.segments.length === st.result.segments.length && segs.segments.every((x) => x.color.length === 3), "segments JSON");
    const coco = JSON.parse(fs.readFileSync(got.get(names[3]), "utf8"));
    const ann = coco.annotations?.[0];
    assert(ann?.file_name === names[2] && ann.segments_info.length === st.result.segments.length, `COCO JSON ${JSON.stringify(ann)?.slice(0, 200)}`);
    assert(fs.readFileSync(got.get(names[2])).subarray(0, 8).equals(PNG), "the COCO PNG is not a PNG");
    let readBack = "not read back (no CLI binary; set PIX2SEQD_CLI)";
    if (CLI) {
      // The project's COCO reader (`pix2seqd eval pq`): the pair against itself is a perfect match.
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pix2seqd-coco-"));
      tmpDirs.push(dir);
      fs.copyFileSync(got.get(names[2]), path.join(dir, names[2]));
      fs.copyFileSync(got.get(names[3]), path.join(dir, "panoptic.json"));
      const j = path.join(dir, "panoptic.json");
      const out = execFileSync(CLI, ["eval", "pq", "--gt-json", j, "--gt-dir", dir, "--pred-json", j, "--pred-dir", dir, "--json"], { encoding: "utf8" });
      const r = JSON.parse(out);
      assert(r.images === 1 && Math.abs(r.all.pq - 1) < 1e-9 && r.all.n > 0, `eval pq of the pair against itself: ${out.slice(0, 300)}`);
      readBack = `read back by ${path.relative(ROOT, CLI)} eval pq: PQ ${(100 * r.all.pq).toFixed(1)} over ${r.all.n} categories`;
    }
    return `${first.file}: ${describe(st.result)}; downloads ${names.join(", ")}; ${readBack}`;
  });

  await runCase("progress and cancel: a 10-step run reports its steps, stops on Cancel, a slider change supersedes it", async (track) => {
    const page = track(await newPage(await plainBrowser()));
    await openApp(page, "?backend=cpu&steps=10");
    const frames0 = await page.evaluate(() => window.pix2seqd.frames);
    const started = (n) =>
      page.waitForFunction((n) => (window.pix2seqd.progress?.done ?? 0) >= n || document.body.dataset.state === "error", n, {
        timeout: 60_000,
        polling: 50,
      });
    // 1. Cancel: the run stops at once, with no result and no error.
    await page.setInputFiles("#file", PHOTO);
    await started(1);
    const seen = await page.evaluate(() => ({ ...window.pix2seqd.progress, status: document.getElementById("status").textContent, bar: !document.getElementById("step-progress").hidden }));
    assert(seen.steps === 10 && /step \d+ of 10/.test(seen.status) && seen.bar, `progress ${JSON.stringify(seen)}`);
    await failOnPageError(page);
    const t0 = Date.now();
    await page.click("#cancel");
    await page.waitForFunction(() => document.body.dataset.state !== "running", null, { timeout: 10_000, polling: 50 });
    const stopped = Date.now() - t0;
    const after = await page.evaluate(() => ({ state: document.body.dataset.state, status: document.getElementById("status").textContent, frames: window.pix2seqd.frames }));
    assert(after.state !== "error" && /Cancelled/.test(after.status) && after.frames === frames0, `after cancel ${JSON.stringify(after)}`);
    // 2. Supersede: a new run, then the steps slider moves to 1 mid-run: only the 1-step result lands.
    await page.setInputFiles("#file", PHOTO);
    await started(1);
    const t1 = Date.now();
    await page.evaluate(() => {
      const s = document.getElementById("steps");
      s.value = "1";
      s.dispatchEvent(new Event("input", { bubbles: true }));
    });
    await page.waitForFunction((n) => (document.body.dataset.state === "done" && window.pix2seqd.frames > n) || document.body.dataset.state === "error", frames0, { timeout: 60_000, polling: 50 });
    await failOnPageError(page);
    const superseded = Date.now() - t1;
    await sleep(1500); // a 10-step result that still landed would show up here
    const r = await page.evaluate(() => ({ frames: window.pix2seqd.frames, steps: window.pix2seqd.lastResult.ms.decoderPerStep?.length }));
    assert(r.frames === frames0 + 1 && r.steps === 1, `after the slider change: ${r.frames - frames0} result(s), last with ${r.steps} steps`);
    return `progress '${seen.status}'; cancelled in ${stopped} ms; superseded by a 1-step run in ${(superseded / 1000).toFixed(1)} s`;
  });

  await runCase("phone width (390 px): the photo fills the viewer", async (track) => {
    const page = track(await newPage(await plainBrowser()));
    await page.setViewportSize({ width: 390, height: 844 });
    await openApp(page, "?backend=cpu");
    await page.waitForSelector("#gallery:not([hidden]) .sample", { timeout: 30_000 });
    await actAndWait(page, () => page.click("#gallery .sample"));
    const m = await page.evaluate(() => {
      const v = document.getElementById("dropzone").getBoundingClientRect();
      const s = document.getElementById("stage").getBoundingClientRect();
      return { vw: v.width, vh: v.height, sw: s.width, sh: s.height, scroll: document.documentElement.scrollWidth };
    });
    assert(m.sh / m.vh > 0.85 && m.sw / m.vw > 0.85, `stage ${Math.round(m.sw)}x${Math.round(m.sh)} in a ${Math.round(m.vw)}x${Math.round(m.vh)} viewer`);
    assert(m.scroll <= 390, `the page scrolls sideways (${m.scroll} px wide)`);
    if (SHOTS) await page.screenshot({ path: path.join(SHOTS, "phone.png"), fullPage: true });
    return `stage ${Math.round(m.sw)}x${Math.round(m.sh)} in a ${Math.round(m.vw)}x${Math.round(m.vh)} viewer`;
  });

  await runCase("CPU worker crash: the page says what failed and the restarted worker segments", async (track) => {
    const page = track(await newPage(await plainBrowser()));
    await openApp(page, "?model=models/test/tiny.json&backend=cpu");
    await actAndWait(page, () => page.setInputFiles("#file", PHOTO));
    await page.evaluate(() => window.pix2seqd.crashWorker());
    await page.waitForFunction(() => document.body.dataset.state === "error", null, { timeout: 30_000 });
    const msg = await page.locator("#error").textContent();
    assert(/CPU worker crashed/.test(msg) && /crash requested/.test(msg) && /restarted/.test(msg), `message '${msg}'`);
    const again = await actAndWait(page, () => page.setInputFiles("#file", firstCamvidImage()), 120_000);
    assert(again.result.backend === "cpu" && again.result.segments.length > 0, `after the restart: ${describe(again.result)}`);
    page.consoleErrors = page.consoleErrors.filter((e) => !/crash requested/.test(e)); // the crash itself
    return `'${msg}'; then ${describe(again.result)}`;
  });

  await runCase("served headers: CSP without inline script or eval, nosniff, referrer policy", async (track) => {
    const page = track(await newPage(await plainBrowser()));
    const checks = [];
    for (const p of ["index.html", "app.js", "pkg/pix2seqd_bg.wasm", "models/index.json", "no-such-file"]) {
      const res = await page.request.get(url(p));
      const h = res.headers();
      const csp = h["content-security-policy"] ?? "";
      assert(/script-src 'self' 'wasm-unsafe-eval'(;|$)/.test(csp) && !/'unsafe-(inline|eval)'/.test(csp), `${p}: CSP '${csp}'`);
      assert(h["x-content-type-options"] === "nosniff", `${p}: x-content-type-options ${h["x-content-type-options"]}`);
      assert(h["referrer-policy"], `${p}: no referrer-policy`);
      checks.push(`${p} ${res.status()}`);
    }
    // `//models` must not redirect to the host "models".
    const res = await page.request.get(url("models").replace(/\/models$/, "//models"), { maxRedirects: 0 });
    const loc = res.headers()["location"];
    assert(res.status() === 301 && loc === "/models/", `GET //models: ${res.status()} Location ${loc}`);
    return `${checks.join(", ")}; //models → ${loc}`;
  });

  if (SHOTS) {
    await runCase("screenshots", async (track) => {
      fs.mkdirSync(SHOTS, { recursive: true });
      const ctx = await gpuBrowser();
      const page = track(await newPage(ctx));
      await page.setViewportSize({ width: 1280, height: 800 });
      await openApp(page, "");
      await actAndWait(page, () => page.setInputFiles("#file", PHOTO));
      const box = await page.locator("#canvas").boundingBox();
      await page.mouse.move(box.x + box.width * 0.45, box.y + box.height * 0.55);
      await sleep(300);
      const photo = path.join(SHOTS, "uploaded-photo.png");
      await page.screenshot({ path: photo });

      // The gallery's first sample, in the dark colour scheme.
      const dark = track(await newPage(ctx));
      await dark.setViewportSize({ width: 1280, height: 800 });
      await dark.emulateMedia({ colorScheme: "dark" });
      await openApp(dark, "");
      await dark.waitForSelector("#gallery:not([hidden]) .sample", { timeout: 30_000 });
      await actAndWait(dark, () => dark.click("#gallery .sample"));
      await dark.evaluate(() => window.scrollTo(0, 0));
      await sleep(400);
      const gallery = path.join(SHOTS, "gallery-dark.png");
      await dark.screenshot({ path: gallery });

      const cam = track(await newPage(ctx));
      await cam.setViewportSize({ width: 1280, height: 800 });
      await openApp(cam, ""); // the default objects model: the webcam streams its webcam model objects-video
      await cam.click("#webcam");
      await cam.waitForFunction(() => window.pix2seqd.webcam.frames >= 12 && window.pix2seqd.webcam.readbacks >= 1, null, {
        timeout: 150_000,
      });
      await sleep(500);
      const webcam = path.join(SHOTS, "webcam.png");
      await cam.screenshot({ path: webcam });
      await cam.click("#webcam");
      return `${photo}, ${gallery}, ${webcam}`;
    });
  }
}

let exitCode = 0;
try {
  await main();
} catch (e) {
  console.log(`not ok - harness: ${e.message}`);
  results.push({ name: "harness", ok: false });
} finally {
  for (const c of contexts) await c.close().catch(() => {});
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
}
const failed = results.filter((r) => !r.ok);
console.log(`# ${results.length - failed.length}/${results.length} passed`);
if (failed.length) exitCode = 1;
process.exit(exitCode);
