"""Every dataset yields consistent image/label pairs from the real files in ../shared/data."""

import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy import ndimage

from pix2seqd_train.augment import assert_labels_consistent
from pix2seqd_train.data import build_dataset, data_root, dataset_classes
from pix2seqd_train.data.camvid import EIGHT_CONNECTED, CamVid
from pix2seqd_train.data.coco128 import Coco128, polygon_area, parse_polygons
from pix2seqd_train.data.common import PAD_VALUE, compact_ids, keep_largest_segments, nearest_resize, unletterbox
from pix2seqd_train.data.davis import Davis


def require(name):
    path = data_root() / name
    if not path.exists():
        print(f"SKIPPING: shared data {path} is missing (see ../shared/data/README.md)", file=sys.stderr)
        pytest.skip(f"shared data {path} is missing")


def model_cfg(classes, image=(64, 96), mask=(16, 24), max_instances=64, video=0):
    """A stand-in model config: only the fields the data code reads."""
    entries = [{"name": "void", "isthing": False}] + [{"name": c.name, "isthing": c.isthing} for c in classes]
    return SimpleNamespace(image_size=list(image), mask_size=list(mask), num_classes=len(entries),
                           max_instances=max_instances, video_prev_masks=video, classes=entries)


def check_sample(s, cfg):
    h, w = cfg.image_size
    mh, mw = cfg.mask_size
    assert s["image"].shape == (3, h, w) and s["image"].dtype == torch.float32
    assert 0.0 <= float(s["image"].min()) and float(s["image"].max()) <= 1.0
    assert s["cls"].shape == (mh, mw) and s["cls"].dtype == torch.int64
    assert s["inst"].shape == (mh, mw) and s["inst"].dtype == torch.int64
    assert 0 <= int(s["cls"].min()) and int(s["cls"].max()) < cfg.num_classes
    assert int(s["inst"].max()) < cfg.max_instances
    assert_labels_consistent(s["cls"].numpy(), s["inst"].numpy())  # id >= 1 exactly where class != void


# ---- CamVid -----------------------------------------------------------------------------------


def test_camvid_splits():
    require("camvid")
    assert [len(CamVid(s)) for s in ("train", "val", "test")] == [367, 101, 233]


def test_camvid_instances_are_connected_components():
    require("camvid")
    ds = CamVid("val")
    for index in (0, 50, 100):
        (ex,) = ds.load(index)
        assert ex.image.shape == (360, 480, 3) and ex.image.dtype == np.uint8
        assert ex.cls.min() >= 0 and ex.cls.max() <= 11
        assert_labels_consistent(ex.cls, ex.inst)
        for class_id, info in enumerate(ds.classes, start=1):
            ids = np.unique(ex.inst[ex.cls == class_id])
            if info.isthing:
                _, components = ndimage.label(ex.cls == class_id, structure=EIGHT_CONNECTED)
                assert ids.size == components
                for i in ids:  # each instance is exactly one component
                    assert ndimage.label(ex.inst == i, structure=EIGHT_CONNECTED)[1] == 1
            else:
                assert ids.size <= 1  # stuff: one segment per class


def test_camvid_samples_letterboxed():
    require("camvid")
    cfg = model_cfg(dataset_classes("camvid"), image=(64, 64), mask=(16, 16))
    ds = build_dataset("camvid", "test", cfg)
    s = ds[0]
    check_sample(s, cfg)
    # 360 x 480 fitted into 64 x 64 -> 48 x 64 of content, padding below (0.3, void)
    assert s["content_size"].tolist() == [48, 64] and s["orig_size"].tolist() == [360, 480]
    assert torch.allclose(s["image"][:, 48:], torch.tensor(PAD_VALUE)) and (s["cls"][12:] == 0).all()


def test_camvid_augmented_samples_are_consistent_and_seeded():
    require("camvid")
    cfg = model_cfg(dataset_classes("camvid"), max_instances=16)
    aug = {"scale_min": 1.0, "scale_max": 2.0, "color_jitter": 0.5, "copy_paste_prob": 1.0}
    ds = build_dataset("camvid", "train", cfg, augment=aug, seed=1)
    for index in (3, 4):
        a, b = ds[index], ds[index]
        check_sample(a, cfg)
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["inst"], b["inst"])


# ---- coco128 ----------------------------------------------------------------------------------


def test_coco128_splits_hold_out_the_last_16():
    require("coco128-seg")
    train, val, every = Coco128("train"), Coco128("val"), Coco128("all")
    assert (len(train), len(val), len(every)) == (112, 16, 128)
    assert val.names == every.names[-16:] and not set(train.names) & set(val.names)


def test_coco128_background_images_and_orphan_labels_are_explicit(tmp_path):
    """Two images have no label file (they show no COCO object): all void. Two label files have no
    image: no split holds them. Any other image without labels is an error naming the file."""
    require("coco128-seg")
    from pix2seqd_train.data.coco128 import BACKGROUND_IMAGES
    every = Coco128("all")
    assert every.orphan_labels() == ["000000000656", "000000000659"]
    assert not set(every.orphan_labels()) & set(every.names)
    for name in BACKGROUND_IMAGES:
        (raw,) = every.load(every.names.index(name))
        assert not raw.cls.any() and not raw.inst.any(), name
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    for name in every.names[:17]:
        (tmp_path / "images" / f"{name}.jpg").write_bytes((every.root / "images" / f"{name}.jpg").read_bytes())
    with pytest.raises(FileNotFoundError, match=f"{every.names[0]}.txt"):
        Coco128("all", root=tmp_path).load(0)


