//! The shared noise generator (docs/rng.md) on the GPU, and its CPU twin.
//!
//! Element `i` of a noise tensor is `normal(seed, offset + i)` over the tensor's flat storage
//! order (channels last). `random_u32` and the uniforms are bit-identical on the CPU and the GPU;
//! `normal` goes through `ln`, `sqrt` and `cos` and agrees to about 1e-6 (tests allow 1e-5): the
//! kernel evaluates ln(u1) near 1 by a series and reduces the angle to [-π, π] before `cos`
//! (shaders/rng.wgsl), since WGSL's `log` only bounds the absolute error near 1, which the
//! Box-Muller radius `sqrt(-2 ln u1)` amplifies (a plain `log` was off by up to 2.7e-5 on
//! lavapipe).

use crate::gpu::{Access, DType, Frame, GpuError, Kernel, Shader, Tensor};
use crate::ops::uniform::{uniform, UniformLayout};
use crate::ops::{groups_for, ELEMENTWISE_WORKGROUP};

pub static SHADER: Shader = Shader { name: "rng", source: include_str!("../../shaders/rng.wgsl") };

/// `out[i] = normal(seed, offset + i)`, f32.
pub static NORMAL_FILL: Kernel =
    Kernel { shader: &SHADER, entry: "normal_fill", bindings: &[Access::ReadWrite] };
/// `out[i] = random_u32(seed, offset + i)`, u32 (for tests and parity checks).
pub static U32_FILL: Kernel = Kernel { shader: &SHADER, entry: "u32_fill", bindings: &[Access::ReadWrite] };

pub const SHADERS: &[&Shader] = &[&SHADER];
pub const KERNELS: &[&Kernel] = &[&NORMAL_FILL, &U32_FILL];
/// The uniform structs of this family (checked against the shaders in tests/engine/shaders.rs).
pub const UNIFORMS: &[UniformLayout] = &[Params::layout(&SHADER, "Params")];

uniform! {
    #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    struct Params {
        len: u32,
        seed: u32,
        offset: u32,
        _pad: u32,
    }
}

fn fill(
    frame: &mut Frame,
    op: &'static str,
    kernel: &'static Kernel,
    shape: &[usize],
    dtype: DType,
    seed: u32,
    offset: u32,
) -> Result<Tensor, GpuError> {
    let len: usize = shape.iter().product();
    if len as u64 > u32::MAX as u64 {
        return Err(GpuError::shape(op, format!("{shape:?} has {len} elements; the counter is 32-bit")));
    }
    let out = frame.gpu().tensor(shape, dtype)?;
    if len == 0 {
        return Ok(out);
    }
    let p = Params { len: len as u32, seed, offset, _pad: 0 };
    let groups = frame.gpu().fold_workgroups(groups_for(len, ELEMENTWISE_WORKGROUP));
    frame.dispatch(kernel, &p, &[&out], groups);
    Ok(out)
}

/// A new f32 tensor of `shape` with element `i = normal(seed, offset + i)`: the sampler's initial
/// noise is `normal_fill(frame, &[n, h, w, bits], seed, 0)`.
pub fn normal_fill(frame: &mut Frame, shape: &[usize], seed: u32, offset: u32) -> Result<Tensor, GpuError> {
    fill(frame, "normal_fill", &NORMAL_FILL, shape, DType::F32, seed, offset)
}

/// A new u32 tensor of `shape` with element `i = random_u32(seed, offset + i)`.
pub fn u32_fill(frame: &mut Frame, shape: &[usize], seed: u32, offset: u32) -> Result<Tensor, GpuError> {
    fill(frame, "u32_fill", &U32_FILL, shape, DType::U32, seed, offset)
}

/// The CPU twin, exactly docs/rng.md (all integer arithmetic wraps at 2^32).
pub mod cpu {
    /// PCG-RXS-M-XS 32-bit output function.
    pub fn pcg_hash(x: u32) -> u32 {
        let state = x.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
        let word = ((state >> ((state >> 28) + 4)) ^ state).wrapping_mul(277_803_737);
        (word >> 22) ^ word
    }

    /// `key(seed) = pcg_hash(seed ^ 0x9E3779B9)`.
    pub fn key(seed: u32) -> u32 {
        pcg_hash(seed ^ 0x9E37_79B9)
    }

    /// `random_u32(seed, c) = pcg_hash(pcg_hash(c) ^ key(seed))`.
    pub fn random_u32(seed: u32, counter: u32) -> u32 {
        pcg_hash(pcg_hash(counter) ^ key(seed))
    }

    /// `f32((u >> 8) + 1) * 2^-24`, in (0, 1], exact.
    pub fn uniform_open(u: u32) -> f32 {
        ((u >> 8) + 1) as f32 * (1.0 / 16_777_216.0)
    }

    /// `f32(u >> 8) * 2^-24`, in [0, 1), exact.
    pub fn uniform_closed(u: u32) -> f32 {
        (u >> 8) as f32 * (1.0 / 16_777_216.0)
    }

    /// Box-Muller, cosine branch: `sqrt(-2 ln u1) * cos(2π u2)` from counters `2i` and `2i + 1`.
    pub fn normal(seed: u32, i: u32) -> f32 {
        let u1 = uniform_open(random_u32(seed, i.wrapping_mul(2)));
        let u2 = uniform_closed(random_u32(seed, i.wrapping_mul(2).wrapping_add(1)));
        (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
    }

    /// `[normal(seed, offset + i) for i in 0..n]`.
    pub fn normal_fill(seed: u32, offset: u32, n: usize) -> Vec<f32> {
        (0..n).map(|i| normal(seed, offset.wrapping_add(i as u32))).collect()
    }

    /// `[random_u32(seed, offset + i) for i in 0..n]`.
    pub fn u32_fill(seed: u32, offset: u32, n: usize) -> Vec<u32> {
        (0..n).map(|i| random_u32(seed, offset.wrapping_add(i as u32))).collect()
    }
}
