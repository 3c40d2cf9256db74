"""Panoptic label-map utilities: id permutation, post-processing, COCO panoptic encoding, colours.

Label maps are pairs ``(cls, inst)`` of int64 tensors with the same shape; class 0 and id 0 are
void. A *segment* is the set of pixels with one ``(cls, inst)`` pair, ``cls != 0``.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Sequence

import numpy as np
import torch
from scipy import ndimage

VOID = 0


def _as_tensor(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))


# ------------------------------------------------------------------------------------------------
# Instance-id permutation (spec §1.4)


def permute_instance_ids(
    inst: torch.Tensor,
    max_instances: int,
    mode: str = "random",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Give the ids present new random values; 0 stays 0. One permutation for the whole tensor.

    Pass a clip as one ``[T, H, W]`` tensor so that every frame shares the permutation (video:
    the model learns to copy ids from the conditioning masks).

    * ``'random'``: the n present ids get n distinct values drawn from {1..max_instances-1}
      (the official ``process_instance_id_map``; ids are generally not contiguous).
    * ``'shuffle'``: the n present ids get a random permutation of {1..n}. (The official code
      permutes {1..max id}; for our compact ids 1..n the two are the same.)
    """
    inst = _as_tensor(inst)
    ids = torch.unique(inst)
    ids = ids[ids > 0]
    n = int(ids.numel())
    if n > max_instances - 1:
        raise ValueError(f"{n} segments do not fit in ids 1..{max_instances - 1}; cap them first")
    if n == 0:
        return inst.clone()
    if mode == "random":
        new = torch.randperm(max_instances - 1, generator=generator)[:n] + 1
    elif mode == "shuffle":
        new = torch.randperm(n, generator=generator) + 1
    else:
        raise ValueError(f"unknown id permutation mode {mode!r} (use 'random' or 'shuffle')")
    lookup = torch.zeros(int(ids.max()) + 1, dtype=inst.dtype)
    lookup[ids] = new.to(inst.dtype)
    return lookup[inst]


# ------------------------------------------------------------------------------------------------
# Post-processing (spec §1.6)


def _majority_vote_single(cls: torch.Tensor, inst: torch.Tensor, min_pixels: int) -> tuple[torch.Tensor, torch.Tensor]:
    num_classes = int(cls.max()) + 1
    num_ids = int(inst.max()) + 1
    counts = torch.bincount((inst * num_classes + cls).flatten(), minlength=num_ids * num_classes)
    counts = counts.view(num_ids, num_classes)
    majority = counts.argmax(dim=1)  # ties: the smallest class id
    majority[counts.sum(dim=1) < min_pixels] = VOID
    majority[0] = VOID  # id 0 is void whatever its class bits say
    new_cls = majority[inst]
    return new_cls, torch.where(new_cls == VOID, torch.zeros_like(inst), inst)


def majority_vote_postprocess(
    cls: torch.Tensor, inst: torch.Tensor, min_pixels: int = 40
) -> tuple[torch.Tensor, torch.Tensor]:
    """The official ``majority_vote_postprocess``: per id, majority class; small ids become void.

    1. every pixel of an id takes the id's majority class (void pixels vote too; ties go to the
       smaller class id);
    2. ids with fewer than ``min_pixels`` pixels become void;
    3. pixels whose class is void get id 0, and id-0 pixels become void.

    Works on ``[H, W]`` or batched ``[B, H, W]`` maps; run it at the original image resolution.
    """
    cls, inst = _as_tensor(cls).long(), _as_tensor(inst).long()
    if cls.shape != inst.shape:
        raise ValueError(f"class map {tuple(cls.shape)} and id map {tuple(inst.shape)} differ in shape")
    if cls.dim() == 2:
        return _majority_vote_single(cls, inst, min_pixels)
    outs = [_majority_vote_single(c, i, min_pixels) for c, i in zip(cls, inst)]
    return torch.stack([o[0] for o in outs]), torch.stack([o[1] for o in outs])


