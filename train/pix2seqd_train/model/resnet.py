"""ResNet-50 "c4" backbone (spec §2.1): ResNet v1.5 (stride on the 3x3 conv), BatchNorm, no C5.

stem 7x7/2 conv 64 + BN + ReLU -> 3x3/2 max-pool -> C2 (3 bottlenecks, s4, 256 ch) -> C3 (4, s8,
512) -> C4 (6, s16, 1024). Convs pad symmetrically ((k-1)/2; the TF code's FixedPadding is
symmetric too). The max-pool pads 1 on every side (PyTorch), unlike TF "SAME" (0 before / 1 after
on even sizes): our choice, consistent between trainer and engine (spec §6.10); after the ReLU,
zero padding and -inf padding give the same maximum.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import BackboneConfig
from .layers import ConvBN, variance_scaling_

EXPANSION = 4


class Bottleneck(nn.Module):
    """reduce 1x1 + BN + ReLU -> spatial 3x3/stride + BN + ReLU -> expand 1x1 + BN (gamma = 0 init);
    shortcut = 1x1/stride conv + BN on the first block of a stage; out = ReLU(x + shortcut)."""

    def __init__(self, in_ch: int, width: int, stride: int) -> None:
        super().__init__()
        out_ch = width * EXPANSION
        self.reduce = ConvBN(in_ch, width, 1)
        self.spatial = ConvBN(width, width, 3, stride)
        self.expand = ConvBN(width, out_ch, 1, act="none")
        self.shortcut = ConvBN(in_ch, out_ch, 1, stride, act="none") if (stride != 1 or in_ch != out_ch) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.shortcut(x) if self.shortcut is not None else x
        return F.relu(self.expand(self.spatial(self.reduce(x))) + shortcut)


class ResNetC4(nn.Module):
    """Returns the taps [C2, C3, C4] (strides 4, 8, 16)."""

    def __init__(self, cfg: BackboneConfig) -> None:
        super().__init__()
        self.input_scale, self.input_offset = cfg.input_scale, cfg.input_offset
        self.stem = ConvBN(3, cfg.stem_channels, 7, 2)
        stages = []
        in_ch = cfg.stem_channels
        for stage, (width, count) in enumerate(zip(cfg.widths, cfg.blocks)):
            first_stride = 1 if stage == 0 else 2
            blocks = []
            for b in range(count):
                blocks.append(Bottleneck(in_ch, width, first_stride if b == 0 else 1))
                in_ch = width * EXPANSION
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.tap_channels = [w * EXPANSION for w in cfg.widths]
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # VarianceScaling(): scale 1, fan_in, truncated normal
                variance_scaling_(m.weight, 1.0, "fan_in", "truncated_normal")
        for m in self.modules():
            if isinstance(m, Bottleneck):
                nn.init.zeros_(m.expand.bn.weight)  # last BN of each bottleneck starts at zero

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(images * self.input_scale + self.input_offset)
        x = F.max_pool2d(x, 3, 2, 1)
        taps = []
        for stage in self.stages:
            x = stage(x)
            taps.append(x)
        return taps
