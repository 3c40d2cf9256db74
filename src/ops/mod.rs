//! Kernel families. Each module pairs one `shaders/NAME.wgsl` with its Rust dispatcher(s) and a
//! plain-Rust CPU reference (`cpu` submodule) that the tests compare against and that the CPU
//! fallback path reuses.
//!
//! Conventions shared by every family:
//! - activations are channels-last: `[N, H, W, C]` (tokens `[N, L, C]`), f32;
//! - shapes and strides go to the shader in its uniform parameters, never baked into the source;
//! - dispatchers validate shapes and return [`GpuError::Shape`](crate::GpuError::Shape) naming the op, then record into a
//!   [`Frame`](crate::gpu::Frame); nothing runs until the frame is submitted.

use crate::gpu::{Kernel, Shader};

pub mod attention;
pub mod bits;
pub mod conv;
pub mod elementwise;
pub mod embed;
pub mod ingest;
pub mod layout;
pub mod matmul;
pub mod norm;
pub mod readout;
pub mod render;
pub mod rng;
pub mod uniform;

/// Activation applied in a kernel's epilogue. The codes match the `ACT_*` constants of
/// `shaders/prelude.wgsl`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(u32)]
pub enum Activation {
    #[default]
    None = 0,
    Relu = 1,
    Relu6 = 2,
    Silu = 3,
    /// GELU with the exact erf form (as PyTorch's default), erf by A&S 7.1.26.
    Gelu = 4,
}

impl Activation {
    pub fn code(self) -> u32 {
        self as u32
    }

    /// The CPU twin of the prelude's `activate`.
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::None => x,
            Activation::Relu => x.max(0.0),
            Activation::Relu6 => x.clamp(0.0, 6.0),
            Activation::Silu => x / (1.0 + (-x).exp()),
            Activation::Gelu => 0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2)),
        }
    }
}

/// erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), the formula the shaders use.
pub fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let y = 1.0
        - (((((1.061_405_4 * t - 1.453_152) * t) + 1.421_413_7) * t - 0.284_496_74) * t + 0.254_829_6)
            * t
            * (-a * a).exp();
    y.copysign(x)
}

/// Every shader file, for validation and preloading.
pub fn all_shaders() -> Vec<&'static Shader> {
    [
        attention::SHADERS,
        bits::SHADERS,
        conv::SHADERS,
        elementwise::SHADERS,
        embed::SHADERS,
        ingest::SHADERS,
        layout::SHADERS,
        matmul::SHADERS,
        norm::SHADERS,
        readout::SHADERS,
        render::SHADERS,
        rng::SHADERS,
        &[&crate::gpu::present::PRESENT_SHADER],
    ]
    .concat()
}

/// Every kernel, for [`crate::Gpu::preload`].
/// Every uniform struct of every family, with the WGSL struct it must match.
pub fn all_uniforms() -> Vec<&'static uniform::UniformLayout> {
    [
        attention::UNIFORMS,
        bits::UNIFORMS,
        conv::UNIFORMS,
        elementwise::UNIFORMS,
        embed::UNIFORMS,
        ingest::UNIFORMS,
        layout::UNIFORMS,
        matmul::UNIFORMS,
        norm::UNIFORMS,
        readout::UNIFORMS,
        render::UNIFORMS,
        rng::UNIFORMS,
    ]
    .iter()
    .flat_map(|family| family.iter())
    .collect()
}

pub fn all_kernels() -> Vec<&'static Kernel> {
    [
        attention::KERNELS,
        bits::KERNELS,
        conv::KERNELS,
        elementwise::KERNELS,
        embed::KERNELS,
        ingest::KERNELS,
        layout::KERNELS,
        matmul::KERNELS,
        norm::KERNELS,
        readout::KERNELS,
        render::KERNELS,
        rng::KERNELS,
    ]
    .concat()
}

/// Workgroup size of the one-thread-per-element kernels.
pub(crate) const ELEMENTWISE_WORKGROUP: u32 = 256;

/// Workgroup counts for one thread per element of `elements`.
pub(crate) fn groups_for(elements: usize, per_group: u32) -> u32 {
    (elements as u64).div_ceil(per_group as u64).min(u32::MAX as u64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_known_values() {
        for (x, want) in [
            (0.0f32, 0.0f32),
            (0.5, 0.520_499_9),
            (1.0, 0.842_700_8),
            (-2.0, -0.995_322_3),
            (3.0, 0.999_977_9),
        ] {
            assert!((erf(x) - want).abs() < 2e-7, "erf({x}) = {} want {want}", erf(x));
        }
    }
}
