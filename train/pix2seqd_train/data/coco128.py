"""coco128-seg: 128 COCO train2017 images with YOLO polygon labels (things only).

Each line of ``labels/NAME.txt`` is ``class_index x1 y1 x2 y2 ...`` with coordinates normalised to
[0, 1]; class_index is 0..79 in the usual 80-class COCO order. Every polygon becomes one thing
instance, rasterised with PIL ``ImageDraw.polygon``. Where polygons overlap, the larger polygon is
drawn first and smaller ones on top (on equal area, the later line wins), so small objects in front
of large ones stay visible; an instance hidden entirely disappears. Pixels outside every polygon
are void: the dataset has no stuff annotations.

Splits: the images sorted by name; the last 16 are ``val``, the first 112 ``train`` (``all``: 128).

Two images have no label file because they show no COCO object (``BACKGROUND_IMAGES``, checked by
eye): they are all void. Any other image without a label file is an error, so a lost label is
never read as "nothing here". Two label files have no image (``orphan_labels()``: 000000000656 and
000000000659); they belong to no split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .common import ClassInfo, RawExample, data_root, read_rgb
from .groups import GROUP_CLASSES, coco_group, group_id
from ..panoptic import default_color

COCO80 = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase",
    "scissors", "teddy bear", "hair drier", "toothbrush",
]
CLASSES = [ClassInfo(name, True, default_color(k + 1)) for k, name in enumerate(COCO80)]
VAL_COUNT = 16
SPLITS = ("train", "val", "all")
BACKGROUND_IMAGES = ("000000000250", "000000000508")


def parse_polygons(path: Path, width: int, height: int) -> list[tuple[int, np.ndarray]]:
    """(label, [N, 2] pixel coordinates) for each line of a YOLO segmentation label file."""
    polygons = []
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 7 or len(fields) % 2 == 0:
            raise ValueError(f"{path}:{line_no}: expected 'class x1 y1 x2 y2 x3 y3 ...', got {len(fields)} fields")
        label = int(fields[0])
        if not 0 <= label < len(COCO80):
            raise ValueError(f"{path}:{line_no}: class index {label} outside 0..{len(COCO80) - 1}")
        xy = np.asarray(fields[1:], dtype=np.float64).reshape(-1, 2) * (width, height)
        polygons.append((label, xy))
    return polygons


def polygon_area(xy: np.ndarray) -> float:
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def rasterise(polygons: list[tuple[int, np.ndarray]], width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw polygons largest first; instance k (1-based, file order) gets id k, class label + 1."""
    inst_img = Image.new("I", (width, height), 0)
    draw = ImageDraw.Draw(inst_img)
    order = sorted(range(len(polygons)), key=lambda k: (-polygon_area(polygons[k][1]), k))
    for k in order:
        draw.polygon([tuple(p) for p in polygons[k][1].tolist()], fill=k + 1)
    inst = np.asarray(inst_img, dtype=np.int64)
    class_of_id = np.array([0] + [label + 1 for label, _ in polygons], dtype=np.int64)
    return class_of_id[inst], inst


class Coco128:
    classes = CLASSES
    clip_length = 1

    def __init__(self, split: str, root: Path | None = None, groups: str | None = None) -> None:
        """``groups="objects"``: the six object groups of :mod:`.groups` instead of the 80 classes."""
        if groups not in (None, "objects"):
            raise ValueError(f"coco128 groups must be 'objects' or absent, got {groups!r}")
        self.class_lut = None
        if groups:
            self.classes = GROUP_CLASSES
            self.class_lut = np.array([0] + [group_id(coco_group(name)) for name in COCO80], dtype=np.int64)
        if split not in SPLITS:
            raise ValueError(f"coco128 split must be one of {SPLITS}, got {split!r}")
        self.root = root or data_root() / "coco128-seg"
        image_dir = self.root / "images"
        if not image_dir.is_dir():
            raise FileNotFoundError(f"coco128-seg images not found at {image_dir} (see ../shared/data/README.md)")
        names = sorted(p.stem for p in image_dir.glob("*.jpg"))
        self.names = {"train": names[:-VAL_COUNT], "val": names[-VAL_COUNT:], "all": names}[split]

    def __len__(self) -> int:
        return len(self.names)

    def orphan_labels(self) -> list[str]:
        """Label files without an image, sorted (they belong to no split)."""
        images = {p.stem for p in (self.root / "images").glob("*.jpg")}
        return sorted(p.stem for p in (self.root / "labels").glob("*.txt") if p.stem not in images)

    def load(self, index: int) -> list[RawExample]:
        name = self.names[index]
        image = read_rgb(self.root / "images" / f"{name}.jpg")
        height, width = image.shape[:2]
        label_path = self.root / "labels" / f"{name}.txt"
        if not label_path.exists() and name not in BACKGROUND_IMAGES:
            raise FileNotFoundError(f"coco128-seg image {name} has no label file {label_path} "
                                    f"(only {', '.join(BACKGROUND_IMAGES)} are known to show no object)")
        polygons = parse_polygons(label_path, width, height) if label_path.exists() else []
        cls, inst = rasterise(polygons, width, height)
        if self.class_lut is not None:
            cls = self.class_lut[cls]
        return [RawExample(image, cls, inst, name)]
