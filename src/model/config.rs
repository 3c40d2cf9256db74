//! The model configuration: the JSON written by `train/pix2seqd_train/config.py` (a config file,
//! or an exported model card that holds it under `"config"`). Field meanings: docs/model-format.md.
//! Derived values (bit budget, default dims) are resolved here exactly as the Python side does, so
//! a hand-written config with zeros still loads; then [`ModelConfig::validate`] rejects what the
//! architecture cannot build.

use serde::{Deserialize, Serialize};

use crate::model::ModelError;
pub use crate::panoptic::Postprocess;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackboneType {
    #[serde(rename = "efficientnet_lite0")]
    EfficientNetLite0,
    /// The same inverted-residual stack as Lite0 (stages from the config); the name says which
    /// pretrained weights train/ started from.
    #[serde(rename = "efficientnet_lite1")]
    EfficientNetLite1,
    #[serde(rename = "efficientnet_lite2")]
    EfficientNetLite2,
    /// MobileNetV2 from the SSD-MobileNetV2-COCO detector: the same stack with MobileNetV2's stages.
    #[serde(rename = "mobilenet_v2_coco")]
    MobileNetV2Coco,
    #[serde(rename = "resnet50_c4")]
    ResNet50C4,
}

impl BackboneType {
    /// The config name (`backbone.type`).
    pub fn name(&self) -> &'static str {
        match self {
            BackboneType::EfficientNetLite0 => "efficientnet_lite0",
            BackboneType::EfficientNetLite1 => "efficientnet_lite1",
            BackboneType::EfficientNetLite2 => "efficientnet_lite2",
            BackboneType::MobileNetV2Coco => "mobilenet_v2_coco",
            BackboneType::ResNet50C4 => "resnet50_c4",
        }
    }

    /// Whether the backbone is the inverted-residual (MBConv) stack of `efficientnet_lite.rs`.
    pub fn is_mbconv(&self) -> bool {
        !matches!(self, BackboneType::ResNet50C4)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackboneConfig {
    #[serde(rename = "type")]
    pub kind: BackboneType,
    #[serde(default)]
    pub pretrained: bool,
    /// The input is RGB in [0, 1]; the backbone first computes `x · input_scale + input_offset`.
    #[serde(default = "one")]
    pub input_scale: f32,
    #[serde(default)]
    pub input_offset: f32,
    #[serde(default = "default_stem")]
    pub stem_channels: usize,
    /// resnet50_c4: bottleneck widths and block counts of C2, C3, C4.
    #[serde(default = "default_widths")]
    pub widths: Vec<usize>,
    #[serde(default = "default_blocks")]
    pub blocks: Vec<usize>,
    /// efficientnet_lite0: `[repeats, kernel, stride, expand_ratio, out_channels]` per stage.
    #[serde(default)]
    pub stages: Vec<[usize; 5]>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderConfig {
    pub layers: usize,
    pub dim: usize,
    pub heads: usize,
    pub mlp_dim: usize,
    #[serde(default)]
    pub dropout: f32,
    #[serde(default)]
    pub drop_path: f32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FusionConfig {
    pub dim: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecoderConfig {
    pub dim: usize,
    pub ch_mult: Vec<usize>,
    pub n_res_blocks: Vec<usize>,
    pub transformer_layers: usize,
    pub transformer_dim: usize,
    pub transformer_heads: usize,
    /// 0 → 4 · transformer_dim.
    #[serde(default)]
    pub transformer_mlp_dim: usize,
    /// Width of the sin-cos code of γ; 0 → `dim`. The time MLP is 4× that.
    #[serde(default)]
    pub time_embed_dim: usize,
    #[serde(default)]
    pub dropout: f32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplerConfig {
    pub steps: usize,
    pub td: f64,
    /// How sampled ids become segments (default: the official majority vote).
    #[serde(default)]
    pub postprocess: Postprocess,
}

/// The panoptic post-processing of a sampled map (see `panoptic::postprocess`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassInfo {
    pub name: String,
    #[serde(default)]
    pub isthing: bool,
    #[serde(default)]
    pub color: Option<[u8; 3]>,
    /// The dataset's own category id (COCO's), when it has one.
    #[serde(default)]
    pub source_id: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    #[serde(default = "default_name")]
    pub name: String,
    /// `[H, W]` of the model input.
    pub image_size: [usize; 2],
    /// `[H, W]` of the generated masks.
    pub mask_size: [usize; 2],
    pub backbone: BackboneConfig,
    pub encoder: EncoderConfig,
    pub fusion: FusionConfig,
    pub decoder: DecoderConfig,
    /// Including void at 0.
    pub num_classes: usize,
    /// Including id 0 (void).
    pub max_instances: usize,
    #[serde(default)]
    pub class_bits: u32,
    #[serde(default)]
    pub instance_bits: u32,
    #[serde(default = "default_b")]
    pub b_scale: f32,
    #[serde(default = "one")]
    pub time_scaling: f32,
    #[serde(default)]
    pub self_cond: bool,
    /// k previous masks fed back as analog bits (0: an image model).
    #[serde(default)]
    pub video_prev_masks: usize,
    #[serde(default = "default_p")]
    pub mask_weight_p: f32,
    pub sampler: SamplerConfig,
    #[serde(default)]
    pub classes: Vec<ClassInfo>,
    /// The card's `dtype` (None for a bare config): the weights file must hold this dtype.
    #[serde(skip)]
    pub weights_dtype: Option<crate::model::weights::StorageType>,
}

fn one() -> f32 {
    1.0
}
fn default_b() -> f32 {
    0.1
}
fn default_p() -> f32 {
    0.2
}
fn default_stem() -> usize {
    64
}
fn default_widths() -> Vec<usize> {
    vec![64, 128, 256]
}
fn default_blocks() -> Vec<usize> {
    vec![3, 4, 6]
}
fn default_name() -> String {
    "model".into()
}

/// Bits that hold the ids `0..count-1` (at least 1), as `config.py`'s `bits_for`; any count,
/// even one no config may have (`validate` then refuses it), in constant time.
pub fn bits_for(count: usize) -> u32 {
    if count <= 2 {
        return 1;
    }
    usize::BITS - (count - 1).leading_zeros()
}

impl ModelConfig {
    /// Parses a config JSON or a model card holding it under `"config"`, resolves derived values
    /// and validates.
    pub fn from_json(text: &str) -> Result<ModelConfig, ModelError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ModelError::Config(format!("not valid JSON: {e}")))?;
        let (value, weights_dtype) = crate::model::card::split_card(value)?;
        let mut cfg: ModelConfig =
            serde_json::from_value(value).map_err(|e| ModelError::Config(e.to_string()))?;
        cfg.weights_dtype = weights_dtype;
        cfg.resolve();
        cfg.validate()?;
        Ok(cfg)
    }

    fn resolve(&mut self) {
        if self.class_bits == 0 {
            self.class_bits = bits_for(self.num_classes);
        }
        if self.instance_bits == 0 {
            self.instance_bits = bits_for(self.max_instances);
        }
        if self.decoder.transformer_mlp_dim == 0 {
            self.decoder.transformer_mlp_dim = self.decoder.transformer_dim.saturating_mul(4);
        }
        if self.decoder.time_embed_dim == 0 {
            self.decoder.time_embed_dim = self.decoder.dim;
        }
    }

    /// Rejects configs the architecture cannot build, like `config.py`'s `validate`, plus the
    /// engine's own limits (bits per group, attention head width).
    pub fn validate(&self) -> Result<(), ModelError> {
        self.check_bounds()?;
        let err = |m: String| Err(ModelError::Config(m));
        let [ih, iw] = self.image_size;
        let [mh, mw] = self.mask_size;
        if ih == 0 || iw == 0 || mh == 0 || mw == 0 {
            return err(format!(
                "image_size {:?} and mask_size {:?} must be positive",
                self.image_size, self.mask_size
            ));
        }
        if ih % 16 != 0 || iw % 16 != 0 {
            return err(format!("image_size {:?} must be divisible by 16", self.image_size));
        }
        let levels = self.decoder.ch_mult.len();
        if levels == 0 || levels > 8 {
            return err(format!("decoder.ch_mult needs 1 to 8 levels, got {}", levels));
        }
        let factor = 1usize << (levels - 1);
        if mh % factor != 0 || mw % factor != 0 {
            return err(format!(
                "mask_size {:?} must be divisible by {factor} (decoder levels)",
                self.mask_size
            ));
        }
        if ih % mh != 0 || iw % mw != 0 || ih / mh != iw / mw {
            return err("image_size must be the same integer multiple of mask_size on both axes".into());
        }
        if self.decoder.n_res_blocks.len() != levels {
            return err("decoder.n_res_blocks needs one entry per ch_mult level".into());
        }
        let enc = &self.encoder;
        if enc.heads == 0 || enc.dim % enc.heads != 0 || enc.dim % 4 != 0 {
            return err("encoder.dim must be divisible by encoder.heads and by 4 (2-D sin-cos code)".into());
        }
        let dec = &self.decoder;
        if dec.transformer_heads == 0
            || dec.transformer_dim % dec.transformer_heads != 0
            || dec.transformer_dim % 4 != 0
        {
            return err("decoder.transformer_dim must be divisible by its heads and by 4".into());
        }
        for (what, d, h) in [
            ("encoder", enc.dim, enc.heads),
            ("decoder transformer", dec.transformer_dim, dec.transformer_heads),
        ] {
            let dh = d / h;
            if dh % 4 != 0 || dh > 64 {
                return err(format!(
                    "{what} head width {dh} must be a multiple of 4 and at most 64 (attention kernel)"
                ));
            }
        }
        if dec.time_embed_dim % 2 != 0 {
            return err("decoder.time_embed_dim must be even".into());
        }
        if dec.dim == 0 || dec.ch_mult.contains(&0) {
            return err("decoder.dim and ch_mult must be positive".into());
        }
        if self.num_classes < 2 || self.max_instances < 1 {
            return err(format!(
                "num_classes {} must be at least 2 and max_instances at least 1",
                self.num_classes
            ));
        }
        if (1usize << self.class_bits) < self.num_classes
            || (1usize << self.instance_bits) < self.max_instances
        {
            return err("class_bits / instance_bits too small for num_classes / max_instances".into());
        }
        if !self.classes.is_empty() && self.classes.len() != self.num_classes {
            return err(format!(
                "classes has {} entries, num_classes is {}",
                self.classes.len(),
                self.num_classes
            ));
        }
        match self.backbone.kind {
            ref kind if kind.is_mbconv() => {
                if self.backbone.stages.is_empty() {
                    return err(format!("{} needs backbone.stages", kind.name()));
                }
                let mut stride = 2;
                for s in &self.backbone.stages {
                    let [repeats, kernel, st, expand, out] = *s;
                    if repeats == 0 || kernel % 2 == 0 || !(st == 1 || st == 2) || expand == 0 || out == 0 {
                        return err(format!(
                            "backbone stage {s:?} is invalid (repeats ≥ 1, odd kernel, stride 1 or 2)"
                        ));
                    }
                    stride *= st;
                }
                if stride != 16 {
                    return err(format!("efficientnet stages must end at stride 16, got {stride}"));
                }
            }
            _ => {
                if self.backbone.widths.len() != 3
                    || self.backbone.blocks.len() != 3
                    || self.backbone.blocks.contains(&0)
                {
                    return err("resnet50_c4 needs 3 widths and 3 positive block counts".into());
                }
            }
        }
        Ok(())
    }

    /// Analog-bit channels of one mask: class bits then instance bits.
    pub fn n_bits(&self) -> usize {
        (self.class_bits + self.instance_bits) as usize
    }

    /// Logit channels: `2^class_bits + 2^instance_bits`.
    pub fn n_logits(&self) -> usize {
        (1usize << self.class_bits) + (1usize << self.instance_bits)
    }

    pub fn bit_spec(&self) -> crate::ops::bits::BitSpec {
        crate::ops::bits::BitSpec {
            class_bits: self.class_bits,
            instance_bits: self.instance_bits,
            b_scale: self.b_scale,
        }
    }

    /// `isthing` per class id (index 0 = void, never a thing); classes missing from the card
    /// count as stuff.
    pub fn isthing(&self) -> Vec<bool> {
        (0..self.num_classes).map(|c| c > 0 && self.classes.get(c).is_some_and(|k| k.isthing)).collect()
    }

    /// Class name of id `c` (or `class c` when the card has no table).
    pub fn class_name(&self, c: usize) -> String {
        self.classes.get(c).map(|k| k.name.clone()).unwrap_or_else(|| {
            if c == 0 {
                "void".into()
            } else {
                format!("class {c}")
            }
        })
    }

    /// Colour of every class id (void black; classes without one get `default_color`).
    pub fn palette(&self) -> Vec<[u8; 3]> {
        (0..self.num_classes)
            .map(|c| match (c, self.classes.get(c).and_then(|k| k.color)) {
                (0, _) => [0, 0, 0],
                (_, Some(color)) => color,
                (_, None) => crate::ops::render::default_color(c as u32),
            })
            .collect()
    }

    /// COCO category id of class `c` (≥ 1): the dataset's own id when the card has one, else `c`.
    pub fn coco_category_ids(&self) -> Vec<u32> {
        (1..self.num_classes)
            .map(|c| self.classes.get(c).and_then(|k| k.source_id).unwrap_or(c as u32))
            .collect()
    }

    /// The COCO panoptic `categories` of this model (void excluded).
    pub fn coco_categories(&self) -> Vec<crate::panoptic::Category> {
        let palette = self.palette();
        let isthing = self.isthing();
        self.coco_category_ids()
            .into_iter()
            .enumerate()
            .map(|(i, id)| crate::panoptic::Category {
                id,
                name: self.class_name(i + 1),
                isthing: isthing[i + 1],
                color: Some(palette[i + 1]),
                supercategory: None,
            })
            .collect()
    }
}
