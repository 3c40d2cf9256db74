#!/usr/bin/env python3
"""The CPU comparison of issue 17: this engine's CPU path against ONNX Runtime and PyTorch eager
natively, and the page's CPU worker against onnxruntime-web's wasm provider in headless Chromium.

    python3 scripts/compare_cpu.py                                  # objects + web at 512², 1 and 2 threads
    python3 scripts/compare_cpu.py --write docs/performance.md      # ... and record the table there
    python3 scripts/compare_cpu.py --no-browser --rounds 3          # native contenders only
    python3 scripts/compare_cpu.py --smoke                          # CI: the tiny fixture, 1 round, 1 thread

Every model is exported to ONNX (the encoder, and one decoder step with its real inputs) from
train/ into a temporary folder, never into the repository. Contenders are timed round-robin
(round after round, each contender at each thread count once per round) so that load from other
processes falls on all of them alike; the table shows medians over the rounds. It is a benchmark,
not a test: `--smoke` only checks that every native contender runs.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "train"))  # the PyTorch package, as with PYTHONPATH=train

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from pix2seqd_train import CONFIGS_DIR  # noqa: E402
from pix2seqd_train.config import ModelConfig, load_config  # noqa: E402
from pix2seqd_train.export import export, load_exported  # noqa: E402
from pix2seqd_train.model.layers import fold_all_batchnorm_  # noqa: E402
from pix2seqd_train.model.pix2seqd import Pix2SeqD, build_model  # noqa: E402
from pix2seqd_train.onnx_export import DecoderStepGraph, EncoderGraph, OnnxExport, export_onnx  # noqa: E402

SMOKE_MODEL = REPO / "tests/fixtures/tiny-resnet/model.json"
BROWSER_RUNNER = REPO / "web/e2e/bench/run.mjs"
# Between contenders: ONNX Runtime's and OpenMP's worker threads spin for a while after their work
# ends; on a 2-core machine that would be charged to whoever runs next.
SETTLE_S = 0.25
PREFACE = """# Performance

## CPU: this engine against ONNX Runtime and PyTorch

`python3 scripts/compare_cpu.py --write docs/performance.md` exports the models to ONNX from
train/ (`pix2seqd_train.onnx_export`: the encoder and one decoder step), times every contender
round-robin and rewrites the section between the markers below; the rest of this file is kept.
Timings move with the machine's load, so the first line of the section says what it was.

