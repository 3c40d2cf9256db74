// The browser half of scripts/compare_cpu.py: the page's CPU worker against onnxruntime-web's wasm
// provider, in one headless Chromium, timed round-robin.
//
//   node web/e2e/bench/run.mjs JOB.json
//
// JOB.json (written by compare_cpu.py): {threads, rounds, iters, cases: [{label, steps, image,
// card, weights, encoder, decoder, encoderInputs, decoderInputs}]}, paths relative to its folder.
// Serves web/ at / and the job's folder at /_run/ with COOP + COEP, so the page is cross-origin
// isolated and onnxruntime-web may use threads (SharedArrayBuffer). Progress goes to stderr; the
// last line on stdout is the result: {rows: [{case, contender, threads, samples: [[enc, step]...],
// baseline, note}], notes: [...]}.

import { chromium } from "playwright-core";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const WEB = path.resolve(here, "../..");
const CHROMIUM = process.env.PIX2SEQD_CHROMIUM || "/usr/bin/chromium";
const ORT_VERSION = JSON.parse(fs.readFileSync(path.join(WEB, "node_modules/onnxruntime-web/package.json"), "utf8")).version;
const ORT_NAME = `onnxruntime-web ${ORT_VERSION} wasm`;
const WORKER_NAME = "the page's CPU worker (wasm)";

const MIME = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".json": "application/json" };
// Cross-origin isolation: without both headers there is no SharedArrayBuffer, so no wasm threads.
const HEADERS = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
  "Cross-Origin-Resource-Policy": "same-origin",
  "Cache-Control": "no-cache",
};

function serve(runDir) {
  const server = http.createServer((req, res) => {
    const urlPath = decodeURIComponent(new URL(req.url, "http://x").pathname);
    const [root, rel] = urlPath.startsWith("/_run/") ? [runDir, urlPath.slice(6)] : [WEB, urlPath.slice(1)];
    const file = path.resolve(root, rel || "index.html");
    if (!file.startsWith(path.resolve(root) + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404, HEADERS).end("not found");
      return;
    }
    res.writeHead(200, { ...HEADERS, "Content-Type": MIME[path.extname(file)] || "application/octet-stream" });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

async function openBench(context, base) {
  const page = await context.newPage();
  page.on("console", (m) => m.type() === "error" && console.error(`  [page] ${m.text()}`));
  page.on("response", (r) => r.status() >= 400 && console.error(`  [page] ${r.status()} ${r.url()}`));
  await page.goto(`${base}e2e/bench/index.html`);
  await page.waitForFunction(() => window.bench, null, { timeout: 60_000 });
  return page;
}

/** The case with its file paths turned into URLs under /_run/. */
function withUrls(spec) {
  const url = (p) => `/_run/${p}`;
  return { ...spec, card: url(spec.card), weights: url(spec.weights), encoder: url(spec.encoder), decoder: url(spec.decoder) };
}

function workerUnavailable() {
  return fs.existsSync(path.join(WEB, "pkg/pix2seqd_bg.wasm")) ? null : "web/pkg/ is not built (run `cargo xtask web --no-serve`)";
}

async function main() {
  const jobPath = path.resolve(process.argv[2]);
  const job = JSON.parse(fs.readFileSync(jobPath, "utf8"));
  const server = await serve(path.dirname(jobPath));
  const base = `http://127.0.0.1:${server.address().port}/`;
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "pix2seqd-bench-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update"],
  });
  const notes = [];
  const rows = new Map();
  const row = (c, contender, threads, extra = {}) => {
    const key = `${c}|${contender}|${threads}`;
    if (!rows.has(key)) rows.set(key, { case: c, contender, threads, samples: [], baseline: ORT_NAME, note: "", ...extra });
    return rows.get(key);
  };
  try {
    const ortPages = new Map();
    for (const t of job.threads) ortPages.set(t, await openBench(context, base));
    const workerPage = await openBench(context, base);
    const isolated = await workerPage.evaluate(() => self.crossOriginIsolated);
    notes.push(`Browser: Chromium ${context.browser()?.version() ?? ""} headless, cross-origin isolated: ${isolated}.`);
    let workerProblem = workerUnavailable();
    if (!workerProblem) {
      const built = fs.statSync(path.join(WEB, "pkg/pix2seqd_bg.wasm")).mtime.toISOString().slice(0, 16);
      notes.push(`The page's CPU worker: web/pkg/ built ${built} UTC; it runs the engine on one thread (no wasm threads), so its one row is compared with onnxruntime-web at 1 thread.`);
    }
    for (let r = 0; r < job.rounds; r++) {
      for (const spec of job.cases.map(withUrls)) {
        for (const t of job.threads) {
          const m = await ortPages.get(t).evaluate(([s, t, n]) => window.bench.ortMeasure(s, t, n), [spec, t, job.iters]);
          const target = row(spec.label, ORT_NAME, t);
          if (m.threads !== t) target.note = `ran on ${m.threads} thread(s): cross-origin isolated ${m.isolated}`;
          target.samples.push([m.encoder, m.step]);
          console.error(`  round ${r + 1}/${job.rounds} ${spec.label} ${t} thread(s) ${ORT_NAME}: encoder ${m.encoder.toFixed(1)} ms, step ${m.step.toFixed(1)} ms`);
        }
        // The page's worker runs the engine on one thread, whatever the thread count: one row.
        const target = row(spec.label, WORKER_NAME, 1);
        if (workerProblem) {
          target.note = workerProblem;
          continue;
        }
        try {
          const m = await workerPage.evaluate(([s, n]) => window.bench.workerMeasure(s, n), [spec, job.iters]);
          target.samples.push([m.encoder, m.step]);
          console.error(`  round ${r + 1}/${job.rounds} ${spec.label} ${WORKER_NAME}: encoder ${m.encoder.toFixed(1)} ms, step ${m.step.toFixed(1)} ms`);
        } catch (e) {
          workerProblem = `the worker failed: ${String(e.message || e).split("\n")[0]}`;
          target.note = workerProblem;
        }
      }
    }
  } finally {
    await context.close();
    server.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  console.log(JSON.stringify({ rows: [...rows.values()], notes }));
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
