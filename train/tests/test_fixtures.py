"""The committed parity fixtures regenerate identically (tests/fixtures at the repository root)."""

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from pix2seqd_train import REPO_ROOT
from pix2seqd_train.fixtures import FIXTURES, MIN_BIT_MARGIN, THING_VOTE_CASE, generate, thing_vote_case

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
    for key, value in acts.items():
        expected = committed_acts[key]
        assert value.dtype == expected.dtype and value.shape == expected.shape, key
        if value.dtype.is_floating_point:
            # Other CPUs' kernels sum in another order and the difference grows through the model:
            # the slack scales with the tensor's range (measured on another CPU: 1.3e-4 on decoder
            # logits of range 349, 1.0e-5 on the sampler's x0).
            scale = max(1.0, expected.abs().max().item())
            torch.testing.assert_close(value, expected, atol=5e-5 * scale, rtol=1e-5, msg=key)
        else:
            assert torch.equal(value, expected), key


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_contents_are_consistent(name):
    acts = load_file(str(COMMITTED / name / "activations.safetensors"))
    with safe_open(str(COMMITTED / name / "activations.safetensors"), "pt") as f:
        assert float(f.metadata()["min_abs_x0"]) >= MIN_BIT_MARGIN
    steps = int(acts["steps"])
    assert acts["sampler.x0"].shape[0] == acts["sampler.m"].shape[0] == steps
    assert torch.equal(acts["sampler.x0"][-1], acts["output.x0"])
    assert acts["output.class"].dtype == torch.int32 and acts["output.class"].unique().numel() > 2
    assert acts["output.instance"].unique().numel() > 2


def test_thing_vote_case_regenerates():
    """tests/fixtures/thing_vote_case.json: the answer the Rust twin must give (tests/panoptic.rs)."""
    committed = json.loads((COMMITTED / THING_VOTE_CASE).read_text())
    assert thing_vote_case() == committed, "run: PYTHONPATH=train python -m pix2seqd_train.fixtures"
    assert len(set(committed["out_instance"])) > 5 and 0 in committed["out_class"]  # a case with teeth
