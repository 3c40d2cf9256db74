"""Training augmentation, applied identically to the image and its labels (and to every frame of a clip).

Order (mirrors the official pipeline, ``configs/transform_configs.py``): horizontal flip and scale
jitter + random crop of the source, letterbox padding to the canvas (image size), copy-paste of
thing instances from another example, colour jitter on the unpadded pixels. The caller then resizes
the labels to the mask size with nearest neighbour.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Callable, Mapping

import numpy as np

from .data.common import PAD_VALUE, VOID, Canvas, Geometry, RawExample, fit_scale, place_on_canvas


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths. The defaults are the spec's stage-1 COCO recipe except copy-paste."""

    scale_min: float = 1.0  # scale jitter relative to the letterbox fit (spec §5.1: 1.0 .. 3.0)
    scale_max: float = 1.0
    flip_prob: float = 0.5
    color_jitter: float = 0.0  # SimCLR strength s: brightness/contrast/saturation 0.8 s, hue 0.2 s
    color_jitter_prob: float = 0.8
    grayscale_prob: float = 0.2  # only used when color_jitter > 0, as in SimCLR
    copy_paste_prob: float = 0.0  # probability of pasting instances from another example
    copy_paste_max_instances: int = 8

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "AugmentConfig":
        if d is None:
            return cls()
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown augmentation keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)


# ------------------------------------------------------------------------------------------------
# Geometry


def random_geometry(h: int, w: int, canvas_hw: tuple[int, int], cfg: AugmentConfig, rng: np.random.Generator) -> Geometry:
    """Scale jitter relative to the letterbox fit, then a random crop window of the canvas size."""
    scale = fit_scale(h, w, *canvas_hw) * rng.uniform(cfg.scale_min, cfg.scale_max)
    geom = Geometry(scale=scale)
    rh, rw = geom.resized_hw(h, w)
    top = int(rng.integers(0, max(rh - canvas_hw[0], 0) + 1))
    left = int(rng.integers(0, max(rw - canvas_hw[1], 0) + 1))
    return Geometry(scale=scale, top=top, left=left, flip=bool(rng.random() < cfg.flip_prob))


# ------------------------------------------------------------------------------------------------
# Colour jitter (SimCLR v2 style)


def rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    maxc, minc = rgb.max(-1), rgb.min(-1)
    delta = maxc - minc
    s = np.where(maxc > 0, delta / np.maximum(maxc, 1e-12), 0.0)
    safe = np.maximum(delta, 1e-12)
    h = np.where(maxc == r, (g - b) / safe, np.where(maxc == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe))
    h = np.where(delta > 0, (h / 6.0) % 1.0, 0.0)
    return np.stack([h, s, maxc], -1)


def hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    i = np.floor(h * 6.0)
    f = h * 6.0 - i
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    i = i.astype(np.int64) % 6
    choices = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    out = np.zeros(hsv.shape, dtype=hsv.dtype)
    for k, (r, g, b) in enumerate(choices):
        sel = i == k
        out[sel] = np.stack([r[sel], g[sel], b[sel]], -1)
    return out


def _gray(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=rgb.dtype)


@dataclass(frozen=True)
class ColorJitterParams:
    """One draw of the jitter, shared by all frames of a clip."""

    order: tuple[int, ...]  # permutation of (brightness, contrast, saturation, hue)
    brightness: float
    contrast: float
    saturation: float
    hue: float
    jitter: bool
    grayscale: bool


def draw_color_jitter(strength: float, cfg: AugmentConfig, rng: np.random.Generator) -> ColorJitterParams:
    b, c, s, h = 0.8 * strength, 0.8 * strength, 0.8 * strength, 0.2 * strength
    return ColorJitterParams(
        order=tuple(int(k) for k in rng.permutation(4)),
        brightness=rng.uniform(max(0.0, 1 - b), 1 + b),
        contrast=rng.uniform(max(0.0, 1 - c), 1 + c),
        saturation=rng.uniform(max(0.0, 1 - s), 1 + s),
        hue=rng.uniform(-h, h),
        jitter=bool(rng.random() < cfg.color_jitter_prob),
        grayscale=bool(rng.random() < cfg.grayscale_prob),
    )


