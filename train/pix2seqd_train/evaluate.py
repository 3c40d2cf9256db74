"""Evaluation of a trained model (exported model or training checkpoint).

    python -m pix2seqd_train.evaluate images --model STEM --dataset camvid --split test [--images N]
    python -m pix2seqd_train.evaluate davis --model STEM --split val          # streaming J&F (video)
    python -m pix2seqd_train.evaluate pq --gt-json F --gt-dir D --pred-json F --pred-dir D

``--model`` takes an exported model stem (``.../export/NAME-fp32``) or ``--checkpoint`` a training
checkpoint folder (its EMA weights). ``images`` samples every image with the diffusion sampler,
reads the ids at the original resolution from the last logits and the final x̂0 (the bilinear
readout of ``readout.py``; ``--readout nearest``: the old thresholded ids resized by nearest neighbour),
post-processes them (majority vote with a minimum area, stuff merged; spec §1.6) and reports
mIoU and PQ/SQ/RQ (all, things, stuff); video models are conditioned on the ground-truth
previous masks there. ``davis`` runs the streaming video inference of spec §4 (each frame
conditioned on the model's own previous predictions, their cell ids at mask resolution; no
post-processing) and reports DAVIS J&F. ``pq`` is ``panopticapi.pq_compute`` on COCO panoptic
files. Results are printed as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from .bits import analog_bits_to_ids
from .config import ModelConfig
from .data import PanopticDataset, build_dataset, model_classes
from .data.common import as_hw, stack_prev_masks, unletterbox
from .data.davis import Davis
from .diffusion import sample
from .metrics import ConfusionMatrix, DavisEvaluator, PanopticEvaluator, db_eval_boundary, db_eval_iou, pq_compute_coco
from .panoptic import majority_vote_postprocess, merge_stuff, thing_vote_postprocess
from .readout import cell_ids, readout as bilinear_readout


READOUTS = ("bilinear", "nearest")


def ids_at_original(logits: np.ndarray | torch.Tensor, x0: np.ndarray | torch.Tensor, cfg: ModelConfig,
                    content_hw: Sequence[int], orig_hw: Sequence[int], readout: str = "bilinear",
                    maps: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One image's (class, instance) int64 maps at ``orig_hw`` from its last logits [Hm, Wm, L]
    and final x̂0 [Hm, Wm, n_bits].

    ``bilinear``: `readout.readout` (class: interpolated logits and class void probability;
    instance: interpolated x̂0 bits; smooth edges). ``nearest``: the old staircase readout,
    ``maps`` (the sampler's thresholded ids at mask resolution; recomputed from ``x0`` if not
    given) resized by `unletterbox`."""
    if readout == "bilinear":
        return bilinear_readout(logits, x0, cfg, cfg.image_size, content_hw, orig_hw)
    if readout != "nearest":
        raise ValueError(f"unknown readout {readout!r} (use one of {READOUTS})")
    if maps is None:
        x0_cpu = torch.as_tensor(x0).detach().cpu().float()
        maps = tuple(m.numpy() for m in analog_bits_to_ids(x0_cpu, cfg))  # type: ignore[assignment]
    image_hw = as_hw(cfg.image_size)
    return (unletterbox(np.asarray(maps[0]), image_hw, content_hw, orig_hw),
            unletterbox(np.asarray(maps[1]), image_hw, content_hw, orig_hw))


