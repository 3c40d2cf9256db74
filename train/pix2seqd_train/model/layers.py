"""Building blocks shared by the backbones, the transformers, the fusion and the TransUNet.

Only ops the Rust/WGSL engine mirrors: conv2d, linear, Batch/Group/LayerNorm, ReLU/ReLU6/SiLU/
exact GELU, nearest upsampling, max-pool, concat and multi-head attention.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# The official code normalises sin-cos coordinates to [0, 6.2831852] (not exactly 2*pi).
POSITION_NORMALIZATION_MAX = 6.2831852
GROUP_NORM_EPS = 1e-5
LAYER_NORM_EPS = 1e-6


# ---- initialisers --------------------------------------------------------------------------------
def _fans(weight: torch.Tensor) -> tuple[int, int]:
    receptive = weight[0][0].numel() if weight.dim() > 2 else 1
    return weight.shape[1] * receptive, weight.shape[0] * receptive


def variance_scaling_(weight: torch.Tensor, scale: float = 1.0, mode: str = "fan_avg",
                      distribution: str = "uniform") -> torch.Tensor:
    """Keras VarianceScaling for [out, in, kh, kw] / [out, in] weights."""
    fan_in, fan_out = _fans(weight)
    fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    variance = scale / max(1.0, fan)
    with torch.no_grad():
        if distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return weight.uniform_(-limit, limit)
        # truncated normal at 2 std, std corrected for the truncation (Keras' 0.8796...)
        std = math.sqrt(variance) / 0.87962566103423978
        return nn.init.trunc_normal_(weight, std=std, a=-2 * std, b=2 * std)


def init_conv_(conv: nn.Conv2d | nn.Linear, scale: float = 1.0) -> None:
    """VarianceScaling(scale, fan_avg, uniform) and zero bias (fusion, TransUNet, time MLP)."""
    variance_scaling_(conv.weight, scale)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def init_linear_glorot_(linear: nn.Linear) -> None:
    """Keras Dense defaults: Glorot-uniform kernel, zero bias (transformer layers)."""
    nn.init.xavier_uniform_(linear.weight)
    if linear.bias is not None:
        nn.init.zeros_(linear.bias)


# ---- normalisation -------------------------------------------------------------------------------
def group_norm(channels: int, groups_from: int | None = None) -> nn.GroupNorm:
    """GroupNorm with min(C/4, 32) groups, where C is `groups_from` (default: `channels`)."""
    groups = min((groups_from or channels) // 4, 32)
    if groups < 1 or channels % groups:
        raise ValueError(f"GroupNorm: {channels} channels cannot form {groups} groups")
    return nn.GroupNorm(groups, channels, eps=GROUP_NORM_EPS)


def layer_norm(dim: int) -> nn.LayerNorm:
    return nn.LayerNorm(dim, eps=LAYER_NORM_EPS)


# ---- convolution + BatchNorm ---------------------------------------------------------------------
def tf_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME": out = ceil(size / stride), total = max((out-1)*stride + kernel - size, 0),
    (before, after) = (total // 2, total - total // 2)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


ACTIVATIONS = {"relu": nn.ReLU, "relu6": nn.ReLU6, "silu": nn.SiLU, "none": nn.Identity}


class ConvBN(nn.Module):
    """conv (no bias) -> BatchNorm -> activation; `fold_batchnorm_` turns it into conv (with bias).

    padding "symmetric": (k-1)/2 on every side (PyTorch padding); "tf_same": TensorFlow SAME, which
    pads (total//2, total - total//2) and matters for stride 2 on even sizes (EfficientNet weights).
    Parameter names: `conv.weight` [out, in/groups, k, k], `bn.{weight,bias,running_mean,running_var}`;
    after folding `conv.weight` and `conv.bias`.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1,
                 act: str = "relu", padding: str = "symmetric", bn_eps: float = 1e-5,
                 bn_momentum: float = 0.1) -> None:
        super().__init__()
        self.kernel, self.stride, self.padding_mode = kernel, stride, padding
        native_pad = (kernel - 1) // 2 if padding == "symmetric" else 0
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, native_pad, groups=groups, bias=False)
        self.bn: nn.Module = nn.BatchNorm2d(out_ch, eps=bn_eps, momentum=bn_momentum)
        self.act = ACTIVATIONS[act]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding_mode == "tf_same":
            top, bottom = tf_same_padding(x.shape[-2], self.kernel, self.stride)
            left, right = tf_same_padding(x.shape[-1], self.kernel, self.stride)
            x = F.pad(x, (left, right, top, bottom))
        return self.act(self.bn(self.conv(x)))

    @torch.no_grad()
    def fold_batchnorm_(self) -> None:
        """W' = W * gamma / sqrt(var + eps) per output channel; b' = beta - mean * gamma / sqrt(var + eps)."""
        bn = self.bn
        if not isinstance(bn, nn.BatchNorm2d):
            return
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        folded = nn.Conv2d(self.conv.in_channels, self.conv.out_channels, self.kernel, self.stride,
                           self.conv.padding, groups=self.conv.groups, bias=True)
        folded = folded.to(self.conv.weight.device, self.conv.weight.dtype)
        folded.weight.copy_(self.conv.weight * scale.view(-1, 1, 1, 1))
        folded.bias.copy_(bn.bias - bn.running_mean * scale)
        self.conv, self.bn = folded, nn.Identity()

    def unfold_structure_(self) -> None:
        """Give the conv a bias and drop the BN without computing anything (to load folded weights)."""
        if isinstance(self.bn, nn.BatchNorm2d):
            self.conv.bias = nn.Parameter(torch.zeros(self.conv.out_channels, device=self.conv.weight.device))
            self.bn = nn.Identity()


