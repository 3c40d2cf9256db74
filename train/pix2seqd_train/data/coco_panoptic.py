"""Generic COCO panoptic format reader (the format users bring their own data in).

Layout: a panoptic JSON (``images``, ``annotations`` with ``segments_info``, ``categories``), a
folder of PNGs whose RGB colour encodes the segment id (id = R + 256 G + 256^2 B, 0 = void), and a
folder of images. Category ids are mapped to contiguous labels in increasing id order (label k ->
class id k + 1). Crowd segments (``iscrowd`` = 1) become void (class 0, id 0) in the training
targets: the model should not learn one segment for a crowd of objects, and the PQ metric ignores
predictions on crowd regions anyway (spec §1.6). Use :meth:`CocoPanoptic.annotation` to get the
untouched ids and segments (crowd included) for evaluation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..panoptic import rgb2id
from .common import ClassInfo, RawExample, read_rgb


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise OSError(f"cannot read COCO panoptic JSON {path}: {e}") from e


class CocoPanoptic:
    clip_length = 1

    def __init__(self, json_path: Path, png_dir: Path, image_dir: Path, categories_path: Path | None = None) -> None:
        self.json_path, self.png_dir, self.image_dir = Path(json_path), Path(png_dir), Path(image_dir)
        data = _read_json(self.json_path)
        categories = data.get("categories") or (_read_json(Path(categories_path)) if categories_path else None)
        if not categories:
            raise ValueError(f"{self.json_path}: no 'categories' (pass categories_path)")
        self.categories = sorted(categories, key=lambda c: int(c["id"]))
        self.classes = [ClassInfo(c["name"], bool(c["isthing"]), tuple(c.get("color", (128, 128, 128))))
                        for c in self.categories]
        self.class_of_category = {int(c["id"]): k + 1 for k, c in enumerate(self.categories)}
        file_of_image = {img["id"]: img["file_name"] for img in data.get("images", [])}
        self.annotations = sorted(data["annotations"], key=lambda a: a["file_name"])
        self.image_files = []
        for ann in self.annotations:
            if ann["image_id"] not in file_of_image:
                raise KeyError(f"{self.json_path}: annotation {ann['file_name']} has no entry in 'images'")
            self.image_files.append(file_of_image[ann["image_id"]])

    def __len__(self) -> int:
        return len(self.annotations)

    def annotation(self, index: int) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """The segment-id map and segments_info of one image, as stored."""
        ann = self.annotations[index]
        ids = rgb2id(read_rgb(self.png_dir / ann["file_name"]))
        return ids, ann["segments_info"]

    def load(self, index: int) -> list[RawExample]:
        ids, segments = self.annotation(index)
        png = self.png_dir / self.annotations[index]["file_name"]
        image = read_rgb(self.image_dir / self.image_files[index])
        if ids.shape != image.shape[:2]:
            raise ValueError(f"{png}: size {ids.shape} differs from its image {image.shape[:2]}")
        cls, inst = self.segments_to_maps(ids, segments, png)
        return [RawExample(image, cls, inst, Path(self.image_files[index]).stem)]

    def segments_to_maps(self, ids: np.ndarray, segments: list[dict[str, Any]], png: Path) -> tuple[np.ndarray, np.ndarray]:
        """Segment k of segments_info -> instance id k + 1 and its class; crowd and unlisted ids -> void."""
        present = np.unique(ids)
        cls, inst = np.zeros(ids.shape, np.int64), np.zeros(ids.shape, np.int64)
        listed = set()
        for k, seg in enumerate(segments):
            category = int(seg["category_id"])
            if category not in self.class_of_category:
                raise KeyError(f"{png}: segment {seg['id']} has unknown category {category}")
            listed.add(int(seg["id"]))
            if seg.get("iscrowd", 0):
                continue
            mask = ids == int(seg["id"])
            cls[mask] = self.class_of_category[category]
            inst[mask] = k + 1
        unlisted = [int(v) for v in present if v != 0 and int(v) not in listed]
        if unlisted:
            raise ValueError(f"{png}: segment ids {unlisted[:5]} are in the PNG but not in segments_info")
        return cls, inst
