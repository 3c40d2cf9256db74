"""The committed parity fixtures regenerate identically (tests/fixtures at the repository root)."""

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from pix2seqd_train import CONFIGS_DIR, REPO_ROOT
from pix2seqd_train.config import load_config
from pix2seqd_train.fixtures import FIXTURES, MIN_BIT_MARGIN, THING_VOTE_CASE, generate, thing_vote_case
from pix2seqd_train.readout import class_void_probability, group_ranges

pytestmark = pytest.mark.usefixtures("one_thread")

COMMITTED = REPO_ROOT / "tests" / "fixtures"
MAX_TOTAL_BYTES = 3 * 1024 * 1024


def test_fixtures_stay_small():
    total = sum(p.stat().st_size for p in COMMITTED.rglob("*") if p.is_file())
    print(f"fixtures: {total / 1024:.0f} KiB")
    assert total < MAX_TOTAL_BYTES


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_regenerates_deterministically(name, tmp_path):
    committed = COMMITTED / name
    assert committed.is_dir(), "run: PYTHONPATH=train python -m pix2seqd_train.fixtures"
    fresh = generate(name, tmp_path)
    assert json.loads((fresh / "model.json").read_text()) == json.loads((committed / "model.json").read_text())
    weights, committed_weights = load_file(str(fresh / "model.safetensors")), load_file(str(committed / "model.safetensors"))
    assert set(weights) == set(committed_weights)
    for key, value in weights.items():  # bit-identical on one machine; an ULP of slack for other CPUs' math kernels
        torch.testing.assert_close(value, committed_weights[key], atol=1e-7, rtol=1e-6, msg=key)
    acts, committed_acts = load_file(str(fresh / "activations.safetensors")), load_file(str(committed / "activations.safetensors"))
    assert set(acts) == set(committed_acts)
    assert_readout_close(acts, committed_acts, load_config(CONFIGS_DIR / f"{name}.json"))
    for key, value in acts.items():
        expected = committed_acts[key]
        assert value.dtype == expected.dtype and value.shape == expected.shape, key
        if key in READOUT_DERIVED:
            continue
        if value.dtype.is_floating_point:
            # Other CPUs' kernels sum in another order and the difference grows through the model:
            # the slack scales with the tensor's range (measured on another CPU: 1.3e-4 on decoder
            # logits of range 349, 1.0e-5 on the sampler's x0).
            scale = max(1.0, expected.abs().max().item())
            torch.testing.assert_close(value, expected, atol=5e-5 * scale, rtol=1e-5, msg=key)
        else:
            assert torch.equal(value, expected), key


# Tensors the readout derives from sampler.logits_last (class group) and the final x̂0 (instance
# group; readout.py). On another CPU these differ within the float slack above, so an id may flip
# where its margin is within that slack.
READOUT_DERIVED = ("output.cell_class", "output.cell_class_void", "output.cell_instance", "readout.class",
                   "readout.instance", "readout.margin")


