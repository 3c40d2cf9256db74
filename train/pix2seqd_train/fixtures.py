"""Parity fixtures for the Rust engine: tiny random models, their inputs and every intermediate.

    PYTHONPATH=train python -m pix2seqd_train.fixtures --out tests/fixtures    # from the repo root

For each tiny config (train/configs/tiny-*.json) writes OUT/NAME/model.safetensors + model.json
(exported fp32, BatchNorm folded) and OUT/NAME/activations.safetensors. The weights are random but
deterministic (fixed torch seed) and deliberately non-trivial: the near-zero-initialised convs get
small random weights, BatchNorm gets random statistics and affine parameters before folding, and
Group/LayerNorm affine parameters are perturbed. Activations are computed with the exported model
as loaded back (exactly the weights the engine reads). Tensor names and layouts:
tests/fixtures/README.md.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from . import CONFIGS_DIR, REPO_ROOT
from .config import ModelConfig, load_config
from .diffusion import sample, step_times
from .export import export, load_exported
from .model.layers import variance_scaling_
from .model.pix2seqd import Pix2SeqD, build_model
from .model.transunet import ResBlock
from .panoptic import thing_vote_postprocess

FIXTURES = {
    # name: (torch seed of the weights, noise seed of the sampler)
    "tiny-efficientnet": (1234, 7),
    "tiny-resnet": (5678, 8),
}
FIXTURE_STEPS = 3
FIXTURE_TD = 1.0
# Peaky logits keep the final expected bits away from the 0 threshold, so the engine's small
# float differences cannot flip a bit; the seeds above were picked for a margin >= MIN_BIT_MARGIN.
CONV_OUT_STD = 30.0
MIN_BIT_MARGIN = 1e-4


@torch.no_grad()
def randomize_for_fixture_(model: Pix2SeqD) -> None:
    """Makes the freshly initialised model exercise every parameter (see module docstring)."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0.0, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.uniform_(0.5, 1.5)
            m.bias.normal_(0.0, 0.1)
        elif isinstance(m, (nn.GroupNorm, nn.LayerNorm)):
            m.weight.uniform_(0.8, 1.2)
            m.bias.normal_(0.0, 0.05)
        elif isinstance(m, ResBlock):
            variance_scaling_(m.conv1.weight, 0.5)
            m.conv1.bias.normal_(0.0, 0.02)
    model.decoder.conv_out.weight.normal_(0.0, CONV_OUT_STD)
    model.decoder.conv_out.bias.normal_(0.0, 0.1)


