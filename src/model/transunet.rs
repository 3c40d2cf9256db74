//! The TransUNet denoiser (`transunet.py`): conv_in → down levels of ResBlocks → bottleneck
//! transformer with a time token and cross-attention to E → up levels with skips → GN → SiLU →
//! conv_out to `2^class_bits + 2^instance_bits` logits (channels last).
//!
//! Two exact rewrites for speed, both linear algebra on the same weights:
//! - `conv_in` is 1×1, so its input channels split into the per-step part (`m_t`, x̃0) and the
//!   per-image part (F, previous masks): the latter's product (+ bias) is computed once per
//!   image ([`TransUNet::condition`]) and added in the per-step conv's epilogue;
//! - the cross-attention K/V of E are computed once per image for all layers.

use super::layers::{Conv2d, Conv2dConfig, Linear, Norm};
use super::transformer::DecoderLayer;
use crate::backend::{Backend, Upload};
use crate::model::config::DecoderConfig;
use crate::model::{ModelError, Params};
use crate::ops::conv::oihw_to_hwio;
use crate::ops::Activation;

/// `e = sincos(γ · time_scaling, d)`; `emb = SiLU(fc1(SiLU(fc0(e))))`, 4d wide.
struct TimeEmbedding<T> {
    dim: usize,
    time_scaling: f32,
    fc0: Linear<T>,
    fc1: Linear<T>,
}

impl<T: Clone> TimeEmbedding<T> {
    fn forward<B: Backend<Tensor = T>>(&self, b: &mut B, gamma: f32) -> Result<T, ModelError> {
        let code = b.scalar_embedding(gamma, self.time_scaling, 1, self.dim)?;
        let h = self.fc0.forward(b, &code, Activation::Silu, None)?;
        self.fc1.forward(b, &h, Activation::Silu, None)
    }
}

/// `h = conv0(SiLU(norm0 x))`; `h = SiLU(norm1(h)·(1 + scale) + shift)`; `out = (conv1(h) + skip) / √2`.
struct ResBlock<T> {
    norm0: Norm<T>,
    conv0: Conv2d<T>,
    time_proj: Linear<T>,
    norm1: Norm<T>,
    conv1: Conv2d<T>,
    skip: Option<Conv2d<T>>,
}

impl<T: Clone> ResBlock<T> {
    fn load<U: Upload<T>>(
        p: &mut Params<U>,
        name: &str,
        in_ch: usize,
        out_ch: usize,
        emb_dim: usize,
    ) -> Result<Self, ModelError> {
        Ok(ResBlock {
            norm0: Norm::group(p, &format!("{name}.norm0"), in_ch, in_ch)?,
            conv0: Conv2dConfig::new(in_ch, out_ch, 3).load(p, &format!("{name}.conv0"))?,
            time_proj: Linear::load(p, &format!("{name}.time_proj"), emb_dim, 2 * out_ch)?,
            norm1: Norm::group(p, &format!("{name}.norm1"), out_ch, out_ch)?,
            conv1: Conv2dConfig::new(out_ch, out_ch, 3).load(p, &format!("{name}.conv1"))?,
            skip: if in_ch != out_ch {
                Some(Conv2dConfig::new(in_ch, out_ch, 1).load(p, &format!("{name}.skip"))?)
            } else {
                None
            },
        })
    }

    fn forward<B: Backend<Tensor = T>>(&self, b: &mut B, x: &T, emb: &T) -> Result<T, ModelError> {
        let skip = match &self.skip {
            Some(s) => s.run(b, x, Activation::None)?,
            None => x.clone(),
        };
        let h = self.norm0.forward(b, x, Activation::Silu)?;
        let h = self.conv0.run(b, &h, Activation::None)?;
        let scale_shift = self.time_proj.forward(b, emb, Activation::None, None)?;
        let h = self.norm1.forward_film(b, &h, Some(&scale_shift), Activation::Silu)?;
        self.conv1.forward(b, &h, Activation::None, Some(&skip), std::f32::consts::FRAC_1_SQRT_2)
    }
}

/// `norm_in → conv_in 1×1 → + pos code, append time token → decoder layers → drop the token →
/// norm_out → conv_out 1×1` (no residual around it).
struct Bottleneck<T> {
    dim: usize,
    norm_in: Norm<T>,
    conv_in: Conv2d<T>,
    time_token: Linear<T>,
    layers: Vec<DecoderLayer<T>>,
    norm_out: Norm<T>,
    conv_out: Conv2d<T>,
}

