"""Which pretrained backbone knows best where the objects are? A linear probe on frozen features.

For each MBConv backbone type (train/pix2seqd_train/model/efficientnet_lite.py), the taps at
strides 4, 8 and 16 of the `objects` model's input (192x256 letterbox) are upsampled to stride 4
and concatenated; a per-pixel linear classifier over the objects model's classes (void = the
background, person, vehicle, animal, furniture, food, other) is trained on the coco128-seg train
split (Adam, full batch, fixed iterations) and scored on the val split (mIoU over the classes
present), on every 4th frame of the DAVIS val sequences (J: the IoU of the pixels given the
sequence object's group with its mask, mean over the sequences) and on every 4th CamVid test image
(pedestrian and bicyclist as person, car as vehicle, the rest background: person and vehicle IoU).
The COCO detector's training images include coco128's (COCO train2017), so its coco128 score may be
flattered; DAVIS and CamVid are images no backbone trained on. The backbone stays frozen: this measures what its features already say,
the cheap lever to compare before a training run (issue 15: "measure each lever on a fixed budget").

    PYTHONPATH=train python3 scripts/probe_backbones.py [--types efficientnet_lite0 mobilenet_v2_coco] [--iters 400]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from pix2seqd_train.config import EFFICIENTNET_LITE_TYPES, default_backbone
from pix2seqd_train.data import build_dataset
from pix2seqd_train.model.efficientnet_lite import EfficientNetLite, load_imagenet_weights
from pix2seqd_train.train import load_experiment


def objects_config():
    return load_experiment("train/configs/experiments/objects_web_cpu.json").model


def load_split(cfg, name: str, split: str, every: int = 1) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    ds = build_dataset(name, split, cfg, groups="objects")
    items = [ds[i] for i in range(0, len(ds), every)]
    return (torch.stack([it["image"] for it in items]), torch.stack([it["cls"] for it in items]),
            [it["name"] for it in items])


def load_camvid_as_objects(cfg, names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """CamVid test (every 4th image) with its things mapped into the objects classes."""
    street = load_experiment("train/configs/experiments/camvid_web_cpu_continue.json").model
    assert tuple(street.image_size) == tuple(cfg.image_size) and tuple(street.mask_size) == tuple(cfg.mask_size)
    ds = build_dataset("camvid", "test", street)
    to_objects = torch.zeros(len(street.classes), dtype=torch.long)
    for i, c in enumerate(street.classes):
        target = {"pedestrian": "person", "bicyclist": "person", "car": "vehicle"}.get(c.name)
        if target:
            to_objects[i] = names.index(target)
    items = [ds[i] for i in range(0, len(ds), 4)]
    return torch.stack([it["image"] for it in items]), torch.stack([to_objects[it["cls"]] for it in items])


def davis_j(pred: torch.Tensor, truth: torch.Tensor, names: list[str]) -> float:
    """Mean over sequences of the IoU between "predicted as the object's group" and the object."""
    per_sequence: dict[str, list[int]] = {}
    for p, t, name in zip(pred, truth, names):
        group = int(t.max())  # the sequence's object has one group; background is void (0)
        inter = ((p == group) & (t == group)).sum().item()
        union = ((p == group) | (t == group)).sum().item()
        acc = per_sequence.setdefault(name.split("/")[0], [0, 0])
        acc[0] += inter
        acc[1] += union
    return sum(i / u for i, u in per_sequence.values()) / len(per_sequence)


def pretrained_backbone(kind: str) -> EfficientNetLite:
    backbone = EfficientNetLite(default_backbone(kind)).eval()
    load_imagenet_weights(backbone, kind)
    return backbone


@torch.no_grad()
def features(backbone: EfficientNetLite, images: torch.Tensor, mask_size: tuple[int, int]) -> tuple[torch.Tensor, float]:
    started = time.perf_counter()
    out = []
    for chunk in images.split(16):
        taps = backbone(chunk)
        out.append(torch.cat([F.interpolate(t, size=mask_size, mode="bilinear", align_corners=False)
                              for t in taps], 1))
    return torch.cat(out), (time.perf_counter() - started) * 1000 / len(images)


def miou(pred: torch.Tensor, truth: torch.Tensor, classes: int) -> tuple[float, list[float | None]]:
    ious: list[float | None] = []
    for c in range(classes):
        inter = ((pred == c) & (truth == c)).sum().item()
        union = ((pred == c) | (truth == c)).sum().item()
        ious.append(inter / union if (truth == c).any() else None)
    present = [v for v in ious if v is not None]
    return sum(present) / len(present), ious


def probe(train_x, train_y, tests: list[torch.Tensor], classes: int, iters: int, seed: int = 0) -> list[torch.Tensor]:
    """Trains the linear head on (train_x, train_y); returns its predictions for each test set."""
    torch.manual_seed(seed)
    mean = train_x.mean((0, 2, 3), keepdim=True)
    std = train_x.std((0, 2, 3), keepdim=True) + 1e-5
    tx = (train_x - mean) / std
    head = torch.nn.Conv2d(tx.shape[1], classes, 1)
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(iters):
        opt.zero_grad()
        F.cross_entropy(head(tx), train_y).backward()
        opt.step()
    with torch.no_grad():
        return [head((x - mean) / std).argmax(1) for x in tests]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--types", nargs="+", default=list(EFFICIENTNET_LITE_TYPES))
    parser.add_argument("--iters", type=int, default=400)
    args = parser.parse_args()
    torch.set_num_threads(2)
    cfg = objects_config()
    mask_size = tuple(cfg.mask_size)
    train_images, train_y, _ = load_split(cfg, "coco128", "train")
    val_images, val_y, _ = load_split(cfg, "coco128", "val")
    davis_images, davis_y, davis_names = load_split(cfg, "davis", "val", every=4)
    names = [c.name for c in cfg.classes]
    camvid_images, camvid_y = load_camvid_as_objects(cfg, names)
    results = []
    for kind in args.types:
        backbone = pretrained_backbone(kind)
        train_x, ms = features(backbone, train_images, mask_size)
        val_x, _ = features(backbone, val_images, mask_size)
        davis_x, _ = features(backbone, davis_images, mask_size)
        camvid_x, _ = features(backbone, camvid_images, mask_size)
        val_pred, davis_pred, camvid_pred = probe(train_x, train_y, [val_x, davis_x, camvid_x], len(names),
                                                  args.iters)
        m, ious = miou(val_pred, val_y, len(names))
        _, camvid_ious = miou(camvid_pred, camvid_y, len(names))
        row = {"type": kind, "channels": train_x.shape[1], "backbone_ms_per_image": round(ms, 1),
               "davis_val_j": round(100 * davis_j(davis_pred, davis_y, davis_names), 1),
               "camvid_person_iou": round(100 * camvid_ious[names.index("person")], 1),
               "camvid_vehicle_iou": round(100 * camvid_ious[names.index("vehicle")], 1),
               "coco128_val_miou": round(100 * m, 1),
               "val_iou": {n: None if v is None else round(100 * v, 1) for n, v in zip(names, ious)}}
        results.append(row)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
