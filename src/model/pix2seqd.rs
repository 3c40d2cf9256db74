//! The whole network (`pix2seqd.py`): backbone → encoder → fusion once per image, the TransUNet
//! once per diffusion step.

use super::efficientnet_lite::EfficientNetLite;
use super::fusion::{plan_fusion, FeaturePyramidMerge};
use super::resnet::ResNetC4;
use super::transformer::ImageEncoder;
use super::transunet::{Condition, TransUNet};
use crate::backend::{Backend, Upload};
use crate::model::config::ModelConfig;
use crate::model::{ModelError, Params, Weights};

const TAP_STRIDES: [usize; 3] = [4, 8, 16];

enum Backbone<T> {
    EfficientNet(EfficientNetLite<T>),
    ResNet(ResNetC4<T>),
}

/// What the encoder produces for one image.
pub struct Encoded<T> {
    /// `[C2, C3, C4]`, NHWC.
    pub taps: Vec<T>,
    /// E `[1, N, D]`.
    pub tokens: T,
    /// F `[1, Hm, Wm, Cf]`.
    pub features: T,
}

/// The per-step decoder input besides the noisy bits.
pub struct StepInputs<'a, T> {
    /// The noisy analog bits `m_t` `[1, Hm, Wm, n_bits]`.
    pub m: &'a T,
    /// Self-conditioning x̃0 (the previous step's x̂0); required iff the config self-conditions.
    pub self_cond: Option<&'a T>,
    pub gamma: f32,
}

pub struct Pix2SeqD<T> {
    pub cfg: ModelConfig,
    backbone: Backbone<T>,
    encoder: ImageEncoder<T>,
    fusion: FeaturePyramidMerge<T>,
    decoder: TransUNet<T>,
}

impl<T: Clone> Pix2SeqD<T> {
    /// Builds the model for `cfg` from `weights`, validating every tensor; `weights` must hold
    /// nothing else.
    pub fn load<U: Upload<T>>(
        cfg: ModelConfig,
        weights: &mut Weights,
        upload: &U,
    ) -> Result<Self, ModelError> {
        cfg.validate()?;
        // An F16 file relabelled BF16 (or a card for another export) decodes to wrong numbers
        // without a single non-finite one: the card's dtype and the file's must agree.
        if let (Some(card), Some(file)) = (cfg.weights_dtype, weights.float_dtype()) {
            if card != file {
                return Err(ModelError::Weights(format!(
                    "the card says dtype {} but the file's tensors are {file:?}",
                    card.label()
                )));
            }
        }
        let mut p = Params { weights, upload };
        let (backbone, tap_channels) = match cfg.backbone.kind {
            ref kind if kind.is_mbconv() => {
                let b = EfficientNetLite::load(&mut p, &cfg.backbone)?;
                let ch = b.tap_channels;
                (Backbone::EfficientNet(b), ch)
            }
            _ => {
                let b = ResNetC4::load(&mut p, &cfg.backbone)?;
                let ch = b.tap_channels;
                (Backbone::ResNet(b), ch)
            }
        };
        let encoder = ImageEncoder::load(&mut p, tap_channels[2], &cfg.encoder)?;
        let [ih, iw] = cfg.image_size;
        let sizes: Vec<(usize, usize)> =
            TAP_STRIDES.iter().map(|s| (ih.div_ceil(*s), iw.div_ceil(*s))).collect();
        let channels = [tap_channels[0], tap_channels[1], cfg.encoder.dim];
        let plan = plan_fusion(&channels, &sizes, (cfg.mask_size[0], cfg.mask_size[1]), cfg.fusion.dim)?;
        let fusion = FeaturePyramidMerge::load(&mut p, &plan, cfg.encoder.dim)?;
        let bits = cfg.n_bits();
        let step_channels = bits + if cfg.self_cond { bits } else { 0 };
        let const_channels = fusion.out_channels + cfg.video_prev_masks * bits;
        let decoder = TransUNet::load(
            &mut p,
            &cfg.decoder,
            step_channels,
            const_channels,
            cfg.n_logits(),
            cfg.encoder.dim,
            cfg.time_scaling,
        )?;
        p.weights.finish()?;
        Ok(Pix2SeqD { cfg, backbone, encoder, fusion, decoder })
    }

    /// `input` `[1, H, W, 3]`, already normalised (`x · input_scale + input_offset`, as the
    /// ingest kernel writes it) → taps, E, F.
    pub fn encode<B: Backend<Tensor = T>>(&self, b: &mut B, input: &T) -> Result<Encoded<T>, ModelError> {
        let expected = [1, self.cfg.image_size[0], self.cfg.image_size[1], 3];
        if B::shape(input) != expected {
            return Err(ModelError::Config(format!(
                "model input must be {expected:?}, got {:?}",
                B::shape(input)
            )));
        }
        let taps = match &self.backbone {
            Backbone::EfficientNet(m) => m.forward(b, input)?,
            Backbone::ResNet(m) => m.forward(b, input)?,
        };
        let tokens = self.encoder.forward(b, &taps[2])?;
        let c4 = B::shape(&taps[2]);
        let token_map = B::reshape(&tokens, &[c4[0], c4[1], c4[2], self.cfg.encoder.dim]);
        let features = self.fusion.forward(b, &[taps[0].clone(), taps[1].clone(), token_map])?;
        Ok(Encoded { taps, tokens, features })
    }

    /// The per-image decoder work: `prev_bits` `[1, Hm, Wm, k·n_bits]` are the previous masks'
    /// analog bits (video configs only; all −b for "no previous frame").
    pub fn condition<B: Backend<Tensor = T>>(
        &self,
        b: &mut B,
        enc: &Encoded<T>,
        prev_bits: Option<&T>,
    ) -> Result<Condition<T>, ModelError> {
        let const_input = match (self.cfg.video_prev_masks, prev_bits) {
            (0, _) => enc.features.clone(),
            (_, Some(prev)) => b.concat_channels(&[&enc.features, prev])?,
            (k, None) => {
                return Err(ModelError::Config(format!(
                    "this video model needs the bits of {k} previous masks"
                )))
            }
        };
        self.decoder.condition(b, &const_input, &enc.tokens)
    }

    /// One denoiser call → logits `[1, Hm, Wm, 2^class_bits + 2^instance_bits]`.
    pub fn decode<B: Backend<Tensor = T>>(
        &self,
        b: &mut B,
        step: StepInputs<T>,
        cond: &Condition<T>,
    ) -> Result<T, ModelError> {
        let input = match (self.cfg.self_cond, step.self_cond) {
            (false, _) => step.m.clone(),
            (true, Some(sc)) => b.concat_channels(&[step.m, sc])?,
            (true, None) => {
                return Err(ModelError::Config("this model self-conditions: pass the previous x̂0".into()))
            }
        };
        self.decoder.forward(b, &input, step.gamma, cond)
    }
}