def thing_vote_postprocess(cls: torch.Tensor, inst: torch.Tensor, isthing: Sequence[bool] | torch.Tensor,
                           min_pixels: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    """``thing_vote``: stuff keeps its class bits, instance ids vote among thing pixels only.

    1. a stuff pixel keeps its class; each stuff class is one segment (fewer than ``min_pixels``
       pixels: void);
    2. thing pixels with an id (id 0: none) group into fragments, 4-connected pixels with the same
       id; each fragment of at least ``min_pixels`` pixels takes the majority class of its pixels
       (ties: the smaller class id) and keeps its id. Stuff and void pixels neither vote nor
       change, so ids that are not yet consistent over an object cannot repaint the scene;
    3. the other thing pixels (small fragments, id 0) are loose: the kept fragments grow into
       4-connected loose pixels of their own class, breadth first from all fragments at once
       (seeds in pixel order), so the object keeps every pixel its class bits give it;
    4. loose pixels no fragment reached form 4-connected same-class components; one of at least
       ``min_pixels`` pixels is a segment with a new id (the smallest unused, in pixel order of
       the components), a smaller one is void;
    5. stuff classes, in class order, get the smallest ids >= 1 that no thing pixel keeps.

    A deliberate departure from the official post-processing (``majority_vote_postprocess``) for
    models whose instance bits are weaker than their class bits; the model card chooses. One
    ``[H, W]`` map; ``isthing`` is indexed by class id (a class beyond its end counts as stuff).
    The Rust twin is ``panoptic::thing_vote``; both share hand cases in their tests.
    """
    cls_np, inst_np = _as_tensor(cls).long().numpy(), _as_tensor(inst).long().numpy()
    if cls_np.shape != inst_np.shape or cls_np.ndim != 2:
        raise ValueError(f"class map {cls_np.shape} and id map {inst_np.shape} must be one [H, W] pair")
    height, width = cls_np.shape
    thing_lut = np.zeros(max(int(cls_np.max()) + 1, len(isthing)), dtype=bool)
    thing_lut[:len(isthing)] = np.asarray(list(isthing) if not isinstance(isthing, torch.Tensor) else isthing.numpy(), dtype=bool)
    thing_lut[VOID] = False
    is_thing = thing_lut[cls_np]
    out_cls = np.zeros_like(cls_np)
    out_inst = np.zeros_like(inst_np)
    loose = is_thing & (inst_np == VOID)
    for i in np.unique(inst_np[is_thing & (inst_np != VOID)]):
        fragments, count = ndimage.label(is_thing & (inst_np == i))  # 4-connectivity
        for f in range(1, count + 1):
            sel = fragments == f
            if int(sel.sum()) < min_pixels:
                loose |= sel
                continue
            out_cls[sel] = int(np.bincount(cls_np[sel]).argmax())  # ties: the smaller class id
            out_inst[sel] = i
    # Kept fragments grow into loose pixels of their class. Only kept pixels beside a loose pixel
    # of their class can spread; seeding with those alone, in pixel order, visits as the Rust twin.
    kept = out_inst != VOID
    grows = np.zeros_like(kept)
    # (kept pixels, their neighbours) as slices: neighbour above, below, left, right
    for here, there in ((np.s_[1:, :], np.s_[:-1, :]), (np.s_[:-1, :], np.s_[1:, :]),
                        (np.s_[:, 1:], np.s_[:, :-1]), (np.s_[:, :-1], np.s_[:, 1:])):
        grows[here] |= kept[here] & loose[there] & (cls_np[there] == out_cls[here])
    flat_cls, flat_loose = cls_np.ravel(), loose.ravel().copy()
    flat_out_cls, flat_out_inst = out_cls.ravel(), out_inst.ravel()
    queue = deque(np.flatnonzero(grows.ravel()).tolist())
    while queue:
        p = queue.popleft()
        r, c = divmod(p, width)
        for q, ok in ((p - width, r > 0), (p + width, r + 1 < height), (p - 1, c > 0), (p + 1, c + 1 < width)):
            if ok and flat_loose[q] and flat_cls[q] == flat_out_cls[p]:
                flat_loose[q] = False
                flat_out_cls[q], flat_out_inst[q] = flat_out_cls[p], flat_out_inst[p]
                queue.append(q)
    loose = flat_loose.reshape(height, width)
    components = []  # (first pixel, class, mask) of loose components no fragment reached
    for c in np.unique(cls_np[loose]).tolist():
        labels, count = ndimage.label(loose & (cls_np == c))
        values, first = np.unique(labels.ravel(), return_index=True)
        first_of = dict(zip(values.tolist(), first.tolist()))
        for f in range(1, count + 1):
            components.append((first_of[f], c, labels == f))
    used = set(np.unique(out_inst).tolist())
    free = (k for k in range(1, out_inst.size + len(used) + 2) if k not in used)
    for _, c, sel in sorted(components, key=lambda comp: comp[0]):
        if int(sel.sum()) >= min_pixels:
            new_id = next(free)
            used.add(new_id)
            out_cls[sel], out_inst[sel] = c, new_id
    is_stuff = (cls_np != VOID) & ~is_thing
    stuff_classes, areas = np.unique(cls_np[is_stuff], return_counts=True)
    for c, area in zip(stuff_classes.tolist(), areas.tolist()):
        if area >= min_pixels:
            sel = cls_np == c
            out_cls[sel], out_inst[sel] = c, next(free)
    return torch.from_numpy(out_cls), torch.from_numpy(out_inst)


def merge_stuff(cls: torch.Tensor, inst: torch.Tensor, isthing: Sequence[bool] | torch.Tensor) -> torch.Tensor:
    """Give all pixels of each stuff class one id (that of its largest segment); returns new ids.

    PQ expects at most one segment per stuff class (spec §1.6). ``isthing`` is indexed by class id
    (index 0 = void). Expects majority-voted maps, where each id carries a single class.
    """
    cls, inst = _as_tensor(cls).long(), _as_tensor(inst).long()
    thing = torch.as_tensor(list(isthing) if not isinstance(isthing, torch.Tensor) else isthing, dtype=torch.bool)
    out = inst.clone()
    for c in torch.unique(cls).tolist():
        if c == VOID or (c < thing.numel() and bool(thing[c])):
            continue
        sel = cls == c
        ids, counts = torch.unique(inst[sel], return_counts=True)
        out[sel] = ids[counts.argmax()]
    return out


# ------------------------------------------------------------------------------------------------
# Segments and COCO panoptic encoding


def rgb2id(rgb: np.ndarray) -> np.ndarray:
    """COCO panoptic PNG colour -> segment id (id = R + 256 G + 256^2 B)."""
    rgb = np.asarray(rgb).astype(np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]


def id2rgb(ids: np.ndarray) -> np.ndarray:
    ids = np.asarray(ids).astype(np.int64)
    return np.stack([ids % 256, ids // 256 % 256, ids // (256 * 256) % 256], axis=-1).astype(np.uint8)


def segment_id_map(cls: Any, inst: Any) -> tuple[np.ndarray, dict[int, tuple[int, int]]]:
    """Number the segments (distinct non-void (class, id) pairs) 1..n in (class, id) order.

    Returns the segment-id map (0 = void) and ``{segment id: (class, instance id)}``.
    """
    cls, inst = np.asarray(cls).astype(np.int64), np.asarray(inst).astype(np.int64)
    key = cls * (int(inst.max(initial=0)) + 1) + inst
    keys, inverse = np.unique(np.where(cls == VOID, -1, key), return_inverse=True)
    inverse = inverse.reshape(cls.shape)
    has_void = keys.size > 0 and keys[0] == -1
    seg = inverse + (0 if has_void else 1)
    segments: dict[int, tuple[int, int]] = {}
    flat_cls, flat_inst, flat_seg = cls.ravel(), inst.ravel(), seg.ravel()
    _, first = np.unique(flat_seg, return_index=True)
    for pos in first:
        if flat_seg[pos] != 0:
            segments[int(flat_seg[pos])] = (int(flat_cls[pos]), int(flat_inst[pos]))
    return seg, segments


def _bbox(mask: np.ndarray) -> list[int]:
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    return [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]


def to_coco_panoptic(
    cls: Any,
    inst: Any,
    category_ids: Sequence[int] | None = None,
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Encode label maps as a COCO panoptic PNG (uint8 RGB ``[H, W, 3]``) and its segments_info.

    ``category_ids[c - 1]`` is the COCO category id of class id ``c`` (default: ``c`` itself).
    Segment ids are 1..n (see :func:`segment_id_map`); void pixels are 0.
    """
    seg, segments = segment_id_map(cls, inst)
    infos = []
    for sid, (c, _) in segments.items():
        mask = seg == sid
        category = int(category_ids[c - 1]) if category_ids is not None else int(c)
        infos.append({"id": sid, "category_id": category, "iscrowd": 0, "area": int(mask.sum()), "bbox": _bbox(mask)})
    return id2rgb(seg), infos


# ------------------------------------------------------------------------------------------------
# Colours


def default_color(class_id: int) -> tuple[int, int, int]:
    """A deterministic, well-spread colour for classes without one (golden-ratio hue steps)."""
    hue = (class_id * 0.618033988749895) % 1.0
    i, f = int(hue * 6), hue * 6 - int(hue * 6)
    v, s = 0.9, 0.65
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    r, g, b = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i % 6]
    return int(r * 255), int(g * 255), int(b * 255)


def palette(classes: Sequence[Any]) -> np.ndarray:
    """uint8 ``[num_classes, 3]`` colours indexed by class id; void (row 0) is black."""
    out = np.zeros((len(classes) + 1, 3), dtype=np.uint8)
    for k, c in enumerate(classes):
        color = c.get("color") if isinstance(c, dict) else getattr(c, "color", None)
        out[k + 1] = color if color is not None else default_color(k + 1)
    return out


def instance_boundaries(cls: Any, inst: Any) -> np.ndarray:
    """bool ``[H, W]``: pixels whose right or lower neighbour belongs to another segment."""
    seg, _ = segment_id_map(cls, inst)
    edge = np.zeros(seg.shape, dtype=bool)
    edge[:, :-1] |= seg[:, :-1] != seg[:, 1:]
    edge[:-1, :] |= seg[:-1, :] != seg[1:, :]
    return edge & (seg > 0)


def colorize(cls: Any, inst: Any, colors: np.ndarray, isthing: Sequence[bool] | None = None) -> np.ndarray:
    """RGB overlay: class colour, thing instances shaded by id, segment outlines in white."""
    cls, inst = np.asarray(cls).astype(np.int64), np.asarray(inst).astype(np.int64)
    rgb = colors[np.clip(cls, 0, len(colors) - 1)].astype(np.float32)
    if isthing is not None:
        thing = np.asarray(list(isthing), dtype=bool)[np.clip(cls, 0, len(isthing) - 1)]
        shade = 0.7 + 0.6 * ((inst * 0.618033988749895) % 1.0)  # stable per id, in [0.7, 1.3)
        rgb = np.where(thing[..., None], np.clip(rgb * shade[..., None], 0, 255), rgb)
    rgb[instance_boundaries(cls, inst)] = 255
    return rgb.astype(np.uint8)
