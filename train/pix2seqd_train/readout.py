"""Bilinear readout: the sampler's last logits and final x̂0 -> class and instance ids at any output size.

Thresholding the final x̂0 at mask resolution and resizing the ids by nearest neighbour draws
staircase masks. Instead every OUTPUT pixel reads values of its four corner cells, bilinearly
interpolated to the pixel: the class group the decoder's last-step logits, the instance group the
final x̂0's instance bits. The Rust engine (CPU twin and a WGSL kernel) implements the same
function; this definition is normative, to the last float32 operation, so both sides give
bit-identical ids:

Inputs: logits float32 ``[Hm, Wm, L]``, L = 2^class_bits + 2^instance_bits (class group first);
valid class ids are v < C = min(2^class_bits, num_classes) (logits of other ids are ignored);
x0 float32 ``[Hm, Wm, class_bits + instance_bits]``, the sampler's final x̂0 (analog bits, class
bits first, LSB first), of which only the instance bits ``x0[..., class_bits:]`` (k = 0 ..
instance_bits - 1, LSB first) are read; ``max_id = min(2^instance_bits, max_instances) - 1``; the
letterbox geometry canvas_hw (the model input, content region at its top left) and content_hw;
the output size out_hw (>= 1; it covers the content).

1. Cell ids.
   Class group: the void probability of the cell, float32 throughout,
   ``p0 = 1 / sum``, ``sum = 0.0; for v in 0..C-1: sum += exp(l[v] - l[0])`` (in that order, so
   the first term adds exactly 1.0; ``exp`` of the float32 difference, rounded once to float32).
   The id is 0 if C == 1 or ``p0 >= 0.5``, else ``1 + argmax_{v >= 1} l[v]`` (ties -> smaller v).
   Instance group: ``id = sum_k [x0_k > 0] * 2^k``, then ``min(id, max_id)`` (the sampler's
   thresholded instance ids, `bits.analog_bits_to_ids`; an exact 0 reads as bit 0).
2. Per axis one scale, float64 rounded once to float32:
   ``sy = f32((content_h * Hm) / (out_h * canvas_h))`` (Python ints, then true division).
3. Output row y (columns alike), float32 with every op rounded:
   ``fy = (f32(y) + 0.5) * sy - 0.5``, ``y0 = floor(fy)`` (may be -1), ``ty = fy - f32(y0)``,
   rows ``r0 = clip(y0, 0, Hm-1)``, ``r1 = clip(y0 + 1, 0, Hm-1)``; ``wy0 = 1 - ty``, ``wy1 = ty``;
   ``w00 = wy0*wx0, w01 = wy0*wx1, w10 = wy1*wx0, w11 = wy1*wx1`` (corner 01 = (r0, c1) ...).
4. Per group: if the four corner cells' ids (step 1) agree, that id. Otherwise, with
   ``mix(f) = ((w00*f00 + w01*f01) + w10*f10) + w11*f11`` in float32, in exactly that order:
   class group: ``p = mix(p0)``, ``s(v) = mix(l[v])``; the id is 0 if C == 1 or ``p >= 0.5``,
   else ``1 + argmax_{v >= 1} s(v)`` (ties -> smaller v);
   instance group: per bit ``m_k = mix(x0_k)``, ``id = sum_k [m_k > 0] * 2^k``, then
   ``min(id, max_id)``. The mixed bits may give an id that none of the four corners has (two bits
   flip at different places between the cells).
5. Output: class and instance maps ``[out_h, out_w]``.

Why the class group reads p0: "is anything here" is decided by the probability of void against
all classes together, and only then which class. An argmax over interpolated logits lets void win
between two cells that agree there is an object but not on its class (void the runner-up of
both), opening void gaps inside objects.

Why the instance group reads the bits: the instance distributions of briefly trained models are
flat, so an argmax over (interpolated) instance logits jumps between near-equal ids (CamVid PQ of
things 6 against 18 with the bits). The per-bit marginals are what the diffusion sampler denoises;
they are smooth between cells, and with identity geometry the readout equals the previous
threshold readout exactly.

The corner rule is exact for the instance group where all corners' bits agree in sign (a convex
combination keeps each sign; exact zeros aside) and, up to float rounding of the weights, for the
class group; it is part of the definition. With identity geometry (canvas = content = out = mask
size) fy = y exactly and the readout equals the cell ids.

``exp`` is the correctly rounded float32 exponential (computed here in float64 and rounded once);
libm ``expf`` implementations may differ from it by one ulp in rare cases (glibc: under 0.1% of
arguments), which can move p0 by an ulp: `readout_margin` says how far each pixel is from flipping.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from .config import ModelConfig

# Pixels whose corners disagree are interpolated in chunks, so a large output with many logits
# (COCO: 128 + 128 of them) never materialises one [pixels, logits] array per corner at once.
CHUNK_PIXELS = 1 << 15

F32_HALF = np.float32(0.5)
F32_ONE = np.float32(1.0)


def as_float32_logits(logits: np.ndarray | torch.Tensor) -> np.ndarray:
    """numpy float32 view of logits (or x0) given as a numpy array or a (possibly GPU, fp16) torch
    tensor."""
    if isinstance(logits, torch.Tensor):
        logits = logits.detach().to("cpu", torch.float32).numpy()
    return np.ascontiguousarray(logits, dtype=np.float32)


def group_ranges(cfg: ModelConfig) -> list[tuple[int, int]]:
    """(first logit channel, count of valid ids) of the class group and of the instance group."""
    class_logits = 2**cfg.class_bits
    return [(0, min(class_logits, cfg.num_classes)),
            (class_logits, min(2**cfg.instance_bits, cfg.max_instances))]


def class_void_probability(logits: np.ndarray | torch.Tensor, cfg: ModelConfig) -> np.ndarray:
    """Step 1's p0: per cell, the void probability of the class group (softmax over the valid
    class ids, float32 in the normative order). logits ``[..., L]`` -> float32 ``[...]``."""
    values = _checked_logits(logits, cfg, min_dims=1)
    start, count = group_ranges(cfg)[0]
    return _void_probability(values[..., start : start + count])


def cell_ids(logits: np.ndarray | torch.Tensor, x0: np.ndarray | torch.Tensor,
             cfg: ModelConfig) -> tuple[np.ndarray, np.ndarray]:
    """Step 1: per cell, the class id from the logits (void if p0 >= 0.5, else the best non-void
    class) and the instance id from x0 (its instance bits thresholded at 0, clamped to max_id).

    logits ``[..., L]`` and x0 ``[..., n_bits]`` (normally ``[Hm, Wm, ...]``; the same leading
    dims) -> (class, instance) int64 ``[...]``.
    """
    values = _checked_logits(logits, cfg, min_dims=1)
    bits = _checked_x0(x0, cfg, values.shape[:-1])
    return _cell_ids(values, bits, cfg)[:2]


def readout(logits: np.ndarray | torch.Tensor, x0: np.ndarray | torch.Tensor, cfg: ModelConfig,
            canvas_hw: Sequence[int], content_hw: Sequence[int],
            out_hw: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The bilinear readout (module docstring) of one image's logits ``[Hm, Wm, L]`` and final x̂0
    ``[Hm, Wm, n_bits]`` over the content region ``content_hw`` of the canvas ``canvas_hw``, at
    ``out_hw`` -> (class, instance) int64 ``[out_h, out_w]``."""
    ids, _ = _read(logits, x0, cfg, canvas_hw, content_hw, out_hw, with_margins=False)
    return ids