"""
SECTION_BEGIN = "<!-- compare_cpu.py: begin -->"
SECTION_END = "<!-- compare_cpu.py: end -->"


# ---- what is compared -----------------------------------------------------------------------------
@dataclass
class Case:
    """One model at one size, with everything each contender needs to run it."""

    label: str
    model: Pix2SeqD
    engine_args: list[str]  # how `pix2seqd bench` selects the same model
    card_stem: Path  # STEM.json + STEM.safetensors, for the page's worker
    steps: int  # the card's sampler steps: "whole" = encoder + steps × step
    onnx: OnnxExport | None = None
    gflop_encoder: float = 0.0
    gflop_step: float = 0.0

    @property
    def cfg(self) -> ModelConfig:
        return self.model.cfg

    def describe(self) -> str:
        (ih, iw), (mh, mw) = self.cfg.image_size, self.cfg.mask_size
        return (f"{self.label}: {ih}×{iw} input, {mh}×{mw} mask, {self.steps} steps; "
                f"{self.gflop_encoder:.2f} GFLOP encoder, {self.gflop_step:.2f} GFLOP per decoder step")


@dataclass
class Sample:
    encoder_ms: float
    step_ms: float


@dataclass
class Row:
    case: str
    contender: str
    threads: int
    samples: list[Sample] = field(default_factory=list)
    baseline: str = ""  # the contender this row's ratio is against (same threads)
    note: str = ""

    def median(self, attr: str) -> float:
        return statistics.median(getattr(s, attr) for s in self.samples)


def shipped_case(card_json: Path) -> Case:
    stem = card_json.with_suffix("")
    model = load_exported(stem)
    return Case(model.cfg.name, model, ["--model", str(card_json)], stem, model.cfg.sampler.steps)


def synthetic_case(config: str, size: int | None, workdir: Path) -> Case:
    """A built-in config with random weights (BatchNorm folded, as the engine runs them); `--size`
    resizes it as `pix2seqd bench --size` does (square input, the mask keeps the config's ratio)."""
    path = Path(config) if Path(config).is_file() else CONFIGS_DIR / f"{config}.json"  # as `bench --config`
    cfg = load_config(path)
    if size:
        ratio = cfg.image_size[0] // cfg.mask_size[0]
        cfg.image_size, cfg.mask_size = [size, size], [size // ratio, size // ratio]
    torch.manual_seed(0)
    model = build_model(cfg, load_pretrained=False).eval()
    fold_all_batchnorm_(model)
    # The page's worker loads a model file: write this one as the shipped models are (fp16).
    card_stem = workdir / f"{path.stem}-{size or 'card'}"
    export(model, cfg, card_stem, dtype="fp16")
    engine_args = ["--config", config] + (["--size", str(size)] if size else [])
    label = f"{path.stem} at {size}²" if size else path.stem
    return Case(label, load_exported(card_stem), engine_args, card_stem, cfg.sampler.steps)


def count_gflop(graph: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> float:
    """FLOPs of one forward as torch.utils.flop_counter.FlopCounterMode counts them: convolutions,
    linear layers, matmuls and attention (2 per multiply-add); norms and elementwise ops are not
    counted."""
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        graph.eval()(*inputs.values())
    return counter.get_total_flops() / 1e9


def prepare(case: Case, workdir: Path) -> Case:
    """Exports the case's two ONNX graphs and counts their FLOPs."""
    case.onnx = export_onnx(case.model, workdir / ("onnx-" + re.sub(r"\W+", "-", case.label)))
    case.gflop_encoder = count_gflop(EncoderGraph(case.model), case.onnx.encoder_inputs)
    case.gflop_step = count_gflop(DecoderStepGraph(case.model), case.onnx.decoder_inputs)
    return case


# ---- native contenders ----------------------------------------------------------------------------
def median_ms(run: Callable[[], object], iters: int) -> float:
    times = []
    for _ in range(max(1, iters)):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


class EngineCli:
    """`pix2seqd bench --cpu`: one process per measurement (it loads the model and warms up once),
    threads through RAYON_NUM_THREADS."""

    name = "pix2seqd bench --cpu (native)"

    def __init__(self, binary: Path) -> None:
        self.binary = binary

    def measure(self, case: Case, threads: int, iters: int) -> Sample:
        cmd = [str(self.binary), "bench", "--cpu", *case.engine_args, "--steps", "1", "--iters", str(iters), "--json"]
        env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
        done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()}")
        ms = json.loads(done.stdout)["results"][0]["ms"]
        return Sample(ms["encoder"], ms["decoder_step"])


class OnnxRuntimeCpu:
    """ONNX Runtime's CPU provider on the two exports; sessions are made once per thread count."""

    def __init__(self) -> None:
        import onnxruntime

        self.ort = onnxruntime
        self.name = f"ONNX Runtime {onnxruntime.__version__} CPU"
        self.sessions: dict[tuple[str, int], object] = {}

    def _session(self, path: Path, threads: int, feed: dict):
        key = (str(path), threads)
        if key not in self.sessions:
            options = self.ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            session = self.ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            session.run(None, feed)  # warm-up: the first run allocates
            self.sessions[key] = session
        return self.sessions[key]

    def measure(self, case: Case, threads: int, iters: int) -> Sample:
        timings = []
        for path, inputs in [(case.onnx.encoder, case.onnx.encoder_inputs),
                             (case.onnx.decoder_step, case.onnx.decoder_inputs)]:
            feed = {name: t.numpy() for name, t in inputs.items()}
            session = self._session(path, threads, feed)
            timings.append(median_ms(lambda: session.run(None, feed), iters))
        return Sample(*timings)


class TorchEager:
    def __init__(self) -> None:
        self.name = f"PyTorch {torch.__version__.split('+')[0]} eager"
        self.warm: set[tuple[str, int]] = set()

    def measure(self, case: Case, threads: int, iters: int) -> Sample:
        torch.set_num_threads(threads)
        timings = []
        for graph, inputs in [(EncoderGraph(case.model), case.onnx.encoder_inputs),
                              (DecoderStepGraph(case.model), case.onnx.decoder_inputs)]:
            graph.eval()
            args = list(inputs.values())
            with torch.inference_mode():
                if (case.label, threads) not in self.warm:
                    graph(*args)  # warm-up: the allocator's first use at this size
                timings.append(median_ms(lambda: graph(*args), iters))
        self.warm.add((case.label, threads))
        return Sample(*timings)


def run_native(cases: list[Case], contenders: list, threads: list[int], rounds: int, iters: int) -> list[Row]:
    """Round-robin: every round times each case × thread count × contender once."""
    baseline = next(c.name for c in contenders if isinstance(c, OnnxRuntimeCpu))
    rows = {(case.label, c.name, t): Row(case.label, c.name, t, baseline=baseline)
            for case in cases for t in threads for c in contenders}
    for r in range(rounds):
        for case in cases:
            for t in threads:
                for contender in contenders:
                    time.sleep(SETTLE_S)
                    sample = contender.measure(case, t, iters)
                    rows[(case.label, contender.name, t)].samples.append(sample)
                    print(f"  round {r + 1}/{rounds} {case.label:<14} {t} thread(s) {contender.name:<34} "
                          f"encoder {sample.encoder_ms:8.1f} ms  step {sample.step_ms:8.1f} ms", flush=True)
    return list(rows.values())


# ---- browser contenders ---------------------------------------------------------------------------
def browser_job(cases: list[Case], workdir: Path, threads: list[int], rounds: int, iters: int) -> Path:
    """The job file for web/e2e/bench/run.mjs; paths are relative to `workdir`, which it serves."""
    def rel(p: Path) -> str:
        return str(Path(p).resolve().relative_to(workdir.resolve()))

    def shapes(inputs: dict[str, torch.Tensor]) -> dict[str, list[int]]:
        return {name: list(t.shape) for name, t in inputs.items()}

    job = {"threads": threads, "rounds": rounds, "iters": iters, "cases": [{
        "label": case.label, "steps": case.steps, "image": list(case.cfg.image_size),
        "card": rel(case.card_stem.with_name(case.card_stem.name + ".json")),
        "weights": rel(case.card_stem.with_name(case.card_stem.name + ".safetensors")),
        "encoder": rel(case.onnx.encoder), "decoder": rel(case.onnx.decoder_step),
        "encoderInputs": shapes(case.onnx.encoder_inputs), "decoderInputs": shapes(case.onnx.decoder_inputs),
    } for case in cases]}
    path = workdir / "browser-job.json"
    path.write_text(json.dumps(job, indent=1))
    return path


def stage_cards(cases: list[Case], workdir: Path) -> None:
    """The browser is served `workdir` only: copy shipped models' files in beside the exports."""
    for case in cases:
        if workdir.resolve() not in case.card_stem.resolve().parents:
            target = workdir / "cards" / case.card_stem.name
            target.parent.mkdir(parents=True, exist_ok=True)
            for suffix in (".json", ".safetensors"):
                (target.parent / (target.name + suffix)).write_bytes(
                    case.card_stem.with_name(case.card_stem.name + suffix).read_bytes())
            case.card_stem = target


def browser_unavailable() -> str | None:
    """Why the browser half cannot run here, or None."""
    if not (REPO / "web/node_modules/onnxruntime-web").is_dir():
        return "web/node_modules has no onnxruntime-web (run `npm ci --prefix web`)"
    if not (REPO / "web/node_modules/playwright-core").is_dir():
        return "web/node_modules has no playwright-core (run `npm ci --prefix web`)"
    chromium = os.environ.get("PIX2SEQD_CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).exists():
        return f"no Chromium at {chromium}"
    return None


def run_browser(cases: list[Case], workdir: Path, threads: list[int], rounds: int,
                iters: int) -> tuple[list[Row], list[str]]:
    stage_cards(cases, workdir)
    job = browser_job(cases, workdir, threads, rounds, iters)
    cmd = ["node", str(BROWSER_RUNNER), str(job)]
    done = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)  # its progress goes to stderr
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode})")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    rows = [Row(r["case"], r["contender"], r["threads"], [Sample(*s) for s in r["samples"]],
                baseline=r.get("baseline", ""), note=r.get("note", "")) for r in result["rows"]]
    return rows, result.get("notes", [])


