//! Pre-LN transformer layers and the image encoder over the stride-16 tokens (`transformer.py`).

use super::layers::{FeedForward, Linear, MultiHeadAttention, Norm};
use crate::backend::{Backend, Upload};
use crate::model::config::EncoderConfig;
use crate::model::{ModelError, Params};
use crate::ops::Activation;

/// `x += MHA(LN x); x += FFN(LN x)`.
pub struct EncoderLayer<T> {
    attn_norm: Norm<T>,
    attn: MultiHeadAttention<T>,
    mlp_norm: Norm<T>,
    mlp: FeedForward<T>,
}

impl<T: Clone> EncoderLayer<T> {
    fn load<U: Upload<T>>(p: &mut Params<U>, name: &str, cfg: &EncoderConfig) -> Result<Self, ModelError> {
        Ok(EncoderLayer {
            attn_norm: Norm::layer(p, &format!("{name}.attn_norm"), cfg.dim)?,
            attn: MultiHeadAttention::load_self(p, &format!("{name}.attn"), cfg.dim, cfg.heads)?,
            mlp_norm: Norm::layer(p, &format!("{name}.mlp_norm"), cfg.dim)?,
            mlp: FeedForward::load(p, &format!("{name}.mlp"), cfg.dim, cfg.mlp_dim)?,
        })
    }

    fn forward<B: Backend<Tensor = T>>(&self, b: &mut B, x: &T) -> Result<T, ModelError> {
        let h = self.attn_norm.forward(b, x, Activation::None)?;
        let x = self.attn.forward_self(b, &h, x)?;
        let h = self.mlp_norm.forward(b, &x, Activation::None)?;
        self.mlp.forward(b, &h, &x)
    }
}

/// `x += MHA_self(LN x); x += MHA_cross(LN x, E); x += FFN(LN x)`; the context's K/V come
/// precomputed ([`DecoderLayer::context_kv`]).
pub struct DecoderLayer<T> {
    self_norm: Norm<T>,
    self_attn: MultiHeadAttention<T>,
    cross_norm: Norm<T>,
    cross_attn: MultiHeadAttention<T>,
    mlp_norm: Norm<T>,
    mlp: FeedForward<T>,
}

impl<T: Clone> DecoderLayer<T> {
    #[allow(clippy::too_many_arguments)]
    pub fn load<U: Upload<T>>(
        p: &mut Params<U>,
        name: &str,
        dim: usize,
        heads: usize,
        mlp_dim: usize,
        context_dim: usize,
    ) -> Result<Self, ModelError> {
        Ok(DecoderLayer {
            self_norm: Norm::layer(p, &format!("{name}.self_norm"), dim)?,
            self_attn: MultiHeadAttention::load_self(p, &format!("{name}.self_attn"), dim, heads)?,
            cross_norm: Norm::layer(p, &format!("{name}.cross_norm"), dim)?,
            cross_attn: MultiHeadAttention::load_cross(
                p,
                &format!("{name}.cross_attn"),
                dim,
                context_dim,
                heads,
            )?,
            mlp_norm: Norm::layer(p, &format!("{name}.mlp_norm"), dim)?,
            mlp: FeedForward::load(p, &format!("{name}.mlp"), dim, mlp_dim)?,
        })
    }

    pub fn context_kv<B: Backend<Tensor = T>>(&self, b: &mut B, context: &T) -> Result<T, ModelError> {
        self.cross_attn.context_kv(b, context)
    }

    pub fn forward<B: Backend<Tensor = T>>(&self, b: &mut B, x: &T, context_kv: &T) -> Result<T, ModelError> {
        let h = self.self_norm.forward(b, x, Activation::None)?;
        let x = self.self_attn.forward_self(b, &h, x)?;
        let h = self.cross_norm.forward(b, &x, Activation::None)?;
        let x = self.cross_attn.forward_cross(b, &h, context_kv, &x)?;
        let h = self.mlp_norm.forward(b, &x, Activation::None)?;
        self.mlp.forward(b, &h, &x)
    }
}

/// C4 `[N, h, w, C]` → tokens E `[N, h·w, dim]`: proj → LN → + 2-D sin-cos code → layers → LN.
pub struct ImageEncoder<T> {
    dim: usize,
    proj: Linear<T>,
    proj_norm: Norm<T>,
    layers: Vec<EncoderLayer<T>>,
    out_norm: Norm<T>,
}

impl<T: Clone> ImageEncoder<T> {
    pub fn load<U: Upload<T>>(
        p: &mut Params<U>,
        in_channels: usize,
        cfg: &EncoderConfig,
    ) -> Result<Self, ModelError> {
        Ok(ImageEncoder {
            dim: cfg.dim,
            proj: Linear::load(p, "encoder.proj", in_channels, cfg.dim)?,
            proj_norm: Norm::layer(p, "encoder.proj_norm", cfg.dim)?,
            layers: (0..cfg.layers)
                .map(|i| EncoderLayer::load(p, &format!("encoder.layers.{i}"), cfg))
                .collect::<Result<_, _>>()?,
            out_norm: Norm::layer(p, "encoder.out_norm", cfg.dim)?,
        })
    }

    pub fn forward<B: Backend<Tensor = T>>(&self, b: &mut B, c4: &T) -> Result<T, ModelError> {
        let &[n, h, w, c] = B::shape(c4) else {
            return Err(ModelError::Config(format!(
                "encoder input must be [N, H, W, C], got {:?}",
                B::shape(c4)
            )));
        };
        if n != 1 {
            return Err(ModelError::Config(format!(
                "the encoder runs one image at a time, got a batch of {n}"
            )));
        }
        let tokens = B::reshape(c4, &[n, h * w, c]);
        let x = self.proj.forward(b, &tokens, Activation::None, None)?;
        let x = self.proj_norm.forward(b, &x, Activation::None)?;
        let pos = b.position_code_2d(h, w, self.dim)?;
        let mut x = b.add(&x, &B::reshape(&pos, &[n, h * w, self.dim]), Activation::None)?;
        for layer in &self.layers {
            x = layer.forward(b, &x)?;
        }
        self.out_norm.forward(b, &x, Activation::None)
    }
}
