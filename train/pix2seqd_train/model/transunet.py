"""TransUNet denoiser (spec §2.3-§2.5).

conv_in 1x1 + GroupNorm -> down levels (ResBlocks, 3x3/2 conv between levels) -> bottleneck
transformer (GN, 1x1 conv, 2-D sin-cos code, one time token, decoder layers with cross-attention
to E, GN, 1x1 conv) -> up levels (concat a popped skip before every ResBlock; nearest x2 + 3x3
conv between levels) -> GN -> SiLU -> conv_out 1x1 to 2^class_bits + 2^instance_bits logits.
Skips are pushed on the way down (conv_in output, every ResBlock output, every downsample output)
and popped LIFO on the way up. Stride-2 convs pad 1 on every side (PyTorch, symmetric; TF "SAME"
would pad 0 before / 1 after on even sizes): our choice, mirrored by the engine (spec §6.10).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import DecoderConfig
from .layers import group_norm, init_conv_, sincos_1d, sincos_2d, upsample_nearest
from .transformer import DecoderLayer

ZERO_INIT_SCALE = 1e-10  # VarianceScaling scale of conv1 in every ResBlock and of conv_out


class TimeEmbedding(nn.Module):
    """ScalarEmbedding: e = sincos_1d(gamma * time_scaling, d); emb = SiLU(fc1(SiLU(fc0(e)))), 4d wide."""

    def __init__(self, dim: int, time_scaling: float) -> None:
        super().__init__()
        self.dim, self.time_scaling = dim, time_scaling
        self.fc0 = nn.Linear(dim, 4 * dim)
        self.fc1 = nn.Linear(4 * dim, 4 * dim)
        init_conv_(self.fc0)
        init_conv_(self.fc1)

    def forward(self, gamma: torch.Tensor) -> torch.Tensor:
        code = sincos_1d(gamma * self.time_scaling, self.dim)
        return F.silu(self.fc1(F.silu(self.fc0(code))))


class ResBlock(nn.Module):
    """skip = 1x1 conv (if C_in != C_out); h = conv0(SiLU(norm0(x)));
    (scale, shift) = split(time_proj(emb)); h = SiLU(norm1(h) * (1 + scale) + shift);
    h = conv1(dropout(h)); out = (h + skip) / sqrt(2)."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm0 = group_norm(in_ch)
        self.conv0 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.time_proj = nn.Linear(emb_dim, 2 * out_ch)
        self.norm1 = group_norm(out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv1 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else None
        for layer in (self.conv0, self.time_proj, self.skip):
            if layer is not None:
                init_conv_(layer)
        init_conv_(self.conv1, ZERO_INIT_SCALE)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        skip = self.skip(x) if self.skip is not None else x
        h = self.conv0(F.silu(self.norm0(x)))
        scale, shift = self.time_proj(emb)[:, :, None, None].chunk(2, dim=1)
        h = F.silu(self.norm1(h) * (1 + scale) + shift)
        h = self.conv1(self.dropout(h))
        return (h + skip) / math.sqrt(2.0)


class Bottleneck(nn.Module):
    """norm_in (GN, groups from the transformer dim) -> conv_in 1x1 -> + 2-D sin-cos code -> append
    the time token time_token(emb) -> decoder layers (self-attn over all h*w+1 tokens, cross-attn
    to E, FFN) -> drop the time token -> norm_out (GN) -> conv_out 1x1. No residual around it."""

    def __init__(self, in_ch: int, cfg: DecoderConfig, emb_dim: int, context_dim: int) -> None:
        super().__init__()
        dim = cfg.transformer_dim
        self.dim = dim
        self.norm_in = group_norm(in_ch, groups_from=dim)
        self.conv_in = nn.Conv2d(in_ch, dim, 1)
        self.time_token = nn.Linear(emb_dim, dim)
        self.layers = nn.ModuleList(
            DecoderLayer(dim, cfg.transformer_heads, cfg.transformer_mlp_dim, context_dim, cfg.dropout)
            for _ in range(cfg.transformer_layers)
        )
        self.norm_out = group_norm(dim)
        self.conv_out = nn.Conv2d(dim, dim, 1)
        for layer in (self.conv_in, self.time_token, self.conv_out):
            init_conv_(layer)

    def forward(self, x: torch.Tensor, emb: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(self.norm_in(x))
        batch, dim, height, width = x.shape
        tokens = x.flatten(2).transpose(1, 2) + sincos_2d(height, width, dim, device=x.device).to(x.dtype)
        tokens = torch.cat([tokens, self.time_token(emb)[:, None, :]], 1)
        for layer in self.layers:
            tokens = layer(tokens, context)
        x = tokens[:, :-1].transpose(1, 2).reshape(batch, dim, height, width)
        return self.conv_out(self.norm_out(x))


class DownLevel(nn.Module):
    def __init__(self, res: list[ResBlock], downsample: nn.Conv2d | None) -> None:
        super().__init__()
        self.res = nn.ModuleList(res)
        self.downsample = downsample


class UpLevel(nn.Module):
    def __init__(self, res: list[ResBlock], upsample: nn.Conv2d | None) -> None:
        super().__init__()
        self.res = nn.ModuleList(res)
        self.upsample = upsample


class TransUNet(nn.Module):
    """forward(x [B, C_in, Hm, Wm], gamma [B], context E [B, N, D]) -> logits [B, n_logits, Hm, Wm]."""

    def __init__(self, cfg: DecoderConfig, in_channels: int, out_channels: int, context_dim: int,
                 time_scaling: float) -> None:
        super().__init__()
        emb_dim = 4 * cfg.time_embed_dim
        widths = [cfg.dim * m for m in cfg.ch_mult]
        last = len(widths) - 1
        self.time_embed = TimeEmbedding(cfg.time_embed_dim, time_scaling)
        self.conv_in = nn.Conv2d(in_channels, widths[0], 1)
        self.norm_in = group_norm(widths[0])
        init_conv_(self.conv_in)

        skips = [widths[0]]
        ch = widths[0]
        down = []
        for i, (width, n_res) in enumerate(zip(widths, cfg.n_res_blocks)):
            res = []
            for _ in range(n_res):
                res.append(ResBlock(ch, width, emb_dim, cfg.dropout))
                ch = width
                skips.append(ch)
            downsample = None
            if i != last:
                downsample = nn.Conv2d(ch, width, 3, stride=2, padding=1)
                init_conv_(downsample)
                skips.append(width)
            down.append(DownLevel(res, downsample))
        self.down = nn.ModuleList(down)

        self.mid = Bottleneck(ch, cfg, emb_dim, context_dim)
        ch = cfg.transformer_dim

        up: list[UpLevel] = []
        for i in range(last, -1, -1):
            width, n_res = widths[i], cfg.n_res_blocks[i]
            res = []
            for _ in range(n_res + 1):
                res.append(ResBlock(ch + skips.pop(), width, emb_dim, cfg.dropout))
                ch = width
            upsample = None
            if i != 0:
                upsample = nn.Conv2d(ch, width, 3, padding=1)
                init_conv_(upsample)
            up.append(UpLevel(res, upsample))
        assert not skips
        # up.{i} holds level i (like down.{i}); it runs in the order last..0.
        self.up = nn.ModuleList(reversed(up))

        self.norm_out = group_norm(widths[0], groups_from=cfg.dim)  # official: groups from `dim`
        self.conv_out = nn.Conv2d(widths[0], out_channels, 1)
        init_conv_(self.conv_out, ZERO_INIT_SCALE)

    def forward(self, x: torch.Tensor, gamma: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        emb = self.time_embed(gamma)
        x = self.norm_in(self.conv_in(x))
        skips = [x]
        for level in self.down:
            for block in level.res:
                x = block(x, emb)
                skips.append(x)
            if level.downsample is not None:
                x = level.downsample(x)
                skips.append(x)
        x = self.mid(x, emb, context)
        for level in reversed(self.up):
            for block in level.res:
                x = block(torch.cat([x, skips.pop()], 1), emb)
            if level.upsample is not None:
                x = level.upsample(upsample_nearest(x, 2))
        return self.conv_out(F.silu(self.norm_out(x)))