# ---- the table ------------------------------------------------------------------------------------
def ratio(row: Row, rows: list[Row], case: Case) -> str:
    """Baseline time over this row's time for the whole photo: ≥ 1.00× is as fast or faster."""
    base = next((r for r in rows if r.case == row.case and r.contender == row.baseline and r.threads == row.threads
                 and r.samples), None)
    if base is None or not row.samples:
        return "-"
    return f"{whole_ms(base, case) / whole_ms(row, case):.2f}×"


def whole_ms(row: Row, case: Case) -> float:
    return row.median("encoder_ms") + case.steps * row.median("step_ms")


def table(case: Case, rows: list[Row]) -> list[str]:
    header = f"| contender | threads | encoder ms | step ms | whole, {case.steps} steps ms | GFLOP/s | vs ONNX Runtime |"
    lines = [f"**{case.describe()}**", "", header,
             "|---|---|---|---|---|---|---|"]
    gflop = case.gflop_encoder + case.steps * case.gflop_step
    for row in (r for r in rows if r.case == case.label):
        if not row.samples:
            lines.append(f"| {row.contender} | {row.threads} | - | - | - | - | - ({row.note}) |")
            continue
        whole = whole_ms(row, case)
        name = f"{row.contender} ({row.note})" if row.note else row.contender
        lines.append(f"| {name} | {row.threads} | {row.median('encoder_ms'):.1f} | {row.median('step_ms'):.1f} | "
                     f"{whole:.0f} | {gflop / whole * 1e3:.1f} | {ratio(row, rows, case)} |")
    return lines