def synthetic_image(height: int, width: int) -> torch.Tensor:
    """[1, 3, H, W] in [0, 1]: colour gradients, a bright rectangle and a dark disc (no data files)."""
    y = torch.linspace(0.0, 1.0, height).view(height, 1).expand(height, width)
    x = torch.linspace(0.0, 1.0, width).view(1, width).expand(height, width)
    image = torch.stack([x, y, 0.5 + 0.5 * torch.sin(6.0 * x + 4.0 * y) * 0.8], 0).clone()
    image[:, height // 5 : height // 2, width // 8 : width // 3] = torch.tensor([0.9, 0.8, 0.1]).view(3, 1, 1)
    disc = (y - 0.65) ** 2 * (height / width) ** -2 + (x - 0.7) ** 2 < 0.04
    image[:, disc] = torch.tensor([0.1, 0.2, 0.6]).view(3, 1)
    return image.clamp(0.0, 1.0).unsqueeze(0)


def synthetic_prev_maps(cfg: ModelConfig) -> torch.Tensor:
    """[1, k, Hm, Wm, 2] int64 previous masks for video configs: shifted stripes of classes / ids."""
    mask_h, mask_w = cfg.mask_size
    rows = torch.arange(mask_h).view(mask_h, 1)
    cols = torch.arange(mask_w).view(1, mask_w)
    frames = []
    for frame in range(cfg.video_prev_masks):
        cls = ((cols + frame) // 4 + rows // 6) % cfg.num_classes
        inst = ((cols + 2 * frame) // 5 + 3 * (rows // 4)) % cfg.max_instances
        frames.append(torch.stack([cls, inst], -1))
    return torch.stack(frames, 0).unsqueeze(0)


def build_fixture_model(cfg: ModelConfig, torch_seed: int) -> Pix2SeqD:
    torch.manual_seed(torch_seed)
    model = build_model(cfg, load_pretrained=False)
    randomize_for_fixture_(model)
    return model.eval()


@torch.no_grad()
def activations(model: Pix2SeqD, noise_seed: int) -> dict[str, torch.Tensor]:
    """Every intermediate of one sampling run on the synthetic image (names: tests/fixtures/README.md)."""
    cfg = model.cfg
    image = synthetic_image(*cfg.image_size)
    prev_maps = synthetic_prev_maps(cfg) if cfg.video_prev_masks else None
    x0, (cls, inst), trace = sample(model, image, FIXTURE_STEPS, FIXTURE_TD, noise_seed, prev_maps=prev_maps,
                                    return_trace=True)
    times = step_times(FIXTURE_STEPS, FIXTURE_TD)
    gammas = torch.tensor(trace["gammas"], dtype=torch.float32)
    tensors = {
        "image": image,
        "seed": torch.tensor([noise_seed], dtype=torch.int64),
        "steps": torch.tensor([FIXTURE_STEPS], dtype=torch.int64),
        "td": torch.tensor([FIXTURE_TD], dtype=torch.float32),
        "encoder.tokens": trace["tokens"],
        "fusion.features": trace["features"],
        "sampler.noise": trace["noise"],
        "sampler.t_now": torch.tensor([t for t, _ in times], dtype=torch.float32),
        "sampler.t_next": torch.tensor([t for _, t in times], dtype=torch.float32),
        "sampler.gamma": gammas,
        "decoder.time_embedding.step0": model.decoder.time_embed(gammas[:1]),
        "decoder.logits.step0": trace["logits_step0"],
        "sampler.x0": torch.stack(trace["x0_steps"]),
        "sampler.m": torch.stack(trace["m_steps"]),
        "output.x0": x0,
        "output.class": cls.to(torch.int32),
        "output.instance": inst.to(torch.int32),
    }
    for i, tap in enumerate(trace["taps"]):
        tensors[f"backbone.tap{i}"] = tap
    if prev_maps is not None:
        tensors["sampler.prev_maps"] = prev_maps.to(torch.int32)
        tensors["sampler.prev_bits"] = trace["prev_bits"]
    return {k: v.detach().contiguous() for k, v in tensors.items()}


def bit_margin(x0: torch.Tensor) -> float:
    """Smallest |x̂0| of the final prediction: how far the thresholded bits are from flipping."""
    return float(x0.abs().min())


def generate(name: str, out_dir: str | Path) -> Path:
    """Writes one fixture directory and returns it (single-threaded, so reductions run in one
    fixed order whatever the machine's core count)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _generate(name, Path(out_dir) / name)
    finally:
        torch.set_num_threads(threads)


def _generate(name: str, fixture_dir: Path) -> Path:
    torch_seed, noise_seed = FIXTURES[name]
    cfg = load_config(CONFIGS_DIR / f"{name}.json")
    fixture_dir.mkdir(parents=True, exist_ok=True)
    model = build_fixture_model(cfg, torch_seed)
    card = {"purpose": "parity fixture: random weights, not trained", "torch_seed": torch_seed}
    export(model, cfg, fixture_dir / "model", dtype="fp32", card_extra=card)
    exported = load_exported(fixture_dir / "model")
    tensors = activations(exported, noise_seed)
    margin = bit_margin(tensors["output.x0"])
    if not margin >= MIN_BIT_MARGIN or not math.isfinite(margin):
        raise RuntimeError(f"{name}: final x̂0 too close to the threshold ({margin}); change the seeds")
    save_file(tensors, str(fixture_dir / "activations.safetensors"),
              metadata={"config": name, "seed": str(noise_seed), "steps": str(FIXTURE_STEPS),
                        "td": str(FIXTURE_TD), "min_abs_x0": f"{margin:.6g}"})
    return fixture_dir


THING_VOTE_CASE = "thing_vote_case.json"


def thing_vote_case() -> dict:
    """A shared case for ``thing_vote`` (Python and Rust twins): a 24x32 map of class blocks with
    noisy, fragmented instance ids, like a half-trained model's, and the answer for min_pixels 6."""
    rng = np.random.default_rng(0)
    height, width, min_pixels = 24, 32, 6
    isthing = [False, False, False, True, True, True]  # 0 void, 1-2 stuff, 3-5 things
    cls = np.kron(rng.integers(0, 6, size=(6, 8)), np.ones((4, 4), dtype=np.int64))
    inst = np.kron(rng.integers(0, 8, size=(3, 4)), np.ones((8, 8), dtype=np.int64))
    noisy = rng.random((height, width)) < 0.3
    inst = np.where(noisy, rng.integers(0, 8, size=(height, width)), inst)
    out_cls, out_inst = thing_vote_postprocess(torch.from_numpy(cls), torch.from_numpy(inst), isthing, min_pixels)
    return {"height": height, "width": width, "min_pixels": min_pixels, "isthing": isthing,
            "class": cls.ravel().tolist(), "instance": inst.ravel().tolist(),
            "out_class": out_cls.ravel().tolist(), "out_instance": out_inst.ravel().tolist()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write the Rust parity fixtures.")
    parser.add_argument("--out", default=str(REPO_ROOT / "tests" / "fixtures"),
                        help="output directory (default: the repository's tests/fixtures)")
    parser.add_argument("--only", choices=sorted(FIXTURES), help="write one fixture only")
    args = parser.parse_args(argv)
    for name in [args.only] if args.only else list(FIXTURES):
        path = generate(name, args.out)
        size = sum(f.stat().st_size for f in path.iterdir())
        print(f"wrote {path} ({size / 1024:.0f} KiB)")
    if not args.only:
        case = Path(args.out) / THING_VOTE_CASE
        case.write_text(json.dumps(thing_vote_case(), separators=(",", ":")) + "\n")
        print(f"wrote {case}")


if __name__ == "__main__":
    main()
