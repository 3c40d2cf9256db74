"""Pre-LN transformer layers and the image encoder over the stride-16 tokens (spec §2.1, §2.3)."""

from __future__ import annotations

import torch
from torch import nn

from ..config import EncoderConfig
from .layers import DropPath, FeedForward, MultiHeadAttention, init_linear_glorot_, layer_norm, sincos_2d


class EncoderLayer(nn.Module):
    """x += DropPath(MHA(LN(x))); x += DropPath(FFN(LN(x)))."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, dropout: float = 0.0, drop_path: float = 0.0) -> None:
        super().__init__()
        self.attn_norm = layer_norm(dim)
        self.attn = MultiHeadAttention(dim, heads)
        self.mlp_norm = layer_norm(dim)
        self.mlp = FeedForward(dim, mlp_dim, dropout)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.attn_norm(x)))
        return x + self.drop_path(self.mlp(self.mlp_norm(x)))


class DecoderLayer(nn.Module):
    """x += MHA_self(LN x); x += MHA_cross(LN x, context, context); x += FFN(LN x).
    The context (encoder tokens E) is used as is: no LayerNorm, no position code."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, context_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.self_norm = layer_norm(dim)
        self.self_attn = MultiHeadAttention(dim, heads)
        self.cross_norm = layer_norm(dim)
        self.cross_attn = MultiHeadAttention(dim, heads, kv_dim=context_dim)
        self.mlp_norm = layer_norm(dim)
        self.mlp = FeedForward(dim, mlp_dim, dropout)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.self_norm(x))
        x = x + self.cross_attn(self.cross_norm(x), context)
        return x + self.mlp(self.mlp_norm(x))


class ImageEncoder(nn.Module):
    """C4 [B, C, h, w] -> tokens E [B, h*w, dim] (row-major: index = y * w + x).

    flatten -> Dropout -> proj (Linear C -> dim) -> proj_norm (LN) -> + 2-D sin-cos code ->
    `layers` pre-LN encoder layers -> out_norm (LN, eps 1e-6).
    """

    def __init__(self, in_channels: int, cfg: EncoderConfig) -> None:
        super().__init__()
        self.dim = cfg.dim
        self.dropout = nn.Dropout(cfg.dropout)
        self.proj = nn.Linear(in_channels, cfg.dim)
        init_linear_glorot_(self.proj)
        self.proj_norm = layer_norm(cfg.dim)
        self.layers = nn.ModuleList(
            EncoderLayer(cfg.dim, cfg.heads, cfg.mlp_dim, cfg.dropout, cfg.drop_path) for _ in range(cfg.layers)
        )
        self.out_norm = layer_norm(cfg.dim)

    def forward(self, c4: torch.Tensor) -> torch.Tensor:
        _, _, height, width = c4.shape
        tokens = c4.flatten(2).transpose(1, 2)
        x = self.proj_norm(self.proj(self.dropout(tokens)))
        x = x + sincos_2d(height, width, self.dim, device=x.device).to(x.dtype)
        for layer in self.layers:
            x = layer(x)
        return self.out_norm(x)
