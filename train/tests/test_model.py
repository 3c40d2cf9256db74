"""Architecture: parameter counts, layouts, position codes, and the EfficientNet weight mapping."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from pix2seqd_train import CONFIGS_DIR, SHARED_DATA_DIR
from pix2seqd_train.config import load_config
from pix2seqd_train.model import build_model, count_config_parameters
from pix2seqd_train.model.efficientnet_lite import pretrained_weights_path
from pix2seqd_train.model.layers import sincos_1d, sincos_2d, tf_same_padding

pytestmark = pytest.mark.usefixtures("one_thread")

PAPER_PARAMS = 94.5e6
PAPER_OFFICIAL_16_BIT_PARAMS = 94_492_480  # spec §2.6, the released COCO architecture with 8+8 bits


def test_paper_parameter_count():
    cfg = load_config(CONFIGS_DIR / "paper.json")
    count = count_config_parameters(cfg)
    print(f"paper ({cfg.class_bits}+{cfg.instance_bits} bits): {count:,} parameters")
    assert abs(count - PAPER_PARAMS) <= 0.01 * PAPER_PARAMS
    cfg.instance_bits = 8  # the official 16-bit head: the count must match the spec's exactly
    assert count_config_parameters(cfg) == PAPER_OFFICIAL_16_BIT_PARAMS


def test_web_parameter_count():
    cfg = load_config(CONFIGS_DIR / "web.json")
    count = count_config_parameters(cfg)
    print(f"web: {count:,} parameters")
    assert 5e6 < count < 15e6


def test_configs_round_trip_and_derive_bits():
    for path in sorted(CONFIGS_DIR.glob("*.json")):
        cfg = load_config(path)
        assert type(cfg).from_dict(cfg.to_dict()) == cfg
        assert cfg.class_bits == max(1, math.ceil(math.log2(cfg.num_classes)))
        assert cfg.instance_bits == max(1, math.ceil(math.log2(cfg.max_instances)))
    paper = load_config(CONFIGS_DIR / "paper.json")
    assert (paper.class_bits, paper.instance_bits, paper.n_logits) == (8, 7, 256 + 128)
    assert len(paper.classes) == paper.num_classes == 134 and paper.classes[0].name == "void"


def test_sincos_codes_follow_the_spec():
    coords = torch.tensor([0.0, 0.5, 3.0])
    code = sincos_1d(coords, 8)
    freqs = torch.tensor([10000 ** (-2 * j / 8) for j in range(4)])
    torch.testing.assert_close(code, torch.cat([torch.sin(coords[:, None] * freqs), torch.cos(coords[:, None] * freqs)], -1))
    code2d = sincos_2d(3, 5, 8)
    assert code2d.shape == (15, 8)
    y = torch.arange(3) / 2 * 6.2831852
    x = torch.arange(5) / 4 * 6.2831852
    index = 1 * 5 + 4  # row 1, column 4
    torch.testing.assert_close(code2d[index, :4], sincos_1d(y[1:2], 4)[0])
    torch.testing.assert_close(code2d[index, 4:], sincos_1d(x[4:5], 4)[0])


def test_tf_same_padding():
    assert tf_same_padding(64, 3, 2) == (0, 1)
    assert tf_same_padding(64, 5, 2) == (1, 2)
    assert tf_same_padding(63, 3, 2) == (1, 1)
    assert tf_same_padding(10, 5, 1) == (2, 2)


@pytest.mark.parametrize("name", ["tiny-efficientnet", "tiny-resnet"])
def test_tiny_model_layouts(name):
    cfg = load_config(CONFIGS_DIR / f"{name}.json")
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    images = torch.rand(2, 3, *cfg.image_size)
    with torch.no_grad():
        features, tokens, taps = model.encode(images)
        image_h, image_w = cfg.image_size
        assert [t.shape[-2:] for t in taps] == [(image_h // s, image_w // s) for s in (4, 8, 16)]
        assert tokens.shape == (2, (image_h // 16) * (image_w // 16), cfg.encoder.dim)
        assert features.shape == (2, model.fusion.out_channels, *cfg.mask_size)
        m_t = torch.randn(2, *cfg.mask_size, cfg.n_bits)
        logits = model.decode(m_t, features, tokens, torch.tensor([0.3, 0.9]))
        assert logits.shape == (2, *cfg.mask_size, cfg.n_logits)
        # batch elements are independent
        single = model.decode(m_t[1:], features[1:], tokens[1:], torch.tensor([0.9]))
        torch.testing.assert_close(single, logits[1:], atol=1e-5, rtol=1e-5)
    expected_in = cfg.n_bits * (1 + cfg.self_cond + cfg.video_prev_masks) + model.fusion.out_channels
    assert model.decoder.conv_in.in_channels == expected_in


def test_parameter_names_read_like_the_format_doc():
    cfg = load_config(CONFIGS_DIR / "tiny-resnet.json")
    names = set(build_model(cfg).state_dict())
    for name in ["backbone.stem.conv.weight", "backbone.stem.bn.running_var", "backbone.stages.0.0.reduce.conv.weight",
                 "backbone.stages.0.0.shortcut.bn.weight", "encoder.proj.weight", "encoder.layers.0.attn.q.weight",
                 "encoder.out_norm.bias", "fusion.blocks.0.lateral.weight", "decoder.time_embed.fc0.weight",
                 "decoder.down.0.res.0.conv0.weight", "decoder.down.0.downsample.weight",
                 "decoder.mid.layers.0.cross_attn.k.weight", "decoder.mid.time_token.weight",
                 "decoder.up.1.res.1.skip.weight", "decoder.up.1.upsample.weight", "decoder.conv_out.bias"]:
        assert name in names, name


def test_paper_fusion_and_decoder_structure():
    cfg = load_config(CONFIGS_DIR / "paper.json")
    with torch.device("meta"):
        model = build_model(cfg, load_pretrained=False)
    plan = [(s.hr_index, s.in_channels, s.hr_channels, s.out_channels, s.factor) for s in model.fusion.plan]
    assert plan == [(1, 512, 512, 512, 2), (0, 512, 256, 256, 2), (None, 256, 256, 256, 2)]
    assert model.decoder.conv_in.in_channels == 15 + 256
    up3 = model.decoder.up[3].res
    assert [b.conv0.in_channels for b in up3] == [768, 512]
    assert [b.conv0.in_channels for b in model.decoder.up[0].res] == [256, 256]
    assert model.decoder.mid.norm_in.num_groups == 32


# ---- EfficientNet-Lite0 ImageNet weights ---------------------------------------------------------
def _same_pad(x, kernel, stride):
    """TensorFlow SAME padding, written independently of the model code."""
    def pads(size):
        out = math.ceil(size / stride)
        total = max((out - 1) * stride + kernel - size, 0)
        return total // 2, total - total // 2
    (top, bottom), (left, right) = pads(x.shape[-2]), pads(x.shape[-1])
    return F.pad(x, (left, right, top, bottom))


def reference_lite0_taps(state, images):
    """EfficientNet-Lite0 stem + blocks 0..10 computed straight from the package's state dict
    (lukemelas key layout, eval-mode BN with eps 1e-3, ReLU6, TF SAME padding)."""
    def bn(x, prefix):
        return F.batch_norm(x, state[f"{prefix}.running_mean"], state[f"{prefix}.running_var"],
                            state[f"{prefix}.weight"], state[f"{prefix}.bias"], False, 0.0, 1e-3)

    def conv(x, key, stride=1, groups=1):
        w = state[key]
        return F.conv2d(_same_pad(x, w.shape[-1], stride), w, stride=stride, groups=groups)

    x = images * 255.0 / 128.0 - 127.0 / 128.0
    x = F.relu6(bn(conv(x, "_conv_stem.weight", 2), "_bn0"))
    strides = {1: 2, 3: 2, 5: 2}  # first block of the stride-2 stages (lite0 layout, up to block 10)
    taps = {}
    for i in range(11):
        p = f"_blocks.{i}"
        y = x
        if f"{p}._expand_conv.weight" in state:
            y = F.relu6(bn(conv(y, f"{p}._expand_conv.weight"), f"{p}._bn0"))
        y = F.relu6(bn(conv(y, f"{p}._depthwise_conv.weight", strides.get(i, 1), groups=y.shape[1]), f"{p}._bn1"))
        y = bn(conv(y, f"{p}._project_conv.weight"), f"{p}._bn2")
        x = x + y if (strides.get(i, 1) == 1 and y.shape == x.shape) else y
        taps[i] = x
    return [taps[2], taps[4], taps[10]]


def real_images(size):
    folder = SHARED_DATA_DIR / "coco-panoptic-sample" / "images"
    paths = sorted(folder.glob("*.jpg"))[:2] + sorted((SHARED_DATA_DIR / "camvid" / "val" / "images").glob("*.jpg"))[:1]
    if not paths:
        pytest.skip(f"SKIPPED LOUDLY: no images under {SHARED_DATA_DIR} (../shared/data missing)")
    arrays = [np.asarray(Image.open(p).convert("RGB").resize((size[1], size[0]), Image.BILINEAR), dtype=np.float32)
              for p in paths]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2) / 255.0


def test_efficientnet_weight_mapping_matches_the_package_model():
    cfg = load_config(CONFIGS_DIR / "web.json")
    cfg.image_size = [256, 320]  # smaller than the web size to keep the test fast; any multiple of 16 works
    cfg.mask_size = [64, 80]
    model = build_model(cfg).eval()  # loads the ImageNet weights (backbone.pretrained = true)
    state = torch.load(pretrained_weights_path(), map_location="cpu", weights_only=True)
    images = real_images(cfg.image_size)
    with torch.no_grad():
        ours = model.backbone(images)
        reference = reference_lite0_taps(state, images)
    for a, b in zip(ours, reference):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    try:  # the package's own model class, when installed (`pip install efficientnet_lite_pytorch`)
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        return
    package = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(pretrained_weights_path())).eval()
    with torch.no_grad():
        x = package._swish(package._bn0(package._conv_stem(images * 255.0 / 128.0 - 127.0 / 128.0)))
        for i, block in enumerate(package._blocks[:11]):
            x = block(x)
    torch.testing.assert_close(ours[2], x, atol=1e-5, rtol=1e-5)
