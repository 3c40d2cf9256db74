"""PQ (panopticapi semantics), mIoU and DAVIS J&F on hand-computed cases and the real COCO sample."""

import json
import sys

import numpy as np
import pytest

from pix2seqd_train.data.common import data_root
from pix2seqd_train.metrics import (
    ConfusionMatrix,
    DavisEvaluator,
    PanopticEvaluator,
    Segment,
    db_eval_boundary,
    db_eval_iou,
    pq_compute_coco,
    pq_single_image,
    seg2bmap,
)

COCO_SAMPLE = data_root() / "coco-panoptic-sample"


def require(path):
    if not path.exists():
        print(f"SKIPPING: shared data {path} is missing (see ../shared/data/README.md)", file=sys.stderr)
        pytest.skip(f"shared data {path} is missing")


def stripes(spec, shape=(10, 10)):
    """Segment-id map from {id: (row slice, col slice)} painted in order."""
    ids = np.zeros(shape, np.int64)
    for sid, (rows, cols) in spec.items():
        ids[rows, cols] = sid
    return ids


def evaluate(gt_ids, gt_segments, pred_ids, pred_segments, isthing):
    ev = PanopticEvaluator(isthing)
    ev.add_segments(gt_ids, gt_segments, pred_ids, pred_segments)
    return ev.summary()


# ---- PQ, hand-computed ------------------------------------------------------------------------


def test_pq_two_true_positives():
    # thing category 1: GT rows 0-4 (50 px), prediction rows 0-3 (40 px): IoU 40/50 = 0.8
    # stuff category 2: GT rows 5-9 (50 px), prediction rows 4-9 (60 px): IoU 50/60
    gt = stripes({1: (slice(0, 5), slice(None)), 2: (slice(5, 10), slice(None))})
    pred = stripes({1: (slice(0, 4), slice(None)), 2: (slice(4, 10), slice(None))})
    out = evaluate(gt, {1: Segment(1), 2: Segment(2)}, pred, {1: Segment(1), 2: Segment(2)}, {1: True, 2: False})
    assert out["things"]["pq"] == pytest.approx(0.8)
    assert out["stuff"]["pq"] == pytest.approx(50 / 60)
    assert out["all"]["pq"] == pytest.approx((0.8 + 50 / 60) / 2)
    assert out["all"]["rq"] == pytest.approx(1.0)
    assert out["all"]["n"] == 2


def test_pq_false_positive_false_negative_and_void_prediction():
    # GT: A (cat 1) rows 0-4 cols 0-4, C (cat 1) rows 0-4 cols 5-9, rows 5-9 void.
    gt = stripes({1: (slice(0, 5), slice(0, 5)), 2: (slice(0, 5), slice(5, 10))})
    # Prediction: a = A exactly; c' cols 8-9 of C (IoU 10/25 = 0.4: no match -> FP, C -> FN);
    # d on the void rows only: ignored (more than half on void).
    pred = stripes({1: (slice(0, 5), slice(0, 5)), 3: (slice(0, 5), slice(8, 10)), 4: (slice(5, 10), slice(None))})
    out = evaluate(gt, {1: Segment(1), 2: Segment(1)}, pred, {1: Segment(1), 3: Segment(1), 4: Segment(1)}, {1: True})
    # tp = 1 (IoU 1), fp = 1, fn = 1: PQ = 1 / (1 + 0.5 + 0.5), SQ = 1, RQ = 0.5
    assert out["all"] == pytest.approx({"pq": 0.5, "sq": 1.0, "rq": 0.5, "n": 1})


def test_pq_iou_leaves_out_prediction_pixels_on_void():
    # GT segment 25 px, rest void; prediction covers it plus 25 void px: IoU = 25 / (50 + 25 - 25 - 25) = 1
    gt = stripes({1: (slice(0, 5), slice(0, 5))})
    pred = stripes({1: (slice(0, 5), slice(0, 10))})
    out = evaluate(gt, {1: Segment(1)}, pred, {1: Segment(1)}, {1: True})
    assert out["all"]["pq"] == pytest.approx(1.0)


