//! Matrix multiply and linear layers with fused epilogues:
//! `C[b] = act(A[b] · B + bias) + residual[b]`.
//!
//! - `A` is `[batch, M, K]` (or `[M, K]`), row-major.
//! - `B` is either shared `[K, N]` (the linear layer: one weight for every batch item) or batched
//!   `[batch, K, N]`.
//! - `bias` `[N]` and `residual` `[batch, M, N]` are optional; the residual is added *after* the
//!   activation, which is what a transformer block's `x += proj(...)` needs.
//!
//! Weight layout of [`linear`]: `[in, out]` (= `[K, N]`), i.e. PyTorch's `nn.Linear.weight`
//! (`[out, in]`) transposed; [`linear_weight_from_torch`] converts. The transposed layout makes the
//! GEMM's B tile rows contiguous vec4 loads along the output features.
//!
//! The shader (`shaders/matmul.wgsl`) computes 64×64 tiles of C per workgroup of 64 threads,
//! stepping K by 16 through workgroup memory, with an 8×8 register block per thread and a software
//! prefetch of the next K step; the vec4 path is used when `K % 4 == 0 && N % 4 == 0`, the scalar
//! path (any shape, every element bounds-checked) otherwise.

use crate::gpu::{Access, Frame, GpuError, Kernel, Shader, Tensor};
use crate::ops::uniform::{uniform, UniformLayout};
use crate::ops::Activation;

pub static SHADER: Shader = Shader { name: "matmul", source: include_str!("../../shaders/matmul.wgsl") };

const R: Access = Access::Read;
const W: Access = Access::ReadWrite;

/// vec4 path, no epilogue tensor: `a, b, c`.
pub static MM_V4: Kernel = Kernel { shader: &SHADER, entry: "mm_v4", bindings: &[R, R, W] };
/// vec4 path, bias or residual: `a, b, bias|residual, c`.
pub static MM_V4_E1: Kernel = Kernel { shader: &SHADER, entry: "mm_v4_e1", bindings: &[R, R, R, W] };
/// vec4 path, bias and residual: `a, b, bias, residual, c`.
pub static MM_V4_E2: Kernel = Kernel { shader: &SHADER, entry: "mm_v4_e2", bindings: &[R, R, R, R, W] };
/// Scalar path (any K, N), same binding sets.
pub static MM_S: Kernel = Kernel { shader: &SHADER, entry: "mm_s", bindings: &[R, R, W] };
pub static MM_S_E1: Kernel = Kernel { shader: &SHADER, entry: "mm_s_e1", bindings: &[R, R, R, W] };
pub static MM_S_E2: Kernel = Kernel { shader: &SHADER, entry: "mm_s_e2", bindings: &[R, R, R, R, W] };

pub const SHADERS: &[&Shader] = &[&SHADER];
pub const KERNELS: &[&Kernel] = &[&MM_V4, &MM_V4_E1, &MM_V4_E2, &MM_S, &MM_S_E1, &MM_S_E2];
/// The uniform structs of this family (checked against the shaders in tests/engine/shaders.rs).
pub const UNIFORMS: &[UniformLayout] = &[Params::layout(&SHADER, "Params")];

/// Output tile of one workgroup (must match `TM`/`TN` of the shader).
const TILE_M: usize = 64;
const TILE_N: usize = 64;

uniform! {
    #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    struct Params {
        m: u32,
        n: u32,
        k: u32,
        batch: u32,
        tiles_m: u32,
        tiles_n: u32,
        a_stride: u32,
        b_stride: u32,
        c_stride: u32,
        act: u32,
        epi: u32,
        groups: u32,
    }
}

/// Floating-point operations of a (batched) `M×K · K×N` product: `2·M·N·K·batch`.
pub fn matmul_flops(m: usize, n: usize, k: usize, batch: usize) -> f64 {
    2.0 * m as f64 * n as f64 * k as f64 * batch as f64
}

