"""Parity fixtures for the Rust engine: tiny random models, their inputs and every intermediate.

    PYTHONPATH=train python -m pix2seqd_train.fixtures --out tests/fixtures    # from the repo root
    PYTHONPATH=train python -m pix2seqd_train.fixtures --readout-only         # readout tensors only

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
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from . import CONFIGS_DIR, REPO_ROOT
from .config import ModelConfig, load_config
from .diffusion import sample, step_times
from .export import export, load_exported
from .model.layers import variance_scaling_
from .model.pix2seqd import Pix2SeqD, build_model
from .model.transunet import ResBlock
from .panoptic import thing_vote_postprocess
from .readout import cell_ids, class_void_probability, readout, readout_margin

FIXTURES = {
    # name: (torch seed of the weights, noise seed of the sampler)
    "tiny-efficientnet": (1234, 7),
    "tiny-resnet": (5678, 8),
}
# Made-up letterbox geometry of each fixture's readout: (content_hw, out_hw) on the canvas
# cfg.image_size. Content narrower (tiny-efficientnet) or shorter (tiny-resnet) than the canvas;
# odd output sizes that upsample the content's cells by a non-integer factor.
READOUT_GEOMETRY = {
    "tiny-efficientnet": ((48, 61), (67, 83)),
    "tiny-resnet": ((59, 112), (73, 131)),
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
    content_hw, out_hw = READOUT_GEOMETRY[cfg.name]
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
        "sampler.logits_last": trace["logits_last"],
    }
    tensors.update(readout_tensors(trace["logits_last"][0], x0[0], cfg, content_hw, out_hw))
    for i, tap in enumerate(trace["taps"]):
        tensors[f"backbone.tap{i}"] = tap
    if prev_maps is not None:
        tensors["sampler.prev_maps"] = prev_maps.to(torch.int32)
        tensors["sampler.prev_bits"] = trace["prev_bits"]
    return {k: v.detach().contiguous() for k, v in tensors.items()}


def readout_tensors(logits: torch.Tensor, x0: torch.Tensor, cfg: ModelConfig, content_hw: tuple[int, int],
                    out_hw: tuple[int, int]) -> dict[str, torch.Tensor]:
    """The bilinear readout (readout.py) of one image's last logits [Hm, Wm, L] and final x̂0
    [Hm, Wm, n_bits] on the canvas cfg.image_size: that x̂0 as ``sampler.x0_last`` [1, Hm, Wm, n_bits],
    cell ids and class void probabilities [1, Hm, Wm], ids and margins at ``out_hw``, the geometry."""
    canvas_hw = tuple(cfg.image_size)
    x0 = x0.detach().to("cpu", torch.float32)
    cell_cls, cell_inst = cell_ids(logits, x0, cfg)
    out_cls, out_inst = readout(logits, x0, cfg, canvas_hw, content_hw, out_hw)
    return {
        "sampler.x0_last": x0.clone().unsqueeze(0),
        "output.cell_class": torch.from_numpy(cell_cls).to(torch.int32).unsqueeze(0),
        "output.cell_class_void": torch.from_numpy(class_void_probability(logits, cfg)).unsqueeze(0),
        "output.cell_instance": torch.from_numpy(cell_inst).to(torch.int32).unsqueeze(0),
        "readout.geometry": torch.tensor([*canvas_hw, *content_hw, *out_hw], dtype=torch.int64),
        "readout.class": torch.from_numpy(out_cls).to(torch.int32),
        "readout.instance": torch.from_numpy(out_inst).to(torch.int32),
        "readout.margin": torch.from_numpy(readout_margin(logits, x0, cfg, canvas_hw, content_hw, out_hw)),
    }


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
    readout_gap = float(tensors["readout.margin"].min())
    save_file(tensors, str(fixture_dir / "activations.safetensors"),
              metadata={"config": name, "seed": str(noise_seed), "steps": str(FIXTURE_STEPS),
                        "td": str(FIXTURE_TD), "min_abs_x0": f"{margin:.6g}",
                        "min_readout_margin": f"{readout_gap:.6g}"})
    return fixture_dir


def refresh_readout(name: str, out_dir: str | Path) -> Path:
    """Recompute only the readout tensors (`readout_tensors`: sampler.x0_last, output.cell_*,
    readout.*) and the metadata min_readout_margin of OUT/NAME/activations.safetensors from its
    stored sampler.logits_last and final x̂0 (the last step of sampler.x0), keeping every other
    tensor and metadata entry as stored (bit-identical): for a change of the readout on a machine
    that cannot regenerate the other tensors exactly."""
    path = Path(out_dir) / name / "activations.safetensors"
    cfg = load_config(CONFIGS_DIR / f"{name}.json")
    with safe_open(str(path), "pt") as f:
        metadata = dict(f.metadata() or {})
    tensors = load_file(str(path))
    content_hw, out_hw = READOUT_GEOMETRY[name]
    x0 = tensors["sampler.x0"][-1][0]  # [steps, 1, Hm, Wm, n_bits]: the last step's x̂0 (= output.x0)
    tensors.update(readout_tensors(tensors["sampler.logits_last"][0], x0, cfg, content_hw, out_hw))
    metadata["min_readout_margin"] = f"{float(tensors['readout.margin'].min()):.6g}"
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)
    return path


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


READOUT_CASE = "readout_case.json"
# name: (class_bits, instance_bits, num_classes, max_instances, mask_hw, canvas_hw, content_hw,
#        out_hw, logit grid step, logit range in steps)
READOUT_CASES = {
    # letterboxed (content narrower than the canvas), odd sizes, upsampled ~4.4x / ~7.2x
    "letterbox_upsample": (3, 4, 6, 11, (7, 9), (28, 36), (28, 25), (31, 45), 1 / 64, 256),
    # output smaller than the mask; content shorter than the canvas
    "downsample": (2, 3, 4, 8, (13, 11), (26, 22), (19, 22), (5, 7), 1 / 64, 256),
    # logits on a coarse grid: exact ties between ids in cells and in the interpolated scores
    "ties": (2, 3, 4, 8, (6, 5), (12, 10), (12, 10), (17, 13), 1.0, 1),
    # 3 of 8 class ids and 5 of 16 instance ids valid
    "invalid_ids": (3, 4, 3, 5, (5, 8), (10, 16), (7, 16), (23, 29), 1 / 64, 256),
    # identity geometry: the readout equals the cell ids
    "identity": (2, 2, 4, 4, (6, 7), (6, 7), (6, 7), (6, 7), 1 / 64, 256),
    # one class bit, five instance bits; a 1x3 output from 8x6 content cells
    "thin_output": (1, 5, 2, 32, (8, 8), (16, 16), (16, 12), (1, 3), 1 / 64, 256),
    # hand-made cells (READOUT_BASE_LOGITS) plus small seeded noise: an object whose left cells
    # prefer class 1 and right cells class 2, void the runner-up of both; void cells above it.
    # A plain arg-max of the interpolated logits opens a void gap between the halves; the
    # void-probability rule does not.
    "void_runner_up": (2, 2, 4, 4, (3, 4), (12, 16), (12, 16), (13, 17), 1 / 64, 8),
    # hand-made x̂0 (READOUT_X0): instance id 1 in the left cells, 2 in the right ones; between
    # them bit 0 falls below 0 near the right cells and bit 1 rises above 0 near the left ones, so
    # the mixed bits read id 3, which none of the four corners has
    "mixed_bits_new_id": (1, 2, 2, 4, (2, 2), (8, 8), (8, 8), (3, 16), 1 / 64, 256),
}
# x̂0 of the cases: seeded random values k / 256 with |k| <= READOUT_X0_SPREAD (default 25, so within
# [-0.1, 0.1]; exact zeros read as bit 0), from their own generator so the logits stay as they were.
READOUT_X0_STEP = 1 / 256
READOUT_X0_SPREAD = {"ties": 1}  # x̂0 in {-1, 0, 1} / 256: exact zeros in cells and mixed bits


def _void_runner_up_logits() -> np.ndarray:
    """[3, 4, 4 + 4] logits: row 0 void (instance 0), rows 1-2 class 1 / instance 1 in columns 0-1
    and class 2 / instance 2 in columns 2-3 (p0 ~ 0.12 there: void is their runner-up)."""
    void = [2.5, 0.5, -1.0, -2.0, 2.0, 0.0, -0.5, -1.0]
    left = [1.0, 3.0, -3.0, -2.0, -1.0, 2.0, 0.0, -0.5]
    right = [1.0, -3.0, 3.0, -2.0, -1.0, 0.0, 2.0, -0.5]
    rows = [[void] * 4, [left, left, right, right], [left, left, right, right]]
    return np.asarray(rows, dtype=np.float32)


# Cases whose logits are these plus the seeded noise (else the noise alone).
READOUT_BASE_LOGITS = {"void_runner_up": _void_runner_up_logits}


def _mixed_bits_x0() -> np.ndarray:
    """[2, 2, 1 + 2] x̂0: class bit +-0.0625; instance bits (+24, -8) / 256 (id 1) in column 0 and
    (-8, +24) / 256 (id 2) in column 1. Mixed with weight t on column 1, bit 0 is > 0 for t < 0.75
    and bit 1 for t > 0.25: id 3 in between."""
    left = [0.0625, 24 / 256, -8 / 256]
    right = [-0.0625, -8 / 256, 24 / 256]
    return np.asarray([[left, right], [left, right]], dtype=np.float32)


# Cases whose x̂0 is this (instead of the seeded random values).
READOUT_X0 = {"mixed_bits_new_id": _mixed_bits_x0}


def readout_case() -> dict:
    """Shared cases for the bilinear readout (readout.py; the Rust twins must give the same ids):
    seeded random logits on a grid of exactly representable floats (plus hand-made cells for
    READOUT_BASE_LOGITS), seeded random x̂0 on the 1/256 grid (or READOUT_X0), geometry, the cells'
    class void probabilities and expected ids."""
    rng = np.random.default_rng(0)
    x0_rng = np.random.default_rng(1)
    cases = []
    for name, (class_bits, instance_bits, num_classes, max_instances, mask_hw, canvas_hw, content_hw, out_hw,
               step, spread) in READOUT_CASES.items():
        cfg = ModelConfig(class_bits=class_bits, instance_bits=instance_bits, num_classes=num_classes,
                          max_instances=max_instances)  # only these four matter to the readout
        n_logits = 2**class_bits + 2**instance_bits
        logits = rng.integers(-spread, spread + 1, size=(*mask_hw, n_logits)).astype(np.float32) * np.float32(step)
        if name in READOUT_BASE_LOGITS:
            logits += READOUT_BASE_LOGITS[name]()
        if num_classes < 2**class_bits or max_instances < 2**instance_bits:  # invalid ids would win
            logits[..., num_classes : 2**class_bits] += np.float32(spread * step * 4)
            logits[..., 2**class_bits + max_instances :] += np.float32(spread * step * 4)
        n_bits = class_bits + instance_bits
        x0_spread = READOUT_X0_SPREAD.get(name, 25)
        x0 = x0_rng.integers(-x0_spread, x0_spread + 1, size=(*mask_hw, n_bits)).astype(np.float32)
        x0 *= np.float32(READOUT_X0_STEP)
        if name in READOUT_X0:
            x0 = READOUT_X0[name]()
        cls, inst = readout(logits, x0, cfg, canvas_hw, content_hw, out_hw)
        cases.append({"name": name, "class_bits": class_bits, "instance_bits": instance_bits,
                      "num_classes": num_classes, "max_instances": max_instances, "mask_hw": list(mask_hw),
                      "canvas_hw": list(canvas_hw), "content_hw": list(content_hw), "out_hw": list(out_hw),
                      "logits": [float(v) for v in logits.ravel()],
                      "x0": [float(v) for v in x0.ravel()],
                      "class_void": [float(v) for v in class_void_probability(logits, cfg).ravel()],
                      "class": cls.ravel().tolist(), "instance": inst.ravel().tolist()})
    return {"cases": cases}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write the Rust parity fixtures.")
    parser.add_argument("--out", default=str(REPO_ROOT / "tests" / "fixtures"),
                        help="output directory (default: the repository's tests/fixtures)")
    parser.add_argument("--only", choices=sorted(FIXTURES), help="write one fixture only")
    parser.add_argument("--readout-only", action="store_true",
                        help="recompute only the readout tensors of the existing activations (refresh_readout) "
                             "and the readout JSON case")
    args = parser.parse_args(argv)
    if args.readout_only:
        for name in [args.only] if args.only else list(FIXTURES):
            print(f"updated {refresh_readout(name, args.out)}")
        case = Path(args.out) / READOUT_CASE
        case.write_text(json.dumps(readout_case(), separators=(",", ":")) + "\n")
        print(f"wrote {case}")
        return
    for name in [args.only] if args.only else list(FIXTURES):
        path = generate(name, args.out)
        size = sum(f.stat().st_size for f in path.iterdir())
        print(f"wrote {path} ({size / 1024:.0f} KiB)")
    if not args.only:
        case = Path(args.out) / THING_VOTE_CASE
        case.write_text(json.dumps(thing_vote_case(), separators=(",", ":")) + "\n")
        print(f"wrote {case}")
        case = Path(args.out) / READOUT_CASE
        case.write_text(json.dumps(readout_case(), separators=(",", ":")) + "\n")
        print(f"wrote {case}")


if __name__ == "__main__":
    main()
