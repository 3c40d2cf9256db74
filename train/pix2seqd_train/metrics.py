"""Evaluation metrics: panoptic quality (panopticapi semantics), mIoU, DAVIS J and F.

PQ follows ``panopticapi/evaluation.py`` (``pq_compute_single_core`` and ``PQStat.pq_average``):

* a ground-truth segment and a predicted segment of the same category match when IoU > 0.5, where
  the union leaves out the predicted pixels that fall on ground-truth void;
* crowd ground-truth segments never match; they are not false negatives;
* an unmatched predicted segment is not a false positive when more than half of it lies on
  ground-truth void or on the crowd region of its own category;
* PQ, SQ, RQ are averaged over the categories with tp + fp + fn > 0 (that count is ``n``).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from PIL import Image
from scipy import ndimage

from .panoptic import rgb2id, segment_id_map

VOID = 0
OFFSET = 256 * 256 * 256  # panopticapi's pairing offset; segment ids must stay below it


# ------------------------------------------------------------------------------------------------
# Panoptic quality


@dataclass
class Segment:
    category_id: int
    iscrowd: bool = False
    area: int | None = None  # panopticapi takes ground-truth areas from the JSON when given


@dataclass
class PQStatCat:
    iou: float = 0.0
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def __iadd__(self, other: "PQStatCat") -> "PQStatCat":
        self.iou += other.iou
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        return self


@dataclass
class PQStat:
    per_category: dict[int, PQStatCat] = field(default_factory=dict)

    def __getitem__(self, category_id: int) -> PQStatCat:
        return self.per_category.setdefault(category_id, PQStatCat())

    def __iadd__(self, other: "PQStat") -> "PQStat":
        for cat, stat in other.per_category.items():
            self[cat].__iadd__(stat)
        return self

    def average(self, isthing: Mapping[int, bool], which: bool | None = None) -> tuple[dict[str, float], dict[int, dict[str, float]]]:
        """PQ/SQ/RQ over the categories of ``isthing`` (all, things only or stuff only)."""
        pq = sq = rq = 0.0
        n = 0
        per_class: dict[int, dict[str, float]] = {}
        for cat, cat_isthing in isthing.items():
            if which is not None and bool(cat_isthing) != which:
                continue
            s = self.per_category.get(cat, PQStatCat())
            if s.tp + s.fp + s.fn == 0:
                per_class[cat] = {"pq": 0.0, "sq": 0.0, "rq": 0.0}
                continue
            n += 1
            denom = s.tp + 0.5 * s.fp + 0.5 * s.fn
            per_class[cat] = {"pq": s.iou / denom, "sq": s.iou / s.tp if s.tp else 0.0, "rq": s.tp / denom}
            pq, sq, rq = pq + per_class[cat]["pq"], sq + per_class[cat]["sq"], rq + per_class[cat]["rq"]
        if n == 0:  # panopticapi divides by zero here; report zeros with n = 0 instead
            return {"pq": 0.0, "sq": 0.0, "rq": 0.0, "n": 0}, per_class
        return {"pq": pq / n, "sq": sq / n, "rq": rq / n, "n": n}, per_class


def _areas(ids: np.ndarray) -> dict[int, int]:
    labels, counts = np.unique(ids, return_counts=True)
    return {int(k): int(v) for k, v in zip(labels, counts)}


def pq_single_image(
    gt_ids: np.ndarray,
    gt_segments: Mapping[int, Segment],
    pred_ids: np.ndarray,
    pred_segments: Mapping[int, Segment],
    image: str = "",
) -> PQStat:
    """PQ statistics of one image from segment-id maps and their segment descriptions."""
    if gt_ids.shape != pred_ids.shape:
        raise ValueError(f"{image}: ground truth {gt_ids.shape} and prediction {pred_ids.shape} differ in size")
    stat = PQStat()
    pred_area = _areas(pred_ids)
    for label in pred_area:
        if label != VOID and label not in pred_segments:
            raise KeyError(f"{image}: segment {label} is in the prediction PNG but not in its segments_info")
    missing = set(pred_segments) - set(pred_area)
    if missing:
        raise KeyError(f"{image}: segments {sorted(missing)} are in segments_info but not in the prediction PNG")
    gt_area = _areas(gt_ids)
    gt_area_of = {k: (s.area if s.area is not None else gt_area.get(k, 0)) for k, s in gt_segments.items()}

    pairs, counts = np.unique(gt_ids.astype(np.uint64) * OFFSET + pred_ids.astype(np.uint64), return_counts=True)
    overlap = {(int(p // OFFSET), int(p % OFFSET)): int(c) for p, c in zip(pairs, counts)}

    gt_matched: set[int] = set()
    pred_matched: set[int] = set()
    for (gt_label, pred_label), inter in overlap.items():
        gt, pred = gt_segments.get(gt_label), pred_segments.get(pred_label)
        if gt is None or pred is None or gt.iscrowd or gt.category_id != pred.category_id:
            continue
        union = pred_area[pred_label] + gt_area_of[gt_label] - inter - overlap.get((VOID, pred_label), 0)
        iou = inter / union
        if iou > 0.5:
            stat[gt.category_id].tp += 1
            stat[gt.category_id].iou += iou
            gt_matched.add(gt_label)
            pred_matched.add(pred_label)

    crowd_of_category: dict[int, int] = {}  # panopticapi keeps one (the last) crowd segment per category
    for gt_label, gt in gt_segments.items():
        if gt_label in gt_matched:
            continue
        if gt.iscrowd:
            crowd_of_category[gt.category_id] = gt_label
            continue
        stat[gt.category_id].fn += 1

    for pred_label, pred in pred_segments.items():
        if pred_label in pred_matched:
            continue
        ignored = overlap.get((VOID, pred_label), 0)
        if pred.category_id in crowd_of_category:
            ignored += overlap.get((crowd_of_category[pred.category_id], pred_label), 0)
        if ignored / pred_area[pred_label] > 0.5:
            continue
        stat[pred.category_id].fp += 1
    return stat


def segments_from_maps(cls: Any, inst: Any) -> tuple[np.ndarray, dict[int, Segment]]:
    """Segment-id map and segments (category = class id) from a (class, instance) label-map pair."""
    seg, pairs = segment_id_map(cls, inst)
    return seg, {sid: Segment(category_id=c) for sid, (c, _) in pairs.items()}


def segments_from_coco(segments_info: Iterable[Mapping[str, Any]], use_area: bool) -> dict[int, Segment]:
    return {
        int(s["id"]): Segment(
            category_id=int(s["category_id"]),
            iscrowd=bool(s.get("iscrowd", 0)),
            area=int(s["area"]) if use_area and "area" in s else None,
        )
        for s in segments_info
    }


class PanopticEvaluator:
    """Accumulates PQ statistics over images; ``isthing`` maps category id -> is a thing class."""

    def __init__(self, isthing: Mapping[int, bool], names: Mapping[int, str] | None = None) -> None:
        self.isthing = dict(isthing)
        self.names = dict(names or {})
        self.stat = PQStat()
        self.images = 0

    @classmethod
    def for_classes(cls, classes: Sequence[Any]) -> "PanopticEvaluator":
        """Categories = model class ids 1..C-1 from a class list (dicts or objects with name/isthing)."""
        get = lambda c, k: c[k] if isinstance(c, dict) else getattr(c, k)  # noqa: E731
        return cls({k + 1: bool(get(c, "isthing")) for k, c in enumerate(classes)},
                   {k + 1: str(get(c, "name")) for k, c in enumerate(classes)})

    def add_maps(self, gt_cls: Any, gt_inst: Any, pred_cls: Any, pred_inst: Any, image: str = "") -> PQStat:
        """Add one image given as label maps (class ids are the categories; no crowd regions)."""
        gt_ids, gt_segments = segments_from_maps(gt_cls, gt_inst)
        pred_ids, pred_segments = segments_from_maps(pred_cls, pred_inst)
        return self.add_segments(gt_ids, gt_segments, pred_ids, pred_segments, image)

    def add_segments(self, gt_ids: np.ndarray, gt_segments: Mapping[int, Segment], pred_ids: np.ndarray,
                     pred_segments: Mapping[int, Segment], image: str = "") -> PQStat:
        for s in pred_segments.values():
            if s.category_id not in self.isthing:
                raise KeyError(f"{image}: predicted category {s.category_id} is not a known category")
        stat = pq_single_image(gt_ids, gt_segments, pred_ids, pred_segments, image)
        self.stat += stat
        self.images += 1
        return stat

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"images": self.images}
        for key, which in (("all", None), ("things", True), ("stuff", False)):
            out[key], per_class = self.stat.average(self.isthing, which)
            if which is None:
                out["per_class"] = {self.names.get(k, str(k)): v for k, v in per_class.items()}
        return out


def pq_compute_coco(gt_json: Path, gt_dir: Path, pred_json: Path, pred_dir: Path,
                    categories: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """``panopticapi.evaluation.pq_compute`` on COCO panoptic files (ground truth areas from JSON)."""
    gt = json.loads(Path(gt_json).read_text())
    pred = json.loads(Path(pred_json).read_text())
    cats = categories if categories is not None else gt["categories"]
    evaluator = PanopticEvaluator({int(c["id"]): bool(c["isthing"]) for c in cats}, {int(c["id"]): c["name"] for c in cats})
    pred_by_image = {a["image_id"]: a for a in pred["annotations"]}
    for gt_ann in gt["annotations"]:
        if gt_ann["image_id"] not in pred_by_image:
            raise KeyError(f"{pred_json}: no prediction for image {gt_ann['image_id']}")
        pred_ann = pred_by_image[gt_ann["image_id"]]
        gt_ids = _read_panoptic_png(Path(gt_dir) / gt_ann["file_name"])
        pred_ids = _read_panoptic_png(Path(pred_dir) / pred_ann["file_name"])
        evaluator.add_segments(gt_ids, segments_from_coco(gt_ann["segments_info"], use_area=True),
                               pred_ids, segments_from_coco(pred_ann["segments_info"], use_area=False),
                               image=gt_ann["file_name"])
    return evaluator.summary()


def _read_panoptic_png(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return rgb2id(np.asarray(im.convert("RGB")))
    except (OSError, ValueError) as e:
        raise OSError(f"cannot read panoptic PNG {path}: {e}") from e


# ------------------------------------------------------------------------------------------------
# Semantic segmentation: confusion matrix and mIoU


class ConfusionMatrix:
    """Rows: ground truth, columns: prediction, over class ids 0..num_classes-1.

    Ground-truth pixels equal to ``ignore_index`` are skipped. Predictions of the ignore class on
    real pixels stay in the matrix and count as misses of the true class.
    """

    def __init__(self, num_classes: int, ignore_index: int | None = VOID) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, gt: Any, pred: Any) -> None:
        gt, pred = np.asarray(gt).astype(np.int64).ravel(), np.asarray(pred).astype(np.int64).ravel()
        if gt.shape != pred.shape:
            raise ValueError(f"ground truth {gt.shape} and prediction {pred.shape} differ in size")
        keep = (gt >= 0) & (gt < self.num_classes)
        if self.ignore_index is not None:
            keep &= gt != self.ignore_index
        pred = np.clip(pred, 0, self.num_classes - 1)
        self.matrix += np.bincount(gt[keep] * self.num_classes + pred[keep], minlength=self.num_classes**2).reshape(
            self.num_classes, self.num_classes)

    def iou(self) -> np.ndarray:
        """Per-class IoU; NaN for classes absent from both ground truth and prediction (and the ignore class)."""
        tp = np.diag(self.matrix).astype(np.float64)
        union = self.matrix.sum(0) + self.matrix.sum(1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = np.where(union > 0, tp / union, np.nan)
        if self.ignore_index is not None:
            iou[self.ignore_index] = np.nan
        return iou

    def miou(self) -> float:
        iou = self.iou()
        return float(np.nanmean(iou)) if np.isfinite(iou).any() else 0.0

    def pixel_accuracy(self) -> float:
        total = self.matrix.sum()
        return float(np.trace(self.matrix) / total) if total else 0.0


# ------------------------------------------------------------------------------------------------
# DAVIS J (region similarity) and F (boundary accuracy), as in the davis2017-evaluation toolkit


def db_eval_iou(annotation: np.ndarray, segmentation: np.ndarray, void_pixels: np.ndarray | None = None) -> float:
    """J: IoU of two binary masks, outside void pixels; 1 when both are empty."""
    a, s = np.asarray(annotation, bool), np.asarray(segmentation, bool)
    keep = ~np.asarray(void_pixels, bool) if void_pixels is not None else np.ones_like(a)
    inter = np.sum(a & s & keep)
    union = np.sum((a | s) & keep)
    return 1.0 if np.isclose(union, 0) else float(inter / union)


def seg2bmap(seg: np.ndarray) -> np.ndarray:
    """Boundary map of a binary mask (the toolkit's ``_seg2bmap`` at the mask's own size)."""
    seg = np.asarray(seg, bool)
    e, s, se = np.zeros_like(seg), np.zeros_like(seg), np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = seg ^ e | seg ^ s | seg ^ se
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = False
    return b


def disk(radius: int) -> np.ndarray:
    """skimage.morphology.disk."""
    r = np.arange(-radius, radius + 1)
    x, y = np.meshgrid(r, r)
    return x**2 + y**2 <= radius**2


def db_eval_boundary(annotation: np.ndarray, segmentation: np.ndarray, void_pixels: np.ndarray | None = None,
                     bound_th: float = 0.008) -> float:
    """F: boundary F-measure with a match tolerance of ceil(bound_th * image diagonal) pixels."""
    gt, fg = np.asarray(annotation, bool), np.asarray(segmentation, bool)
    keep = ~np.asarray(void_pixels, bool) if void_pixels is not None else np.ones_like(gt)
    bound_pix = bound_th if bound_th >= 1 else int(np.ceil(bound_th * np.linalg.norm(fg.shape)))
    fg_boundary, gt_boundary = seg2bmap(fg & keep), seg2bmap(gt & keep)
    structure = disk(int(bound_pix))
    fg_dil = ndimage.binary_dilation(fg_boundary, structure=structure)
    gt_dil = ndimage.binary_dilation(gt_boundary, structure=structure)
    n_fg, n_gt = int(fg_boundary.sum()), int(gt_boundary.sum())
    if n_fg == 0 and n_gt > 0:
        precision, recall = 1.0, 0.0
    elif n_fg > 0 and n_gt == 0:
        precision, recall = 0.0, 1.0
    elif n_fg == 0 and n_gt == 0:
        precision, recall = 1.0, 1.0
    else:
        precision = float(np.sum(fg_boundary & gt_dil)) / n_fg
        recall = float(np.sum(gt_boundary & fg_dil)) / n_gt
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def db_statistics(per_frame: Sequence[float]) -> dict[str, float]:
    """Mean, recall (fraction > 0.5) and decay (first minus last quarter), as the toolkit reports."""
    values = np.asarray(per_frame, dtype=np.float64)
    if values.size == 0:
        return {"mean": float("nan"), "recall": float("nan"), "decay": float("nan")}
    ids = (np.round(np.linspace(1, len(values), 5) + 1e-10) - 1).astype(int)
    bins = [values[ids[i]:ids[i + 1] + 1] for i in range(4)]
    with warnings.catch_warnings():  # an all-NaN quarter gives NaN, like the toolkit
        warnings.simplefilter("ignore", RuntimeWarning)
        decay = float(np.nanmean(bins[0]) - np.nanmean(bins[3]))
    return {"mean": float(np.nanmean(values)), "recall": float(np.mean(values > 0.5)), "decay": decay}


class DavisEvaluator:
    """J and F per sequence, averaged over sequences (single foreground object: DAVIS 2016).

    Like the davis2017 toolkit, the first and last frame of each sequence are left out by default
    (the first is given in the semi-supervised task, the last often lacks motion).
    """

    def __init__(self, skip_first_last: bool = True) -> None:
        self.skip_first_last = skip_first_last
        self.sequences: dict[str, tuple[list[float], list[float]]] = {}

    def add_sequence(self, name: str, gt_masks: Sequence[np.ndarray], pred_masks: Sequence[np.ndarray]) -> dict[str, float]:
        if len(gt_masks) != len(pred_masks):
            raise ValueError(f"{name}: {len(gt_masks)} ground-truth frames but {len(pred_masks)} predictions")
        frames = list(zip(gt_masks, pred_masks))
        if self.skip_first_last and len(frames) > 2:
            frames = frames[1:-1]
        j = [db_eval_iou(g, p) for g, p in frames]
        f = [db_eval_boundary(g, p) for g, p in frames]
        self.sequences[name] = (j, f)
        return {"J": float(np.mean(j)), "F": float(np.mean(f))}

    def summary(self) -> dict[str, Any]:
        if not self.sequences:
            return {"J&F": 0.0, "J": {}, "F": {}, "per_sequence": {}}
        j_stats = [db_statistics(j) for j, _ in self.sequences.values()]
        f_stats = [db_statistics(f) for _, f in self.sequences.values()]
        avg = lambda stats, k: float(np.mean([s[k] for s in stats]))  # noqa: E731
        j = {k: avg(j_stats, k) for k in ("mean", "recall", "decay")}
        f = {k: avg(f_stats, k) for k in ("mean", "recall", "decay")}
        per_seq = {n: {"J": float(np.mean(jv)), "F": float(np.mean(fv))} for n, (jv, fv) in self.sequences.items()}
        return {"J&F": (j["mean"] + f["mean"]) / 2, "J": j, "F": f, "per_sequence": per_seq}