def assert_readout_close(acts, committed_acts, cfg):
    """Cell and readout ids equal but where a margin (of either side) is within the slack; class
    void probabilities close; readout margins close where both sides interpolate."""
    logits, committed_logits = acts["sampler.logits_last"][0].numpy(), committed_acts["sampler.logits_last"][0].numpy()
    x0, committed_x0 = acts["sampler.x0_last"][0].numpy(), committed_acts["sampler.x0_last"][0].numpy()
    # A gap between two such logits; p0 moves by at most half the largest change of l[v] - l[0].
    class_slack = 2 * 5e-5 * max(1.0, float(np.abs(committed_logits).max()))
    # The mixed bits are convex combinations of x̂0 values that differ by at most the x0 slack above.
    instance_slack = 2 * 5e-5 * max(1.0, float(np.abs(committed_x0).max()))
    slacks = (class_slack, instance_slack)
    assert torch.equal(acts["readout.geometry"], committed_acts["readout.geometry"])
    torch.testing.assert_close(acts["output.cell_class_void"], committed_acts["output.cell_class_void"],
                               atol=class_slack, rtol=0, msg="output.cell_class_void")
    cells_equal = True
    margins = zip(cell_margins(logits, x0, cfg), cell_margins(committed_logits, committed_x0, cfg))
    for key, slack, (margin, committed_margin) in zip(("output.cell_class", "output.cell_instance"), slacks, margins):
        flipped = (acts[key] != committed_acts[key])[0].numpy()
        gap = np.minimum(margin, committed_margin)
        assert (gap[flipped] <= slack).all(), f"{key}: cell ids flipped with a margin above {slack}"
        cells_equal &= not flipped.any()
    margin, committed_margin = acts["readout.margin"], committed_acts["readout.margin"]
    for group, (key, slack) in enumerate(zip(("readout.class", "readout.instance"), slacks)):
        flipped = acts[key] != committed_acts[key]
        near_tie = torch.minimum(margin[group], committed_margin[group]) <= slack
        assert not (flipped & ~near_tie).any(), f"{key}: ids flipped where the readout margin is above {slack}"
    if cells_equal:  # the same cell ids: the corner rule decides the same pixels
        assert torch.equal(torch.isinf(margin), torch.isinf(committed_margin))
    both = torch.isfinite(margin) & torch.isfinite(committed_margin)
    for group, slack in enumerate(slacks):
        torch.testing.assert_close(margin[group][both[group]], committed_margin[group][both[group]],
                                   atol=2 * slack, rtol=1e-5, msg=f"readout.margin[{group}]")


def top2_gap(values):
    """Best minus second-best value along the last axis (the margin of an arg-max); +inf for one value."""
    if values.shape[-1] < 2:
        return np.full(values.shape[:-1], np.inf, dtype=np.float32)
    ordered = np.sort(values, -1)
    return ordered[..., -1] - ordered[..., -2]


def cell_margins(logits, x0, cfg):
    """Per cell, how far each group's id (readout.cell_ids) is from flipping: class |p0 - 0.5|, and
    for a non-void cell also the top-2 gap of the non-void logits; instance the smallest |x̂0| of
    its instance bits."""
    class_start, class_count = group_ranges(cfg)[0]
    void = class_void_probability(logits, cfg)
    class_margin = np.abs(void - np.float32(0.5))
    non_void = top2_gap(logits[..., class_start + 1 : class_start + class_count])
    class_margin = np.where(void >= 0.5, class_margin, np.minimum(class_margin, non_void))
    return class_margin, np.abs(x0[..., cfg.class_bits :]).min(-1)


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_contents_are_consistent(name):
    acts = load_file(str(COMMITTED / name / "activations.safetensors"))
    with safe_open(str(COMMITTED / name / "activations.safetensors"), "pt") as f:
        assert float(f.metadata()["min_abs_x0"]) >= MIN_BIT_MARGIN
    steps = int(acts["steps"])
    assert acts["sampler.x0"].shape[0] == acts["sampler.m"].shape[0] == steps
    assert torch.equal(acts["sampler.x0"][-1], acts["output.x0"])
    assert acts["sampler.x0_last"].dtype == torch.float32 and torch.equal(acts["sampler.x0_last"], acts["output.x0"])
    # the readout's cell instance ids are the thresholded x̂0 bits: the sampler's instance ids
    assert torch.equal(acts["output.cell_instance"], acts["output.instance"])
    assert acts["output.class"].dtype == torch.int32 and acts["output.class"].unique().numel() > 2
    assert acts["output.instance"].unique().numel() > 2


def test_thing_vote_case_regenerates():
    """tests/fixtures/thing_vote_case.json: the answer the Rust twin must give (tests/engine/panoptic.rs)."""
    committed = json.loads((COMMITTED / THING_VOTE_CASE).read_text())
    assert thing_vote_case() == committed, "run: PYTHONPATH=train python -m pix2seqd_train.fixtures"
    assert len(set(committed["out_instance"])) > 5 and 0 in committed["out_class"]  # a case with teeth
