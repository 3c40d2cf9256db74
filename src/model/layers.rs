//! The building blocks of `train/pix2seqd_train/model/layers.py`: conv (+ folded BatchNorm),
//! depthwise conv, linear, Group/LayerNorm, multi-head attention and the feed-forward block.

use crate::backend::{Backend, Epilogue, Upload};
use crate::model::{ModelError, Params};
use crate::ops::conv::{depthwise_oihw_to_hwc, oihw_to_hwio, Geometry};
use crate::ops::matmul::linear_weight_from_torch;
use crate::ops::Activation;

pub const GROUP_NORM_EPS: f32 = 1e-5;
pub const LAYER_NORM_EPS: f32 = 1e-6;

/// GroupNorm group count: `min(C / 4, 32)` of `groups_from` (layers.py `group_norm`).
pub fn group_count(channels: usize, groups_from: usize) -> Result<usize, ModelError> {
    let groups = (groups_from / 4).min(32);
    if groups == 0 || channels % groups != 0 {
        return Err(ModelError::Config(format!(
            "GroupNorm: {channels} channels cannot form {groups} groups"
        )));
    }
    Ok(groups)
}

/// How a conv pads: PyTorch's symmetric `(k-1)/2`, or TensorFlow's "SAME" (EfficientNet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    Symmetric,
    TfSame,
}

/// `nn.Conv2d` (or a `ConvBN` with BatchNorm folded into `conv.bias`): `NAME.weight`
/// `[out, in, k, k]`, `NAME.bias` `[out]`.
pub struct Conv2d<T> {
    pub weight: T,
    pub bias: Option<T>,
    pub kernel: usize,
    pub stride: usize,
    pub padding: Padding,
}

/// `nn.Conv2d(in_ch, out_ch, kernel, stride=1, bias=True)` as PyTorch's constructor reads:
/// `Conv2dConfig::new(in_ch, out_ch, 3).stride(2).load(p, name)`. Every conv of the model has a
/// bias (BatchNorm folds into it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dConfig {
    pub in_ch: usize,
    pub out_ch: usize,
    pub kernel: usize,
    pub stride: usize,
    pub bias: bool,
    pub padding: Padding,
}

impl Conv2dConfig {
    /// Stride 1, a bias, PyTorch's symmetric padding.
    pub fn new(in_ch: usize, out_ch: usize, kernel: usize) -> Self {
        Conv2dConfig { in_ch, out_ch, kernel, stride: 1, bias: true, padding: Padding::Symmetric }
    }

    pub fn stride(self, stride: usize) -> Self {
        Conv2dConfig { stride, ..self }
    }

    pub fn padding(self, padding: Padding) -> Self {
        Conv2dConfig { padding, ..self }
    }

    /// Reads `NAME.weight` (and `NAME.bias`) with the shapes this config implies.
    pub fn load<T, U: Upload<T>>(self, p: &mut Params<U>, name: &str) -> Result<Conv2d<T>, ModelError> {
        let Conv2dConfig { in_ch, out_ch, kernel, stride, bias, padding } = self;
        let oihw = [out_ch, in_ch, kernel, kernel];
        let w = p.raw(&format!("{name}.weight"), &oihw)?;
        let hwio = oihw_to_hwio(&w, oihw)?;
        let weight = p.upload.upload(&[kernel, kernel, in_ch, out_ch], &hwio)?;
        let bias = if bias { Some(p.tensor(&format!("{name}.bias"), &[out_ch])?) } else { None };
        Ok(Conv2d { weight, bias, kernel, stride, padding })
    }
}

impl<T> Conv2d<T> {
    pub fn geometry(&self, (h, w): (usize, usize)) -> Geometry {
        match self.padding {
            Padding::Symmetric => Geometry::symmetric(self.stride, (self.kernel - 1) / 2),
            Padding::TfSame => Geometry::same(self.stride, (self.kernel, self.kernel), (h, w)),
        }
    }
}

impl<T: Clone> Conv2d<T> {
    /// `act((conv(x) + bias + residual) · scale)`.
    pub fn forward<B: Backend<Tensor = T>>(
        &self,
        b: &mut B,
        x: &T,
        act: Activation,
        residual: Option<&T>,
        scale: f32,
    ) -> Result<T, ModelError> {
        let s = B::shape(x);
        let geom = self.geometry((s[1], s[2]));
        let epi = Epilogue { bias: self.bias.as_ref(), act, residual, scale };
        Ok(b.conv2d(x, &self.weight, &geom, epi)?)
    }

    pub fn run<B: Backend<Tensor = T>>(&self, b: &mut B, x: &T, act: Activation) -> Result<T, ModelError> {
        self.forward(b, x, act, None, 1.0)
    }
}

/// A depthwise `ConvBN` (groups = channels), folded: `NAME.weight` `[C, 1, k, k]`, `NAME.bias`.
pub struct DepthwiseConv2d<T> {
    pub weight: T,
    pub bias: T,
    pub kernel: usize,
    pub stride: usize,
}