/// The optional parts of the epilogue.
#[derive(Clone, Copy, Default)]
pub struct Epilogue<'a> {
    /// `[N]`, added before the activation.
    pub bias: Option<&'a Tensor>,
    pub act: Activation,
    /// `[batch, M, N]` (the output's shape), added after the activation.
    pub residual: Option<&'a Tensor>,
}

/// `act(a · b + bias) + residual` for `a` `[batch, M, K]` (or `[M, K]`) and `b` `[K, N]` (shared)
/// or `[batch, K, N]`. Returns `[batch, M, N]` (`[M, N]` for a 2-D `a`).
pub fn matmul(frame: &mut Frame, a: &Tensor, b: &Tensor, epi: Epilogue) -> Result<Tensor, GpuError> {
    let (batch, m, k, out_shape) = match a.shape() {
        [m, k] => (1, *m, *k, vec![*m]),
        [bt, m, k] => (*bt, *m, *k, vec![*bt, *m]),
        s => return Err(GpuError::shape("matmul", format!("a must be [M, K] or [batch, M, K], got {s:?}"))),
    };
    let (n, b_shared) = match b.shape() {
        [kb, n] if *kb == k => (*n, true),
        [bb, kb, n] if *kb == k && *bb == batch => (*n, false),
        s => {
            return Err(GpuError::shape(
                "matmul",
                format!("b must be [{k}, N] or [{batch}, {k}, N] for a {:?}, got {s:?}", a.shape()),
            ));
        }
    };
    let mut out_shape = out_shape;
    out_shape.push(n);
    gemm(frame, "matmul", a, b, batch, m, k, n, b_shared, &out_shape, epi)
}

/// A linear layer on the last axis: `x` `[..., K]`, `w` `[K, N]` (see
/// [`linear_weight_from_torch`]), returns `act(x · w + bias) + residual` of shape `[..., N]`.
/// All leading axes are flattened into the GEMM's M, so the tiles stay full.
pub fn linear(frame: &mut Frame, x: &Tensor, w: &Tensor, epi: Epilogue) -> Result<Tensor, GpuError> {
    let shape = x.shape();
    let Some((&k, lead)) = shape.split_last() else {
        return Err(GpuError::shape("linear", "x must have at least one axis"));
    };
    let [kw, n] = *w.shape() else {
        return Err(GpuError::shape("linear", format!("w must be [in, out], got {:?}", w.shape())));
    };
    if kw != k {
        return Err(GpuError::shape(
            "linear",
            format!("x {:?} has {k} features but w {:?} expects {kw}", shape, w.shape()),
        ));
    }
    let m: usize = lead.iter().product();
    let mut out_shape = lead.to_vec();
    out_shape.push(n);
    gemm(frame, "linear", x, w, 1, m, k, n, true, &out_shape, epi)
}