def test_coco128_polygons_rasterised_sanely():
    require("coco128-seg")
    ds = Coco128("all")
    for index in (0, 1, 7):
        (ex,) = ds.load(index)
        h, w = ex.cls.shape
        polygons = parse_polygons(ds.root / "labels" / f"{ds.names[index]}.txt", w, h)
        assert_labels_consistent(ex.cls, ex.inst)
        assert 1 <= ex.inst.max() <= len(polygons)
        for k, (label, xy) in enumerate(polygons, start=1):
            visible = int((ex.inst == k).sum())
            if visible:
                assert (ex.cls[ex.inst == k] == label + 1).all()
            perimeter = float(np.linalg.norm(np.diff(np.vstack([xy, xy[:1]]), axis=0), axis=1).sum())
            assert visible <= polygon_area(xy) + perimeter + 4  # rasterisation adds at most the outline
        largest = max(range(len(polygons)), key=lambda k: polygon_area(polygons[k][1]))
        area = polygon_area(polygons[largest][1])
        if area > 2000:  # drawn first, may be partly covered, never larger than its outline allows
            assert (ex.inst == largest + 1).sum() > 0.3 * area


def test_coco128_samples():
    require("coco128-seg")
    cfg = model_cfg(dataset_classes("coco128"))
    ds = build_dataset("coco128", "val", cfg)
    check_sample(ds[0], cfg)


# ---- DAVIS ------------------------------------------------------------------------------------


def test_davis_splits_and_clips():
    require("davis2016")
    val = Davis("val", clip_length=3)
    assert val.sequences == ["motocross-jump", "paragliding-launch", "scooter-black", "soapbox"]
    assert len(Davis("train").sequences) == 12
    clip = val.load(0)
    assert [f.name for f in clip] == ["motocross-jump/00000", "motocross-jump/00001", "motocross-jump/00002"]
    for f in clip:
        assert set(np.unique(f.cls)) <= {0, 1} and np.array_equal(f.cls, f.inst)
    assert len(val) == sum(len(val.frames[s]) - 2 for s in val.sequences)


def test_davis_video_samples_share_geometry_and_ids():
    require("davis2016")
    cfg = model_cfg(dataset_classes("davis"), video=2)
    ds = build_dataset("davis", "train", cfg, augment={"scale_min": 1.0, "scale_max": 1.5}, seed=0)
    clip = ds[10]
    assert len(clip) == 3
    for s in clip:
        check_sample(s, cfg)
        assert s["content_size"].tolist() == clip[0]["content_size"].tolist()
    ids = {int(v) for s in clip for v in s["inst"].unique() if v > 0}
    assert len(ids) == 1  # the one object keeps its (shuffled) id in every frame


# ---- COCO panoptic format, synthetic ----------------------------------------------------------


def test_coco_panoptic_sample_crowd_is_void():
    require("coco-panoptic-sample")
    classes = dataset_classes("coco_panoptic_sample")
    assert len(classes) == 133 and sum(c.isthing for c in classes) == 80
    ds = build_dataset("coco_panoptic_sample", "val", model_cfg(classes, max_instances=101))
    (ex,) = ds.raw(0)  # 000000142238: 2712 void px + one crowd segment of 24295 px
    assert ex.cls.shape == (427, 640)
    assert (ex.cls == 0).sum() == 2712 + 24295
    assert len(np.unique(ex.inst)) - 1 == 17  # 18 segments, one of them crowd
    assert_labels_consistent(ex.cls, ex.inst)
    person = [c.name for c in classes].index("person") + 1
    assert len(np.unique(ex.inst[ex.cls == person])) == 13


def test_synthetic_is_deterministic_with_stuff_and_things():
    cfg = model_cfg(dataset_classes("camvid"), image=(48, 64), mask=(12, 16))
    a = build_dataset("synthetic", "train", cfg, seed=3, size=(40, 50))
    b = build_dataset("synthetic", "train", cfg, seed=3, size=(40, 50))
    (ra,), (rb,) = a.raw(5), b.raw(5)
    np.testing.assert_array_equal(ra.image, rb.image)
    assert ra.image.shape == (40, 50, 3)
    isthing = np.array([False] + [c.isthing for c in dataset_classes("camvid")])
    kinds = {bool(isthing[c]) for c in np.unique(ra.cls) if c}
    assert kinds == {True, False}
    check_sample(a[5], cfg)


# ---- helpers ----------------------------------------------------------------------------------


def test_keep_largest_segments_and_compact_ids():
    cls = np.array([[1, 1, 1, 2, 2, 3]])
    inst = np.array([[4, 4, 4, 9, 9, 7]])
    c, i = keep_largest_segments(cls, inst, max_segments=2)
    assert c.tolist() == [[1, 1, 1, 2, 2, 0]] and i.tolist() == [[4, 4, 4, 9, 9, 0]]
    assert compact_ids(i).tolist() == [[1, 1, 1, 2, 2, 0]]


def test_nearest_resize_and_unletterbox():
    labels = np.arange(16).reshape(4, 4)
    assert nearest_resize(labels, 2, 2).tolist() == [[5, 7], [13, 15]]
    mask = np.array([[1, 2], [0, 0]])  # bottom half is padding
    out = unletterbox(mask, (4, 4), content_hw=(2, 4), orig_hw=(3, 6))
    assert out.shape == (3, 6) and set(np.unique(out)) == {1, 2}
