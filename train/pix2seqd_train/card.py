"""Model cards of the shipped models: metrics measured by the Rust CLI, and the README table.

    python -m pix2seqd_train.card add-metrics --card assets/models/street.json --name camvid_test \\
        --eval a.json b.json --command "pix2seqd eval camvid --steps 1,2,4 --json" "pix2seqd eval camvid --steps 10 --json"
    python -m pix2seqd_train.card table assets/models/street.json [...]

``add-metrics`` stores the JSON that ``pix2seqd eval ... --json`` printed (one run, or several
runs for different step counts) under ``metadata.metrics.NAME`` with the commands that measured
it, so every number of a card can be measured again. ``table`` prints the README's results table (Markdown) from the cards.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Sequence


KEPT = ("dataset", "images", "frames", "mode", "backend", "sampler")


def add_metrics(card_path: Path, name: str, evaluations: Sequence[dict[str, Any]], commands: Sequence[str]) -> dict[str, Any]:
    """Stores CLI evaluations of one dataset in the card under `name` (replacing an earlier entry):
    their results merged and sorted by step count (runs for different step counts may run in
    parallel), with the commands that measured them."""
    card = json.loads(card_path.read_text())
    if card.get("format") != "pix2seqd":
        raise ValueError(f"{card_path} is not a pix2seqd model card")
    if not evaluations:
        raise ValueError("no evaluation given")
    for evaluation in evaluations:
        if "results" not in evaluation:
            raise ValueError("the evaluation must be the JSON of `pix2seqd eval camvid|davis --json` (no 'results' in it)")
        differing = [k for k in KEPT if k != "backend" and evaluation.get(k) != evaluations[0].get(k)]
        if differing:
            raise ValueError(f"the evaluations differ in {', '.join(differing)}: store them under different names")
    results = sorted((r for e in evaluations for r in e["results"]), key=lambda r: r["steps"])
    metrics = card.setdefault("metadata", {}).setdefault("metrics", {})
    metrics[name] = {"commands": list(commands), **{k: evaluations[0][k] for k in KEPT if k in evaluations[0]}, "results": results}
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    return metrics[name]


def _pct(value: Any) -> str:
    return "–" if value is None else f"{100.0 * float(value):.1f}"


def _segmentation_cells(r: dict[str, Any]) -> list[str]:
    pq = r["pq"]
    raw = r.get("miou_before_postprocess")
    # Only the groups the data has: a things-only dataset has no stuff PQ to report.
    groups = ", ".join(f"{g} {_pct(pq[g]['pq'])}" for g in ("things", "stuff") if pq.get(g, {}).get("n", 1) > 0)
    return [f"mIoU {_pct(r['miou'])}" + ("" if raw is None else f" (class bits alone: {_pct(raw)})"),
            f"PQ {_pct(pq['all']['pq'])}" + (f" ({groups})" if groups else "")]


def _davis_cells(r: dict[str, Any]) -> list[str]:
    mt = r["metrics"]
    kept = "" if r.get("ids_kept") is None else f", ids kept {_pct(r['ids_kept'])}%"
    kept += "" if r.get("class_kept") is None else f", class kept {_pct(r['class_kept'])}%"
    return [f"J&F {_pct(mt['J&F'])}", f"J {_pct((mt.get('J') or {}).get('mean'))}, F {_pct((mt.get('F') or {}).get('mean'))}{kept}"]


def table_rows(card_path: Path) -> list[str]:
    """One Markdown row per (evaluation, step count, post-processing) of a card: the card's own
    post-processing first, then the other one the CLI measured on the same samples, then (where the
    evaluation has it) the card's post-processing on the readout before the bilinear one
    (``nearest_readout``: x̂0 thresholded at mask resolution, nearest neighbour)."""
    card = json.loads(card_path.read_text())
    model = card_path.stem
    rows = []
    for name, m in card.get("metadata", {}).get("metrics", {}).items():
        count = m.get("images", m.get("frames"))
        what = f"{m.get('dataset', name)}" + (f" ({m['mode']})" if m.get("mode") else "") + f", {count}"
        for r in m.get("results", []):
            if "miou" in r:
                variants = [(r.get("postprocess", "majority_vote"), _segmentation_cells(r))]
                if "other_postprocess" in r:
                    other = r["other_postprocess"]
                    variants.append((other["postprocess"], _segmentation_cells(other)))
                if "nearest_readout" in r:
                    nearest = r["nearest_readout"]
                    variants.append((f"{nearest['postprocess']}, nearest readout", _segmentation_cells(nearest)))
            else:
                variants = [("—", _davis_cells(r))]
                if "nearest_readout" in r:
                    variants.append(("—, nearest readout", _davis_cells(r["nearest_readout"])))
            for post, cells in variants:
                rows.append(f"| `{model}` | {what} | {r['steps']} | {post} | {cells[0]} | {cells[1]} |")
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Model cards: store CLI metrics, print the README table.")
    sub = parser.add_subparsers(dest="what", required=True)
    add = sub.add_parser("add-metrics", help="store the JSON of `pix2seqd eval ... --json` in a card")
    add.add_argument("--card", required=True, type=Path)
    add.add_argument("--name", required=True, help="key under metadata.metrics, e.g. camvid_test")
    add.add_argument("--eval", required=True, type=Path, nargs="+", help="the files the CLI's --json output went to")
    add.add_argument("--command", required=True, nargs="+", help="the commands that measured them")
    table = sub.add_parser("table", help="the README results table from the cards")
    table.add_argument("cards", nargs="+", type=Path)
    args = parser.parse_args(argv)
    if args.what == "add-metrics":
        stored = add_metrics(args.card, args.name, [json.loads(p.read_text()) for p in args.eval], args.command)
        print(f"{args.card}: metadata.metrics.{args.name} = {len(stored['results'])} result(s)")
    else:
        print("| model | data, images or frames | steps | post-processing | score | detail |")
        print("|---|---|---|---|---|---|")
        for card in args.cards:
            for row in table_rows(card):
                print(row)


if __name__ == "__main__":
    main()
