//! Bit-diffusion kernels (spec §1.1, §1.3, §2.3, §3) and the noise schedule.
//!
//! Layouts (channels last, as the training code and the shared noise):
//! - analog bits `[N, H, W, class_bits + instance_bits]` f32: the class bits (LSB first), then the
//!   instance bits, each `±b`;
//! - logits `[N, H, W, 2^class_bits + 2^instance_bits]` f32: the class group's logits first
//!   (logit v = "the id is v");
//! - id maps `[N, H, W]` u32.
//!
//! Kernels: ids → analog bits; softmax per group → expected analog bits x̂0 (optionally fused with
//! the DDIM update); the DDIM update; analog bits → ids (threshold > 0, clamp). Each group may have
//! 1..=8 bits (≤ 256 logits). The schedule (`crate::diffusion`: `gamma`, `step_times`) is computed
//! on the host in f64 and reaches the kernels as four f32 coefficients, as the training code does.

use crate::gpu::{Access, DType, Frame, GpuError, Kernel, Shader, Tensor};
use crate::ops::uniform::{uniform, UniformLayout};
use crate::ops::{groups_for, ELEMENTWISE_WORKGROUP};

pub static SHADER: Shader = Shader { name: "bits", source: include_str!("../../shaders/bits.wgsl") };

pub static IDS_TO_BITS: Kernel = Kernel {
    shader: &SHADER,
    entry: "ids_to_bits",
    bindings: &[Access::Read, Access::Read, Access::ReadWrite],
};
pub static EXPECTED_BITS: Kernel =
    Kernel { shader: &SHADER, entry: "expected_bits", bindings: &[Access::Read, Access::ReadWrite] };
pub static EXPECTED_BITS_DDIM: Kernel = Kernel {
    shader: &SHADER,
    entry: "expected_bits_ddim",
    bindings: &[Access::Read, Access::ReadWrite, Access::ReadWrite],
};
pub static DDIM_STEP: Kernel = Kernel {
    shader: &SHADER,
    entry: "ddim_step",
    bindings: &[Access::Read, Access::Read, Access::ReadWrite],
};
pub static DDIM_STEP_IN_PLACE: Kernel =
    Kernel { shader: &SHADER, entry: "ddim_step_in_place", bindings: &[Access::Read, Access::ReadWrite] };
pub static BITS_TO_IDS: Kernel = Kernel {
    shader: &SHADER,
    entry: "bits_to_ids",
    bindings: &[Access::Read, Access::ReadWrite, Access::ReadWrite],
};

pub const SHADERS: &[&Shader] = &[&SHADER];
pub const KERNELS: &[&Kernel] =
    &[&IDS_TO_BITS, &EXPECTED_BITS, &EXPECTED_BITS_DDIM, &DDIM_STEP, &DDIM_STEP_IN_PLACE, &BITS_TO_IDS];
/// The uniform structs of this family (checked against the shaders in tests/engine/shaders.rs).
pub const UNIFORMS: &[UniformLayout] = &[Params::layout(&SHADER, "Params")];

/// Pixels per workgroup of the expected-bits kernels (`PIXELS_PER_GROUP` in bits.wgsl).
const EXPECTED_PIXELS_PER_GROUP: usize = 32;
/// Bits per group the kernels support (≤ 256 logits per group).
pub const MAX_GROUP_BITS: u32 = 8;

/// The bit layout of one model: bits per group and the analog scale b.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BitSpec {
    pub class_bits: u32,
    pub instance_bits: u32,
    /// Analog bits are ±b (0.1 in the panoptic configs).
    pub b_scale: f32,
}

impl BitSpec {
    /// Analog bit channels: `class_bits + instance_bits`.
    pub fn n_bits(&self) -> usize {
        (self.class_bits + self.instance_bits) as usize
    }

    /// Logit channels: `2^class_bits + 2^instance_bits`.
    pub fn n_logits(&self) -> usize {
        (1usize << self.class_bits) + (1usize << self.instance_bits)
    }

    fn check(&self, op: &'static str) -> Result<(), GpuError> {
        if self.class_bits > MAX_GROUP_BITS || self.instance_bits > MAX_GROUP_BITS {
            return Err(GpuError::shape(
                op,
                format!(
                    "{} class and {} instance bits: at most {MAX_GROUP_BITS} per group",
                    self.class_bits, self.instance_bits
                ),
            ));
        }
        if self.n_bits() == 0 {
            return Err(GpuError::shape(op, "no bits"));
        }
        Ok(())
    }
}