def cpu_model() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return platform.processor() or "unknown CPU"
    model = re.search(r"^Model name:\s*(.+)$", text, re.M)
    return model.group(1).strip() if model else "unknown CPU"


def report(cases: list[Case], rows: list[Row], notes: list[str], args: argparse.Namespace) -> str:
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    lines = [f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on {cpu_model()}, "
             f"{os.cpu_count()} logical cores, load average {load} when it finished; "
             f"medians of {args.rounds} interleaved round(s) of {args.iters} run(s) each.", "",
             "Command: `python3 scripts/compare_cpu.py " + " ".join(args.argv) + "`", ""]
    for case in cases:
        lines += table(case, rows) + [""]
    lines += ["Whole = encoder + steps × one decoder step (ingest, read-out and post-processing are left out: "
              "they are not in the ONNX graphs). GFLOP/s = (encoder + steps × step FLOPs) / whole; FLOPs from "
              "`torch.utils.flop_counter.FlopCounterMode` on one forward (convolutions, linear layers, matmuls "
              "and attention at 2 FLOPs per multiply-add; norms and elementwise ops not counted). "
              "\"vs ONNX Runtime\" = its whole time / this row's at the same threads (natively against ONNX "
              "Runtime, in the browser against onnxruntime-web), so ≥ 1.00× is as fast or faster."]
    lines += [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def write_section(path: Path, text: str) -> None:
    """Replaces the section between the markers (or appends it; creates the file if needed)."""
    section = f"{SECTION_BEGIN}\n{text}{SECTION_END}\n"
    if not path.exists():
        path.write_text(PREFACE + section)
        return
    old = path.read_text()
    pattern = re.compile(re.escape(SECTION_BEGIN) + r".*?" + re.escape(SECTION_END) + r"\n?", re.S)
    path.write_text(pattern.sub(lambda _: section, old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + section)


# ---- command line ---------------------------------------------------------------------------------
def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=REPO / "assets/models/objects.json",
                   help="a shipped model card (default: assets/models/objects.json)")
    p.add_argument("--config", default="web", help="a built-in config timed with random weights (default: web; "
                                                   "'none' to skip)")
    p.add_argument("--size", type=int, default=512, help="square input size for --config (default 512)")
    p.add_argument("--threads", default="1,2", help="thread counts, comma-separated (default 1,2)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the table shows medians (default 5)")
    p.add_argument("--iters", type=int, default=3, help="timed runs per contender per round (default 3)")
    p.add_argument("--engine", type=Path, help="the pix2seqd binary (default target/release/pix2seqd, "
                                               "else target/debug/pix2seqd)")
    p.add_argument("--no-browser", action="store_true", help="skip the page worker and onnxruntime-web")
    p.add_argument("--write", type=Path, help="write the table into this Markdown file's compare_cpu section")
    p.add_argument("--smoke", action="store_true", help="CI: the tiny fixture model natively, 1 round, 1 thread")
    args = p.parse_args(argv)
    args.argv = argv
    args.thread_counts = [int(t) for t in args.threads.split(",")]
    if args.smoke:
        args.model, args.config, args.thread_counts, args.rounds, args.iters = SMOKE_MODEL, "none", [1], 1, 1
        args.threads, args.no_browser = "1", True
    return args


def engine_binary(args: argparse.Namespace) -> Path:
    candidates = [args.engine] if args.engine else [REPO / "target/release/pix2seqd", REPO / "target/debug/pix2seqd"]
    for path in candidates:
        if path.is_file():
            return path
    sys.exit(f"no pix2seqd binary at {', '.join(map(str, candidates))}: run `cargo build --release` first")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    binary = engine_binary(args)
    with tempfile.TemporaryDirectory(prefix="pix2seqd-compare-") as tmp:
        workdir = Path(tmp)
        cases = [shipped_case(args.model.resolve())]
        if args.config != "none":
            cases.append(synthetic_case(args.config, args.size, workdir))
        for case in cases:
            prepare(case, workdir)
            print(case.describe(), flush=True)
        contenders = [EngineCli(binary), OnnxRuntimeCpu(), TorchEager()]
        rows = run_native(cases, contenders, args.thread_counts, args.rounds, args.iters)
        shown = binary.relative_to(REPO) if binary.is_relative_to(REPO) else binary
        notes = [f"Engine: `{shown} bench --cpu --steps 1`, its own stage times, thread count through "
                 "RAYON_NUM_THREADS (an engine without threads runs every row on one)."]
        notes += browser_half(cases, workdir, args, rows)
    text = report(cases, rows, notes, args)
    print("\n" + text)
    if args.write:
        write_section(args.write, text)
        print(f"wrote {args.write}")
    return 0


def browser_half(cases: list[Case], workdir: Path, args: argparse.Namespace, rows: list[Row]) -> list[str]:
    """Runs the browser contenders into `rows`; returns the notes for the report (why it was skipped)."""
    reason = ("--smoke times the native contenders only" if args.smoke else
              "--no-browser" if args.no_browser else browser_unavailable())
    if reason:
        print(f"browser half skipped: {reason}", flush=True)
        return [f"Browser half (page worker vs onnxruntime-web) skipped: {reason}."]
    print("browser half: headless Chromium (web/e2e/bench/run.mjs)", flush=True)
    browser_rows, notes = run_browser(cases, workdir, args.thread_counts, args.rounds, args.iters)
    rows.extend(browser_rows)
    return notes


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
