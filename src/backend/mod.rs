//! The ops the model is written against. The model code (`crate::model`) is generic over a
//! [`Backend`], so one forward pass, written like the PyTorch modules, runs on the GPU
//! ([`GpuBackend`]: records into a [`Frame`](crate::gpu::Frame)) and on the CPU
//! ([`CpuBackend`]: fast CPU kernels, checked against the plain-Rust twins `ops::*::cpu`), and both are checked
//! against the PyTorch fixtures.
//!
//! All activations are channels-last (`[N, H, W, C]`, tokens `[N, L, C]`); weights are in the
//! engine's layouts (conv HWIO, depthwise `[KH, KW, C]`, linear `[in, out]`).

pub mod bands;
pub mod cpu;
mod gpu;

pub use cpu::{CpuBackend, CpuPath, CpuTensor};
pub use gpu::GpuBackend;

use crate::gpu::GpuError;
use crate::ops::bits::{BitSpec, DdimCoefficients};
use crate::ops::conv::Geometry;
use crate::ops::readout::{Cells, IdSpace, Resample};
use crate::ops::Activation;

/// `y = act((op + bias + residual) · scale)` for convs; linears apply `act(op + bias) + residual`
/// (the transformer's residual stream) and ignore `scale`.
pub struct Epilogue<'a, T> {
    pub bias: Option<&'a T>,
    pub act: Activation,
    pub residual: Option<&'a T>,
    pub scale: f32,
}

impl<'a, T> Epilogue<'a, T> {
    pub fn new(bias: Option<&'a T>, act: Activation) -> Self {
        Epilogue { bias, act, residual: None, scale: 1.0 }
    }

    pub fn with_residual(mut self, residual: &'a T) -> Self {
        self.residual = Some(residual);
        self
    }

    pub fn with_scale(mut self, scale: f32) -> Self {
        self.scale = scale;
        self
    }
}

/// Creates persistent tensors (weights, constants) outside a frame.
pub trait Upload<T> {
    fn upload(&self, shape: &[usize], data: &[f32]) -> Result<T, GpuError>;
}

pub trait Backend {
    type Tensor: Clone;

    fn shape(t: &Self::Tensor) -> &[usize];
    fn reshape(t: &Self::Tensor, shape: &[usize]) -> Self::Tensor;
    fn upload(&mut self, shape: &[usize], data: &[f32]) -> Result<Self::Tensor, GpuError>;
    fn upload_u32(&mut self, shape: &[usize], data: &[u32]) -> Result<Self::Tensor, GpuError>;