def readout_margin(logits: np.ndarray | torch.Tensor, x0: np.ndarray | torch.Tensor, cfg: ModelConfig,
                   canvas_hw: Sequence[int], content_hw: Sequence[int], out_hw: Sequence[int]) -> np.ndarray:
    """float32 ``[2, out_h, out_w]``: per group and output pixel, how far the id is from flipping;
    +inf where the corner rule decides (or the class group has one valid id).

    Class group: ``|p - 0.5|``, and where the pixel is not void and has at least two non-void ids,
    the smaller of that and the gap between the best and the second-best s(v) over v >= 1.
    Instance group: ``min_k |m_k|`` over the mixed instance bits. A twin whose logits, p0 or x0
    differ slightly from these may flip an id only where this margin is tiny."""
    _, margins = _read(logits, x0, cfg, canvas_hw, content_hw, out_hw, with_margins=True)
    assert margins is not None
    return margins


def _read(logits: Any, x0: Any, cfg: ModelConfig, canvas_hw: Sequence[int], content_hw: Sequence[int],
          out_hw: Sequence[int], with_margins: bool) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray | None]:
    """Steps 2-5 for both groups: the id maps and (with_margins) their margins."""
    values = _checked_logits(logits, cfg, min_dims=3)
    bits = _checked_x0(x0, cfg, values.shape[:-1])
    grid = _SampleGrid(values.shape[:2], canvas_hw, content_hw, out_hw)
    out_h, out_w = grid.out_hw
    margins = np.full((2, out_h, out_w), np.inf, dtype=np.float32) if with_margins else None
    cell_class, cell_instance, void = _cell_ids(values, bits, cfg)
    (class_start, class_count), _ = group_ranges(cfg)
    instance_bits = bits[..., cfg.class_bits :]
    max_id = _max_instance_id(cfg)
    maps = []
    for group, cell in enumerate((cell_class, cell_instance)):
        ids = cell[grid.r0][:, grid.c0]  # corner 00; right wherever the corners agree
        rows, cols = np.nonzero(~_corners_agree(cell, grid))
        for first in range(0, rows.size, CHUNK_PIXELS):
            part = slice(first, first + CHUNK_PIXELS)
            r, c = rows[part], cols[part]
            if group == 0:
                chunk_ids, chunk_margins = _class_ids(values, void, class_start, class_count, grid, r, c, with_margins)
            else:  # instance group: the mixed bits, thresholded
                mixed = _mix(instance_bits, grid, r, c)
                chunk_ids = np.minimum(_bits_to_int(mixed), max_id)
                chunk_margins = np.abs(mixed).min(-1) if with_margins else None
            ids[r, c] = chunk_ids
            if margins is not None:
                margins[group, r, c] = chunk_margins
        maps.append(ids)
    return (maps[0], maps[1]), margins