/// The DDIM coefficients of one step, computed in f64 and rounded to f32:
/// `ε̂ = (m − c_now·x̂0) / s_now`, `m' = c_next·x̂0 + s_next·ε̂`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DdimCoefficients {
    pub c_now: f32,
    pub s_now: f32,
    pub c_next: f32,
    pub s_next: f32,
}

impl DdimCoefficients {
    /// From the signal variances `γ(t_now)`, `γ(t_next)` (the schedule: [`crate::diffusion`]).
    pub fn new(gamma_now: f64, gamma_next: f64) -> Self {
        DdimCoefficients {
            c_now: gamma_now.sqrt() as f32,
            s_now: (1.0 - gamma_now).sqrt() as f32,
            c_next: gamma_next.sqrt() as f32,
            s_next: (1.0 - gamma_next).sqrt() as f32,
        }
    }

    fn check(&self, op: &'static str) -> Result<(), GpuError> {
        let ok = |v: f32| v.is_finite() && v >= 0.0;
        if !(ok(self.c_now)
            && ok(self.c_next)
            && ok(self.s_next)
            && self.s_now.is_finite()
            && self.s_now > 0.0)
        {
            return Err(GpuError::shape(
                op,
                format!("invalid DDIM coefficients {self:?} (γ_now must be < 1, both in [0, 1])"),
            ));
        }
        Ok(())
    }
}

uniform! {
    #[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
    struct Params {
        pixels: u32,
        class_bits: u32,
        instance_bits: u32,
        len: u32,
        b: f32,
        c_now: f32,
        s_now: f32,
        c_next: f32,
        s_next: f32,
        max_class: u32,
        max_instance: u32,
        _pad: u32,
    }
}

fn params(spec: &BitSpec, pixels: usize) -> Params {
    Params {
        pixels: pixels as u32,
        class_bits: spec.class_bits,
        instance_bits: spec.instance_bits,
        b: spec.b_scale,
        ..Default::default()
    }
}

fn with_coefficients(p: Params, k: &DdimCoefficients) -> Params {
    Params { c_now: k.c_now, s_now: k.s_now, c_next: k.c_next, s_next: k.s_next, ..p }
}

fn check_index(op: &'static str, elements: usize) -> Result<(), GpuError> {
    if elements as u64 > u32::MAX as u64 {
        return Err(GpuError::shape(op, format!("{elements} elements exceed the 32-bit index")));
    }
    Ok(())
}

/// Splits `[.., channels]` into (pixels, channels) after checking the channel count.
fn pixels_of(op: &'static str, t: &Tensor, channels: usize, what: &str) -> Result<usize, GpuError> {
    match t.shape().last() {
        Some(&c) if c == channels && t.dtype() == DType::F32 => Ok(t.len() / channels.max(1)),
        _ => Err(GpuError::shape(
            op,
            format!("{what} must be f32 [.., {channels}], got {:?} {:?}", t.shape(), t.dtype()),
        )),
    }
}

/// Class and instance maps (u32, same shape `[N, H, W]`) → analog bits `[N, H, W, n_bits]`,
/// `bit_k = (id >> k) & 1` mapped to ±b (ids wider than the group keep their low bits).
pub fn ids_to_bits(
    frame: &mut Frame,
    class_map: &Tensor,
    instance_map: &Tensor,
    spec: &BitSpec,
) -> Result<Tensor, GpuError> {
    const OP: &str = "ids_to_bits";
    spec.check(OP)?;
    if class_map.shape() != instance_map.shape()
        || class_map.dtype() != DType::U32
        || instance_map.dtype() != DType::U32
    {
        return Err(GpuError::shape(
            OP,
            format!(
                "maps must be u32 of one shape, got {:?} {:?} and {:?} {:?}",
                class_map.shape(),
                class_map.dtype(),
                instance_map.shape(),
                instance_map.dtype()
            ),
        ));
    }
    let pixels = class_map.len();
    check_index(OP, pixels * spec.n_bits())?;
    let mut shape = class_map.shape().to_vec();
    shape.push(spec.n_bits());
    let out = frame.gpu().tensor(&shape, DType::F32)?;
    if pixels == 0 {
        return Ok(out);
    }
    let groups = frame.gpu().fold_workgroups(groups_for(pixels * spec.n_bits(), ELEMENTWISE_WORKGROUP));
    frame.dispatch(&IDS_TO_BITS, &params(spec, pixels), &[class_map, instance_map, &out], groups);
    Ok(out)
}