impl<T: Clone> DepthwiseConv2d<T> {
    pub fn load<U: Upload<T>>(
        p: &mut Params<U>,
        name: &str,
        channels: usize,
        kernel: usize,
        stride: usize,
    ) -> Result<Self, ModelError> {
        let shape = [channels, 1, kernel, kernel];
        let w = p.raw(&format!("{name}.weight"), &shape)?;
        let hwc = depthwise_oihw_to_hwc(&w, shape)?;
        let weight = p.upload.upload(&[kernel, kernel, channels], &hwc)?;
        let bias = p.tensor(&format!("{name}.bias"), &[channels])?;
        Ok(DepthwiseConv2d { weight, bias, kernel, stride })
    }

    /// TensorFlow "SAME" padding (the only depthwise convs are EfficientNet's).
    pub fn forward<B: Backend<Tensor = T>>(
        &self,
        b: &mut B,
        x: &T,
        act: Activation,
    ) -> Result<T, ModelError> {
        let s = B::shape(x);
        let geom = Geometry::same(self.stride, (self.kernel, self.kernel), (s[1], s[2]));
        Ok(b.depthwise_conv2d(x, &self.weight, Some(&self.bias), &geom, act)?)
    }
}

/// `nn.Linear`: `NAME.weight` `[out, in]` (stored `[in, out]`), `NAME.bias` `[out]`.
pub struct Linear<T> {
    pub weight: T,
    pub bias: T,
}

impl<T: Clone> Linear<T> {
    pub fn load<U: Upload<T>>(
        p: &mut Params<U>,
        name: &str,
        in_f: usize,
        out_f: usize,
    ) -> Result<Self, ModelError> {
        let w = p.raw(&format!("{name}.weight"), &[out_f, in_f])?;
        let weight = p.upload.upload(&[in_f, out_f], &linear_weight_from_torch(&w, out_f, in_f))?;
        let bias = p.tensor(&format!("{name}.bias"), &[out_f])?;
        Ok(Linear { weight, bias })
    }

    /// Several linears of one input packed side by side (`[q | k | v]`): one matmul instead of three.
    pub fn load_packed<U: Upload<T>>(
        p: &mut Params<U>,
        names: &[String],
        in_f: usize,
        out_f: usize,
    ) -> Result<Self, ModelError> {
        let parts = names.len();
        let mut w = vec![0f32; in_f * out_f * parts];
        let mut bias = Vec::with_capacity(out_f * parts);
        for (j, name) in names.iter().enumerate() {
            let wj =
                linear_weight_from_torch(&p.raw(&format!("{name}.weight"), &[out_f, in_f])?, out_f, in_f);
            for i in 0..in_f {
                w[i * out_f * parts + j * out_f..][..out_f].copy_from_slice(&wj[i * out_f..][..out_f]);
            }
            bias.extend(p.raw(&format!("{name}.bias"), &[out_f])?);
        }
        Ok(Linear {
            weight: p.upload.upload(&[in_f, out_f * parts], &w)?,
            bias: p.upload.upload(&[out_f * parts], &bias)?,
        })
    }

    /// `act(x W + b) + residual`.
    pub fn forward<B: Backend<Tensor = T>>(
        &self,
        b: &mut B,
        x: &T,
        act: Activation,
        residual: Option<&T>,
    ) -> Result<T, ModelError> {
        Ok(b.linear(x, &self.weight, Epilogue { bias: Some(&self.bias), act, residual, scale: 1.0 })?)
    }
}

/// `nn.GroupNorm` (eps 1e-5) or `nn.LayerNorm` (eps 1e-6): `NAME.weight`, `NAME.bias`.
pub struct Norm<T> {
    pub weight: T,
    pub bias: T,
    /// GroupNorm groups; 0 for a LayerNorm.
    pub groups: usize,
}

impl<T: Clone> Norm<T> {
    pub fn group<U: Upload<T>>(
        p: &mut Params<U>,
        name: &str,
        channels: usize,
        groups_from: usize,
    ) -> Result<Self, ModelError> {
        let groups = group_count(channels, groups_from)?;
        Ok(Norm {
            weight: p.tensor(&format!("{name}.weight"), &[channels])?,
            bias: p.tensor(&format!("{name}.bias"), &[channels])?,
            groups,
        })
    }

    pub fn layer<U: Upload<T>>(p: &mut Params<U>, name: &str, dim: usize) -> Result<Self, ModelError> {
        Ok(Norm {
            weight: p.tensor(&format!("{name}.weight"), &[dim])?,
            bias: p.tensor(&format!("{name}.bias"), &[dim])?,
            groups: 0,
        })
    }