def _cell_ids(values: np.ndarray, bits: np.ndarray, cfg: ModelConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step 1 on checked float32 logits ``[..., L]`` and x0 ``[..., n_bits]``: (class, instance)
    int64 and the class p0."""
    class_start, class_count = group_ranges(cfg)[0]
    classes = values[..., class_start : class_start + class_count]
    void = _void_probability(classes)
    cls = np.zeros(values.shape[:-1], dtype=np.int64)
    if class_count > 1:
        cls = np.where(void >= F32_HALF, 0, 1 + classes[..., 1:].argmax(-1)).astype(np.int64)
    inst = np.minimum(_bits_to_int(bits[..., cfg.class_bits :]), _max_instance_id(cfg))
    return cls, inst, void


def _max_instance_id(cfg: ModelConfig) -> int:
    return min(2**cfg.instance_bits, cfg.max_instances) - 1


def _bits_to_int(bits: np.ndarray) -> np.ndarray:
    """``sum_k [bits_k > 0] * 2^k`` over the last axis (LSB first) -> int64."""
    weights = np.left_shift(np.int64(1), np.arange(bits.shape[-1], dtype=np.int64))
    return ((bits > 0).astype(np.int64) * weights).sum(-1)


def _void_probability(group: np.ndarray) -> np.ndarray:
    """p0 = 1 / sum_v exp(l[v] - l[0]) over the last axis, float32, summed v = 0, 1, ... in order
    (a Python loop: np.sum would sum pairwise)."""
    first = group[..., 0]
    total = np.zeros(group.shape[:-1], dtype=np.float32)
    for v in range(group.shape[-1]):
        total = total + _exp(group[..., v] - first)
    return (F32_ONE / total).astype(np.float32)


def _exp(x: np.ndarray) -> np.ndarray:
    """The correctly rounded float32 exp of float32 ``x`` (numpy's float32 exp may be off by ulps)."""
    with np.errstate(over="ignore"):
        return np.exp(x.astype(np.float64)).astype(np.float32)


def _class_ids(values: np.ndarray, void: np.ndarray, start: int, count: int, grid: _SampleGrid,
               rows: np.ndarray, cols: np.ndarray, with_margins: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Step 4 for the class group at pixels whose corners disagree: ids and (with_margins) margins."""
    p = _mix(void, grid, rows, cols)
    is_void = p >= F32_HALF
    margins = np.abs(p - F32_HALF) if with_margins else None
    if count < 2:
        return np.zeros(rows.size, dtype=np.int64), margins
    best, gap = _argmax_with_gap(_scores(values, start + 1, count - 1, grid, rows, cols), with_margins)
    if margins is not None and gap is not None:
        margins = np.where(is_void, margins, np.minimum(margins, gap)).astype(np.float32)
    return np.where(is_void, 0, 1 + best).astype(np.int64), margins


def _argmax_with_gap(scores: np.ndarray, with_gap: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Arg-max over the last axis (ties -> smallest) and, with_gap, best minus second-best
    (+inf with fewer than two values)."""
    best = scores.argmax(-1).astype(np.int64)
    if not with_gap:
        return best, None
    if scores.shape[-1] < 2:
        return best, np.full(scores.shape[:-1], np.inf, dtype=np.float32)
    ordered = np.sort(scores, axis=-1)
    return best, (ordered[..., -1] - ordered[..., -2]).astype(np.float32)


class _SampleGrid:
    """Steps 2-3: per output row the rows r0 / r1 and weights wy0 / wy1 (columns alike)."""

    def __init__(self, mask_hw: Sequence[int], canvas_hw: Sequence[int], content_hw: Sequence[int],
                 out_hw: Sequence[int]) -> None:
        (canvas_h, canvas_w), (content_h, content_w), (out_h, out_w) = (
            _int_pair(canvas_hw, "canvas_hw"), _int_pair(content_hw, "content_hw"), _int_pair(out_hw, "out_hw"))
        if min(canvas_h, canvas_w, content_h, content_w, out_h, out_w) < 1:
            raise ValueError(f"readout sizes must be >= 1: canvas {canvas_hw}, content {content_hw}, out {out_hw}")
        mask_h, mask_w = mask_hw
        self.out_hw = (out_h, out_w)
        self.r0, self.r1, self.wy0, self.wy1 = _axis(out_h, mask_h, content_h, canvas_h)
        self.c0, self.c1, self.wx0, self.wx1 = _axis(out_w, mask_w, content_w, canvas_w)


def _axis(out_n: int, mask_n: int, content_n: int, canvas_n: int) -> tuple[np.ndarray, ...]:
    """One axis of step 3: (index 0, index 1, weight 0, weight 1) per output coordinate."""
    scale = np.float32((content_n * mask_n) / (out_n * canvas_n))
    pos = (np.arange(out_n, dtype=np.float32) + F32_HALF) * scale - F32_HALF
    first = np.floor(pos).astype(np.int64)
    frac = pos - first.astype(np.float32)
    return (np.clip(first, 0, mask_n - 1), np.clip(first + 1, 0, mask_n - 1), F32_ONE - frac, frac)


def _corners_agree(cell: np.ndarray, grid: _SampleGrid) -> np.ndarray:
    """bool ``[out_h, out_w]``: the four corner cells share one id (step 4's shortcut)."""
    top, bottom = cell[grid.r0], cell[grid.r1]
    c00, c01, c10, c11 = top[:, grid.c0], top[:, grid.c1], bottom[:, grid.c0], bottom[:, grid.c1]
    return (c00 == c01) & (c00 == c10) & (c00 == c11)


def _weights(grid: _SampleGrid, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, ...]:
    """The corner cells (r0, r1, c0, c1) and weights w00, w01, w10, w11 of the given pixels."""
    wy0, wy1, wx0, wx1 = grid.wy0[rows], grid.wy1[rows], grid.wx0[cols], grid.wx1[cols]
    return (grid.r0[rows], grid.r1[rows], grid.c0[cols], grid.c1[cols],
            wy0 * wx0, wy0 * wx1, wy1 * wx0, wy1 * wx1)


def _mix(cells: np.ndarray, grid: _SampleGrid, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Step 4's mix of a per-cell float32 value ``[Hm, Wm, ...]`` at the given pixels, in the
    normative order -> ``[pixels, ...]``."""
    r0, r1, c0, c1, w00, w01, w10, w11 = _weights(grid, rows, cols)
    extra = (None,) * (cells.ndim - 2)
    w00, w01, w10, w11 = (w[(slice(None), *extra)] for w in (w00, w01, w10, w11))
    return ((w00 * cells[r0, c0] + w01 * cells[r0, c1]) + w10 * cells[r1, c0]) + w11 * cells[r1, c1]


def _scores(values: np.ndarray, start: int, count: int, grid: _SampleGrid, rows: np.ndarray,
            cols: np.ndarray) -> np.ndarray:
    """Step 4's s(v) for v in start .. start + count - 1: float32 ``[pixels, count]``."""
    return _mix(values[..., start : start + count], grid, rows, cols)


def _checked_logits(logits: Any, cfg: ModelConfig, min_dims: int) -> np.ndarray:
    values = as_float32_logits(logits)
    if min_dims == 3 and values.ndim != 3:
        raise ValueError(f"readout takes one image's logits [Hm, Wm, L], got shape {values.shape}")
    if values.ndim < min_dims or values.shape[-1] != cfg.n_logits:
        raise ValueError(f"logits shape {values.shape}: expected [..., {cfg.n_logits}] "
                         f"(2^{cfg.class_bits} + 2^{cfg.instance_bits})")
    return values


def _checked_x0(x0: Any, cfg: ModelConfig, cells_shape: tuple[int, ...]) -> np.ndarray:
    bits = as_float32_logits(x0)
    want = (*cells_shape, cfg.class_bits + cfg.instance_bits)
    if bits.shape != want:
        raise ValueError(f"x0 shape {bits.shape}: expected {want} (the logits' cells, "
                         f"{cfg.class_bits} + {cfg.instance_bits} analog bits)")
    return bits


def _int_pair(size: Sequence[Any], name: str) -> tuple[int, int]:
    if len(size) != 2:
        raise ValueError(f"{name} must be (height, width), got {size}")
    return int(size[0]), int(size[1])
