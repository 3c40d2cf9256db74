//! Normalisations on channels-last tensors: GroupNorm (optionally fused with the ResBlock's FiLM
//! and an activation) and LayerNorm over the last axis.
//!
//! GroupNorm runs as three dispatches (see shaders/norm.wgsl): per-(n, chunk, channel) partial
//! statistics (relative to a per-group pivot, with pivot-shifted sums) merged by Chan's formula, a per-(n, group) merge that folds
//! γ, β, FiLM into per-(n, channel) coefficients, and an element-wise apply pass (vec4 when
//! C % 4 == 0). Reads x twice and writes y once, whatever the size (128×128×256, 512×512×128).
//! Variance is the biased (population) one, as PyTorch / Keras GroupNorm.
//!
//! Weights: γ and β are `[C]` (GN) or `[d]` (LN), as stored by PyTorch; FiLM is `[N, 2C]`
//! (scale first, then shift: the split of the ResBlock's Dense(emb → 2C), as `elementwise::film`).

use crate::gpu::{Access, DType, Frame, GpuError, Kernel, Shader, Tensor};
use crate::ops::uniform::{uniform, UniformLayout};
use crate::ops::{groups_for, Activation, ELEMENTWISE_WORKGROUP};

pub static SHADER: Shader = Shader { name: "norm", source: include_str!("../../shaders/norm.wgsl") };

pub static GN_STATS: Kernel =
    Kernel { shader: &SHADER, entry: "gn_stats", bindings: &[Access::Read, Access::ReadWrite] };
pub static GN_STATS_PIVOT: Kernel = Kernel {
    shader: &SHADER,
    entry: "gn_stats_pivot",
    bindings: &[Access::Read, Access::ReadWrite, Access::Read],
};
pub static GN_FINALIZE: Kernel = Kernel {
    shader: &SHADER,
    entry: "gn_finalize",
    bindings: &[Access::Read, Access::Read, Access::Read, Access::ReadWrite],
};
pub static GN_FINALIZE_FILM: Kernel = Kernel {
    shader: &SHADER,
    entry: "gn_finalize_film",
    bindings: &[Access::Read, Access::Read, Access::Read, Access::Read, Access::ReadWrite],
};
pub static GN_APPLY: Kernel =
    Kernel { shader: &SHADER, entry: "gn_apply", bindings: &[Access::Read, Access::Read, Access::ReadWrite] };
pub static GN_APPLY_VEC4: Kernel = Kernel {
    shader: &SHADER,
    entry: "gn_apply_vec4",
    bindings: &[Access::Read, Access::Read, Access::ReadWrite],
};
pub static LAYER_NORM: Kernel = Kernel {
    shader: &SHADER,
    entry: "layer_norm",
    bindings: &[Access::Read, Access::Read, Access::Read, Access::ReadWrite],
};
pub static LAYER_NORM_VEC4: Kernel = Kernel {
    shader: &SHADER,
    entry: "layer_norm_vec4",
    bindings: &[Access::Read, Access::Read, Access::Read, Access::ReadWrite],
};

pub const SHADERS: &[&Shader] = &[&SHADER];
pub const KERNELS: &[&Kernel] = &[
    &GN_STATS,
    &GN_STATS_PIVOT,
    &GN_FINALIZE,
    &GN_FINALIZE_FILM,
    &GN_APPLY,
    &GN_APPLY_VEC4,
    &LAYER_NORM,
    &LAYER_NORM_VEC4,
];
/// The uniform structs of this family (checked against the shaders in tests/engine/shaders.rs).
pub const UNIFORMS: &[UniformLayout] = &[Params::layout(&SHADER, "Params")];

/// Rows of one chunk each stats thread walks (chunk rows = lanes × this).
const ROWS_PER_THREAD: usize = 32;
/// Rows per LayerNorm workgroup (`LN_ROWS` in norm.wgsl).
const LN_ROWS_PER_GROUP: usize = 16;

uniform! {
    #[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
    struct Params {
        n: u32,
        rows: u32,
        c: u32,
        groups: u32,
        cg: u32,
        chunk_rows: u32,
        chunks: u32,
        cblock: u32,
        cblocks: u32,
        eps: f32,
        act: u32,
        len: u32,
        d_real: u32,
        _pad0: u32,
        _pad1: u32,
        _pad2: u32,
    }
}

/// The usual group count of the model: `min(C / 4, 32)` (at least 1).
pub fn default_groups(channels: usize) -> usize {
    (channels / 4).clamp(1, 32)
}

