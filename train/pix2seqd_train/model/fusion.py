"""Multi-scale fusion "pyramid_merge" (spec §2.2): [C2, C3, T] -> F at mask resolution.

UpsampleBlock([x_hr, x_lr]):
    y   = SiLU(lateral_norm(lateral(x_lr)))            # 1x1 conv -> C_hr channels, GroupNorm
    out = SiLU(norm(conv(x_hr + upsample_nearest(y))))  # 3x3 conv -> block dim, GroupNorm
with x_hr = 0 for the final ("solo") block. The list is merged from low to high resolution.

Plan (static, from the config's sizes), generalising the official FeaturePyramidMerge:
* a high-res map larger than the mask is skipped (x passes through);
* a block's dim is the high-res map's channels, except the block whose output is at mask
  resolution, which outputs `fusion.dim` (official configs: identical, since C2 has 256 = dim);
* after the pyramid, if x is still below mask resolution a solo block (dim = fusion.dim)
  upsamples it by the remaining integer factor; otherwise the final block is the identity.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .layers import group_norm, init_conv_, upsample_nearest


@dataclass(frozen=True)
class MergeStep:
    """One fusion block: merge the tap `hr_index` (None: solo block) into x, upsampling x by `factor`."""

    hr_index: int | None
    in_channels: int  # channels of x (the low-res input)
    hr_channels: int  # channels of the high-res map (solo block: = out_channels)
    out_channels: int
    factor: int


def plan_fusion(channels: list[int], sizes: list[tuple[int, int]], mask_size: tuple[int, int],
                dim: int) -> list[MergeStep]:
    """channels / sizes of [C2, C3, T] (high -> low resolution) -> the fusion blocks in order."""
    steps: list[MergeStep] = []
    x_channels, x_size = channels[-1], sizes[-1]
    for i in range(len(channels) - 2, -1, -1):
        hr_size = sizes[i]
        if hr_size[0] > mask_size[0] or hr_size[1] > mask_size[1]:
            continue  # high-res map larger than the mask: keep the low-res one
        factor = hr_size[0] // x_size[0]
        if hr_size[0] != x_size[0] * factor or hr_size[1] != x_size[1] * factor:
            raise ValueError(f"fusion: {x_size} does not upsample to {hr_size} by an integer factor")
        out_channels = dim if tuple(hr_size) == tuple(mask_size) else channels[i]
        steps.append(MergeStep(i, x_channels, channels[i], out_channels, factor))
        x_channels, x_size = out_channels, hr_size
    if tuple(x_size) != tuple(mask_size):
        factor = mask_size[0] // x_size[0]
        if mask_size[0] != x_size[0] * factor or mask_size[1] != x_size[1] * factor:
            raise ValueError(f"fusion: {x_size} does not upsample to mask {mask_size}")
        steps.append(MergeStep(None, x_channels, dim, dim, factor))
    return steps


class UpsampleBlock(nn.Module):
    def __init__(self, step: MergeStep) -> None:
        super().__init__()
        self.step = step
        self.lateral = nn.Conv2d(step.in_channels, step.hr_channels, 1)
        self.lateral_norm = group_norm(step.hr_channels)
        self.conv = nn.Conv2d(step.hr_channels, step.out_channels, 3, padding=1)
        self.norm = group_norm(step.out_channels)
        init_conv_(self.lateral)
        init_conv_(self.conv)

    def forward(self, x_hr: torch.Tensor | None, x_lr: torch.Tensor) -> torch.Tensor:
        y = upsample_nearest(F.silu(self.lateral_norm(self.lateral(x_lr))), self.step.factor)
        return F.silu(self.norm(self.conv(y if x_hr is None else x_hr + y)))


class FeaturePyramidMerge(nn.Module):
    """forward([C2, C3, T]) -> F [B, dim, Hm, Wm]; blocks are `blocks.{j}` in plan order."""

    def __init__(self, channels: list[int], sizes: list[tuple[int, int]], mask_size: tuple[int, int], dim: int) -> None:
        super().__init__()
        self.plan = plan_fusion(channels, sizes, mask_size, dim)
        self.blocks = nn.ModuleList(UpsampleBlock(step) for step in self.plan)
        self.out_channels = self.plan[-1].out_channels if self.plan else channels[-1]

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        for block in self.blocks:
            hr_index = block.step.hr_index
            x = block(None if hr_index is None else features[hr_index], x)
        return x