def test_pq_crowd_regions():
    # GT: A (cat 1) rows 0-4 cols 0-4; crowd of cat 1 on rows 5-9.
    gt = stripes({1: (slice(0, 5), slice(0, 5)), 9: (slice(5, 10), slice(None))})
    # b (cat 1) lies on the crowd of its own class: ignored. c (cat 2) on the same crowd: FP.
    pred = stripes({1: (slice(0, 5), slice(0, 5)), 2: (slice(5, 10), slice(0, 6)), 3: (slice(5, 10), slice(6, 10))})
    out = evaluate(gt, {1: Segment(1), 9: Segment(1, iscrowd=True)}, pred,
                   {1: Segment(1), 2: Segment(1), 3: Segment(2)}, {1: True, 2: False})
    # cat 1: tp 1, IoU 1 (crowd is neither FN nor matched); cat 2: fp 1 -> PQ 0; n = 2
    assert out["things"]["pq"] == pytest.approx(1.0)
    assert out["stuff"]["pq"] == pytest.approx(0.0)
    assert out["all"]["pq"] == pytest.approx(0.5)
    assert out["all"]["n"] == 2


def test_pq_iou_of_exactly_half_does_not_match():
    # GT: cat 1 on rows 0-4 (50 px), cat 2 on rows 5-9; prediction: cat 1 everywhere (100 px)
    gt = stripes({1: (slice(0, 5), slice(None)), 2: (slice(5, 10), slice(None))})
    pred = stripes({1: (slice(0, 10), slice(None))})
    out = evaluate(gt, {1: Segment(1), 2: Segment(2)}, pred, {1: Segment(1)}, {1: True, 2: False})
    # IoU = 50 / 100 = 0.5, not > 0.5: cat 1 has fp 1 and fn 1, cat 2 fn 1
    assert out["all"]["pq"] == 0.0 and out["all"]["n"] == 2


def test_pq_label_maps_and_category_mismatch():
    gt_cls = np.array([[1, 1, 2, 2]] * 4)
    gt_inst = np.array([[1, 1, 2, 2]] * 4)
    pred_cls = np.array([[1, 1, 3, 3]] * 4)  # the right half has the wrong class
    pred_inst = np.array([[5, 5, 7, 7]] * 4)  # other id values: ids only need to be distinct
    ev = PanopticEvaluator({1: True, 2: True, 3: False})
    ev.add_maps(gt_cls, gt_inst, pred_cls, pred_inst)
    s = ev.summary()
    # cat 1 PQ 1; cat 2 fn -> 0; cat 3 fp -> 0 => all 1/3, things 1/2, stuff 0
    assert s["all"]["pq"] == pytest.approx(1 / 3)
    assert s["things"]["pq"] == pytest.approx(0.5)
    assert s["stuff"]["pq"] == pytest.approx(0.0)


def test_pq_rejects_inconsistent_prediction():
    gt = stripes({1: (slice(0, 5), slice(None))})
    with pytest.raises(KeyError, match="not in its segments_info"):
        pq_single_image(gt, {1: Segment(1)}, gt, {}, image="x.png")


# ---- PQ on the real COCO panoptic sample ------------------------------------------------------


def test_pq_coco_sample_against_itself():
    require(COCO_SAMPLE)
    categories = json.loads((COCO_SAMPLE / "categories.json").read_text())
    out = pq_compute_coco(COCO_SAMPLE / "panoptic.json", COCO_SAMPLE / "panoptic",
                          COCO_SAMPLE / "panoptic.json", COCO_SAMPLE / "panoptic", categories)
    # categories present in the 2 images: things person, sports ball, truck, horse;
    # stuff tree-merged, sky-other-merged, grass-merged, gravel
    assert out["all"] == pytest.approx({"pq": 1.0, "sq": 1.0, "rq": 1.0, "n": 8})
    assert out["things"]["n"] == 4 and out["stuff"]["n"] == 4


def test_pq_coco_sample_missing_stuff_segment(tmp_path):
    require(COCO_SAMPLE)
    from PIL import Image

    from pix2seqd_train.panoptic import id2rgb, rgb2id

    pred = json.loads((COCO_SAMPLE / "panoptic.json").read_text())
    (tmp_path / "pred").mkdir()
    gravel = 11881084  # the only gravel segment (000000439180)
    for ann in pred["annotations"]:
        ids = rgb2id(np.asarray(Image.open(COCO_SAMPLE / "panoptic" / ann["file_name"]).convert("RGB")))
        ids[ids == gravel] = 0
        ann["segments_info"] = [s for s in ann["segments_info"] if s["id"] != gravel]
        Image.fromarray(id2rgb(ids)).save(tmp_path / "pred" / ann["file_name"])
    (tmp_path / "pred.json").write_text(json.dumps(pred))
    out = pq_compute_coco(COCO_SAMPLE / "panoptic.json", COCO_SAMPLE / "panoptic", tmp_path / "pred.json", tmp_path / "pred")
    # gravel becomes one FN (PQ 0); the 7 other categories stay at 1
    assert out["all"]["pq"] == pytest.approx(7 / 8)
    assert out["stuff"]["pq"] == pytest.approx(3 / 4)
    assert out["things"]["pq"] == pytest.approx(1.0)


