"""ONNX export of a model's two run-time graphs, for benchmarking against ONNX Runtime
(scripts/compare_cpu.py): the image encoder (once per image) and one decoder step (once per
diffusion step), with the same inputs the engine feeds them.

    encoder.onnx       image [1, 3, H, W] in [0, 1]  ->  features [1, Cf, Hm, Wm], tokens [1, N, D]
    decoder_step.onnx  m_t [1, Hm, Wm, n_bits], gamma [1], features, tokens
                       (+ self_cond [1, Hm, Wm, n_bits] if the config self-conditions)
                       (+ prev [1, Hm, Wm, k * n_bits] if it is a video model)
                       ->  logits [1, Hm, Wm, n_logits]

Shapes are fixed at the config's sizes (a benchmark needs nothing dynamic, and fixed shapes let
ONNX Runtime fold and fuse the most). The TorchScript exporter (`dynamo=False`) is used: it needs
no onnxscript at export time and handles every op of these models.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .model.pix2seqd import Pix2SeqD

OPSET = 17


class EncoderGraph(nn.Module):
    """image -> (features, tokens): backbone, transformer encoder and fusion."""

    def __init__(self, model: Pix2SeqD) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features, tokens, _ = self.model.encode(image)
        return features, tokens


class DecoderStepGraph(nn.Module):
    """One denoiser call; the optional inputs follow the config (see the module docstring)."""

    def __init__(self, model: Pix2SeqD) -> None:
        super().__init__()
        self.model = model

    def forward(self, m_t: torch.Tensor, gamma: torch.Tensor, features: torch.Tensor, tokens: torch.Tensor,
                *extra: torch.Tensor) -> torch.Tensor:
        cfg = self.model.cfg
        rest = list(extra)
        self_cond = rest.pop(0) if cfg.self_cond else None
        prev = rest.pop(0) if cfg.video_prev_masks else None
        return self.model.decode(m_t, features, tokens, gamma, prev=prev, self_cond=self_cond)


@dataclass
class OnnxExport:
    """Paths of the two graphs and the example inputs they were traced with (name -> tensor)."""

    encoder: Path
    decoder_step: Path
    encoder_inputs: dict[str, torch.Tensor]
    decoder_inputs: dict[str, torch.Tensor]


def example_inputs(model: Pix2SeqD, seed: int = 0) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Encoder and decoder-step inputs at the config's sizes: a random image, Gaussian m_t, analog
    bits (±b) for the optional masks, and the features/tokens the encoder makes of the image."""
    cfg = model.cfg
    gen = torch.Generator().manual_seed(seed)
    image = torch.rand(1, 3, *cfg.image_size, generator=gen)
    with torch.inference_mode():
        features, tokens, _ = model.encode(image)
    mask_hw = tuple(cfg.mask_size)
    decoder = {"m_t": torch.randn(1, *mask_hw, cfg.n_bits, generator=gen), "gamma": torch.tensor([0.7]),
               "features": features.clone(), "tokens": tokens.clone()}
    if cfg.self_cond:
        decoder["self_cond"] = torch.randn(1, *mask_hw, cfg.n_bits, generator=gen).clamp(-1, 1) * cfg.b_scale
    if cfg.video_prev_masks:
        bits = torch.randint(0, 2, (1, *mask_hw, cfg.video_prev_masks * cfg.n_bits), generator=gen)
        decoder["prev"] = (bits.float() * 2 - 1) * cfg.b_scale
    return {"image": image}, decoder


def _export_graph(module: nn.Module, inputs: dict[str, torch.Tensor], outputs: list[str], path: Path) -> None:
    # eval() first: the exporter restores the wrapper's mode after tracing with `train(mode)`, which
    # recurses, so a wrapper left in training mode would switch the model's dropout/DropPath on.
    module.eval()
    # The tracer warns about every Python-side shape computation; the shapes are fixed here on purpose.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, tuple(inputs.values()), str(path), input_names=list(inputs),
                          output_names=outputs, opset_version=OPSET, dynamo=False, do_constant_folding=True)


def export_onnx(model: Pix2SeqD, out_dir: str | Path, seed: int = 0) -> OnnxExport:
    """Writes OUT_DIR/encoder.onnx and OUT_DIR/decoder_step.onnx for `model` (fp32, eval)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.float().cpu().eval()
    encoder_inputs, decoder_inputs = example_inputs(model, seed)
    encoder_path, decoder_path = out_dir / "encoder.onnx", out_dir / "decoder_step.onnx"
    _export_graph(EncoderGraph(model), encoder_inputs, ["features", "tokens"], encoder_path)
    _export_graph(DecoderStepGraph(model), decoder_inputs, ["logits"], decoder_path)
    return OnnxExport(encoder_path, decoder_path, encoder_inputs, decoder_inputs)


def torch_outputs(model: Pix2SeqD, export: OnnxExport) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The reference outputs of both graphs in eager PyTorch: ([features, tokens], logits)."""
    with torch.inference_mode():
        encoded = list(EncoderGraph(model).eval()(*export.encoder_inputs.values()))
        logits = DecoderStepGraph(model).eval()(*export.decoder_inputs.values())
    return encoded, logits