impl<T: Clone> Bottleneck<T> {
    fn forward<B: Backend<Tensor = T>>(
        &self,
        b: &mut B,
        x: &T,
        emb: &T,
        context_kv: &[T],
    ) -> Result<T, ModelError> {
        let x = self.norm_in.forward(b, x, Activation::None)?;
        let x = self.conv_in.run(b, &x, Activation::None)?;
        let &[n, h, w, d] = B::shape(&x) else {
            return Err(ModelError::Config("bottleneck input must be [N, H, W, C]".into()));
        };
        let pos = b.position_code_2d(h, w, self.dim)?;
        let token = self.time_token.forward(b, emb, Activation::None, None)?;
        let mut tokens = b.append_token(&B::reshape(&x, &[n, h * w, d]), &token, Some(&pos))?;
        for (layer, kv) in self.layers.iter().zip(context_kv) {
            tokens = layer.forward(b, &tokens, kv)?;
        }
        let x = b.slice_tokens(&tokens, 0, h * w)?;
        let x = self.norm_out.forward(b, &B::reshape(&x, &[n, h, w, d]), Activation::None)?;
        self.conv_out.run(b, &x, Activation::None)
    }
}

struct Level<T> {
    res: Vec<ResBlock<T>>,
    /// Down: the 3×3/2 conv after the ResBlocks; up: the 3×3 conv after the ×2 upsampling.
    resample: Option<Conv2d<T>>,
}

/// The per-image part of the decoder input, computed once ([`TransUNet::condition`]).
pub struct Condition<T> {
    /// `conv_in` of [F | previous-mask bits] plus its bias: `[N, Hm, Wm, width0]`.
    pub conv_in_const: T,
    /// `[k | v]` of E for each bottleneck layer.
    pub context_kv: Vec<T>,
}

pub struct TransUNet<T> {
    time_embed: TimeEmbedding<T>,
    /// conv_in's weight split by input channel: the per-step channels, then the per-image ones.
    conv_in_step: T,
    conv_in_const: T,
    conv_in_bias: T,
    norm_in: Norm<T>,
    down: Vec<Level<T>>,
    mid: Bottleneck<T>,
    /// `up[i]` holds level i; it runs last..0.
    up: Vec<Level<T>>,
    norm_out: Norm<T>,
    conv_out: Conv2d<T>,
}

impl<T: Clone> TransUNet<T> {
    /// `step_channels`: input channels that change every step (`m_t`, x̃0), then `const_channels`
    /// (F, previous masks).
    #[allow(clippy::too_many_arguments)]
    pub fn load<U: Upload<T>>(
        p: &mut Params<U>,
        cfg: &DecoderConfig,
        step_channels: usize,
        const_channels: usize,
        out_channels: usize,
        context_dim: usize,
        time_scaling: f32,
    ) -> Result<Self, ModelError> {
        let emb_dim = 4 * cfg.time_embed_dim;
        let widths: Vec<usize> = cfg.ch_mult.iter().map(|m| cfg.dim * m).collect();
        let last = widths.len() - 1;
        let time_embed = TimeEmbedding {
            dim: cfg.time_embed_dim,
            time_scaling,
            fc0: Linear::load(p, "decoder.time_embed.fc0", cfg.time_embed_dim, emb_dim)?,
            fc1: Linear::load(p, "decoder.time_embed.fc1", emb_dim, emb_dim)?,
        };

        let in_channels = step_channels + const_channels;
        let oihw = [widths[0], in_channels, 1, 1];
        let hwio = oihw_to_hwio(&p.raw("decoder.conv_in.weight", &oihw)?, oihw)?;
        let (step_rows, const_rows) = hwio.split_at(step_channels * widths[0]);
        let conv_in_step = p.upload.upload(&[1, 1, step_channels, widths[0]], step_rows)?;
        let conv_in_const = p.upload.upload(&[1, 1, const_channels, widths[0]], const_rows)?;
        let conv_in_bias = p.tensor("decoder.conv_in.bias", &[widths[0]])?;
        let norm_in = Norm::group(p, "decoder.norm_in", widths[0], widths[0])?;

        let mut skips = vec![widths[0]];
        let mut ch = widths[0];
        let mut down = Vec::new();
        for (i, (&width, &n_res)) in widths.iter().zip(&cfg.n_res_blocks).enumerate() {
            let mut res = Vec::new();
            for r in 0..n_res {
                res.push(ResBlock::load(p, &format!("decoder.down.{i}.res.{r}"), ch, width, emb_dim)?);
                ch = width;
                skips.push(ch);
            }
            let mut resample = None;
            if i != last {
                resample = Some(
                    Conv2dConfig::new(ch, width, 3)
                        .stride(2)
                        .load(p, &format!("decoder.down.{i}.downsample"))?,
                );
                skips.push(width);
            }
            down.push(Level { res, resample });
        }

        let dim = cfg.transformer_dim;
        let mid = Bottleneck {
            dim,
            norm_in: Norm::group(p, "decoder.mid.norm_in", ch, dim)?,
            conv_in: Conv2dConfig::new(ch, dim, 1).load(p, "decoder.mid.conv_in")?,
            time_token: Linear::load(p, "decoder.mid.time_token", emb_dim, dim)?,
            layers: (0..cfg.transformer_layers)
                .map(|l| {
                    DecoderLayer::load(
                        p,
                        &format!("decoder.mid.layers.{l}"),
                        dim,
                        cfg.transformer_heads,
                        cfg.transformer_mlp_dim,
                        context_dim,
                    )
                })
                .collect::<Result<_, _>>()?,
            norm_out: Norm::group(p, "decoder.mid.norm_out", dim, dim)?,
            conv_out: Conv2dConfig::new(dim, dim, 1).load(p, "decoder.mid.conv_out")?,
        };
        ch = dim;

        let mut up: Vec<Level<T>> = Vec::new();
        for i in (0..=last).rev() {
            let (width, n_res) = (widths[i], cfg.n_res_blocks[i]);
            let mut res = Vec::new();
            for r in 0..=n_res {
                let skip =
                    skips.pop().ok_or_else(|| ModelError::Config("decoder: skip bookkeeping".into()))?;
                res.push(ResBlock::load(p, &format!("decoder.up.{i}.res.{r}"), ch + skip, width, emb_dim)?);
                ch = width;
            }
            let resample = if i != 0 {
                Some(Conv2dConfig::new(ch, width, 3).load(p, &format!("decoder.up.{i}.upsample"))?)
            } else {
                None
            };
            up.push(Level { res, resample });
        }
        up.reverse();

        Ok(TransUNet {
            time_embed,
            conv_in_step,
            conv_in_const,
            conv_in_bias,
            norm_in,
            down,
            mid,
            up,
            norm_out: Norm::group(p, "decoder.norm_out", widths[0], cfg.dim)?,
            conv_out: Conv2dConfig::new(widths[0], out_channels, 1).load(p, "decoder.conv_out")?,
        })
    }