def postprocess_to_original(logits: np.ndarray | torch.Tensor, x0: np.ndarray | torch.Tensor, cfg: ModelConfig,
                            content_hw: Sequence[int], orig_hw: Sequence[int], isthing: Sequence[bool],
                            min_pixels: int, mode: str = "majority_vote", readout: str = "bilinear",
                            maps: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Last logits and final x̂0 at mask resolution -> ids at the original resolution
    (`ids_at_original`), then ``mode``: majority vote with minimum area and stuff merged, or
    ``thing_vote``."""
    cls_o, inst_o = (torch.from_numpy(m) for m in ids_at_original(logits, x0, cfg, content_hw, orig_hw, readout, maps))
    if mode == "thing_vote":
        cls_o, inst_o = thing_vote_postprocess(cls_o, inst_o, isthing, min_pixels)
        return cls_o.numpy(), inst_o.numpy()
    if mode != "majority_vote":
        raise ValueError(f"unknown post-processing {mode!r} (use 'majority_vote' or 'thing_vote')")
    cls_o, inst_o = majority_vote_postprocess(cls_o, inst_o, min_pixels)
    inst_o = merge_stuff(cls_o, inst_o, isthing)
    return cls_o.numpy(), inst_o.numpy()


@torch.no_grad()
def evaluate_images(model: nn.Module, dataset: PanopticDataset, count: int | None = None, steps: int | None = None,
                    td: float | None = None, seed: int = 0, min_pixels: int = 40, batch_size: int = 8,
                    device: torch.device | str = "cpu", readout: str = "bilinear") -> dict[str, Any]:
    """mIoU and PQ of the first ``count`` images (all by default) at their original resolution.

    The ids are read at the ground truth's resolution by ``readout`` (`ids_at_original`).
    Video models get the ground-truth previous masks (the official ``eval_use_gt_cond_frames``
    oracle) and additionally report J and F of the foreground (class != void)."""
    cfg: ModelConfig = model.cfg
    if readout not in READOUTS:
        raise ValueError(f"unknown readout {readout!r} (use one of {READOUTS})")
    classes = model_classes(cfg)
    isthing = [False] + [c.isthing for c in classes]
    steps = int(steps if steps is not None else cfg.sampler.steps)
    td = float(td if td is not None else cfg.sampler.td)
    count = len(dataset) if count is None else min(count, len(dataset))
    panoptic = PanopticEvaluator.for_classes(classes)
    confusion = ConfusionMatrix(cfg.num_classes, ignore_index=0)
    j_values: list[float] = []
    f_values: list[float] = []
    was_training = model.training
    model.eval()
    for first in range(0, count, batch_size):
        indices = list(range(first, min(count, first + batch_size)))
        items = [dataset[i] for i in indices]
        targets = [item[-1] if isinstance(item, list) else item for item in items]
        images = torch.stack([t["image"] for t in targets]).to(device)
        prev = stack_prev_masks(items, cfg.video_prev_masks) if cfg.video_prev_masks else None
        x0, (cls, inst), logits = sample(model, images, steps, td, seed=seed + first,
                                         prev_maps=prev.to(device) if prev is not None else None, return_logits=True)
        for k, index in enumerate(indices):
            gt = dataset.raw(index)[-1]
            pred_cls, pred_inst = postprocess_to_original(
                logits[k], x0[k], cfg, targets[k]["content_size"].tolist(), gt.cls.shape, isthing, min_pixels,
                cfg.sampler.postprocess, readout, maps=(cls[k].cpu().numpy(), inst[k].cpu().numpy()))
            confusion.update(gt.cls, pred_cls)
            panoptic.add_maps(gt.cls, gt.inst, pred_cls, pred_inst, image=gt.name)
            if cfg.video_prev_masks:
                j_values.append(db_eval_iou(gt.cls > 0, pred_cls > 0))
                f_values.append(db_eval_boundary(gt.cls > 0, pred_cls > 0))
    model.train(was_training)
    summary = panoptic.summary()
    out: dict[str, Any] = {
        "images": count,
        "miou": confusion.miou(),
        "pixel_accuracy": confusion.pixel_accuracy(),
        "pq": summary["all"]["pq"], "sq": summary["all"]["sq"], "rq": summary["all"]["rq"],
        "pq_things": summary["things"]["pq"], "pq_stuff": summary["stuff"]["pq"],
        "sampler": {"steps": steps, "td": td, "postprocess": cfg.sampler.postprocess, "readout": readout},
    }
    if cfg.video_prev_masks:
        out.update({"J": float(np.mean(j_values)), "F": float(np.mean(f_values))})
    return out


@torch.no_grad()
def evaluate_davis_streaming(model: nn.Module, split: str = "val", steps: int | None = None,
                             steps_later: int | None = None, td: float | None = None, seed: int = 0,
                             device: torch.device | str = "cpu", max_frames: int | None = None,
                             readout: str = "bilinear") -> dict[str, Any]:
    """Streaming video inference (spec §4): frame s is conditioned on the model's own predictions
    for frames s-k .. s-1 (zeros before the start); all sequences advance in lockstep as one batch.
    The foreground is every non-void pixel; J&F as the DAVIS toolkit computes them.
    ``max_frames`` cuts every sequence short (quick checks).

    ``readout="bilinear"``: the masks fed back are the cell ids (`readout.cell_ids`, mask
    resolution: class from the last logits, instance from the final x̂0) and J/F are measured on
    `readout.readout` at the ground truth's resolution;
    ``"nearest"``: the thresholded ids, resized by `unletterbox` (the old readout)."""
    cfg: ModelConfig = model.cfg
    if readout not in READOUTS:
        raise ValueError(f"unknown readout {readout!r} (use one of {READOUTS})")
    k = cfg.video_prev_masks
    steps = int(steps if steps is not None else cfg.sampler.steps)
    steps_later = int(steps_later if steps_later is not None else steps)
    td = float(td if td is not None else cfg.sampler.td)
    frames_ds = PanopticDataset(Davis(split, clip_length=1), cfg, name=f"davis/{split}")
    source: Davis = frames_ds.source  # type: ignore[assignment]
    first_item = {}
    for index, (seq, t) in enumerate(source.items):
        first_item.setdefault(seq, index)
    history: dict[str, list[torch.Tensor]] = {seq: [] for seq in source.sequences}
    gts: dict[str, list[np.ndarray]] = {seq: [] for seq in source.sequences}
    preds: dict[str, list[np.ndarray]] = {seq: [] for seq in source.sequences}
    model.eval()
    length = max(len(f) for f in source.frames.values())
    for t in range(min(length, max_frames) if max_frames else length):
        seqs = [s for s in source.sequences if t < len(source.frames[s])]
        samples = [frames_ds[first_item[s] + t] for s in seqs]
        images = torch.stack([s["image"] for s in samples]).to(device)
        prev = None
        if k:
            empty = torch.zeros(tuple(cfg.mask_size) + (2,), dtype=torch.long)
            prev = torch.stack([torch.stack(([empty] * k + history[s])[-k:]) for s in seqs]).to(device)
        x0, (cls, inst), logits = sample(model, images, steps if t == 0 else steps_later, td, seed=seed + t,
                                         prev_maps=prev, return_logits=True)
        if readout == "bilinear":
            cls, inst = (torch.from_numpy(ids) for ids in cell_ids(logits, x0, cfg))
        for b, seq in enumerate(seqs):
            history[seq].append(torch.stack([cls[b], inst[b]], -1).cpu())
            gt = frames_ds.raw(first_item[seq] + t)[0]
            pred, _ = ids_at_original(logits[b], x0[b], cfg, samples[b]["content_size"].tolist(), gt.cls.shape, readout,
                                      maps=(cls[b].cpu().numpy(), inst[b].cpu().numpy()))
            gts[seq].append(gt.cls > 0)
            preds[seq].append(pred > 0)
    evaluator = DavisEvaluator()
    for seq in source.sequences:
        evaluator.add_sequence(seq, gts[seq], preds[seq])
    return {**evaluator.summary(),
            "sampler": {"steps": steps, "steps_later": steps_later, "td": td, "readout": readout}}


def load_model(model_stem: str | None, checkpoint: str | None, device: torch.device | str) -> nn.Module:
    """An exported model, or the EMA weights of a training checkpoint."""
    if model_stem:
        from .export import load_exported

        return load_exported(model_stem, device)
    from .export import load_checkpoint
    from .model import build_model

    state = load_checkpoint(checkpoint)
    model = build_model(ModelConfig.from_dict(state["config"]), load_pretrained=False)
    model.load_state_dict(state.get("ema") or state["model"])
    return model.to(device).eval()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("images", "davis"):
        p = sub.add_parser(name)
        src = p.add_mutually_exclusive_group(required=True)
        src.add_argument("--model", help="exported model stem (NAME for NAME.json + NAME.safetensors)")
        src.add_argument("--checkpoint", help="training checkpoint folder (EMA weights are used)")
        p.add_argument("--split", default="val")
        p.add_argument("--steps", type=int, help="sampler steps (default: the model config's)")
        p.add_argument("--td", type=float, help="sampler time difference (default: the model config's)")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
        p.add_argument("--out", type=Path, help="also write the metrics JSON here")
        p.add_argument("--readout", choices=READOUTS, default="bilinear",
                       help="ids at the output resolution: interpolated last logits (default) or the old "
                            "thresholded ids resized by nearest neighbour")
        if name == "images":
            p.add_argument("--dataset", required=True, help="camvid, coco128, davis, coco_panoptic_sample, ...")
            p.add_argument("--images", type=int, help="only the first N images")
            p.add_argument("--min-pixels", type=int, default=40)
            p.add_argument("--batch-size", type=int, default=8)
        else:
            p.add_argument("--steps-later", type=int, help="sampler steps for frames after the first")
            p.add_argument("--max-frames", type=int, help="only the first N frames of every sequence")
    p = sub.add_parser("pq")
    for flag in ("--gt-json", "--gt-dir", "--pred-json", "--pred-dir"):
        p.add_argument(flag, type=Path, required=True)
    p.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    if args.command == "pq":
        result = pq_compute_coco(args.gt_json, args.gt_dir, args.pred_json, args.pred_dir)
    else:
        model = load_model(args.model, args.checkpoint, args.device)
        if args.command == "images":
            dataset = build_dataset(args.dataset, args.split, model.cfg)
            result = evaluate_images(model, dataset, args.images, args.steps, args.td, args.seed, args.min_pixels,
                                     args.batch_size, args.device, args.readout)
        else:
            result = evaluate_davis_streaming(model, args.split, args.steps, args.steps_later, args.td, args.seed,
                                              args.device, args.max_frames, args.readout)
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