#[allow(clippy::too_many_arguments)]
fn gemm(
    frame: &mut Frame,
    op: &'static str,
    a: &Tensor,
    b: &Tensor,
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
    b_shared: bool,
    out_shape: &[usize],
    epi: Epilogue,
) -> Result<Tensor, GpuError> {
    if let Some(bias) = epi.bias {
        if bias.shape() != [n] {
            return Err(GpuError::shape(op, format!("bias must be [{n}], got {:?}", bias.shape())));
        }
    }
    if let Some(res) = epi.residual {
        if res.shape() != out_shape {
            return Err(GpuError::shape(
                op,
                format!("residual must be {out_shape:?} (the output's shape), got {:?}", res.shape()),
            ));
        }
    }
    let tiles_m = m.div_ceil(TILE_M);
    let tiles_n = n.div_ceil(TILE_N);
    let groups = tiles_m as u64 * tiles_n as u64 * batch as u64;
    if groups > u32::MAX as u64 || a.len() > u32::MAX as usize || b.len() > u32::MAX as usize {
        return Err(GpuError::shape(op, format!("{batch}×{m}×{k}×{n} is too large for 32-bit indexing")));
    }
    let c = frame.gpu().tensor(out_shape, a.dtype())?;
    if c.is_empty() {
        return Ok(c);
    }
    let vec4 = k % 4 == 0 && n % 4 == 0;
    let p = Params {
        m: m as u32,
        n: n as u32,
        k: k as u32,
        batch: batch as u32,
        tiles_m: tiles_m as u32,
        tiles_n: tiles_n as u32,
        a_stride: (m * k) as u32,
        b_stride: if b_shared { 0 } else { (k * n) as u32 },
        c_stride: (m * n) as u32,
        act: epi.act.code(),
        epi: if epi.bias.is_some() { 1 } else { 2 },
        groups: groups as u32,
    };
    let workgroups = frame.gpu().fold_workgroups(groups as u32);
    let (kernel, extra): (&'static Kernel, Vec<&Tensor>) = match (epi.bias, epi.residual) {
        (None, None) => (if vec4 { &MM_V4 } else { &MM_S }, vec![]),
        (Some(t), None) | (None, Some(t)) => (if vec4 { &MM_V4_E1 } else { &MM_S_E1 }, vec![t]),
        (Some(bias), Some(res)) => (if vec4 { &MM_V4_E2 } else { &MM_S_E2 }, vec![bias, res]),
    };
    let mut buffers = vec![a, b];
    buffers.extend(extra);
    buffers.push(&c);
    frame.dispatch(kernel, &p, &buffers, workgroups);
    Ok(c)
}

/// PyTorch's `nn.Linear.weight` `[out, in]` (row-major) to this module's `[in, out]`.
pub fn linear_weight_from_torch(w: &[f32], out_features: usize, in_features: usize) -> Vec<f32> {
    assert_eq!(
        w.len(),
        out_features * in_features,
        "linear weight: {} values for [{out_features}, {in_features}]",
        w.len()
    );
    let mut t = vec![0.0; w.len()];
    for o in 0..out_features {
        for i in 0..in_features {
            t[i * out_features + o] = w[o * in_features + i];
        }
    }
    t
}

/// CPU references.
pub mod cpu {
    use crate::ops::Activation;

    /// `act(a · b + bias) + residual` with `a` `[batch, m, k]`, `b` `[k, n]` when `b_shared`, else
    /// `[batch, k, n]`; bias `[n]`, residual `[batch, m, n]`. Returns `[batch, m, n]`.
    #[allow(clippy::too_many_arguments)]
    pub fn matmul(
        a: &[f32],
        b: &[f32],
        bias: Option<&[f32]>,
        residual: Option<&[f32]>,
        act: Activation,
        batch: usize,
        m: usize,
        k: usize,
        n: usize,
        b_shared: bool,
    ) -> Vec<f32> {
        let mut c = vec![0.0f32; batch * m * n];
        for bt in 0..batch {
            let bb = if b_shared { 0 } else { bt * k * n };
            for i in 0..m {
                let row = &mut c[(bt * m + i) * n..(bt * m + i + 1) * n];
                for kk in 0..k {
                    let av = a[(bt * m + i) * k + kk];
                    for (j, cv) in row.iter_mut().enumerate() {
                        *cv += av * b[bb + kk * n + j];
                    }
                }
                for (j, cv) in row.iter_mut().enumerate() {
                    let mut v = *cv + bias.map_or(0.0, |bias| bias[j]);
                    v = act.apply(v);
                    *cv = v + residual.map_or(0.0, |r| r[(bt * m + i) * n + j]);
                }
            }
        }
        c
    }

    /// A linear layer on rows of `x` `[rows, k]` with `w` `[k, n]` (this module's layout).
    pub fn linear(
        x: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
        act: Activation,
        k: usize,
        n: usize,
    ) -> Vec<f32> {
        matmul(x, w, bias, None, act, 1, x.len() / k.max(1), k, n, true)
    }
}