    fn conv2d(
        &mut self,
        x: &Self::Tensor,
        w: &Self::Tensor,
        geom: &Geometry,
        epi: Epilogue<Self::Tensor>,
    ) -> Result<Self::Tensor, GpuError>;
    fn depthwise_conv2d(
        &mut self,
        x: &Self::Tensor,
        w: &Self::Tensor,
        bias: Option<&Self::Tensor>,
        geom: &Geometry,
        act: Activation,
    ) -> Result<Self::Tensor, GpuError>;
    fn max_pool2d(
        &mut self,
        x: &Self::Tensor,
        window: (usize, usize),
        geom: &Geometry,
    ) -> Result<Self::Tensor, GpuError>;
    fn linear(
        &mut self,
        x: &Self::Tensor,
        w: &Self::Tensor,
        epi: Epilogue<Self::Tensor>,
    ) -> Result<Self::Tensor, GpuError>;
    fn layer_norm(
        &mut self,
        x: &Self::Tensor,
        gamma: &Self::Tensor,
        beta: &Self::Tensor,
        eps: f32,
        act: Activation,
    ) -> Result<Self::Tensor, GpuError>;
    /// GroupNorm, with the ResBlock's FiLM `(1 + scale)·y + shift` fused when `scale_shift` is
    /// given (`[N, 2C]`), then `act`.
    #[allow(clippy::too_many_arguments)]
    fn group_norm(
        &mut self,
        x: &Self::Tensor,
        gamma: &Self::Tensor,
        beta: &Self::Tensor,
        groups: usize,
        eps: f32,
        scale_shift: Option<&Self::Tensor>,
        act: Activation,
    ) -> Result<Self::Tensor, GpuError>;
    /// Self-attention on a packed `[q | k | v]` `[N, L, 3d]`.
    fn attention_qkv(&mut self, qkv: &Self::Tensor, heads: usize) -> Result<Self::Tensor, GpuError>;
    /// Cross-attention: `q` `[N, Lq, d]`, packed `[k | v]` `[N, Lk, 2d]`.
    fn attention_q_kv(
        &mut self,
        q: &Self::Tensor,
        kv: &Self::Tensor,
        heads: usize,
    ) -> Result<Self::Tensor, GpuError>;
    fn add(&mut self, a: &Self::Tensor, b: &Self::Tensor, act: Activation) -> Result<Self::Tensor, GpuError>;
    /// `x · alpha + beta`.
    fn affine(&mut self, x: &Self::Tensor, alpha: f32, beta: f32) -> Result<Self::Tensor, GpuError>;
    fn concat_channels(&mut self, parts: &[&Self::Tensor]) -> Result<Self::Tensor, GpuError>;
    /// Nearest upsampling by `factor` on both axes, plus `skip` (output-sized) when given.
    fn upsample_nearest(
        &mut self,
        x: &Self::Tensor,
        factor: usize,
        skip: Option<&Self::Tensor>,
    ) -> Result<Self::Tensor, GpuError>;
    fn append_token(
        &mut self,
        x: &Self::Tensor,
        token: &Self::Tensor,
        pos: Option<&Self::Tensor>,
    ) -> Result<Self::Tensor, GpuError>;
    fn slice_tokens(&mut self, x: &Self::Tensor, start: usize, len: usize) -> Result<Self::Tensor, GpuError>;
    /// `[n, dim]`: the 1-D sin-cos code of `value · scale` on every row.
    fn scalar_embedding(
        &mut self,
        value: f32,
        scale: f32,
        n: usize,
        dim: usize,
    ) -> Result<Self::Tensor, GpuError>;
    fn position_code_2d(&mut self, height: usize, width: usize, dim: usize)
        -> Result<Self::Tensor, GpuError>;

    fn normal_fill(&mut self, shape: &[usize], seed: u32, offset: u32) -> Result<Self::Tensor, GpuError>;
    /// u32 class and instance maps → analog bits `[.., n_bits]`.
    fn ids_to_bits(
        &mut self,
        class: &Self::Tensor,
        instance: &Self::Tensor,
        spec: &BitSpec,
    ) -> Result<Self::Tensor, GpuError>;
    /// x̂0 = expected bits of the logits (clipped to ±b) and the DDIM update of `m`: `(x̂0, m')`.
    /// The GPU updates `m` in place and returns it as `m'`.
    fn expected_bits_ddim(
        &mut self,
        logits: &Self::Tensor,
        m: &Self::Tensor,
        spec: &BitSpec,
        k: &DdimCoefficients,
    ) -> Result<(Self::Tensor, Self::Tensor), GpuError>;
    /// Threshold, LSB first, clamp: u32 (class, instance) maps.
    fn bits_to_ids(
        &mut self,
        x: &Self::Tensor,
        spec: &BitSpec,
        num_classes: u32,
        max_instances: u32,
    ) -> Result<(Self::Tensor, Self::Tensor), GpuError>;
    /// Step 1 of the readout ([`crate::ops::readout`]) of the last step's logits `[1, Hm, Wm, L]`
    /// and x̂0 `[1, Hm, Wm, n_bits]`: per cell the class and instance ids and the class group's
    /// void probability, `[1, Hm, Wm]` each.
    fn cells(
        &mut self,
        logits: &Self::Tensor,
        x0: &Self::Tensor,
        ids: &IdSpace,
    ) -> Result<Cells<Self::Tensor>, GpuError>;
    /// The bilinear readout of the last step at `r`'s output size: u32 (class, instance) maps
    /// `[out_h, out_w]` ([`crate::ops::readout`]).
    fn readout(
        &mut self,
        logits: &Self::Tensor,
        x0: &Self::Tensor,
        cells: &Cells<Self::Tensor>,
        ids: &IdSpace,
        r: &Resample,
    ) -> Result<(Self::Tensor, Self::Tensor), GpuError>;
}
