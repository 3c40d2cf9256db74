//! Element-wise kernels: residual add with scale and activation, affine + activation, FiLM.

use crate::gpu::{Access, Frame, GpuError, Kernel, Shader, Tensor};
use crate::ops::uniform::{uniform, UniformLayout};
use crate::ops::{groups_for, Activation, ELEMENTWISE_WORKGROUP};

pub static SHADER: Shader =
    Shader { name: "elementwise", source: include_str!("../../shaders/elementwise.wgsl") };

pub static ADD: Kernel =
    Kernel { shader: &SHADER, entry: "add", bindings: &[Access::Read, Access::Read, Access::ReadWrite] };
pub static FILM: Kernel =
    Kernel { shader: &SHADER, entry: "film", bindings: &[Access::Read, Access::Read, Access::ReadWrite] };
pub static UNARY: Kernel =
    Kernel { shader: &SHADER, entry: "unary", bindings: &[Access::Read, Access::ReadWrite] };

pub const SHADERS: &[&Shader] = &[&SHADER];
pub const KERNELS: &[&Kernel] = &[&ADD, &FILM, &UNARY];
/// The uniform structs of this family (checked against the shaders in tests/engine/shaders.rs).
pub const UNIFORMS: &[UniformLayout] = &[Params::layout(&SHADER, "Params")];

uniform! {
    #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    struct Params {
        len: u32,
        channels: u32,
        per_batch: u32,
        act: u32,
        alpha: f32,
        beta: f32,
    }
}

fn params(len: usize, act: Activation) -> Params {
    Params {
        len: len as u32,
        channels: 1,
        per_batch: len.max(1) as u32,
        act: act.code(),
        alpha: 1.0,
        beta: 0.0,
    }
}

/// `act((a + b) * alpha)`; `alpha = 1/√2` gives the ResBlock's `(h + skip) / √2`.
pub fn add(
    frame: &mut Frame,
    a: &Tensor,
    b: &Tensor,
    alpha: f32,
    act: Activation,
) -> Result<Tensor, GpuError> {
    if a.shape() != b.shape() {
        return Err(GpuError::shape("add", format!("operands differ: {:?} vs {:?}", a.shape(), b.shape())));
    }
    let y = frame.gpu().tensor(a.shape(), a.dtype())?;
    let p = Params { alpha, ..params(a.len(), act) };
    let groups = frame.gpu().fold_workgroups(groups_for(a.len(), ELEMENTWISE_WORKGROUP));
    frame.dispatch(&ADD, &p, &[a, b, &y], groups);
    Ok(y)
}

/// `act(x * alpha + beta)`.
pub fn affine(
    frame: &mut Frame,
    x: &Tensor,
    alpha: f32,
    beta: f32,
    act: Activation,
) -> Result<Tensor, GpuError> {
    let y = frame.gpu().tensor(x.shape(), x.dtype())?;
    let p = Params { alpha, beta, ..params(x.len(), act) };
    let groups = frame.gpu().fold_workgroups(groups_for(x.len(), ELEMENTWISE_WORKGROUP));
    frame.dispatch(&UNARY, &p, &[x, &y], groups);
    Ok(y)
}

/// FiLM: `act(x * (1 + scale) + shift)` with x `[N, ..., C]` channels-last and `scale_shift`
/// `[N, 2C]` (scale first, then shift).
pub fn film(
    frame: &mut Frame,
    x: &Tensor,
    scale_shift: &Tensor,
    act: Activation,
) -> Result<Tensor, GpuError> {
    let shape = x.shape();
    let (n, c) = (shape[0], *shape.last().unwrap_or(&0));
    if shape.len() < 2 || scale_shift.shape() != [n, 2 * c] {
        return Err(GpuError::shape(
            "film",
            format!("x {:?} needs scale_shift [{n}, {}], got {:?}", shape, 2 * c, scale_shift.shape()),
        ));
    }
    let y = frame.gpu().tensor(shape, x.dtype())?;
    let p = Params { channels: c as u32, per_batch: (x.len() / n.max(1)) as u32, ..params(x.len(), act) };
    let groups = frame.gpu().fold_workgroups(groups_for(x.len(), ELEMENTWISE_WORKGROUP));
    frame.dispatch(&FILM, &p, &[x, scale_shift, &y], groups);
    Ok(y)
}

/// CPU references.
pub mod cpu {
    use crate::ops::Activation;

    pub fn add(a: &[f32], b: &[f32], alpha: f32, act: Activation) -> Vec<f32> {
        a.iter().zip(b).map(|(x, y)| act.apply((x + y) * alpha)).collect()
    }

    pub fn affine(x: &[f32], alpha: f32, beta: f32, act: Activation) -> Vec<f32> {
        x.iter().map(|v| act.apply(v * alpha + beta)).collect()
    }

    /// x `[N, rest..., C]` flattened, scale_shift `[N, 2C]`.
    pub fn film(x: &[f32], n: usize, c: usize, scale_shift: &[f32], act: Activation) -> Vec<f32> {
        let per_batch = x.len() / n.max(1);
        x.iter()
            .enumerate()
            .map(|(i, v)| {
                let (b, ch) = (i / per_batch, i % c);
                let base = b * 2 * c;
                act.apply(v * (1.0 + scale_shift[base + ch]) + scale_shift[base + c + ch])
            })
            .collect()
    }
}