def apply_color_jitter(pixels: np.ndarray, p: ColorJitterParams) -> np.ndarray:
    """Jitter an [N, 3] float array of (unpadded) pixels in [0, 1]."""
    x = pixels
    if p.jitter:
        for op in p.order:
            if op == 0:
                x = x * p.brightness
            elif op == 1:
                mean = _gray(x).mean() if x.size else 0.0
                x = (x - mean) * p.contrast + mean
            elif op == 2:
                g = _gray(x)[..., None]
                x = g + (x - g) * p.saturation
            else:
                hsv = rgb_to_hsv(np.clip(x, 0, 1))
                hsv[..., 0] = (hsv[..., 0] + p.hue) % 1.0
                x = hsv_to_rgb(hsv)
            x = np.clip(x, 0.0, 1.0)
    if p.grayscale:
        x = np.repeat(_gray(x)[..., None], 3, axis=-1)
    return x.astype(np.float32)


def color_jitter_canvases(canvases: list[Canvas], params: ColorJitterParams) -> None:
    for c in canvases:
        c.image[c.valid] = apply_color_jitter(c.image[c.valid], params)
        c.image[~c.valid] = PAD_VALUE


# ------------------------------------------------------------------------------------------------
# Copy-paste


def copy_paste(
    targets: list[Canvas],
    source: Canvas,
    isthing: np.ndarray,
    rng: np.random.Generator,
    max_instances: int = 8,
) -> list[int]:
    """Paste a random subset of the source's thing instances onto every target canvas (in place).

    Pasted pixels overwrite image, class and instance id; pasted instances get fresh ids above every
    id of the target clip, so they never merge with an existing segment. Target instances that end
    up fully covered simply no longer occur in the label map (they are removed). Pixels are pasted
    only where both canvases hold real content, never into padding. Returns the new ids.

    ``isthing`` is a bool lookup indexed by class id (index 0 = void, False).
    """
    is_thing_px = isthing[source.cls] & (source.inst > 0) & source.valid
    candidates = np.unique(source.inst[is_thing_px])
    if candidates.size == 0:
        return []
    count = int(rng.integers(1, min(candidates.size, max_instances) + 1))
    chosen = np.sort(rng.choice(candidates, size=count, replace=False))
    first_new = max(int(t.inst.max()) for t in targets) + 1
    new_ids = np.arange(first_new, first_new + count)
    pasted_ids = np.zeros(int(source.inst.max()) + 1, dtype=np.int64)
    pasted_ids[chosen] = new_ids
    paste = np.isin(source.inst, chosen) & is_thing_px
    for t in targets:
        region = paste & t.valid
        t.image[region] = source.image[region]
        t.cls[region] = source.cls[region]
        t.inst[region] = pasted_ids[source.inst[region]]
        t.ignore[region] = False  # a pasted object is labelled wherever it lands
    return new_ids.tolist()


# ------------------------------------------------------------------------------------------------
# The whole pipeline for one example


def augment_frames(
    frames: list[RawExample],
    canvas_hw: tuple[int, int],
    cfg: AugmentConfig,
    rng: np.random.Generator,
    isthing: np.ndarray,
    paste_source: Callable[[np.random.Generator], RawExample] | None = None,
) -> list[Canvas]:
    """Augment a clip (one or more frames) with one shared draw of every random parameter."""
    h, w = frames[0].image.shape[:2]
    geom = random_geometry(h, w, canvas_hw, cfg, rng)
    canvases = [place_on_canvas(f, geom, canvas_hw) for f in frames]
    if paste_source is not None and cfg.copy_paste_prob > 0 and rng.random() < cfg.copy_paste_prob:
        src = paste_source(rng)
        src_canvas = place_on_canvas(src, random_geometry(*src.image.shape[:2], canvas_hw, cfg, rng), canvas_hw)
        copy_paste(canvases, src_canvas, isthing, rng, cfg.copy_paste_max_instances)
    if cfg.color_jitter > 0:
        color_jitter_canvases(canvases, draw_color_jitter(cfg.color_jitter, cfg, rng))
    return canvases


def assert_labels_consistent(cls: np.ndarray, inst: np.ndarray) -> None:
    """Every segment id has exactly one class, and ids are non-zero exactly on non-void pixels."""
    if np.any((cls == VOID) != (inst == 0)):
        raise AssertionError("void class and void id disagree")
    pairs = np.unique(np.stack([inst[inst > 0], cls[inst > 0]]), axis=1)
    if pairs.shape[1] != np.unique(pairs[0]).size:
        raise AssertionError("an instance id carries more than one class")
