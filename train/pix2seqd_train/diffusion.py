"""Bit diffusion: schedule, pixel weights, training loss and the DDIM sampler (spec §1.5, §3).

Tensors follow bits.py: analog bits and logits are channels last [B, Hm, Wm, C]; images are
[B, 3, H, W] floats in [0, 1]; class / instance maps are [B, Hm, Wm] integers.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from . import rng
from .bits import (
    analog_bits_to_ids,
    empty_prev_bits,
    expected_analog_bits,
    ids_to_analog_bits,
    prev_maps_to_analog_bits,
    split_logits,
    target_ids,
)

if TYPE_CHECKING:
    from .model.pix2seqd import Pix2SeqD

# cosine_schedule_simple (Analog Bits Alg. 4): gamma(t) = cos(((t + NS) / (1 + DS)) * pi/2)^2
SCHEDULE_NS = 0.0002
SCHEDULE_DS = 0.00025


def gamma(t: torch.Tensor | float) -> torch.Tensor | float:
    """Signal variance gamma(t) for t in [0, 1]; gamma(0) ~ 1 - 1e-7, gamma(1) ~ 6.2e-9.

    Python floats are evaluated in float64 (the sampler's step coefficients), tensors in their dtype.
    """
    if isinstance(t, torch.Tensor):
        return torch.cos((t + SCHEDULE_NS) / (1 + SCHEDULE_DS) * (math.pi / 2)) ** 2
    return math.cos((t + SCHEDULE_NS) / (1 + SCHEDULE_DS) * (math.pi / 2)) ** 2


def step_times(steps: int, td: float = 0.0) -> list[tuple[float, float]]:
    """(t_now, t_next) per step: t_now = 1 - i/T, t_next = max(1 - (i + 1 + td)/T, 0).

    td is in units of steps (not absolute time), so the last floor(td) + 1 steps jump to t = 0.
    """
    return [(1.0 - i / steps, max(1.0 - (i + 1 + td) / steps, 0.0)) for i in range(steps)]


def ddim_step(m: torch.Tensor, x0: torch.Tensor, t_now: float, t_next: float) -> torch.Tensor:
    """Deterministic DDIM (eta = 0): eps = (m - sqrt(g_now) x0) / sqrt(1 - g_now);
    m' = sqrt(g_next) x0 + sqrt(1 - g_next) eps. The four coefficients are computed in float64
    and applied to the float32 tensors (i.e. rounded to float32)."""
    g_now, g_next = gamma(t_now), gamma(t_next)
    eps = (m - math.sqrt(g_now) * x0) / math.sqrt(1.0 - g_now)
    return math.sqrt(g_next) * x0 + math.sqrt(1.0 - g_next) * eps


def pixel_weights(inst_map: torch.Tensor, max_instances: int, p: float = 0.2,
                  ignore: torch.Tensor | None = None) -> torch.Tensor:
    """Per-pixel loss weights (spec §1.5): w = (1 / (count(id) + 1))^p over the instance ids
    0..max_instances-1 of each image, normalised to mean 1 per image. Void (id 0) is one group and
    stays in the loss; ids >= max_instances get weight 0 (they fall outside the one-hot).

    ``ignore`` (bool, like ``inst_map``): pixels of unknown label get weight 0 and are not counted;
    the rest keep mean 1, so an image that is half ignored weighs half in the batch."""
    batch = inst_map.shape[0]
    flat = inst_map.reshape(batch, -1).long()
    valid = (flat >= 0) & (flat < max_instances)
    total = torch.full((batch, 1), float(flat.shape[1]), device=flat.device)
    if ignore is not None:
        known = ~ignore.reshape(batch, -1)
        valid = valid & known
        total = known.sum(1, keepdim=True).float()
    index = flat.clamp(0, max_instances - 1)
    counts = torch.zeros(batch, max_instances, device=flat.device).scatter_add_(1, index, valid.float())
    weights = (1.0 / (counts.gather(1, index) + 1.0)) ** p * valid
    weights = weights / weights.sum(1, keepdim=True).clamp_min(1e-12) * total
    return weights.reshape(inst_map.shape)


def add_noise(m0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x_t = sqrt(gamma) x0 + sqrt(1 - gamma) eps with one t per example; returns (x_t, gamma)."""
    g = gamma(t)
    g4 = g.view(-1, 1, 1, 1)
    return g4.sqrt() * m0 + (1 - g4).sqrt() * eps, g


def unwrap(model: Any) -> "Pix2SeqD":
    """The Pix2SeqD inside a DistributedDataParallel (or similar `.module`) wrapper."""
    return model.module if hasattr(model, "module") else model


def training_loss(
    model: "Pix2SeqD",
    images: torch.Tensor,
    cls_map: torch.Tensor,
    inst_map: torch.Tensor,
    prev_maps: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    ignore: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """x0-prediction trained with softmax cross-entropy per bit group (spec §3.2).

    images [B, 3, H, W] in [0, 1]; cls_map / inst_map [B, Hm, Wm] ints (class = dataset label + 1);
    prev_maps [B, k, Hm, Wm, 2] ints for video models (already frame-dropped by the data side).
    ignore [B, Hm, Wm] bool: pixels of unknown label, left out of the loss (see pixel_weights).
    loss = mean over B, Hm, Wm and the 2 groups of w * CE, with t ~ U(0, 1) per example.
    `model` may be wrapped in DistributedDataParallel: the gradient pass is one model(...) call.
    """
    cfg = unwrap(model).cfg
    device = images.device
    batch = images.shape[0]
    m0 = ids_to_analog_bits(cls_map, inst_map, cfg)
    weights = pixel_weights(inst_map, cfg.max_instances, cfg.mask_weight_p, ignore)

    t = torch.rand(batch, generator=generator, device=device)
    eps = torch.randn(m0.shape, generator=generator, device=device)
    m_t, g = add_noise(m0, t, eps)
    prev = prev_maps_to_analog_bits(prev_maps, cfg) if prev_maps is not None else None
    self_cond = _self_cond_estimate(unwrap(model), images, m_t, g, prev) if cfg.self_cond else None
    logits = model(images, m_t, g, prev=prev, self_cond=self_cond)

    group_losses = []
    for group_logits, target in zip(split_logits(logits, cfg), target_ids(cls_map, inst_map, cfg)):
        ce = F.cross_entropy(group_logits.permute(0, 3, 1, 2).float(), target, reduction="none")
        group_losses.append((weights * ce).mean())
    loss = sum(group_losses) / len(group_losses)
    logs = {
        "loss": float(loss.detach()),
        "ce_class": float(group_losses[0].detach()),
        "ce_instance": float(group_losses[1].detach()),
        "t_mean": float(t.mean()),
    }
    return loss, logs


@torch.no_grad()
def _self_cond_estimate(model: "Pix2SeqD", images: torch.Tensor, m_t: torch.Tensor, g: torch.Tensor,
                        prev: torch.Tensor | None) -> torch.Tensor:
    """Official scheme (spec §3.3): the first floor(B/2) examples get x̃0 = stop_grad(f([x_t, 0])),
    the others x̃0 = 0."""
    estimate = torch.zeros_like(m_t)
    half = m_t.shape[0] // 2
    if half:
        features, tokens, _ = model.encode(images[:half])
        logits = model.decode(m_t[:half], features, tokens, g[:half],
                              prev=None if prev is None else prev[:half], self_cond=torch.zeros_like(m_t[:half]))
        estimate[:half] = expected_analog_bits(logits, model.cfg)
    return estimate


@torch.no_grad()
def sample(
    model: "Pix2SeqD",
    images: torch.Tensor,
    steps: int,
    td: float,
    seed: int,
    prev_maps: torch.Tensor | None = None,
    return_trace: bool = False,
    return_logits: bool = False,
) -> tuple[Any, ...]:
    """DDIM sampling from the shared noise (spec §3.4).

    The initial noise is rng.noise(seed, [B, Hm, Wm, n_bits]) (flat index over the whole batch).
    Returns (x0, (cls, inst)): the last x̂0 [B, Hm, Wm, n_bits] and the thresholded, clamped maps
    [B, Hm, Wm] int64 at mask resolution. With return_logits=True the next element is the last
    step's logits [B, Hm, Wm, n_logits] (what `readout.readout` reads at the output resolution).
    With return_trace=True the last element is a dict: noise, gammas [steps], logits_step0 and
    logits_last [B, Hm, Wm, n_logits], x0_steps / m_steps (lists, x̂0 and the DDIM state after each
    step), features (F), tokens (E), taps, prev_bits.
    Call model.eval() first (dropout, BatchNorm statistics).
    """
    model = unwrap(model)
    cfg = model.cfg
    batch = images.shape[0]
    mask_h, mask_w = cfg.mask_size
    features, tokens, taps = model.encode(images)
    m = rng.noise(seed, (batch, mask_h, mask_w, cfg.n_bits)).to(images.device)
    prev = None
    if cfg.video_prev_masks:
        prev = (prev_maps_to_analog_bits(prev_maps, cfg) if prev_maps is not None
                else empty_prev_bits(batch, cfg, images.device))
    trace: dict[str, Any] = {"noise": m.clone(), "gammas": [], "x0_steps": [], "m_steps": [],
                             "features": features, "tokens": tokens, "taps": taps, "prev_bits": prev}
    x0 = torch.zeros_like(m)
    logits: torch.Tensor | None = None  # stays None only for steps = 0
    for i, (t_now, t_next) in enumerate(step_times(steps, td)):
        g_now = torch.full((batch,), gamma(t_now), device=images.device)
        self_cond = x0 if cfg.self_cond else None  # the previous step's x̂0 (zeros at step 0)
        logits = model.decode(m, features, tokens, g_now, prev=prev, self_cond=self_cond)
        x0 = expected_analog_bits(logits, cfg).clamp(-cfg.b_scale, cfg.b_scale)
        m = ddim_step(m, x0, t_now, t_next)
        if return_trace:
            if i == 0:
                trace["logits_step0"] = logits
            trace["gammas"].append(g_now[0].item())
            trace["x0_steps"].append(x0)
            trace["m_steps"].append(m)
    maps = analog_bits_to_ids(x0, cfg)
    result: tuple[Any, ...] = (x0, maps)
    if return_logits:
        result += (logits,)
    if return_trace:
        trace["logits_last"] = logits
        result += (trace,)
    return result
