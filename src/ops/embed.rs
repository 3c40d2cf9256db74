//! Sin-cos codes: the 1-D embedding of a scalar (the time embedding's `sincos(γ·time_scaling, D)`,
//! spec §2.4) and the fixed 2-D position code of an H×W grid (spec §2.1), exactly as
//! `train/pix2seqd_train/model/layers.py` (`sincos_1d`, `sincos_2d`).
//!
//! - 1-D code of dim d: `[sin(c·ω_0 .. c·ω_{d/2-1}), cos(c·ω_0 .. c·ω_{d/2-1})]`,
//!   `ω_j = 1 / 10000^(2j/d)` (f32, as PyTorch computes it).
//! - 2-D code `[H·W, D]` (row-major pixels): the y code (dim D/2) at coordinate
//!   `f32(i) / f32(H-1) · 6.2831852`, then the x code (dim D/2). A grid with one row or one column
//!   gets the 1-D code (dim D) of its flat index over H·W. Needs D % 4 == 0 (D even for 1-row grids).
//!
//! The kernel reduces angles to [-π, π] before sin/cos, so large time scalings stay accurate up to
//! the f32 rounding of `ω` (a few ulp from exp2 on the GPU): with `time_scaling = 1000` the codes
//! agree with the CPU to ~1e-4 absolute; position codes (angles ≤ 2π) to ~1e-6.

use crate::gpu::{Access, Frame, GpuError, Kernel, Shader, Tensor};
use crate::ops::uniform::{uniform, UniformLayout};
use crate::ops::{groups_for, ELEMENTWISE_WORKGROUP};

pub static SHADER: Shader = Shader { name: "embed", source: include_str!("../../shaders/embed.wgsl") };

/// `[N, D]`: every row the code of the uniform scalar `value·scale`.
pub static SCALAR_UNIFORM: Kernel =
    Kernel { shader: &SHADER, entry: "scalar_uniform", bindings: &[Access::ReadWrite] };
/// `[N, D]`: row n the code of `x[n]·scale`.
pub static SCALAR_TENSOR: Kernel =
    Kernel { shader: &SHADER, entry: "scalar_tensor", bindings: &[Access::Read, Access::ReadWrite] };
/// `[H·W, D]`: the 2-D position code.
pub static POSITION_2D: Kernel =
    Kernel { shader: &SHADER, entry: "position_2d", bindings: &[Access::ReadWrite] };

pub const SHADERS: &[&Shader] = &[&SHADER];
pub const KERNELS: &[&Kernel] = &[&SCALAR_UNIFORM, &SCALAR_TENSOR, &POSITION_2D];
/// The uniform structs of this family (checked against the shaders in tests/engine/shaders.rs).
pub const UNIFORMS: &[UniformLayout] = &[Params::layout(&SHADER, "Params")];

/// Coordinate of the last row/column of a grid: the training code's 6.2831852 (≈ 2π), whose
/// nearest f32 is 6.283185 (not `TAU as f32` = 6.2831855).
#[allow(clippy::approx_constant)] // deliberately not TAU: it must match the training code
pub const POSITION_NORMALIZATION_MAX: f32 = 6.283_185;

uniform! {
    #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    struct Params {
        rows: u32,
        dim: u32,
        height: u32,
        width: u32,
        value: f32,
        scale: f32,
        _pad0: u32,
        _pad1: u32,
    }
}

fn check(op: &'static str, rows: usize, dim: usize) -> Result<(), GpuError> {
    if dim == 0 || dim % 2 != 0 {
        return Err(GpuError::shape(op, format!("dim {dim} must be even and positive")));
    }
    if (rows as u64) * (dim as u64) > u32::MAX as u64 {
        return Err(GpuError::shape(op, format!("{rows}x{dim} elements exceed the 32-bit index")));
    }
    Ok(())
}

/// The 1-D code of the scalar `value·scale` (both f32, multiplied in f32 as the training code
/// does: `sincos(γ·time_scaling, dim)`), repeated over `n` rows: `[n, dim]`. The scalar travels in
/// the uniforms, so the sampler needs no upload per step.
pub fn scalar_embedding(
    frame: &mut Frame,
    value: f32,
    scale: f32,
    n: usize,
    dim: usize,
) -> Result<Tensor, GpuError> {
    check("scalar_embedding", n, dim)?;
    let out = frame.gpu().tensor(&[n, dim], crate::gpu::DType::F32)?;
    let p = Params { rows: n as u32, dim: dim as u32, height: 0, width: 0, value, scale, _pad0: 0, _pad1: 0 };
    let groups = frame.gpu().fold_workgroups(groups_for(n * dim, ELEMENTWISE_WORKGROUP));
    frame.dispatch(&SCALAR_UNIFORM, &p, &[&out], groups);
    Ok(out)
}

