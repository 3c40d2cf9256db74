"""DAVIS 2016 (``../shared/data/davis2016/SEQ/{images,masks}/NNNNN.{jpg,png}``), one object per video.

The foreground is class "object" (class id 1) with instance id 1; the background is void (0, 0),
like the official DAVIS setting whose semantic channel is all zeros (spec §1.4).

Splits (sequences sorted by name): the last 4 (motocross-jump, paragliding-launch, scooter-black,
soapbox) are ``val``, the first 12 ``train``; ``all`` has the 16.

Items are clips of ``clip_length`` consecutive frames ending at every frame that has
``clip_length - 1`` predecessors: the k-previous-frames sampler for video training (k = clip
length - 1; the last frame is the target). ``clip_length = 1`` gives single frames.

``teacher="ssd_boxes"`` (training only): the people, vehicles and animals a COCO detector finds
outside the annotated object become ignore regions (:mod:`..teachers`), cached in ``teacher_cache``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .common import ClassInfo, RawExample, data_root, read_label_png, read_rgb
from .groups import GROUP_CLASSES, davis_group, group_id

CLASSES = [ClassInfo("object", True, (220, 20, 60))]
VAL_COUNT = 4
SPLITS = ("train", "val", "all")


class Davis:
    classes = CLASSES

    def __init__(self, split: str, clip_length: int = 1, root: Path | None = None, groups: str | None = None,
                 teacher: str | None = None, teacher_cache: str | Path | None = None) -> None:
        """``groups="objects"``: each sequence's object gets its group of :mod:`.groups`
        (person, vehicle, animal, ...) instead of the one class "object"."""
        if teacher not in (None, "ssd_boxes"):
            raise ValueError(f"DAVIS teacher must be 'ssd_boxes' or absent, got {teacher!r}")
        if teacher and teacher_cache is None:
            raise ValueError("DAVIS teacher 'ssd_boxes' needs teacher_cache (the training command sets it)")
        if groups not in (None, "objects"):
            raise ValueError(f"DAVIS groups must be 'objects' or absent, got {groups!r}")
        self.groups = groups
        if groups:
            self.classes = GROUP_CLASSES
        if split not in SPLITS:
            raise ValueError(f"DAVIS split must be one of {SPLITS}, got {split!r}")
        if clip_length < 1:
            raise ValueError(f"clip_length must be >= 1, got {clip_length}")
        self.root = root or data_root() / "davis2016"
        if not self.root.is_dir():
            raise FileNotFoundError(f"DAVIS not found at {self.root} (see ../shared/data/README.md)")
        names = sorted(p.name for p in self.root.iterdir() if (p / "images").is_dir())
        self.sequences = {"train": names[:-VAL_COUNT], "val": names[-VAL_COUNT:], "all": names}[split]
        self.clip_length = clip_length
        if groups:
            self.class_of = {seq: group_id(davis_group(seq)) for seq in self.sequences}
        self.frames = {seq: sorted(p.stem for p in (self.root / seq / "images").glob("*.jpg")) for seq in self.sequences}
        self.items = [(seq, t) for seq in self.sequences for t in range(clip_length - 1, len(self.frames[seq]))]
        self.teacher_boxes = None
        if teacher:
            from ..teachers import load_or_compute

            self.teacher_boxes = load_or_compute(Path(teacher_cache), self.root)

    def __len__(self) -> int:
        return len(self.items)

    def load(self, index: int) -> list[RawExample]:
        seq, last = self.items[index]
        return [self.load_frame(seq, t) for t in range(last - self.clip_length + 1, last + 1)]

    def load_frame(self, seq: str, t: int) -> RawExample:
        frame = self.frames[seq][t]
        image = read_rgb(self.root / seq / "images" / f"{frame}.jpg")
        mask_path = self.root / seq / "masks" / f"{frame}.png"
        mask = read_label_png(mask_path) > 0
        if mask.shape != image.shape[:2]:
            raise ValueError(f"{mask_path}: size {mask.shape} differs from its image {image.shape[:2]}")
        ids = mask.astype(np.int64)
        cls = ids * self.class_of[seq] if self.groups else ids.copy()
        ignore = None
        if self.teacher_boxes is not None:
            from ..teachers import ignore_mask

            ignore = ignore_mask(self.teacher_boxes.get(f"{seq}/{frame}", []), mask)
        return RawExample(image, cls, ids, f"{seq}/{frame}", ignore)
