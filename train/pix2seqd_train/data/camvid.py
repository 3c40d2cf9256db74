"""CamVid, 11-class SegNet split (``../shared/data/camvid/{train,val,test}/{images,labels}``).

Labels are uint8 class indices 0..10 with 11 = void; class id = label + 1, void -> 0. CamVid has
no instance annotations, so:

* things (car, pedestrian, bicyclist): one instance per 8-connected component of the class
  (``scipy.ndimage.label``), so touching objects of one class merge and an object split by an
  occluder (a pole) becomes several instances;
* stuff (the other 8 classes): one segment per class present, however fragmented; every segment
  gets an id like the official Cityscapes loader does (spec §1.4).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from .common import ClassInfo, RawExample, data_root, read_label_png, read_rgb, segment_ids_from_classes

CLASSES = [
    ClassInfo("sky", False, (128, 128, 128)),
    ClassInfo("building", False, (128, 0, 0)),
    ClassInfo("pole", False, (192, 192, 128)),
    ClassInfo("road", False, (128, 64, 128)),
    ClassInfo("pavement", False, (60, 40, 222)),
    ClassInfo("tree", False, (128, 128, 0)),
    ClassInfo("sign-symbol", False, (192, 128, 128)),
    ClassInfo("fence", False, (64, 64, 128)),
    ClassInfo("car", True, (64, 0, 128)),
    ClassInfo("pedestrian", True, (64, 64, 0)),
    ClassInfo("bicyclist", True, (0, 128, 192)),
]
VOID_LABEL = 11
SPLITS = ("train", "val", "test")
EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def labels_to_panoptic(labels: np.ndarray, path: Path | str = "") -> tuple[np.ndarray, np.ndarray]:
    """CamVid label indices -> (class ids, segment ids): stuff one id per class, things per component."""
    bad = (labels < 0) | (labels > VOID_LABEL)
    if bad.any():
        raise ValueError(f"{path}: label values {np.unique(labels[bad]).tolist()} outside 0..{VOID_LABEL}")
    cls = np.where(labels == VOID_LABEL, 0, labels + 1).astype(np.int64)
    thing_lut = np.array([False] + [c.isthing for c in CLASSES])
    inst = segment_ids_from_classes(np.where(thing_lut[cls], 0, cls))
    next_id = int(inst.max()) + 1
    for class_id in np.flatnonzero(thing_lut):
        components, count = ndimage.label(cls == class_id, structure=EIGHT_CONNECTED)
        inst = np.where(components > 0, components + next_id - 1, inst)
        next_id += count
    return cls, inst


class CamVid:
    classes = CLASSES
    clip_length = 1

    def __init__(self, split: str, root: Path | None = None) -> None:
        if split not in SPLITS:
            raise ValueError(f"CamVid split must be one of {SPLITS}, got {split!r}")
        self.root = (root or data_root() / "camvid") / split
        image_dir = self.root / "images"
        if not image_dir.is_dir():
            raise FileNotFoundError(f"CamVid images not found at {image_dir} (see ../shared/data/README.md)")
        self.names = sorted(p.stem for p in image_dir.glob("*.jpg"))
        if not self.names:
            raise FileNotFoundError(f"no .jpg images in {image_dir}")

    def __len__(self) -> int:
        return len(self.names)

    def load(self, index: int) -> list[RawExample]:
        name = self.names[index]
        image = read_rgb(self.root / "images" / f"{name}.jpg")
        label_path = self.root / "labels" / f"{name}.png"
        labels = read_label_png(label_path)
        if labels.shape != image.shape[:2]:
            raise ValueError(f"{label_path}: size {labels.shape} differs from its image {image.shape[:2]}")
        cls, inst = labels_to_panoptic(labels, label_path)
        return [RawExample(image, cls, inst, name)]
