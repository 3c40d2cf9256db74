"""ONNX export of the encoder and one decoder step (scripts/compare_cpu.py): ONNX Runtime gives
the eager PyTorch outputs on the tiny fixture models (self-conditioning, video)."""

import pytest
import torch

from pix2seqd_train import CONFIGS_DIR
from pix2seqd_train.config import load_config
from pix2seqd_train.fixtures import build_fixture_model
from pix2seqd_train.onnx_export import export_onnx, torch_outputs

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

pytestmark = pytest.mark.usefixtures("one_thread")


def run_onnx(path, inputs):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return [torch.from_numpy(a) for a in session.run(None, {k: v.numpy() for k, v in inputs.items()})]


def assert_close_scaled(actual, expected, tol=1e-4):
    """Relative to the largest |expected| (the fixture head's std-30 weights give logits of hundreds)."""
    assert actual.shape == expected.shape
    scale = max(1.0, expected.abs().max().item())
    assert (actual - expected).abs().max().item() <= tol * scale


@pytest.mark.parametrize("name", ["tiny-efficientnet", "tiny-resnet"])
def test_onnx_runtime_matches_torch(tmp_path, name):
    cfg = load_config(CONFIGS_DIR / f"{name}.json")
    model = build_fixture_model(cfg, torch_seed=3)
    exported = export_onnx(model, tmp_path)
    for path in (exported.encoder, exported.decoder_step):
        onnx.checker.check_model(str(path), full_check=True)
    (features, tokens), logits = torch_outputs(model, exported)
    onnx_features, onnx_tokens = run_onnx(exported.encoder, exported.encoder_inputs)
    (onnx_logits,) = run_onnx(exported.decoder_step, exported.decoder_inputs)
    assert_close_scaled(onnx_features, features)
    assert_close_scaled(onnx_tokens, tokens)
    assert_close_scaled(onnx_logits, logits)
    assert logits.shape == (1, *cfg.mask_size, cfg.n_logits)


def test_decoder_step_takes_the_configs_inputs(tmp_path):
    """tiny-efficientnet is a video model (previous masks), tiny-resnet self-conditions."""
    for name, extra in [("tiny-efficientnet", "prev"), ("tiny-resnet", "self_cond")]:
        cfg = load_config(CONFIGS_DIR / f"{name}.json")
        exported = export_onnx(build_fixture_model(cfg, torch_seed=3), tmp_path / name)
        session = ort.InferenceSession(str(exported.decoder_step), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == ["m_t", "gamma", "features", "tokens", extra]


def test_export_leaves_the_model_in_eval_mode(tmp_path):
    """The exporter restores the wrapper's mode recursively; a training-mode wrapper would turn
    dropout and DropPath on in the caller's model."""
    cfg = load_config(CONFIGS_DIR / "tiny-resnet.json")
    model = build_fixture_model(cfg, torch_seed=3)
    export_onnx(model, tmp_path)
    assert not any(m.training for m in model.modules())