fn vector_of(op: &'static str, t: &Tensor, len: usize, what: &str) -> Result<(), GpuError> {
    if t.len() != len || t.dtype() != DType::F32 {
        return Err(GpuError::shape(
            op,
            format!("{what} must be f32 with {len} elements, got {:?} {:?}", t.shape(), t.dtype()),
        ));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn group_norm_impl(
    frame: &mut Frame,
    op: &'static str,
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    groups: usize,
    eps: f32,
    film: Option<&Tensor>,
    act: Activation,
) -> Result<Tensor, GpuError> {
    let shape = x.shape();
    if shape.len() < 2 || x.dtype() != DType::F32 {
        return Err(GpuError::shape(op, format!("x must be f32 [N, .., C], got {shape:?} {:?}", x.dtype())));
    }
    let (n, c) = (shape[0], shape[shape.len() - 1]);
    if groups == 0 || c % groups != 0 {
        return Err(GpuError::shape(op, format!("{c} channels do not split into {groups} groups")));
    }
    vector_of(op, gamma, c, "gamma")?;
    vector_of(op, beta, c, "beta")?;
    if let Some(f) = film {
        if f.shape() != [n, 2 * c] || f.dtype() != DType::F32 {
            return Err(GpuError::shape(
                op,
                format!("scale_shift must be f32 [{n}, {}], got {:?}", 2 * c, f.shape()),
            ));
        }
    }
    if x.len() as u64 > u32::MAX as u64 {
        return Err(GpuError::shape(op, format!("{shape:?} exceeds the 32-bit index")));
    }
    let gpu = frame.gpu();
    let y = gpu.tensor(shape, DType::F32)?;
    let rows = x.len().checked_div(n * c).unwrap_or(0);
    if x.is_empty() {
        return Ok(y);
    }
    if rows == 0 {
        return Err(GpuError::shape(op, format!("{shape:?} has no pixels")));
    }
    let p = stats_params(n, rows, c, groups, eps, act, stats_chunk_rows(c));
    let partials = gpu.tensor(&[n * p.chunks as usize * c + n * groups, 2], DType::F32)?;
    frame.dispatch(&GN_STATS, &p, &[x, &partials], gpu.fold_workgroups(p.n * p.chunks * p.cblocks));
    let coef = finalize(frame, &p, &partials, gamma, beta, film)?;
    apply(frame, &p, x, &coef, &y);
    Ok(y)
}

/// Rows of one stats chunk for `c` channels: threads of a stats workgroup split 256 / (block
/// channels) ways over the chunk's rows.
fn stats_chunk_rows(c: usize) -> usize {
    (256 / c.clamp(1, 256)) * ROWS_PER_THREAD
}

fn stats_params(
    n: usize,
    rows: usize,
    c: usize,
    groups: usize,
    eps: f32,
    act: Activation,
    chunk_rows: usize,
) -> Params {
    let cblock = c.min(256);
    Params {
        n: n as u32,
        rows: rows as u32,
        c: c as u32,
        groups: groups as u32,
        cg: (c / groups) as u32,
        chunk_rows: chunk_rows as u32,
        chunks: rows.div_ceil(chunk_rows) as u32,
        cblock: cblock as u32,
        cblocks: c.div_ceil(cblock) as u32,
        eps,
        act: act.code(),
        ..Default::default()
    }
}

/// Merges the partials into per-(n, channel) coefficients `[N, 3, C]` (pivot, scale, offset).
fn finalize(
    frame: &mut Frame,
    p: &Params,
    partials: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    film: Option<&Tensor>,
) -> Result<Tensor, GpuError> {
    let gpu = frame.gpu();
    let coef = gpu.tensor(&[p.n as usize, 3, p.c as usize], DType::F32)?;
    let fin_groups = gpu.fold_workgroups(p.n * p.groups);
    match film {
        Some(f) => frame.dispatch(&GN_FINALIZE_FILM, p, &[partials, gamma, beta, f, &coef], fin_groups),
        None => frame.dispatch(&GN_FINALIZE, p, &[partials, gamma, beta, &coef], fin_groups),
    }
    Ok(coef)
}

/// `y = act((x − pivot)·scale + offset)` with `p.rows` rows per batch item.
fn apply(frame: &mut Frame, p: &Params, x: &Tensor, coef: &Tensor, y: &Tensor) {
    let c = p.c as usize;
    let (kernel, unit) = if c % 4 == 0 { (&GN_APPLY_VEC4, 4) } else { (&GN_APPLY, 1) };
    let len = x.len() / unit;
    let pa = Params { len: len as u32, c: (c / unit) as u32, ..*p };
    frame.dispatch(
        kernel,
        &pa,
        &[x, coef, y],
        frame.gpu().fold_workgroups(groups_for(len, ELEMENTWISE_WORKGROUP)),
    );
}

/// GroupNorm of a `[1, H, W, C]` tensor too large to bind, fed row band by row band
/// (`backend::bands`): [`BandedStats::stats`] for every band in order, one
/// [`BandedStats::finalize`], then [`BandedStats::apply`] per band. A stats chunk is one image
/// row, so any band of whole image rows holds whole chunks.
pub struct BandedStats {
    p: Params,
    /// `[chunks · C + G, 2]`: every band's chunk partials, then the first band's pivots.
    partials: Tensor,
}

impl BandedStats {
    pub fn new(
        frame: &mut Frame,
        shape: &[usize],
        groups: usize,
        eps: f32,
        act: Activation,
    ) -> Result<BandedStats, GpuError> {
        const OP: &str = "group_norm";
        let &[1, h, w, c] = shape else {
            return Err(GpuError::shape(OP, format!("banded GroupNorm takes [1, H, W, C], got {shape:?}")));
        };
        if groups == 0 || c % groups != 0 || h * w == 0 {
            return Err(GpuError::shape(OP, format!("{c} channels in {groups} groups over {h}x{w} pixels")));
        }
        let p = stats_params(1, h * w, c, groups, eps, act, w);
        let partials = frame.gpu().tensor(&[p.chunks as usize * c + groups, 2], DType::F32)?;
        Ok(BandedStats { p, partials })
    }

    /// The partial statistics of one band `xb` `[1, rows, W, C]` whose first pixel row is
    /// `first_row` of the whole tensor.
    pub fn stats(&self, frame: &mut Frame, xb: &Tensor, first_row: usize) -> Result<(), GpuError> {
        let c = self.p.c as usize;
        let chunk_rows = self.p.chunk_rows as usize;
        let rows = xb.len() / c;
        if first_row % chunk_rows != 0 || xb.shape().last() != Some(&c) {
            return Err(GpuError::shape(
                "group_norm",
                format!("band at pixel row {first_row} is not on a {chunk_rows}-row chunk"),
            ));
        }
        let groups = self.p.groups as usize;
        let bp = Params {
            rows: rows as u32,
            chunks: rows.div_ceil(chunk_rows) as u32,
            len: (self.p.chunks as usize * c) as u32,
            ..self.p
        };
        let gpu = frame.gpu();
        let band = gpu.tensor(&[bp.chunks as usize * c + groups, 2], DType::F32)?;
        let workgroups = gpu.fold_workgroups(bp.chunks * bp.cblocks);
        let part_bytes = bp.chunks as u64 * c as u64 * 8;
        let at = (first_row / chunk_rows) as u64 * c as u64 * 8;
        if first_row == 0 {
            frame.dispatch(&GN_STATS, &bp, &[xb, &band], workgroups);
            // its pivots become everyone's
            frame.copy_bytes(
                &band,
                part_bytes,
                &self.partials,
                self.p.chunks as u64 * c as u64 * 8,
                groups as u64 * 8,
            )?;
        } else {
            frame.dispatch(&GN_STATS_PIVOT, &bp, &[xb, &band, &self.partials], workgroups);
        }
        frame.copy_bytes(&band, 0, &self.partials, at, part_bytes)
    }

    /// Coefficients `[1, 3, C]` from all bands' statistics.
    pub fn finalize(
        &self,
        frame: &mut Frame,
        gamma: &Tensor,
        beta: &Tensor,
        film: Option<&Tensor>,
    ) -> Result<Tensor, GpuError> {
        let c = self.p.c as usize;
        vector_of("group_norm", gamma, c, "gamma")?;
        vector_of("group_norm", beta, c, "beta")?;
        if let Some(f) = film {
            if f.shape() != [1, 2 * c] || f.dtype() != DType::F32 {
                return Err(GpuError::shape(
                    "group_norm",
                    format!("scale_shift must be f32 [1, {}], got {:?}", 2 * c, f.shape()),
                ));
            }
        }
        finalize(frame, &self.p, &self.partials, gamma, beta, film)
    }

    /// The normalised band `xb`.
    pub fn apply(&self, frame: &mut Frame, xb: &Tensor, coef: &Tensor) -> Result<Tensor, GpuError> {
        let y = frame.gpu().tensor(xb.shape(), DType::F32)?;
        let rows = xb.len() / self.p.c as usize;
        apply(frame, &Params { rows: rows as u32, ..self.p }, xb, coef, &y);
        Ok(y)
    }
}

/// `act(GroupNorm(x))` for x `[N, .., C]` channels-last (statistics over all non-batch positions
/// and the C/groups channels of each group), γ, β `[C]`.
pub fn group_norm(
    frame: &mut Frame,
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    groups: usize,
    eps: f32,
    act: Activation,
) -> Result<Tensor, GpuError> {
    group_norm_impl(frame, "group_norm", x, gamma, beta, groups, eps, None, act)
}

/// The ResBlock's `act(GroupNorm(x)·(1 + scale[n, c]) + shift[n, c])` with `scale_shift` `[N, 2C]`
/// (scale in the first C channels, shift in the last C).
#[allow(clippy::too_many_arguments)]
pub fn group_norm_film(
    frame: &mut Frame,
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    groups: usize,
    eps: f32,
    scale_shift: &Tensor,
    act: Activation,
) -> Result<Tensor, GpuError> {
    group_norm_impl(frame, "group_norm_film", x, gamma, beta, groups, eps, Some(scale_shift), act)
}

/// `act(LayerNorm(x))` over the last axis of x `[.., d]`, γ, β `[d]` (the model uses eps 1e-6 and
/// `Activation::None`).
pub fn layer_norm(
    frame: &mut Frame,
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f32,
    act: Activation,
) -> Result<Tensor, GpuError> {
    const OP: &str = "layer_norm";
    let shape = x.shape();
    let d = *shape.last().unwrap_or(&0);
    if shape.is_empty() || d == 0 || x.dtype() != DType::F32 {
        return Err(GpuError::shape(OP, format!("x must be f32 [.., d] with d > 0, got {shape:?}")));
    }
    vector_of(OP, gamma, d, "gamma")?;
    vector_of(OP, beta, d, "beta")?;
    if x.len() as u64 > u32::MAX as u64 {
        return Err(GpuError::shape(OP, format!("{shape:?} exceeds the 32-bit index")));
    }
    let rows = x.len() / d;
    let y = frame.gpu().tensor(shape, DType::F32)?;
    if rows == 0 {
        return Ok(y);
    }
    let (kernel, unit) = if d % 4 == 0 { (&LAYER_NORM_VEC4, 4) } else { (&LAYER_NORM, 1) };
    let p = Params {
        n: rows as u32,
        c: (d / unit) as u32,
        d_real: d as u32,
        eps,
        act: act.code(),
        ..Default::default()
    };
    let groups = frame.gpu().fold_workgroups(rows.div_ceil(LN_ROWS_PER_GROUP) as u32);
    frame.dispatch(kernel, &p, &[x, gamma, beta, &y], groups);
    Ok(y)
}

/// CPU references (statistics accumulated in f64, two passes).
pub mod cpu {
    use crate::ops::Activation;

    /// x `[N, R, C]` flattened; `scale_shift` `[N, 2C]` if FiLM is fused.
    #[allow(clippy::too_many_arguments)]
    pub fn group_norm(
        x: &[f32],
        n: usize,
        c: usize,
        groups: usize,
        gamma: &[f32],
        beta: &[f32],
        eps: f32,
        scale_shift: Option<&[f32]>,
        act: Activation,
    ) -> Vec<f32> {
        let per = x.len() / n.max(1);
        let cg = c / groups;
        let count = (per / groups) as f64;
        let mut y = Vec::with_capacity(x.len());
        for (b, xb) in x.chunks_exact(per).enumerate() {
            // Two passes in storage order: group means, then mean squared deviations.
            let mut mean = vec![0f64; groups];
            for row in xb.chunks_exact(c) {
                for (ch, &v) in row.iter().enumerate() {
                    mean[ch / cg] += v as f64;
                }
            }
            mean.iter_mut().for_each(|m| *m /= count);
            let mut var = vec![0f64; groups];
            for row in xb.chunks_exact(c) {
                for (ch, &v) in row.iter().enumerate() {
                    var[ch / cg] += (v as f64 - mean[ch / cg]).powi(2);
                }
            }
            let rstd: Vec<f64> = var.iter().map(|v| 1.0 / (v / count + eps as f64).sqrt()).collect();
            for row in xb.chunks_exact(c) {
                for (ch, &v) in row.iter().enumerate() {
                    let g = ch / cg;
                    let mut out = ((v as f64 - mean[g]) * rstd[g]) as f32 * gamma[ch] + beta[ch];
                    if let Some(ss) = scale_shift {
                        out = out * (1.0 + ss[b * 2 * c + ch]) + ss[b * 2 * c + c + ch];
                    }
                    y.push(act.apply(out));
                }
            }
        }
        y
    }

    /// x `[rows, d]` flattened.
    pub fn layer_norm(
        x: &[f32],
        d: usize,
        gamma: &[f32],
        beta: &[f32],
        eps: f32,
        act: Activation,
    ) -> Vec<f32> {
        let mut y = Vec::with_capacity(x.len());
        for row in x.chunks_exact(d) {
            let mean = row.iter().map(|&v| v as f64).sum::<f64>() / d as f64;
            let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / d as f64;
            let rstd = 1.0 / (var + eps as f64).sqrt();
            y.extend(
                row.iter()
                    .enumerate()
                    .map(|(j, &v)| act.apply(((v as f64 - mean) * rstd) as f32 * gamma[j] + beta[j])),
            );
        }
        y
    }
}
