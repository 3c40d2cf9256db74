"""Augmentation keeps image and labels aligned and consistent (copy-paste included)."""

import numpy as np
import pytest

from pix2seqd_train.augment import (
    AugmentConfig,
    assert_labels_consistent,
    augment_frames,
    copy_paste,
    hsv_to_rgb,
    rgb_to_hsv,
)
from pix2seqd_train.data.common import PAD_VALUE, Canvas, RawExample

COLORS = np.array([[0, 0, 0], [250, 10, 10], [10, 250, 10], [10, 10, 250], [250, 250, 10]], np.uint8)
ISTHING = np.array([False, False, False, True, True])  # classes 1, 2 stuff; 3, 4 things


def blocky_example(h=60, w=90, seed=0) -> RawExample:
    """Large blocks of classes whose image colour encodes the class (alignment is checkable)."""
    rng = np.random.default_rng(seed)
    cls = np.ones((h, w), np.int64)
    cls[:, w // 2:] = 2
    inst = np.where(cls == 1, 1, 2)
    for k, cid in enumerate((3, 4, 3)):
        y, x = rng.integers(0, h - 20), rng.integers(0, w - 20)
        cls[y:y + 20, x:x + 20] = cid
        inst[y:y + 20, x:x + 20] = 3 + k
    return RawExample(COLORS[cls], cls, inst, f"blocks-{seed}")


def canvas(cls, inst, value) -> Canvas:
    h, w = cls.shape
    return Canvas(np.full((h, w, 3), value, np.float32), cls.copy(), inst.copy(), np.ones((h, w), bool), "c", (h, w))


def test_geometry_keeps_image_and_labels_aligned():
    cfg = AugmentConfig(scale_min=1.0, scale_max=2.0, flip_prob=0.5)
    for seed in range(6):
        ex = blocky_example(seed=seed)
        (c,) = augment_frames([ex], (64, 64), cfg, np.random.default_rng(seed), ISTHING)
        colour_class = np.abs(c.image[..., None, :] * 255 - COLORS[None, None].astype(np.float32)).sum(-1).argmin(-1)
        agree = (colour_class == c.cls)[c.valid].mean()
        assert agree > 0.95, f"seed {seed}: only {agree:.1%} of the pixels agree"  # bilinear edges differ
        assert (c.image[~c.valid] == np.float32(PAD_VALUE)).all() and (c.cls[~c.valid] == 0).all()
        assert_labels_consistent(c.cls, c.inst)


def test_clip_frames_get_identical_transforms():
    ex = blocky_example(seed=3)
    cfg = AugmentConfig(scale_min=1.0, scale_max=2.0, color_jitter=1.0)
    a, b = augment_frames([ex, ex], (48, 64), cfg, np.random.default_rng(5), ISTHING)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.inst, b.inst)


def test_color_jitter_stays_in_range_and_keeps_padding():
    ex = blocky_example(h=40, w=90)
    cfg = AugmentConfig(color_jitter=1.0, color_jitter_prob=1.0, flip_prob=0.0)
    (c,) = augment_frames([ex], (64, 64), cfg, np.random.default_rng(0), ISTHING)
    assert (~c.valid).any() and (c.image[~c.valid] == np.float32(PAD_VALUE)).all()
    assert c.image.min() >= 0.0 and c.image.max() <= 1.0


def test_hsv_round_trip():
    rgb = np.random.default_rng(0).random((50, 3)).astype(np.float32)
    np.testing.assert_allclose(hsv_to_rgb(rgb_to_hsv(rgb)), rgb, atol=1e-5)


def test_copy_paste_keeps_labels_consistent():
    cls = np.ones((10, 10), np.int64)
    inst = np.ones((10, 10), np.int64)
    cls[2:4, 2:4], inst[2:4, 2:4] = 3, 2  # a small thing that will be fully covered
    cls[7:9, 7:9], inst[7:9, 7:9] = 4, 3  # a thing that stays
    target = canvas(cls, inst, 0.1)
    src_cls = np.full((10, 10), 2, np.int64)
    src_inst = np.full((10, 10), 1, np.int64)  # stuff: never pasted
    src_cls[1:5, 1:5], src_inst[1:5, 1:5] = 4, 7
    src_cls[6:8, 0:3], src_inst[6:8, 0:3] = 3, 9
    source = canvas(src_cls, src_inst, 0.9)
    new_ids = copy_paste([target], source, ISTHING, np.random.default_rng(0), max_instances=1)
    assert len(new_ids) == 1 and new_ids[0] == 4  # fresh id above the target's maximum
    pasted = target.inst == new_ids[0]
    src_id = 7 if pasted[1, 1] else 9
    np.testing.assert_array_equal(pasted, src_inst == src_id)
    assert (target.cls[pasted] == src_cls[src_inst == src_id][0]).all()
    assert np.allclose(target.image[pasted], 0.9) and np.allclose(target.image[~pasted], 0.1)
    assert_labels_consistent(target.cls, target.inst)


def test_copy_paste_all_instances_removes_covered_ones_and_skips_padding():
    cls = np.ones((10, 10), np.int64)
    inst = np.ones((10, 10), np.int64)
    cls[2:4, 2:4], inst[2:4, 2:4] = 3, 2
    target = canvas(cls, inst, 0.1)
    target.valid[:, 8:] = False  # padding on the right
    target.cls[:, 8:], target.inst[:, 8:] = 0, 0
    src_cls = np.zeros((10, 10), np.int64)
    src_inst = np.zeros((10, 10), np.int64)
    src_cls[1:5, 1:5], src_inst[1:5, 1:5] = 4, 1  # covers the target's thing
    src_cls[0:3, 6:10], src_inst[0:3, 6:10] = 3, 2  # reaches into the padding
    source = canvas(src_cls, src_inst, 0.9)
    new_ids = copy_paste([target], source, ISTHING, np.random.default_rng(0), max_instances=2)
    assert new_ids == [3, 4]  # seed 0 draws both instances
    assert 2 not in target.inst  # the covered instance is gone
    assert (target.cls[:, 8:] == 0).all() and (target.inst[:, 8:] == 0).all()
    assert (target.cls[0:3, 6:8] == 3).all()
    assert_labels_consistent(target.cls, target.inst)


def test_augment_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown augmentation keys"):
        AugmentConfig.from_dict({"scale": 2})