/// Logits `[.., n_logits]` → expected analog bits x̂0 `[.., n_bits]`: per group `p = softmax(logits)`,
/// `x̂0_k = (2·Σ_v p_v·bit_k(v) − 1)·b` (max-subtracted softmax). One workgroup per 32 pixels.
pub fn expected_bits(frame: &mut Frame, logits: &Tensor, spec: &BitSpec) -> Result<Tensor, GpuError> {
    const OP: &str = "expected_bits";
    spec.check(OP)?;
    let pixels = pixels_of(OP, logits, spec.n_logits(), "logits")?;
    check_index(OP, logits.len())?;
    let mut shape = logits.shape().to_vec();
    *shape.last_mut().unwrap() = spec.n_bits();
    let out = frame.gpu().tensor(&shape, DType::F32)?;
    if pixels == 0 {
        return Ok(out);
    }
    let groups = frame.gpu().fold_workgroups(pixels.div_ceil(EXPECTED_PIXELS_PER_GROUP) as u32);
    frame.dispatch(&EXPECTED_BITS, &params(spec, pixels), &[logits, &out], groups);
    Ok(out)
}

/// One sampler step after the network: x̂0 = clip(expected_bits(logits), −b, b) is returned and
/// the state `m` (`[.., n_bits]`, same pixels) is updated in place by the DDIM step.
pub fn expected_bits_ddim(
    frame: &mut Frame,
    logits: &Tensor,
    m: &Tensor,
    spec: &BitSpec,
    k: &DdimCoefficients,
) -> Result<Tensor, GpuError> {
    const OP: &str = "expected_bits_ddim";
    spec.check(OP)?;
    k.check(OP)?;
    let pixels = pixels_of(OP, logits, spec.n_logits(), "logits")?;
    check_index(OP, logits.len())?;
    let m_pixels = pixels_of(OP, m, spec.n_bits(), "m")?;
    if m_pixels != pixels || m.shape()[..m.shape().len() - 1] != logits.shape()[..logits.shape().len() - 1] {
        return Err(GpuError::shape(
            OP,
            format!("m {:?} and logits {:?} differ in their pixels", m.shape(), logits.shape()),
        ));
    }
    let out = frame.gpu().tensor(m.shape(), DType::F32)?;
    if pixels == 0 {
        return Ok(out);
    }
    let groups = frame.gpu().fold_workgroups(pixels.div_ceil(EXPECTED_PIXELS_PER_GROUP) as u32);
    frame.dispatch(
        &EXPECTED_BITS_DDIM,
        &with_coefficients(params(spec, pixels), k),
        &[logits, &out, m],
        groups,
    );
    Ok(out)
}

fn ddim_params(
    op: &'static str,
    m: &Tensor,
    x0: &Tensor,
    b_scale: f32,
    k: &DdimCoefficients,
) -> Result<Params, GpuError> {
    k.check(op)?;
    if m.shape() != x0.shape() || m.dtype() != DType::F32 || x0.dtype() != DType::F32 {
        return Err(GpuError::shape(
            op,
            format!("m {:?} and x0 {:?} must be f32 of one shape", m.shape(), x0.shape()),
        ));
    }
    check_index(op, m.len())?;
    Ok(with_coefficients(Params { len: m.len() as u32, b: b_scale, ..Default::default() }, k))
}

/// DDIM (η = 0): `x̂0 ← clip(x̂0, −b, b)`, `ε̂ = (m − c_now·x̂0)/s_now`, returns `c_next·x̂0 + s_next·ε̂`.
pub fn ddim_step(
    frame: &mut Frame,
    m: &Tensor,
    x0: &Tensor,
    b_scale: f32,
    k: &DdimCoefficients,
) -> Result<Tensor, GpuError> {
    let p = ddim_params("ddim_step", m, x0, b_scale, k)?;
    let out = frame.gpu().tensor(m.shape(), DType::F32)?;
    if m.is_empty() {
        return Ok(out);
    }
    let groups = frame.gpu().fold_workgroups(groups_for(m.len(), ELEMENTWISE_WORKGROUP));
    frame.dispatch(&DDIM_STEP, &p, &[m, x0, &out], groups);
    Ok(out)
}

/// [`ddim_step`] writing the new state over `m`.
pub fn ddim_step_in_place(
    frame: &mut Frame,
    m: &Tensor,
    x0: &Tensor,
    b_scale: f32,
    k: &DdimCoefficients,
) -> Result<(), GpuError> {
    let p = ddim_params("ddim_step_in_place", m, x0, b_scale, k)?;
    if m.is_empty() {
        return Ok(());
    }
    let groups = frame.gpu().fold_workgroups(groups_for(m.len(), ELEMENTWISE_WORKGROUP));
    frame.dispatch(&DDIM_STEP_IN_PLACE, &p, &[x0, m], groups);
    Ok(())
}