    pub fn forward<B: Backend<Tensor = T>>(
        &self,
        b: &mut B,
        x: &T,
        act: Activation,
    ) -> Result<T, ModelError> {
        self.forward_film(b, x, None, act)
    }

    /// GroupNorm with the ResBlock's FiLM `y·(1 + scale) + shift` fused.
    pub fn forward_film<B: Backend<Tensor = T>>(
        &self,
        b: &mut B,
        x: &T,
        scale_shift: Option<&T>,
        act: Activation,
    ) -> Result<T, ModelError> {
        Ok(if self.groups == 0 {
            b.layer_norm(x, &self.weight, &self.bias, LAYER_NORM_EPS, act)?
        } else {
            b.group_norm(x, &self.weight, &self.bias, self.groups, GROUP_NORM_EPS, scale_shift, act)?
        })
    }
}

/// Keras-style multi-head attention (`q`, `k`, `v`, `out`, each with bias). Self-attention packs
/// q/k/v into one linear; cross-attention packs k/v, which the decoder computes once per image.
pub struct MultiHeadAttention<T> {
    pub heads: usize,
    /// Self: `[q | k | v]`; cross: `q` only.
    pub q_or_qkv: Linear<T>,
    /// Cross-attention's `[k | v]` of the context.
    pub kv: Option<Linear<T>>,
    pub out: Linear<T>,
}

impl<T: Clone> MultiHeadAttention<T> {
    pub fn load_self<U: Upload<T>>(
        p: &mut Params<U>,
        name: &str,
        dim: usize,
        heads: usize,
    ) -> Result<Self, ModelError> {
        let names = ["q", "k", "v"].map(|s| format!("{name}.{s}"));
        Ok(MultiHeadAttention {
            heads,
            q_or_qkv: Linear::load_packed(p, &names, dim, dim)?,
            kv: None,
            out: Linear::load(p, &format!("{name}.out"), dim, dim)?,
        })
    }

    pub fn load_cross<U: Upload<T>>(
        p: &mut Params<U>,
        name: &str,
        dim: usize,
        kv_dim: usize,
        heads: usize,
    ) -> Result<Self, ModelError> {
        let q = Linear::load(p, &format!("{name}.q"), dim, dim)?;
        let names = ["k", "v"].map(|s| format!("{name}.{s}"));
        Ok(MultiHeadAttention {
            heads,
            q_or_qkv: q,
            kv: Some(Linear::load_packed(p, &names, kv_dim, dim)?),
            out: Linear::load(p, &format!("{name}.out"), dim, dim)?,
        })
    }

    /// `residual + out(attention(x))` (self-attention).
    pub fn forward_self<B: Backend<Tensor = T>>(
        &self,
        b: &mut B,
        x: &T,
        residual: &T,
    ) -> Result<T, ModelError> {
        let qkv = self.q_or_qkv.forward(b, x, Activation::None, None)?;
        let y = b.attention_qkv(&qkv, self.heads)?;
        self.out.forward(b, &y, Activation::None, Some(residual))
    }

    /// The packed `[k | v]` of the context (once per image).
    pub fn context_kv<B: Backend<Tensor = T>>(&self, b: &mut B, context: &T) -> Result<T, ModelError> {
        let kv = self
            .kv
            .as_ref()
            .ok_or_else(|| ModelError::Config("context_kv on a self-attention layer".into()))?;
        kv.forward(b, context, Activation::None, None)
    }

    /// `residual + out(attention(q(x), kv))` (cross-attention with precomputed `kv`).
    pub fn forward_cross<B: Backend<Tensor = T>>(
        &self,
        b: &mut B,
        x: &T,
        kv: &T,
        residual: &T,
    ) -> Result<T, ModelError> {
        let q = self.q_or_qkv.forward(b, x, Activation::None, None)?;
        let y = b.attention_q_kv(&q, kv, self.heads)?;
        self.out.forward(b, &y, Activation::None, Some(residual))
    }
}

/// `fc1 → exact GELU → fc2` (dropout is training-only).
pub struct FeedForward<T> {
    pub fc1: Linear<T>,
    pub fc2: Linear<T>,
}

impl<T: Clone> FeedForward<T> {
    pub fn load<U: Upload<T>>(
        p: &mut Params<U>,
        name: &str,
        dim: usize,
        hidden: usize,
    ) -> Result<Self, ModelError> {
        Ok(FeedForward {
            fc1: Linear::load(p, &format!("{name}.fc1"), dim, hidden)?,
            fc2: Linear::load(p, &format!("{name}.fc2"), hidden, dim)?,
        })
    }

    /// `residual + fc2(gelu(fc1(x)))`.
    pub fn forward<B: Backend<Tensor = T>>(&self, b: &mut B, x: &T, residual: &T) -> Result<T, ModelError> {
        let h = self.fc1.forward(b, x, Activation::Gelu, None)?;
        self.fc2.forward(b, &h, Activation::None, Some(residual))
    }
}