    /// The per-image work: `conv_in` of the constant channels (+ bias) and the cross-attention
    /// K/V of every bottleneck layer.
    pub fn condition<B: Backend<Tensor = T>>(
        &self,
        b: &mut B,
        const_input: &T,
        context: &T,
    ) -> Result<Condition<T>, ModelError> {
        let geom = crate::ops::conv::Geometry::valid(1);
        let conv_in_const = b.conv2d(
            const_input,
            &self.conv_in_const,
            &geom,
            crate::backend::Epilogue::new(Some(&self.conv_in_bias), Activation::None),
        )?;
        let context_kv =
            self.mid.layers.iter().map(|l| l.context_kv(b, context)).collect::<Result<_, _>>()?;
        Ok(Condition { conv_in_const, context_kv })
    }

    /// One denoiser call: per-step input `[N, Hm, Wm, step_channels]` and γ → logits
    /// `[N, Hm, Wm, n_logits]`.
    pub fn forward<B: Backend<Tensor = T>>(
        &self,
        b: &mut B,
        step_input: &T,
        gamma: f32,
        cond: &Condition<T>,
    ) -> Result<T, ModelError> {
        let emb = self.time_embed.forward(b, gamma)?;
        let geom = crate::ops::conv::Geometry::valid(1);
        let x = b.conv2d(
            step_input,
            &self.conv_in_step,
            &geom,
            crate::backend::Epilogue::new(None, Activation::None).with_residual(&cond.conv_in_const),
        )?;
        let mut x = self.norm_in.forward(b, &x, Activation::None)?;
        let mut skips = vec![x.clone()];
        for level in &self.down {
            for block in &level.res {
                x = block.forward(b, &x, &emb)?;
                skips.push(x.clone());
            }
            if let Some(down) = &level.resample {
                x = down.run(b, &x, Activation::None)?;
                skips.push(x.clone());
            }
        }
        x = self.mid.forward(b, &x, &emb, &cond.context_kv)?;
        for level in self.up.iter().rev() {
            for block in &level.res {
                let skip =
                    skips.pop().ok_or_else(|| ModelError::Config("decoder: skip bookkeeping".into()))?;
                let cat = b.concat_channels(&[&x, &skip])?;
                x = block.forward(b, &cat, &emb)?;
            }
            if let Some(upsample) = &level.resample {
                let up = b.upsample_nearest(&x, 2, None)?;
                x = upsample.run(b, &up, Activation::None)?;
            }
        }
        let x = self.norm_out.forward(b, &x, Activation::Silu)?;
        self.conv_out.run(b, &x, Activation::None)
    }
}
