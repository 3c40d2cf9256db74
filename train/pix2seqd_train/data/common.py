"""Shared data types and geometry for every dataset.

A *source* dataset (CamVid, coco128, ...) loads a :class:`RawExample` at its original resolution:
uint8 RGB image plus two int64 label maps, ``cls`` (class id = dataset label + 1, 0 = void) and
``inst`` (segment id, 0 = void; every non-void segment, stuff included, has an id >= 1; spec §1.4).

:class:`~.registry.PanopticDataset` turns raw examples into training/eval *samples* at the model's sizes:

* ``image``: float32 ``[3, H, W]`` in [0, 1], letterboxed: resized to fit, padded bottom/right with
  0.3 like the official code (``data/transforms.py``);
* ``cls`` / ``inst``: int64 ``[H_m, W_m]`` at mask resolution, nearest-neighbour resized from the
  image-resolution canvas, padding = void;
* ``name`` (str), ``orig_size`` and ``content_size`` (int64 ``[2]``, H and W): the original image
  size and the unpadded part of the canvas, to map predictions back for evaluation;
* ``ignore``: bool ``[H_m, W_m]``, True where a teacher marked the label unknown (no loss there;
  all False for datasets without a teacher).

The registry (:mod:`.registry`) does this; this module holds the shared types and geometry.

Video sources yield a *clip*: a list of such dicts, one per frame, with identical geometry.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Protocol, Sequence

import numpy as np
import torch
from PIL import Image

from .. import SHARED_DATA_DIR

PAD_VALUE = 0.3  # image padding value of the official pipeline (data/transforms.py)
VOID = 0


def data_root() -> Path:
    """The shared datasets: ``../shared/data`` beside the repository root (override: PIX2SEQD_DATA)."""
    override = os.environ.get("PIX2SEQD_DATA")
    return Path(override) if override else SHARED_DATA_DIR


@dataclass(frozen=True)
class ClassInfo:
    """One non-void class; its class id is its index in the class list + 1."""

    name: str
    isthing: bool
    color: tuple[int, int, int] = (128, 128, 128)


def as_class_infos(classes: Iterable[Any]) -> list[ClassInfo]:
    """Accept ClassInfo objects, dicts or any object with name/isthing/color attributes."""
    out = []
    for c in classes:
        if isinstance(c, ClassInfo):
            out.append(c)
            continue
        get = c.get if isinstance(c, dict) else (lambda k, d=None, c=c: getattr(c, k, d))
        color = tuple(int(v) for v in (get("color", None) or (128, 128, 128)))
        out.append(ClassInfo(str(get("name")), bool(get("isthing")), color))  # type: ignore[arg-type]
    return out


@dataclass
class RawExample:
    """One frame at its original resolution."""

    image: np.ndarray  # uint8 [H, W, 3]
    cls: np.ndarray  # int64 [H, W]
    inst: np.ndarray  # int64 [H, W]
    name: str
    # bool [H, W]: pixels whose label is unknown (a teacher saw an unlabelled object there); they
    # carry no loss. None: every pixel is labelled.
    ignore: np.ndarray | None = None

    def __post_init__(self) -> None:
        h, w = self.image.shape[:2]
        if self.image.dtype != np.uint8 or self.image.ndim != 3 or self.image.shape[2] != 3:
            raise ValueError(f"{self.name}: image must be uint8 [H, W, 3], got {self.image.dtype} {self.image.shape}")
        if self.cls.shape != (h, w) or self.inst.shape != (h, w):
            raise ValueError(f"{self.name}: label shapes {self.cls.shape}/{self.inst.shape} != image {(h, w)}")
        if self.ignore is not None and (self.ignore.shape != (h, w) or self.ignore.dtype != bool):
            raise ValueError(f"{self.name}: ignore mask must be bool {(h, w)}, got {self.ignore.dtype} {self.ignore.shape}")


class SourceDataset(Protocol):
    """What a dataset reader provides. Video readers set ``clip_length`` > 1 and return clips."""

    classes: list[ClassInfo]
    clip_length: int

    def __len__(self) -> int: ...

    def load(self, index: int) -> list[RawExample]:
        """The frames of item ``index`` (one frame for image datasets)."""
        ...


def as_hw(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = (int(v) for v in size)
    return h, w


def read_rgb(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except (OSError, ValueError) as e:
        raise OSError(f"cannot read image {path}: {e}") from e


def read_label_png(path: Path) -> np.ndarray:
    """A single-channel label PNG as int64 [H, W]."""
    try:
        with Image.open(path) as im:
            arr = np.asarray(im)
    except (OSError, ValueError) as e:
        raise OSError(f"cannot read label {path}: {e}") from e
    if arr.ndim != 2:
        raise ValueError(f"{path}: expected a single-channel label PNG, got shape {arr.shape}")
    return arr.astype(np.int64)


# ------------------------------------------------------------------------------------------------
# Geometry: resize, crop, pad (the same parameters for every frame of a clip)


def nearest_resize(labels: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Nearest-neighbour resize sampling each output pixel's centre (labels keep their values)."""
    h, w = labels.shape[:2]
    rows = np.minimum(((np.arange(out_h) + 0.5) * (h / out_h)).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(out_w) + 0.5) * (w / out_w)).astype(np.int64), w - 1)
    return labels[rows[:, None], cols[None, :]]


