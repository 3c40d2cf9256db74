//! The config's sizes against [`crate::limits`], checked before anything is built from them: every
//! count and width has a ceiling, and the activations the sizes imply are computed in checked u64
//! and bounded by [`MAX_TENSOR_ELEMENTS`]. Each error names the field.

use crate::limits::{
    product, MAX_CHANNELS, MAX_CLASSES, MAX_GROUP_BITS, MAX_INSTANCES, MAX_LAYERS, MAX_MODEL_IMAGE_SIDE,
    MAX_PREV_MASKS, MAX_SCALE, MAX_STAGES, MAX_STEPS, MAX_TD, MAX_TENSOR_ELEMENTS,
};
use crate::model::{ModelConfig, ModelError};

/// Largest odd kernel of an MBConv stage (the shipped ones use 3 and 5).
const MAX_KERNEL: usize = 11;
/// Largest MBConv expansion ratio (EfficientNet and MobileNetV2 use 6).
const MAX_EXPAND: usize = 16;

fn err<T>(message: String) -> Result<T, ModelError> {
    Err(ModelError::Config(message))
}

fn at_most(field: &str, value: usize, max: usize) -> Result<(), ModelError> {
    if value > max {
        return err(format!("{field} {value} exceeds the limit of {max}"));
    }
    Ok(())
}

fn channels(field: &str, value: usize) -> Result<(), ModelError> {
    if value == 0 || value > MAX_CHANNELS {
        return err(format!("{field} {value} must be 1..={MAX_CHANNELS} channels"));
    }
    Ok(())
}

fn scale(field: &str, value: f32) -> Result<(), ModelError> {
    if !value.is_finite() || value.abs() > MAX_SCALE {
        return err(format!("{field} {value:?} must be finite and at most {MAX_SCALE:e} in magnitude"));
    }
    Ok(())
}

/// `elements` of one activation, which must stay within [`MAX_TENSOR_ELEMENTS`].
fn activation(what: &str, sizes: &[usize]) -> Result<(), ModelError> {
    match product(sizes) {
        Some(n) if n <= MAX_TENSOR_ELEMENTS => Ok(()),
        _ => err(format!(
            "{what} ({sizes:?}) would exceed the {MAX_TENSOR_ELEMENTS}-element limit of one tensor"
        )),
    }
}

impl ModelConfig {
    /// Bounds every size before [`ModelConfig::validate`]'s structural checks use them.
    pub(crate) fn check_bounds(&self) -> Result<(), ModelError> {
        for (field, [h, w]) in [("image_size", self.image_size), ("mask_size", self.mask_size)] {
            if h > MAX_MODEL_IMAGE_SIDE || w > MAX_MODEL_IMAGE_SIDE {
                return err(format!(
                    "{field} [{h}, {w}] exceeds the limit of {MAX_MODEL_IMAGE_SIDE} pixels a side"
                ));
            }
        }
        at_most("num_classes", self.num_classes, MAX_CLASSES)?;
        at_most("max_instances", self.max_instances, MAX_INSTANCES)?;
        for (field, bits) in [("class_bits", self.class_bits), ("instance_bits", self.instance_bits)] {
            if bits > MAX_GROUP_BITS {
                return err(format!("{field} {bits} exceeds the limit of {MAX_GROUP_BITS} bits per group"));
            }
        }
        at_most("video_prev_masks", self.video_prev_masks, MAX_PREV_MASKS)?;
        let s = &self.sampler;
        if s.steps == 0 || s.steps > MAX_STEPS {
            return err(format!("sampler.steps {} must be 1..={MAX_STEPS}", s.steps));
        }
        if !(0.0..=MAX_TD).contains(&s.td) {
            return err(format!("sampler.td {:?} must be 0..={MAX_TD}", s.td));
        }
        let bb = &self.backbone;
        scale("backbone.input_scale", bb.input_scale)?;
        scale("backbone.input_offset", bb.input_offset)?;
        scale("time_scaling", self.time_scaling)?;
        if !(self.b_scale > 0.0 && self.b_scale <= MAX_SCALE) {
            return err(format!("b_scale {:?} must be positive and at most {MAX_SCALE:e}", self.b_scale));
        }
        self.check_widths()?;
        self.check_activations()
    }

