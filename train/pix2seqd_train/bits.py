"""Integer panoptic maps <-> analog bits (spec §1.1, §1.3, §2.3).

Layout: every analog-bit tensor is channels last, [B, H, W, C], the order of the TensorFlow code
and of the engine's noise; channels are the class bits (LSB first) then the instance bits (LSB
first). Logits are channels last too: [B, H, W, 2^class_bits + 2^instance_bits], the class group's
logits first (logit v = "the class id is v"), then the instance group's.
"""

from __future__ import annotations

import torch

from .config import ModelConfig


def int2bits(x: torch.Tensor, n_bits: int) -> torch.Tensor:
    """[...] integers -> [..., n_bits] of 0/1 (int64), least-significant bit first."""
    shifts = torch.arange(n_bits, device=x.device)
    return (x.long().unsqueeze(-1) >> shifts) & 1


def bits2int(bits: torch.Tensor) -> torch.Tensor:
    """[..., n_bits] of 0/1 or bool -> [...] int64: sum_k bit_k * 2^k."""
    n_bits = bits.shape[-1]
    weights = 2 ** torch.arange(n_bits, device=bits.device)
    return (bits.long() * weights).sum(-1)


def bits_matrix(n_bits: int, device: torch.device | str | None = None) -> torch.Tensor:
    """[2^n_bits, n_bits] float32: row v holds int2bits(v) (the BITS matrix of the softmax head)."""
    return int2bits(torch.arange(2**n_bits, device=device), n_bits).float()


def to_analog(bits: torch.Tensor, b_scale: float) -> torch.Tensor:
    """0/1 bits -> analog bits {-b, +b}."""
    return (bits.float() * 2 - 1) * b_scale


def ids_to_analog_bits(cls_map: torch.Tensor, inst_map: torch.Tensor, cfg: ModelConfig) -> torch.Tensor:
    """Class and instance maps [B, H, W] -> analog bits [B, H, W, class_bits + instance_bits]."""
    bits = torch.cat([int2bits(cls_map, cfg.class_bits), int2bits(inst_map, cfg.instance_bits)], -1)
    return to_analog(bits, cfg.b_scale)


def prev_maps_to_analog_bits(prev_maps: torch.Tensor, cfg: ModelConfig) -> torch.Tensor:
    """Previous frames' maps [B, k, H, W, 2] (oldest first; [..., 0] class, [..., 1] instance)
    -> the video condition [B, H, W, k * n_bits], frame after frame."""
    frames = [ids_to_analog_bits(prev_maps[:, i, ..., 0], prev_maps[:, i, ..., 1], cfg)
              for i in range(prev_maps.shape[1])]
    return torch.cat(frames, -1)


def empty_prev_bits(batch: int, cfg: ModelConfig, device: torch.device | str | None = None) -> torch.Tensor:
    """The video condition for "no previous frame": all-zero integer maps, so every bit is -b."""
    mask_h, mask_w = cfg.mask_size
    channels = cfg.video_prev_masks * cfg.n_bits
    return torch.full((batch, mask_h, mask_w, channels), -cfg.b_scale, device=device)


def split_logits(logits: torch.Tensor, cfg: ModelConfig) -> list[torch.Tensor]:
    """[..., 2^cb + 2^ib] -> [class logits [..., 2^cb], instance logits [..., 2^ib]]."""
    return list(torch.split(logits, [2**b for b in cfg.group_bits], dim=-1))


def expected_analog_bits(logits: torch.Tensor, cfg: ModelConfig) -> torch.Tensor:
    """x̂0 of the softmax head: per group p = softmax(logits), q = p @ BITS, x̂0 = (2q - 1) * b.

    logits [..., 2^cb + 2^ib] -> analog bits [..., cb + ib], each in [-b, b].
    """
    groups = []
    for group_logits, n_bits in zip(split_logits(logits, cfg), cfg.group_bits):
        probs = torch.softmax(group_logits.float(), dim=-1)
        groups.append(probs @ bits_matrix(n_bits, logits.device))
    return to_analog(torch.cat(groups, -1), cfg.b_scale)


def analog_bits_to_ids(x0: torch.Tensor, cfg: ModelConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Threshold x̂0 at 0 per bit, then clamp (spec §1.3): -> (class [...], instance [...]) int64."""
    cls = bits2int(x0[..., : cfg.class_bits] > 0).clamp(max=cfg.num_classes - 1)
    inst = bits2int(x0[..., cfg.class_bits : cfg.n_bits] > 0).clamp(max=cfg.max_instances - 1)
    return cls, inst


def target_ids(cls_map: torch.Tensor, inst_map: torch.Tensor, cfg: ModelConfig) -> list[torch.Tensor]:
    """The softmax targets: bits2int of each group of the clean analog bits, i.e. the ids reduced
    to the group's bit width (ids are expected to fit; out-of-range ids keep their low bits)."""
    return [cls_map.long() & (2**cfg.class_bits - 1), inst_map.long() & (2**cfg.instance_bits - 1)]