/// The 1-D code of each `x[n]·scale` for `x` of shape `[N]` (or `[N, 1]`): `[N, dim]`.
pub fn scalar_embedding_tensor(
    frame: &mut Frame,
    x: &Tensor,
    scale: f32,
    dim: usize,
) -> Result<Tensor, GpuError> {
    let n = x.len();
    if x.shape().len() > 2 || (x.shape().len() == 2 && x.shape()[1] != 1) {
        return Err(GpuError::shape(
            "scalar_embedding_tensor",
            format!("x must be [N] or [N, 1], got {:?}", x.shape()),
        ));
    }
    check("scalar_embedding_tensor", n, dim)?;
    let out = frame.gpu().tensor(&[n, dim], crate::gpu::DType::F32)?;
    if n == 0 {
        return Ok(out);
    }
    let p = Params {
        rows: n as u32,
        dim: dim as u32,
        height: 0,
        width: 0,
        value: 0.0,
        scale,
        _pad0: 0,
        _pad1: 0,
    };
    let groups = frame.gpu().fold_workgroups(groups_for(n * dim, ELEMENTWISE_WORKGROUP));
    frame.dispatch(&SCALAR_TENSOR, &p, &[x, &out], groups);
    Ok(out)
}

/// The 2-D sin-cos position code of an `height × width` grid: `[height·width, dim]`, pixels in
/// row-major order (add it to tokens `[N, H·W, dim]` with a broadcast over N).
pub fn position_code_2d(
    frame: &mut Frame,
    height: usize,
    width: usize,
    dim: usize,
) -> Result<Tensor, GpuError> {
    let rows = height * width;
    check("position_code_2d", rows, dim)?;
    if height > 1 && width > 1 && dim % 4 != 0 {
        return Err(GpuError::shape(
            "position_code_2d",
            format!("dim {dim} must be a multiple of 4 (two 1-D codes of dim/2)"),
        ));
    }
    if rows == 0 {
        return Err(GpuError::shape("position_code_2d", format!("empty grid {height}x{width}")));
    }
    let out = frame.gpu().tensor(&[rows, dim], crate::gpu::DType::F32)?;
    let p = Params {
        rows: rows as u32,
        dim: dim as u32,
        height: height as u32,
        width: width as u32,
        value: 0.0,
        scale: 1.0,
        _pad0: 0,
        _pad1: 0,
    };
    let groups = frame.gpu().fold_workgroups(groups_for(rows * dim, ELEMENTWISE_WORKGROUP));
    frame.dispatch(&POSITION_2D, &p, &[&out], groups);
    Ok(out)
}

/// CPU references (the same f32 arithmetic as PyTorch's `sincos_1d` / `sincos_2d`).
pub mod cpu {
    use super::POSITION_NORMALIZATION_MAX;

    /// `ω_j = 1 / 10000^(2j/dim)`, j = 0..dim/2.
    pub fn frequencies(dim: usize) -> Vec<f32> {
        (0..dim / 2).map(|j| 1.0 / 10000f32.powf((2 * j) as f32 / dim as f32)).collect()
    }

    /// `[coords.len(), 2·(dim/2)]`: `[sin(c·ω), cos(c·ω)]` per coordinate.
    pub fn sincos_1d(coords: &[f32], dim: usize) -> Vec<f32> {
        let freqs = frequencies(dim);
        let mut out = Vec::with_capacity(coords.len() * 2 * freqs.len());
        for &c in coords {
            out.extend(freqs.iter().map(|w| (c * w).sin()));
            out.extend(freqs.iter().map(|w| (c * w).cos()));
        }
        out
    }

    /// `[values.len(), dim]`: the code of each `value·scale` (f32 product).
    pub fn scalar_embedding(values: &[f32], scale: f32, dim: usize) -> Vec<f32> {
        let coords: Vec<f32> = values.iter().map(|v| v * scale).collect();
        sincos_1d(&coords, dim)
    }

    /// `f32(i) / f32(max(len-1, 1)) · 6.2831852` for i = 0..len.
    pub fn normalized_coords(len: usize) -> Vec<f32> {
        let denom = len.saturating_sub(1).max(1) as f32;
        (0..len).map(|i| i as f32 / denom * POSITION_NORMALIZATION_MAX).collect()
    }

    /// `[height·width, dim]`: y code then x code per pixel (1-D code of the flat index for a
    /// one-row or one-column grid).
    pub fn position_code_2d(height: usize, width: usize, dim: usize) -> Vec<f32> {
        if height == 1 || width == 1 {
            return sincos_1d(&normalized_coords(height * width), dim);
        }
        let y = sincos_1d(&normalized_coords(height), dim / 2);
        let x = sincos_1d(&normalized_coords(width), dim / 2);
        let half = dim / 2;
        let mut out = Vec::with_capacity(height * width * dim);
        for i in 0..height {
            for j in 0..width {
                out.extend_from_slice(&y[i * half..(i + 1) * half]);
                out.extend_from_slice(&x[j * half..(j + 1) * half]);
            }
        }
        out
    }
}
