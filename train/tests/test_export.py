"""Export round-trip (BatchNorm folded, fp32 / fp16) and sharded checkpoints."""

import json

import pytest
import torch
from safetensors.torch import load_file

from pix2seqd_train import CONFIGS_DIR
from pix2seqd_train.config import load_config
from pix2seqd_train.export import (
    export,
    folded_state_dict,
    load_checkpoint,
    load_exported,
    main as export_main,
    save_checkpoint,
)
from pix2seqd_train.fixtures import build_fixture_model
from pix2seqd_train.model.layers import fold_all_batchnorm_

pytestmark = pytest.mark.usefixtures("one_thread")


def model_and_input(name):
    cfg = load_config(CONFIGS_DIR / f"{name}.json")
    model = build_fixture_model(cfg, torch_seed=3)  # random BN statistics, so folding is exercised
    images = torch.rand(1, 3, *cfg.image_size, generator=torch.Generator().manual_seed(0))
    return cfg, model, images


def assert_close_scaled(actual, expected, tol):
    """|actual - expected| <= tol * max(1, max|expected|): float32 rounding grows with the values'
    scale (the fixture head has std-30 weights, so logits reach a few hundred)."""
    scale = max(1.0, expected.abs().max().item())
    assert (actual - expected).abs().max().item() <= tol * scale


def outputs(model, images, cfg):
    with torch.no_grad():
        features, tokens, taps = model.encode(images)
        m_t = torch.randn(1, *cfg.mask_size, cfg.n_bits, generator=torch.Generator().manual_seed(1))
        logits = model.decode(m_t, features, tokens, torch.tensor([0.7]))
    return taps + [tokens, features, logits]


@pytest.mark.parametrize("name", ["tiny-efficientnet", "tiny-resnet"])
def test_folded_model_equals_unfolded_in_eval_mode(name):
    cfg, model, images = model_and_input(name)
    reference = outputs(model, images, cfg)
    folded = build_fixture_model(cfg, torch_seed=3)
    fold_all_batchnorm_(folded)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    for a, b in zip(reference, outputs(folded, images, cfg)):
        assert_close_scaled(b, a, 1e-5)


@pytest.mark.parametrize("dtype,atol", [("fp32", 1e-5), ("fp16", 1e-2)])
def test_export_round_trip(tmp_path, dtype, atol):
    cfg, model, images = model_and_input("tiny-resnet")
    weights_path, json_path = export(model, cfg, tmp_path / "tiny", dtype=dtype, card_extra={"metrics": {"pq": 0.0}})
    tensors = load_file(str(weights_path))
    expected_dtype = torch.float16 if dtype == "fp16" else torch.float32
    assert all(t.dtype == expected_dtype for t in tensors.values())
    assert not any(".bn." in name for name in tensors), "BatchNorm tensors must be folded away"
    assert "backbone.stem.conv.bias" in tensors and "backbone.stages.0.0.shortcut.conv.bias" in tensors
    folded = folded_state_dict(model)
    assert set(tensors) == set(folded)
    card = json.loads(json_path.read_text())
    assert card["format"] == "pix2seqd" and card["dtype"] == dtype and card["bn_folded"] is True
    assert card["config"] == cfg.to_dict() and card["metadata"]["metrics"] == {"pq": 0.0}
    loaded = load_exported(tmp_path / "tiny")
    reference = outputs(model, images, cfg)
    for a, b in zip(reference, outputs(loaded, images, cfg)):
        assert_close_scaled(b, a, atol)
    if dtype == "fp32":  # the exported weights are exactly the folded ones
        for key, value in loaded.state_dict().items():
            assert torch.equal(value, folded[key]), key


def test_export_accepts_an_ema_state_dict(tmp_path):
    cfg, model, images = model_and_input("tiny-efficientnet")
    export(model.state_dict(), cfg, tmp_path / "ema", dtype="fp32")
    loaded = load_exported(tmp_path / "ema.json")
    for a, b in zip(outputs(model, images, cfg), outputs(loaded, images, cfg)):
        assert_close_scaled(b, a, 1e-5)


def test_checkpoint_round_trip_with_shards_and_chunks(tmp_path):
    cfg, model, _ = model_and_input("tiny-resnet")
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.rand(1, 3, *cfg.image_size), torch.randn(1, *cfg.mask_size, cfg.n_bits), torch.tensor([0.5])).sum().backward()
    optimizer.step()
    state = {"config": cfg.to_dict(), "model": model.state_dict(), "ema": model.state_dict(),
             "optimizer": optimizer.state_dict(), "step": 7, "rng": (1, 2.5, None)}
    save_checkpoint(tmp_path / "ckpt", state, shard_bytes=20_000)  # forces many shards and chunked tensors
    files = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert "index.json" in files and len(files) > 3
    assert all(p.stat().st_size <= 20_000 + 10_000 for p in (tmp_path / "ckpt").glob("*.safetensors"))
    loaded = load_checkpoint(tmp_path / "ckpt")
    assert loaded["step"] == 7 and loaded["rng"] == (1, 2.5, None) and loaded["config"] == cfg.to_dict()
    for key, value in model.state_dict().items():
        assert torch.equal(loaded["model"][key], value)
    restored = torch.optim.AdamW(model.parameters())
    restored.load_state_dict(loaded["optimizer"])
    assert set(restored.state_dict()["state"]) == set(optimizer.state_dict()["state"])
    save_checkpoint(tmp_path / "ckpt", {"step": 8})  # overwrite in place
    assert load_checkpoint(tmp_path / "ckpt") == {"step": 8}


def test_export_cli(tmp_path):
    cfg, model, images = model_and_input("tiny-efficientnet")
    save_checkpoint(tmp_path / "ckpt", {"config": cfg.to_dict(), "model": model.state_dict(),
                                        "ema": model.state_dict(), "step": 3})
    export_main(["--checkpoint", str(tmp_path / "ckpt"), "--out", str(tmp_path / "out"), "--dtype", "fp32"])
    card = json.loads((tmp_path / "out.json").read_text())
    assert card["metadata"] == {"weights": "ema", "step": 3}
    loaded = load_exported(tmp_path / "out")
    assert_close_scaled(outputs(loaded, images, cfg)[-1], outputs(model, images, cfg)[-1], 1e-5)


def test_export_cli_takes_the_sampler_defaults_from_the_card_file(tmp_path):
    cfg, model, _ = model_and_input("tiny-efficientnet")
    save_checkpoint(tmp_path / "ckpt", {"config": cfg.to_dict(), "ema": model.state_dict(), "step": 3})
    card_file = tmp_path / "card.json"
    card_file.write_text(json.dumps({"purpose": "test", "sampler": {"steps": 2, "postprocess": "thing_vote"}}))
    export_main(["--checkpoint", str(tmp_path / "ckpt"), "--out", str(tmp_path / "out"), "--card", str(card_file)])
    card = json.loads((tmp_path / "out.json").read_text())
    assert card["config"]["sampler"] == {"steps": 2, "td": cfg.sampler.td, "postprocess": "thing_vote"}
    assert card["metadata"] == {"purpose": "test", "weights": "ema", "step": 3}
    card_file.write_text(json.dumps({"sampler": {"postprocess": "vote"}}))
    with pytest.raises(ValueError, match="thing_vote"):
        export_main(["--checkpoint", str(tmp_path / "ckpt"), "--out", str(tmp_path / "bad"), "--card", str(card_file)])
