"""Teacher ignore regions: DAVIS frames whose unlabelled people, vehicles and animals a COCO
detector finds carry no loss there (pix2seqd_train.teachers)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from pix2seqd_train import SHARED_DATA_DIR
from pix2seqd_train.data.davis import Davis
from pix2seqd_train.data.registry import build_dataset, dataset_classes
from pix2seqd_train.diffusion import pixel_weights
from pix2seqd_train.model.mobilenet_v2_coco import read_graph
from pix2seqd_train.teachers import CACHE_VERSION, detect, ignore_mask, load_or_compute
from test_datasets import model_cfg

DAVIS = SHARED_DATA_DIR / "davis2016"


def test_ignore_mask_skips_the_annotated_object_and_never_covers_labels():
    labelled = np.zeros((10, 20), dtype=bool)
    labelled[2:8, 2:6] = True
    boxes = [
        {"group": "person", "score": 0.9, "box": [0.5, 0.2, 0.75, 0.9]},  # another person
        {"group": "person", "score": 0.9, "box": [0.05, 0.1, 0.35, 0.9]},  # the annotated object itself
    ]
    ignore = ignore_mask(boxes, labelled)
    assert ignore[2:9, 10:15].all() and ignore.sum() == 7 * 5
    assert not (ignore & labelled).any()
    assert not ignore[:, :8].any()  # the object's own box keeps its background labels


def test_pixel_weights_leave_ignored_pixels_out_and_keep_mean_one_elsewhere():
    gen = torch.Generator().manual_seed(0)
    inst = torch.randint(0, 4, (2, 8, 8), generator=gen)
    ignore = torch.zeros(2, 8, 8, dtype=torch.bool)
    ignore[0, :4] = True
    w = pixel_weights(inst, 10, 0.2, ignore)
    assert (w[ignore] == 0).all()
    torch.testing.assert_close(w[0][~ignore[0]].mean(), torch.tensor(1.0))
    torch.testing.assert_close(w[1], pixel_weights(inst, 10, 0.2)[1])  # nothing ignored: unchanged
    torch.testing.assert_close(pixel_weights(inst, 10, 0.2, torch.zeros_like(ignore)), pixel_weights(inst, 10, 0.2))


def test_detector_finds_the_breakdance_audience(cv2_one_thread):
    if not DAVIS.is_dir():
        pytest.fail(f"shared data {DAVIS} is missing")
    image = np.asarray(Image.open(DAVIS / "breakdance" / "images" / "00040.jpg").convert("RGB"))
    mask = np.asarray(Image.open(DAVIS / "breakdance" / "masks" / "00040.png")) > 0
    boxes = detect(read_graph(), image)
    people = [b for b in boxes if b["group"] == "person"]
    assert len(people) >= 3, boxes
    ignore = ignore_mask(boxes, mask)
    assert 0.2 < ignore.mean() < 0.95 and not (ignore & mask).any()


def test_davis_samples_carry_the_cached_ignore_regions(tmp_path):
    if not DAVIS.is_dir():
        pytest.fail(f"shared data {DAVIS} is missing")
    cache = tmp_path / "davis_ssd_boxes.json"
    box = {"group": "person", "score": 0.9, "box": [0.0, 0.0, 0.25, 0.5]}
    frames = {f"breakdance/{k:05d}": [box] for k in range(200)}
    cache.write_text(json.dumps({"version": CACHE_VERSION, "frames": frames}))
    assert load_or_compute(cache, DAVIS) == frames  # read from the cache, nothing recomputed
    reader = Davis("train", teacher="ssd_boxes", teacher_cache=cache)
    frame = reader.load_frame("breakdance", 0)
    assert frame.ignore is not None and frame.ignore[: frame.ignore.shape[0] // 2 - 1, :10].all()
    assert not frame.ignore[:, -10:].any()
    cfg = model_cfg(dataset_classes("davis"))
    ds = build_dataset("davis", "train", cfg, seed=0, teacher="ssd_boxes", teacher_cache=str(cache))
    index = next(i for i, (seq, _) in enumerate(ds.source.items) if seq == "breakdance")
    sample = ds[index]  # letterboxed, mask resolution
    assert sample["ignore"].dtype == torch.bool and sample["ignore"].shape == sample["inst"].shape
    assert sample["ignore"][:4, :4].all() and not sample["ignore"][:, -4:].any()
    other = ds[0] if ds.source.items[0][0] != "breakdance" else ds[len(ds) - 1]
    assert not other["ignore"].any()
    with pytest.raises(ValueError, match="teacher_cache"):
        Davis("train", teacher="ssd_boxes")