/// Analog bits `[N, H, W, n_bits]` → (class map, instance map), u32 `[N, H, W]`: each bit is
/// `x > 0`, `id = Σ bit_k·2^k`, then `class ≤ num_classes − 1`, `instance ≤ max_instances − 1`.
pub fn bits_to_ids(
    frame: &mut Frame,
    x: &Tensor,
    spec: &BitSpec,
    num_classes: u32,
    max_instances: u32,
) -> Result<(Tensor, Tensor), GpuError> {
    const OP: &str = "bits_to_ids";
    spec.check(OP)?;
    if num_classes == 0 || max_instances == 0 {
        return Err(GpuError::shape(OP, "num_classes and max_instances must be ≥ 1"));
    }
    let pixels = pixels_of(OP, x, spec.n_bits(), "analog bits")?;
    check_index(OP, x.len())?;
    let shape = &x.shape()[..x.shape().len() - 1];
    let cls = frame.gpu().tensor(shape, DType::U32)?;
    let inst = frame.gpu().tensor(shape, DType::U32)?;
    if pixels == 0 {
        return Ok((cls, inst));
    }
    let p = Params { max_class: num_classes - 1, max_instance: max_instances - 1, ..params(spec, pixels) };
    let groups = frame.gpu().fold_workgroups(groups_for(pixels, ELEMENTWISE_WORKGROUP));
    frame.dispatch(&BITS_TO_IDS, &p, &[x, &cls, &inst], groups);
    Ok((cls, inst))
}

/// CPU references.
pub mod cpu {
    use super::{BitSpec, DdimCoefficients};

    /// `[pixels]` maps → `[pixels, n_bits]` analog bits.
    pub fn ids_to_bits(class_map: &[u32], instance_map: &[u32], spec: &BitSpec) -> Vec<f32> {
        let mut out = Vec::with_capacity(class_map.len() * spec.n_bits());
        for (&c, &i) in class_map.iter().zip(instance_map) {
            for k in 0..spec.class_bits {
                out.push((((c >> k) & 1) as f32 * 2.0 - 1.0) * spec.b_scale);
            }
            for k in 0..spec.instance_bits {
                out.push((((i >> k) & 1) as f32 * 2.0 - 1.0) * spec.b_scale);
            }
        }
        out
    }

    /// `[pixels, n_logits]` → `[pixels, n_bits]`: softmax per group, expected bits, `(2q − 1)·b`.
    pub fn expected_bits(logits: &[f32], spec: &BitSpec) -> Vec<f32> {
        let n_logits = spec.n_logits();
        let mut out = Vec::with_capacity(logits.len() / n_logits * spec.n_bits());
        for row in logits.chunks_exact(n_logits) {
            let (class_logits, instance_logits) = row.split_at(1 << spec.class_bits);
            for (group, bits) in [(class_logits, spec.class_bits), (instance_logits, spec.instance_bits)] {
                let max = group.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let e: Vec<f32> = group.iter().map(|x| (x - max).exp()).collect();
                let sum: f32 = e.iter().sum();
                for k in 0..bits {
                    let q: f32 =
                        e.iter().enumerate().filter(|(v, _)| (v >> k) & 1 == 1).map(|(_, p)| p / sum).sum();
                    out.push((q * 2.0 - 1.0) * spec.b_scale);
                }
            }
        }
        out
    }

    /// One DDIM step with x̂0 clipped to [−b, b].
    pub fn ddim_step(m: &[f32], x0: &[f32], b_scale: f32, k: &DdimCoefficients) -> Vec<f32> {
        m.iter()
            .zip(x0)
            .map(|(&m, &x0)| {
                let x0 = x0.clamp(-b_scale, b_scale);
                let eps = (m - k.c_now * x0) / k.s_now;
                k.c_next * x0 + k.s_next * eps
            })
            .collect()
    }

    /// `[pixels, n_bits]` → (class, instance) `[pixels]`: threshold > 0, LSB first, clamp.
    pub fn bits_to_ids(
        x: &[f32],
        spec: &BitSpec,
        num_classes: u32,
        max_instances: u32,
    ) -> (Vec<u32>, Vec<u32>) {
        let to_int =
            |bits: &[f32]| bits.iter().enumerate().fold(0u32, |acc, (k, &v)| acc | (((v > 0.0) as u32) << k));
        let cb = spec.class_bits as usize;
        x.chunks_exact(spec.n_bits())
            .map(|px| (to_int(&px[..cb]).min(num_classes - 1), to_int(&px[cb..]).min(max_instances - 1)))
            .unzip()
    }
}