    fn check_widths(&self) -> Result<(), ModelError> {
        let bb = &self.backbone;
        channels("backbone.stem_channels", bb.stem_channels)?;
        if bb.kind.is_mbconv() {
            at_most("backbone.stages (count)", bb.stages.len(), MAX_STAGES)?;
            for (i, &[repeats, kernel, _, expand, out]) in bb.stages.iter().enumerate() {
                at_most(&format!("backbone.stages[{i}] repeats"), repeats, MAX_LAYERS)?;
                at_most(&format!("backbone.stages[{i}] kernel"), kernel, MAX_KERNEL)?;
                at_most(&format!("backbone.stages[{i}] expand_ratio"), expand, MAX_EXPAND)?;
                channels(&format!("backbone.stages[{i}] out_channels"), out)?;
            }
        } else {
            for (i, (&w, &b)) in bb.widths.iter().zip(&bb.blocks).enumerate() {
                channels(&format!("backbone.widths[{i}] × 4"), w.saturating_mul(4))?;
                at_most(&format!("backbone.blocks[{i}]"), b, MAX_LAYERS)?;
            }
        }
        let enc = &self.encoder;
        at_most("encoder.layers", enc.layers, MAX_LAYERS)?;
        channels("encoder.dim", enc.dim)?;
        channels("encoder.mlp_dim", enc.mlp_dim)?;
        channels("fusion.dim", self.fusion.dim)?;
        let dec = &self.decoder;
        channels("decoder.dim", dec.dim)?;
        for (i, (&m, &n)) in dec.ch_mult.iter().zip(&dec.n_res_blocks).enumerate() {
            channels(&format!("decoder.dim × ch_mult[{i}]"), dec.dim.saturating_mul(m))?;
            at_most(&format!("decoder.n_res_blocks[{i}]"), n, MAX_LAYERS)?;
        }
        at_most("decoder.transformer_layers", dec.transformer_layers, MAX_LAYERS)?;
        channels("decoder.transformer_dim", dec.transformer_dim)?;
        channels("decoder.transformer_mlp_dim", dec.transformer_mlp_dim)?;
        channels("decoder.time_embed_dim × 4", dec.time_embed_dim.saturating_mul(4))
    }

    /// The largest activations the sizes imply (the widest tensor at each resolution).
    fn check_activations(&self) -> Result<(), ModelError> {
        let [h, w] = self.image_size;
        let [mh, mw] = self.mask_size;
        let bb = &self.backbone;
        activation("the backbone stem output", &[h / 2, w / 2, bb.stem_channels])?;
        if bb.kind.is_mbconv() {
            let (mut stride, mut cin) = (2, bb.stem_channels);
            for &[_, _, s, e, out] in &bb.stages {
                activation("an MBConv expansion", &[h / stride, w / stride, cin, e])?;
                stride = stride.saturating_mul(s.max(1));
                cin = out;
            }
        } else {
            for (i, &width) in bb.widths.iter().enumerate() {
                let stride = 4usize << i.min(2);
                activation("a ResNet stage output", &[h / stride, w / stride, width, 4])?;
            }
        }
        let tokens = (h / 16).saturating_mul(w / 16);
        activation("the encoder MLP", &[tokens, self.encoder.mlp_dim])?;
        let n_logits = (1usize << self.class_bits) + (1usize << self.instance_bits);
        activation("the logits", &[mh, mw, n_logits])?;
        activation("F", &[mh, mw, self.fusion.dim])?;
        let dec = &self.decoder;
        for (i, &m) in dec.ch_mult.iter().enumerate() {
            let (lh, lw) = (mh >> i.min(31), mw >> i.min(31));
            activation(&format!("decoder level {i}'s concatenation"), &[lh, lw, dec.dim, m, 2])?;
        }
        let levels = dec.ch_mult.len().saturating_sub(1).min(31);
        let mid_tokens = (mh >> levels).saturating_mul(mw >> levels);
        activation("the decoder transformer MLP", &[mid_tokens, dec.transformer_mlp_dim])
    }
}

#[cfg(test)]
mod tests {
    use crate::model::config::bits_for;
    use crate::model::ModelConfig;

    #[test]
    fn bits_for_is_exact_for_any_count() {
        let cases = [(0, 1), (1, 1), (2, 1), (3, 2), (4, 2), (5, 3), (134, 8), (256, 8), (257, 9)];
        for (count, bits) in cases {
            assert_eq!(bits_for(count), bits, "{count}");
        }
        assert_eq!(bits_for(usize::MAX), usize::BITS);
        assert_eq!(bits_for((1 << 63) + 1), 64);
    }

    #[test]
    fn the_shipped_configs_are_within_the_limits() {
        for text in
            [include_str!("../../train/configs/web.json"), include_str!("../../train/configs/paper.json")]
        {
            ModelConfig::from_json(text).unwrap();
        }
    }
}
