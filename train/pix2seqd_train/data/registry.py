"""Dataset registry and the dataset wrappers that produce model-ready samples.

``build_dataset(name, split, cfg, augment=...)`` returns a :class:`PanopticDataset`: a source
reader (see the modules of this package) whose classes are matched by name to the model config's
classes, letterboxed (or augmented) to the config's image size, labels at the mask size, segments
capped to the instance budget, ids permuted for training (spec §1.4).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np
import torch

from ..panoptic import permute_instance_ids
from .camvid import CamVid
from .coco128 import Coco128
from .coco_panoptic import CocoPanoptic
from .common import (
    VOID,
    ClassInfo,
    RawExample,
    SourceDataset,
    as_class_infos,
    as_hw,
    canvas_to_sample,
    compact_ids,
    data_root,
    keep_largest_segments,
    letterbox_geometry,
    place_on_canvas,
    remap_classes,
)
from .davis import Davis
from .groups import GROUP_CLASSES
from .synthetic import Synthetic

if TYPE_CHECKING:  # augment imports data.common; importing it here eagerly would be circular
    from ..augment import AugmentConfig


def model_classes(cfg: Any) -> list[ClassInfo]:
    """The config's non-void classes (class id k+1 for entry k); the config lists void first."""
    classes = as_class_infos(cfg.classes)
    if len(classes) == cfg.num_classes:
        return classes[1:]
    if len(classes) == cfg.num_classes - 1:
        return classes
    raise ValueError(f"model config lists {len(classes)} classes for num_classes = {cfg.num_classes}")


def _resolve(path: str | Path) -> Path:
    """Relative dataset paths are relative to the shared data folder."""
    p = Path(path)
    return p if p.is_absolute() else data_root() / p


def _coco_panoptic(split: str, cfg: Any, root: str = "coco", json: str = "annotations/panoptic_{split}2017.json",
                   png_dir: str = "annotations/panoptic_{split}2017", image_dir: str = "{split}2017",
                   categories: str | None = None) -> CocoPanoptic:
    base = _resolve(root)
    fmt = lambda s: base / s.format(split=split)  # noqa: E731
    return CocoPanoptic(fmt(json), fmt(png_dir), fmt(image_dir), fmt(categories) if categories else None)


def _coco_panoptic_sample(split: str, cfg: Any) -> CocoPanoptic:
    if split not in ("val", "all"):
        raise ValueError(f"coco_panoptic_sample has only the 'val' (= 'all') split, got {split!r}")
    root = data_root() / "coco-panoptic-sample"
    return CocoPanoptic(root / "panoptic.json", root / "panoptic", root / "images", root / "categories.json")


def _synthetic(split: str, cfg: Any, size: Sequence[int] | None = None, length: int | None = None,
               seed: int | None = None, max_things: int = 4) -> Synthetic:
    offsets = {"train": 0, "val": 1_000_003, "test": 2_000_003}  # disjoint seeds per split
    if split not in offsets:
        raise ValueError(f"synthetic split must be one of {sorted(offsets)}, got {split!r}")
    return Synthetic(model_classes(cfg), as_hw(size or cfg.image_size), length or (256 if split == "train" else 16),
                     (seed or 0) + offsets[split], max_things)


SOURCES: dict[str, Callable[..., SourceDataset]] = {
    "camvid": lambda split, cfg, **kw: CamVid(split, **kw),
    "coco128": lambda split, cfg, **kw: Coco128(split, **kw),
    "davis": lambda split, cfg, clip_length=None, **kw: Davis(
        split, clip_length if clip_length is not None else cfg.video_prev_masks + 1, **kw),
    "coco_panoptic": _coco_panoptic,
    "coco_panoptic_sample": _coco_panoptic_sample,
    "synthetic": _synthetic,
}


def dataset_classes(name: str, **options: Any) -> list[ClassInfo]:
    """The class list a dataset brings (to build a model config whose classes match it)."""
    static = {"camvid": CamVid.classes, "coco128": Coco128.classes, "davis": Davis.classes,
              "objects": GROUP_CLASSES}  # objects: the class set of coco128 / davis with groups="objects"
    if name in static:
        return list(static[name])
    if name in ("coco_panoptic", "coco_panoptic_sample"):
        return SOURCES[name]("val" if name.endswith("sample") else options.pop("split", "val"), None, **options).classes
    raise ValueError(f"dataset {name!r} has no class list of its own (synthetic uses the model's classes)")


