"""Synthetic scenes with exact labels: textured stuff regions and thing shapes on top.

Deterministic by (seed, index), any size, any class list: stuff classes fill the background as
vertical bands (at most 3 per image; void background when the list has no stuff), thing classes are
drawn as shapes (ellipse, rectangle or triangle, chosen by class id), later shapes on top. Each
class has its own colour and texture frequency so the task is learnable from the image. Used by
the tests and the smoke runs; it needs no files.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from .common import ClassInfo, RawExample


class Synthetic:
    clip_length = 1

    def __init__(self, classes: Sequence[ClassInfo], size: tuple[int, int] = (64, 64), length: int = 64,
                 seed: int = 0, max_things: int = 4) -> None:
        if not classes:
            raise ValueError("synthetic dataset needs at least one class")
        self.classes = list(classes)
        self.size, self.length, self.seed, self.max_things = size, length, seed, max_things
        self.stuff_ids = [k + 1 for k, c in enumerate(self.classes) if not c.isthing]
        self.thing_ids = [k + 1 for k, c in enumerate(self.classes) if c.isthing]

    def __len__(self) -> int:
        return self.length

    def _texture(self, class_id: int, rng: np.random.Generator) -> np.ndarray:
        """Class colour modulated by stripes whose frequency depends on the class, plus noise."""
        h, w = self.size
        color = np.asarray(self.classes[class_id - 1].color, np.float32)
        freq = 0.15 + 0.1 * (class_id % 5)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        stripes = 0.5 + 0.5 * np.sin(freq * (xx + yy * (class_id % 3 - 1)) + rng.uniform(0, 6.28))
        tex = color[None, None] * (0.75 + 0.25 * stripes[..., None]) + rng.normal(0, 6, (h, w, 3))
        return np.clip(tex, 0, 255)

    def load(self, index: int) -> list[RawExample]:
        if not 0 <= index < self.length:
            raise IndexError(f"synthetic index {index} outside 0..{self.length - 1}")
        rng = np.random.default_rng([self.seed, index])
        h, w = self.size
        image = np.clip(rng.normal(110, 20, (h, w, 3)), 0, 255)
        cls, inst = np.zeros((h, w), np.int64), np.zeros((h, w), np.int64)
        next_id = 1
        if self.stuff_ids:
            count = int(rng.integers(1, min(3, len(self.stuff_ids)) + 1))
            bands = rng.choice(self.stuff_ids, size=count, replace=False)
            edges = np.sort(rng.integers(1, w, size=count - 1)).tolist()
            for class_id, x0, x1 in zip(bands, [0] + edges, edges + [w]):
                image[:, x0:x1] = self._texture(int(class_id), rng)[:, x0:x1]
                cls[:, x0:x1], inst[:, x0:x1] = class_id, next_id
                next_id += 1
        for _ in range(int(rng.integers(1, self.max_things + 1)) if self.thing_ids else 0):
            class_id = int(rng.choice(self.thing_ids))
            mask = self._shape_mask(class_id, rng)
            if not mask.any():
                continue
            image[mask] = self._texture(class_id, rng)[mask]
            cls[mask], inst[mask] = class_id, next_id
            next_id += 1
        return [RawExample(image.astype(np.uint8), cls, inst, f"synthetic-{self.seed}-{index}")]

    def _shape_mask(self, class_id: int, rng: np.random.Generator) -> np.ndarray:
        h, w = self.size
        sh, sw = rng.uniform(0.2, 0.5) * h, rng.uniform(0.2, 0.5) * w
        y0, x0 = rng.uniform(0, h - sh), rng.uniform(0, w - sw)
        box = [x0, y0, x0 + sw, y0 + sh]
        canvas = Image.new("L", (w, h), 0)
        draw = ImageDraw.Draw(canvas)
        kind = class_id % 3
        if kind == 0:
            draw.ellipse(box, fill=1)
        elif kind == 1:
            draw.rectangle(box, fill=1)
        else:
            draw.polygon([(x0 + sw / 2, y0), (x0, y0 + sh), (x0 + sw, y0 + sh)], fill=1)
        return np.asarray(canvas, dtype=bool)