def fold_all_batchnorm_(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, ConvBN):
            m.fold_batchnorm_()


# ---- sin-cos codes -------------------------------------------------------------------------------
def sincos_1d(coords: torch.Tensor, dim: int) -> torch.Tensor:
    """[...] -> [..., dim]: [sin(c * w_0..w_{d/2-1}), cos(c * w_0..w_{d/2-1})], w_j = 10000^(-2j/dim)."""
    half = dim // 2
    freqs = 1.0 / torch.pow(torch.tensor(10000.0, device=coords.device),
                            torch.arange(half, device=coords.device, dtype=torch.float32) * 2 / dim)
    angles = coords.float().unsqueeze(-1) * freqs
    return torch.cat([torch.sin(angles), torch.cos(angles)], -1)


def _normalized_coords(length: int, device: torch.device | None) -> torch.Tensor:
    coords = torch.arange(length, device=device, dtype=torch.float32)
    return coords / max(length - 1, 1) * POSITION_NORMALIZATION_MAX


def sincos_2d(height: int, width: int, dim: int, device: torch.device | None = None) -> torch.Tensor:
    """[height * width, dim] (row-major): the y code (dim/2) then the x code (dim/2), coordinates
    i / (L - 1) * 6.2831852. A grid with one row or column gets the 1-D code of its flat index."""
    if height == 1 or width == 1:
        return sincos_1d(_normalized_coords(height * width, device), dim)
    y = sincos_1d(_normalized_coords(height, device), dim // 2)
    x = sincos_1d(_normalized_coords(width, device), dim // 2)
    code = torch.cat([y[:, None, :].expand(height, width, -1), x[None, :, :].expand(height, width, -1)], -1)
    return code.reshape(height * width, dim)


# ---- attention and MLP ---------------------------------------------------------------------------
class MultiHeadAttention(nn.Module):
    """Keras-style MHA: q, k, v and out projections with bias; head dim = dim / heads;
    softmax(q k^T / sqrt(head_dim)) v per head; heads are contiguous slices of the projected dim."""

    def __init__(self, dim: int, heads: int, kv_dim: int | None = None) -> None:
        super().__init__()
        kv_dim = kv_dim or dim
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(kv_dim, dim)
        self.v = nn.Linear(kv_dim, dim)
        self.out = nn.Linear(dim, dim)
        for linear in (self.q, self.k, self.v, self.out):
            init_linear_glorot_(linear)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, dim = x.shape
        return x.view(batch, length, self.heads, dim // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        context = x if context is None else context
        q, k, v = self._split(self.q(x)), self._split(self.k(context)), self._split(self.v(context))
        y = F.scaled_dot_product_attention(q, k, v)
        batch, _, length, _ = y.shape
        return self.out(y.transpose(1, 2).reshape(batch, length, -1))


class FeedForward(nn.Module):
    """fc1 -> exact GELU -> dropout -> fc2."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.dropout = nn.Dropout(dropout)
        init_linear_glorot_(self.fc1)
        init_linear_glorot_(self.fc2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.dropout(F.gelu(self.fc1(x))))


class DropPath(nn.Module):
    """Stochastic depth per example (training only)."""

    def __init__(self, rate: float = 0.0) -> None:
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        mask = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), device=x.device, dtype=x.dtype)
        return x * torch.floor(mask + keep) / keep


def upsample_nearest(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Nearest-neighbour upsampling of NCHW by an integer factor (pixel replication)."""
    return x if factor == 1 else F.interpolate(x, scale_factor=factor, mode="nearest")