# ---- mIoU -------------------------------------------------------------------------------------


def test_confusion_matrix_miou_with_ignore():
    cm = ConfusionMatrix(num_classes=3, ignore_index=0)
    cm.update(np.array([[1, 1], [2, 0]]), np.array([[1, 2], [2, 2]]))
    # gt 1 -> pred 1, gt 1 -> pred 2, gt 2 -> pred 2; the void pixel is skipped
    # IoU1 = 1 / (2 + 1 - 1) = 0.5, IoU2 = 1 / (1 + 2 - 1) = 0.5
    assert cm.iou()[1:] == pytest.approx([0.5, 0.5])
    assert cm.miou() == pytest.approx(0.5)
    assert cm.pixel_accuracy() == pytest.approx(2 / 3)


def test_miou_counts_void_predictions_as_misses_and_skips_absent_classes():
    cm = ConfusionMatrix(num_classes=4, ignore_index=0)
    cm.update(np.array([1, 1, 1, 1]), np.array([1, 1, 1, 0]))
    # class 1: tp 3, union 4 -> 0.75; classes 2, 3 absent -> NaN, left out of the mean
    assert cm.miou() == pytest.approx(0.75)
    assert np.isnan(cm.iou()[2])


# ---- DAVIS J and F ----------------------------------------------------------------------------


def test_seg2bmap_square():
    seg = np.zeros((5, 5), bool)
    seg[1:4, 1:4] = True
    expected = np.array([[1, 1, 1, 1, 0], [1, 0, 0, 1, 0], [1, 0, 0, 1, 0], [1, 1, 1, 1, 0], [0, 0, 0, 0, 0]], bool)
    np.testing.assert_array_equal(seg2bmap(seg), expected)


def test_j_and_f_hand_computed():
    gt = np.zeros((20, 20), bool)
    gt[:, :10] = True  # boundary: column 9, 20 px
    pred = gt.copy()
    pred[10:, :13] = True  # boundary: col 9 rows 0-8, row 9 cols 9-12, col 12 rows 10-19 = 23 px
    # tolerance ceil(0.008 * 28.3) = 1 px (a plus-shaped disk):
    # precision = 11/23 (col 9 rows 0-9 and (9, 10)), recall = 11/20 (col 9 rows 0-10)
    assert db_eval_boundary(gt, pred) == pytest.approx(242 / 473)
    assert db_eval_iou(gt, pred) == pytest.approx(200 / 230)


def test_j_and_f_simple_cases():
    a = np.zeros((100, 100), bool)
    a[20:60, 20:60] = True
    shifted = np.roll(a, 1, axis=1)
    assert db_eval_boundary(a, a) == 1.0 and db_eval_iou(a, a) == 1.0
    assert db_eval_boundary(a, shifted) == 1.0  # within the 2 px tolerance of a 100 x 100 image
    assert db_eval_iou(a, shifted) == pytest.approx(39 * 40 / (41 * 40))
    far = np.roll(a, 30, axis=0)
    assert db_eval_boundary(a, far) < 0.2
    empty = np.zeros_like(a)
    assert db_eval_iou(empty, empty) == 1.0 and db_eval_boundary(empty, empty) == 1.0
    assert db_eval_boundary(a, empty) == 0.0


def test_davis_evaluator_skips_first_and_last_frame():
    a = np.zeros((30, 30), bool)
    a[5:20, 5:20] = True
    bad = np.zeros_like(a)
    ev = DavisEvaluator()
    per_seq = ev.add_sequence("seq", [a, a, a, a], [bad, a, a, bad])
    assert per_seq == {"J": 1.0, "F": 1.0}
    s = ev.summary()
    assert s["J&F"] == 1.0 and s["J"]["recall"] == 1.0 and s["J"]["decay"] == 0.0