def resize_image(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    if image.shape[:2] == (out_h, out_w):
        return image
    return np.asarray(Image.fromarray(image).resize((out_w, out_h), Image.BILINEAR))


def fit_scale(h: int, w: int, out_h: int, out_w: int) -> float:
    """Scale that fits an h x w image inside out_h x out_w keeping the aspect ratio (letterbox)."""
    return min(out_h / h, out_w / w)


@dataclass(frozen=True)
class Geometry:
    """Resize the source by ``scale``, crop at (top, left) to at most the canvas, pad bottom/right."""

    scale: float
    top: int = 0
    left: int = 0
    flip: bool = False  # horizontal flip of the source, before resizing (padding stays bottom/right)

    def resized_hw(self, h: int, w: int) -> tuple[int, int]:
        return max(1, round(h * self.scale)), max(1, round(w * self.scale))


@dataclass
class Canvas:
    """A frame placed on the image-size canvas: float image, labels at image resolution, valid mask."""

    image: np.ndarray  # float32 [H, W, 3] in [0, 1]; padding = PAD_VALUE
    cls: np.ndarray  # int64 [H, W]
    inst: np.ndarray  # int64 [H, W]
    valid: np.ndarray  # bool [H, W], False on padding
    name: str
    orig_size: tuple[int, int]
    ignore: np.ndarray | None = None  # bool [H, W], True where the label is unknown (no loss)

    def __post_init__(self) -> None:
        if self.ignore is None:
            self.ignore = np.zeros(self.cls.shape, dtype=bool)

    @property
    def content_size(self) -> tuple[int, int]:
        rows, cols = np.nonzero(self.valid.any(axis=1))[0], np.nonzero(self.valid.any(axis=0))[0]
        return (int(rows.max()) + 1 if rows.size else 0, int(cols.max()) + 1 if cols.size else 0)


def place_on_canvas(ex: RawExample, geom: Geometry, canvas_hw: tuple[int, int]) -> Canvas:
    out_h, out_w = canvas_hw
    image, cls, inst = ex.image, ex.cls, ex.inst
    ignore = ex.ignore if ex.ignore is not None else np.zeros(cls.shape, dtype=bool)
    if geom.flip:
        image, cls, inst, ignore = image[:, ::-1], cls[:, ::-1], inst[:, ::-1], ignore[:, ::-1]
    rh, rw = geom.resized_hw(*image.shape[:2])
    image = resize_image(np.ascontiguousarray(image), rh, rw)
    cls, inst = nearest_resize(cls, rh, rw), nearest_resize(inst, rh, rw)
    ignore = nearest_resize(np.ascontiguousarray(ignore), rh, rw)
    # Crop the part that falls on the canvas, then pad the rest.
    bottom, right = min(rh, geom.top + out_h), min(rw, geom.left + out_w)
    ch, cw = bottom - geom.top, right - geom.left
    canvas = Canvas(
        image=np.full((out_h, out_w, 3), PAD_VALUE, dtype=np.float32),
        cls=np.zeros((out_h, out_w), dtype=np.int64),
        inst=np.zeros((out_h, out_w), dtype=np.int64),
        valid=np.zeros((out_h, out_w), dtype=bool),
        name=ex.name,
        orig_size=(ex.image.shape[0], ex.image.shape[1]),
    )
    window = (slice(geom.top, bottom), slice(geom.left, right))
    canvas.image[:ch, :cw] = image[window].astype(np.float32) / 255.0
    canvas.cls[:ch, :cw] = cls[window]
    canvas.inst[:ch, :cw] = inst[window]
    canvas.valid[:ch, :cw] = True
    canvas.ignore[:ch, :cw] = ignore[window]
    return canvas


def unletterbox(labels: np.ndarray, image_hw: tuple[int, int], content_hw: Sequence[int],
                orig_hw: Sequence[int]) -> np.ndarray:
    """Map a mask-resolution prediction back to the original image (spec §1.2, evaluation):
    nearest upsample to the image size, crop the padding off, nearest resize to the original size."""
    full = nearest_resize(labels, *image_hw)
    cropped = full[: int(content_hw[0]), : int(content_hw[1])]
    return nearest_resize(cropped, int(orig_hw[0]), int(orig_hw[1]))


def letterbox_geometry(h: int, w: int, canvas_hw: tuple[int, int]) -> Geometry:
    """Evaluation geometry: fit inside the canvas, no crop, no flip."""
    return Geometry(scale=fit_scale(h, w, *canvas_hw))


# ------------------------------------------------------------------------------------------------
# Segment bookkeeping


def segment_ids_from_classes(cls: np.ndarray, start: int = 1) -> np.ndarray:
    """One segment id per class present (used for stuff: one segment per stuff class, spec §1.4)."""
    inst = np.zeros_like(cls)
    for k, c in enumerate(c for c in np.unique(cls) if c != VOID):
        inst[cls == c] = start + k
    return inst


def keep_largest_segments(cls: np.ndarray, inst: np.ndarray, max_segments: int) -> tuple[np.ndarray, np.ndarray]:
    """Set all but the ``max_segments`` largest segments to void, so ids fit the instance bits.

    Ties are broken by the smaller id. Pixels with an id but void class (or vice versa) become void.
    """
    inst = np.where(cls == VOID, 0, inst)
    cls = np.where(inst == 0, VOID, cls)
    ids, counts = np.unique(inst[inst > 0], return_counts=True)
    if ids.size <= max_segments:
        return cls, inst
    order = np.lexsort((ids, -counts))  # largest first, then smallest id
    dropped = ids[order[max_segments:]]
    drop = np.isin(inst, dropped)
    return np.where(drop, VOID, cls), np.where(drop, 0, inst)


def compact_ids(inst: np.ndarray) -> np.ndarray:
    """Renumber the ids present to 1..n in increasing order of the old id (0 stays 0)."""
    ids = np.unique(inst)
    lookup = np.searchsorted(ids, inst)
    new = np.arange(ids.size) + (0 if ids.size and ids[0] == 0 else 1)
    return new[lookup]


def canvas_to_sample(canvas: Canvas, mask_hw: tuple[int, int]) -> dict[str, Any]:
    h, w = mask_hw
    return {
        "image": torch.from_numpy(np.ascontiguousarray(canvas.image.transpose(2, 0, 1))),
        "cls": torch.from_numpy(np.ascontiguousarray(nearest_resize(canvas.cls, h, w))),
        "inst": torch.from_numpy(np.ascontiguousarray(nearest_resize(canvas.inst, h, w))),
        "name": canvas.name,
        "orig_size": torch.tensor(canvas.orig_size, dtype=torch.int64),
        "content_size": torch.tensor(canvas.content_size, dtype=torch.int64),
        "ignore": torch.from_numpy(np.ascontiguousarray(nearest_resize(canvas.ignore, h, w))),
    }


def stack_prev_masks(items: Sequence[Any], prev_masks: int) -> torch.Tensor:
    """Video condition from clip samples: the labels of each clip's frames before its last one as
    ``[B, k, H_m, W_m, 2]`` (oldest first, [..., 0] class, [..., 1] id), zero maps where a clip has
    fewer than k earlier frames (a single image has none)."""
    out = []
    for item in items:
        clip = item if isinstance(item, list) else [item]
        empty = torch.zeros(clip[-1]["cls"].shape + (2,), dtype=torch.int64)
        frames = [torch.stack([f["cls"], f["inst"]], -1) for f in clip[:-1]][-prev_masks:] if prev_masks else []
        out.append(torch.stack([empty] * (prev_masks - len(frames)) + frames))
    return torch.stack(out)


def remap_classes(source: Sequence[ClassInfo], target: Sequence[ClassInfo], dataset: str) -> np.ndarray:
    """Lookup table from a dataset's class ids to the model's class ids, matching classes by name.

    Classes the model does not know become void. Fails when the two share no class at all, which
    almost always means the wrong model config was paired with the dataset.
    """
    target_ids = {c.name: k + 1 for k, c in enumerate(target)}
    lut = np.zeros(len(source) + 1, dtype=np.int64)
    for k, c in enumerate(source):
        lut[k + 1] = target_ids.get(c.name, VOID)
    if source and not lut[1:].any():
        raise ValueError(
            f"dataset {dataset!r}: none of its classes {[c.name for c in source][:8]}... "
            f"appear in the model config's classes {[c.name for c in target][:8]}..."
        )
    return lut