class PanopticDataset(torch.utils.data.Dataset):
    """Model-ready samples from a source reader (see :mod:`.common` for the sample layout).

    Without augmentation a sample is deterministic (letterbox, no id permutation). With it, the
    random draws come from ``numpy.random.default_rng([seed, index])`` (or an rng passed to
    :meth:`get`), so a sample depends only on the seed and its index, not on worker scheduling.
    """

    def __init__(self, source: SourceDataset, cfg: Any, augment: AugmentConfig | None = None,
                 object_order: str | None = None, seed: int = 0, name: str = "") -> None:
        self.source, self.cfg, self.augment, self.seed = source, cfg, augment, seed
        self.name = name or type(source).__name__
        self.classes = model_classes(cfg)
        self.class_lut = remap_classes(source.classes, self.classes, self.name)
        self.isthing = np.array([False] + [c.isthing for c in self.classes])
        self.image_hw, self.mask_hw = as_hw(cfg.image_size), as_hw(cfg.mask_size)
        # Spec §1.4: random ids for images, one shared shuffle per clip for video.
        self.object_order = object_order or ("shuffle" if source.clip_length > 1 else "random")

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict[str, Any] | list[dict[str, Any]]:
        rng = np.random.default_rng([self.seed, index]) if self.augment is not None else None
        return self.get(index, rng)

    def raw(self, index: int) -> list[RawExample]:
        """The frames at their original resolution with the model's class ids (for evaluation)."""
        frames = []
        for f in self.source.load(index):
            if f.cls.max(initial=0) >= len(self.class_lut):
                raise ValueError(f"{self.name}/{f.name}: class id {f.cls.max()} beyond the dataset's classes")
            cls = self.class_lut[f.cls]
            frames.append(RawExample(f.image, cls, np.where(cls == VOID, 0, f.inst), f.name, f.ignore))
        return frames

    def get(self, index: int, rng: np.random.Generator | None,
            paste_source: Callable[[np.random.Generator], RawExample] | None = None) -> dict[str, Any] | list[dict[str, Any]]:
        """``paste_source`` (rng -> example) gives the copy-paste instances; default: this dataset."""
        frames = self.raw(index)
        if rng is None or self.augment is None:
            geom = letterbox_geometry(*frames[0].image.shape[:2], self.image_hw)
            canvases = [place_on_canvas(f, geom, self.image_hw) for f in frames]
        else:
            from ..augment import augment_frames

            paste = paste_source or (lambda r: self.raw(int(r.integers(len(self))))[-1])
            canvases = augment_frames(frames, self.image_hw, self.augment, rng, self.isthing, paste)
        samples = [canvas_to_sample(c, self.mask_hw) for c in canvases]
        self._finalise_ids(samples, rng)
        return samples[0] if self.source.clip_length == 1 else samples

    def _finalise_ids(self, samples: list[dict[str, Any]], rng: np.random.Generator | None) -> None:
        """Cap the segments to the id budget and renumber them, jointly over the clip."""
        cls = np.stack([s["cls"].numpy() for s in samples])
        inst = np.stack([s["inst"].numpy() for s in samples])
        cls, inst = keep_largest_segments(cls, inst, self.cfg.max_instances - 1)
        inst_t = torch.from_numpy(compact_ids(inst))
        if rng is not None:
            generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
            inst_t = permute_instance_ids(inst_t, self.cfg.max_instances, self.object_order, generator)
        for k, s in enumerate(samples):
            s["cls"], s["inst"] = torch.from_numpy(cls[k]), inst_t[k].clone()


class MixtureDataset(torch.utils.data.Dataset):
    """Training stream over several datasets: draw number -> (dataset by weight, random item).

    Stateless: draw ``d`` always gives the same sample for a given seed, so a run resumed at step
    ``s`` continues with exactly the draws it would have made (see ``train.DrawSampler``).
    """

    def __init__(self, datasets: Sequence[PanopticDataset], weights: Sequence[float] | None = None, seed: int = 0,
                 cross_paste: bool = False) -> None:
        """``cross_paste``: copy-paste takes its instances from any dataset of the mixture (drawn by
        weight), so objects land on other datasets' backgrounds; otherwise from the same dataset."""
        weights = list(weights) if weights is not None else [1.0] * len(datasets)
        if not datasets or len(weights) != len(datasets) or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"bad dataset weights {weights} for {len(datasets)} datasets")
        self.datasets, self.seed, self.cross_paste = list(datasets), seed, cross_paste
        self.probs = np.asarray(weights, dtype=np.float64) / sum(weights)

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)

    def __getitem__(self, draw: int) -> dict[str, Any] | list[dict[str, Any]]:
        rng = np.random.default_rng([self.seed, 7919, draw])
        ds = self.datasets[int(rng.choice(len(self.datasets), p=self.probs))]
        return ds.get(int(rng.integers(len(ds))), rng, self._paste_any if self.cross_paste else None)

    def _paste_any(self, rng: np.random.Generator) -> RawExample:
        ds = self.datasets[int(rng.choice(len(self.datasets), p=self.probs))]
        return ds.raw(int(rng.integers(len(ds))))[-1]


def build_dataset(name: str, split: str, cfg: Any, augment: AugmentConfig | Mapping[str, Any] | None = None,
                  seed: int = 0, object_order: str | None = None, **options: Any) -> PanopticDataset:
    """A model-ready dataset. ``options`` go to the source reader (e.g. ``clip_length`` for DAVIS,
    paths for ``coco_panoptic``, ``size``/``length`` for ``synthetic``)."""
    if name not in SOURCES:
        raise KeyError(f"unknown dataset {name!r}; known: {sorted(SOURCES)}")
    from ..augment import AugmentConfig

    source = SOURCES[name](split, cfg, **options)
    if augment is not None and not isinstance(augment, AugmentConfig):
        augment = AugmentConfig.from_dict(augment)
    return PanopticDataset(source, cfg, augment, object_order, seed, name=f"{name}/{split}")
