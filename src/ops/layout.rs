//! Layout kernels on channels-last tensors: concat / slice along channels, nearest upsample by
//! integer factors (optionally fused with the add of a same-size tensor), and the bottleneck's
//! token bookkeeping (add the position code and append the time token; drop it again).
//!
//! All are copies with one thread per output element; when every channel count and offset
//! involved is a multiple of 4 the `*_vec4` entry points move 16 bytes per thread.

use crate::gpu::{Access, DType, Frame, GpuError, Kernel, Shader, Tensor};
use crate::ops::uniform::{uniform, UniformLayout};
use crate::ops::{groups_for, ELEMENTWISE_WORKGROUP};

pub static SHADER: Shader = Shader { name: "layout", source: include_str!("../../shaders/layout.wgsl") };

pub static COPY_WINDOW: Kernel =
    Kernel { shader: &SHADER, entry: "copy_window", bindings: &[Access::Read, Access::ReadWrite] };
pub static COPY_WINDOW_VEC4: Kernel =
    Kernel { shader: &SHADER, entry: "copy_window_vec4", bindings: &[Access::Read, Access::ReadWrite] };
pub static UPSAMPLE: Kernel =
    Kernel { shader: &SHADER, entry: "upsample", bindings: &[Access::Read, Access::ReadWrite] };
pub static UPSAMPLE_VEC4: Kernel =
    Kernel { shader: &SHADER, entry: "upsample_vec4", bindings: &[Access::Read, Access::ReadWrite] };
pub static UPSAMPLE_ADD: Kernel = Kernel {
    shader: &SHADER,
    entry: "upsample_add",
    bindings: &[Access::Read, Access::Read, Access::ReadWrite],
};
pub static UPSAMPLE_ADD_VEC4: Kernel = Kernel {
    shader: &SHADER,
    entry: "upsample_add_vec4",
    bindings: &[Access::Read, Access::Read, Access::ReadWrite],
};
pub static TOKENS_POS_APPEND: Kernel = Kernel {
    shader: &SHADER,
    entry: "tokens_pos_append",
    bindings: &[Access::Read, Access::Read, Access::Read, Access::ReadWrite],
};

pub const SHADERS: &[&Shader] = &[&SHADER];
pub const KERNELS: &[&Kernel] = &[
    &COPY_WINDOW,
    &COPY_WINDOW_VEC4,
    &UPSAMPLE,
    &UPSAMPLE_VEC4,
    &UPSAMPLE_ADD,
    &UPSAMPLE_ADD_VEC4,
    &TOKENS_POS_APPEND,
];
/// The uniform structs of this family (checked against the shaders in tests/engine/shaders.rs).
pub const UNIFORMS: &[UniformLayout] = &[Params::layout(&SHADER, "Params")];

uniform! {
    #[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
    struct Params {
        len: u32,
        rows: u32,
        width: u32,
        src_stride: u32,
        dst_stride: u32,
        src_off: u32,
        dst_off: u32,
        h: u32,
        w: u32,
        fy: u32,
        fx: u32,
        _pad: u32,
    }
}

fn check_len(op: &'static str, elements: usize) -> Result<(), GpuError> {
    if elements as u64 > u32::MAX as u64 {
        return Err(GpuError::shape(op, format!("{elements} elements exceed the 32-bit index")));
    }
    Ok(())
}

fn check_f32(op: &'static str, t: &Tensor) -> Result<(), GpuError> {
    if t.dtype() != DType::F32 || t.shape().is_empty() {
        return Err(GpuError::shape(
            op,
            format!("needs an f32 tensor with a channel axis, got {:?} {:?}", t.shape(), t.dtype()),
        ));
    }
    Ok(())
}

/// Copies `width` elements of every row of `src` (rows of `src_stride`, from `src_off`) into the
/// rows of `dst` (rows of `dst_stride`, from `dst_off`). Rows are the same count in both.
#[allow(clippy::too_many_arguments)]
fn copy_window_raw(
    frame: &mut Frame,
    src: &Tensor,
    dst: &Tensor,
    rows: usize,
    width: usize,
    src_stride: usize,
    src_off: usize,
    dst_stride: usize,
    dst_off: usize,
) {
    if rows == 0 || width == 0 {
        return;
    }
    let v4 = [width, src_stride, src_off, dst_stride, dst_off].iter().all(|v| v % 4 == 0);
    let (k, unit) = if v4 { (&COPY_WINDOW_VEC4, 4) } else { (&COPY_WINDOW, 1) };
    let len = rows * width / unit;
    let p = Params {
        len: len as u32,
        rows: rows as u32,
        width: (width / unit) as u32,
        src_stride: (src_stride / unit) as u32,
        dst_stride: (dst_stride / unit) as u32,
        src_off: (src_off / unit) as u32,
        dst_off: (dst_off / unit) as u32,
        ..Default::default()
    };
    let groups = frame.gpu().fold_workgroups(groups_for(len, ELEMENTWISE_WORKGROUP));
    frame.dispatch(k, &p, &[src, dst], groups);
}

/// Copies channels `[src_offset, src_offset + width)` of `src` `[.., Cs]` into channels
/// `[dst_offset, dst_offset + width)` of `dst` `[.., Cd]` (same leading dims); the rest of `dst`
/// is left as it is. `dst` must not share storage with `src`.
pub fn copy_channels(
    frame: &mut Frame,
    src: &Tensor,
    src_offset: usize,
    dst: &Tensor,
    dst_offset: usize,
    width: usize,
) -> Result<(), GpuError> {
    const OP: &str = "copy_channels";
    check_f32(OP, src)?;
    check_f32(OP, dst)?;
    let (ss, ds) = (src.shape(), dst.shape());
    let (cs, cd) = (ss[ss.len() - 1], ds[ds.len() - 1]);
    if ss[..ss.len() - 1] != ds[..ds.len() - 1] || src_offset + width > cs || dst_offset + width > cd {
        return Err(GpuError::shape(
            OP,
            format!("channels [{src_offset}, +{width}) of {ss:?} into [{dst_offset}, +{width}) of {ds:?}"),
        ));
    }
    if src.same_storage(dst) {
        return Err(GpuError::shape(OP, "src and dst share storage"));
    }
    check_len(OP, src.len().max(dst.len()))?;
    let rows = src.len().checked_div(cs).unwrap_or(0);
    copy_window_raw(frame, src, dst, rows, width, cs, src_offset, cd, dst_offset);
    Ok(())
}

/// Concatenation along the last (channel) axis: `[.., C0] ⧺ [.., C1] ⧺ … → [.., ΣC]`, one copy
/// dispatch per part (each part is read once).
pub fn concat_channels(frame: &mut Frame, parts: &[&Tensor]) -> Result<Tensor, GpuError> {
    const OP: &str = "concat_channels";
    let first = parts.first().ok_or_else(|| GpuError::shape(OP, "no tensors"))?;
    let lead = &first.shape()[..first.shape().len().saturating_sub(1)];
    let mut total = 0;
    for t in parts {
        check_f32(OP, t)?;
        if &t.shape()[..t.shape().len() - 1] != lead {
            return Err(GpuError::shape(
                OP,
                format!("leading dims differ: {:?} vs {:?}", first.shape(), t.shape()),
            ));
        }
        total += t.shape()[t.shape().len() - 1];
    }
    let mut shape = lead.to_vec();
    shape.push(total);
    check_len(OP, shape.iter().product())?;
    let out = frame.gpu().tensor(&shape, DType::F32)?;
    let mut offset = 0;
    for t in parts {
        let c = t.shape()[t.shape().len() - 1];
        copy_channels(frame, t, 0, &out, offset, c)?;
        offset += c;
    }
    Ok(out)
}

/// Channels `[start, start + len)` of `x` `[.., C]` as a new tensor `[.., len]`.
pub fn slice_channels(frame: &mut Frame, x: &Tensor, start: usize, len: usize) -> Result<Tensor, GpuError> {
    check_f32("slice_channels", x)?;
    let mut shape = x.shape().to_vec();
    let c = shape[shape.len() - 1];
    if start + len > c {
        return Err(GpuError::shape(
            "slice_channels",
            format!("[{start}, {}) is outside the {c} channels of {:?}", start + len, x.shape()),
        ));
    }
    *shape.last_mut().unwrap() = len;
    let out = frame.gpu().tensor(&shape, DType::F32)?;
    copy_channels(frame, x, start, &out, 0, len)?;
    Ok(out)
}

fn upsample_impl(
    frame: &mut Frame,
    op: &'static str,
    x: &Tensor,
    fy: usize,
    fx: usize,
    skip: Option<&Tensor>,
) -> Result<Tensor, GpuError> {
    check_f32(op, x)?;
    let &[n, h, w, c] = x.shape() else {
        return Err(GpuError::shape(op, format!("x must be [N, H, W, C], got {:?}", x.shape())));
    };
    if fy == 0 || fx == 0 {
        return Err(GpuError::shape(op, format!("factors {fy}x{fx} must be ≥ 1")));
    }
    let shape = [n, h * fy, w * fx, c];
    if let Some(s) = skip {
        if s.shape() != shape || s.dtype() != DType::F32 {
            return Err(GpuError::shape(op, format!("skip must be f32 {shape:?}, got {:?}", s.shape())));
        }
    }
    check_len(op, shape.iter().product())?;
    let out = frame.gpu().tensor(&shape, DType::F32)?;
    let elements: usize = shape.iter().product();
    if elements == 0 {
        return Ok(out);
    }
    let unit = if c % 4 == 0 { 4 } else { 1 };
    let len = elements / unit;
    let p = Params {
        len: len as u32,
        width: (c / unit) as u32,
        h: h as u32,
        w: w as u32,
        fy: fy as u32,
        fx: fx as u32,
        ..Default::default()
    };
    let groups = frame.gpu().fold_workgroups(groups_for(len, ELEMENTWISE_WORKGROUP));
    match (skip, unit) {
        (None, 4) => frame.dispatch(&UPSAMPLE_VEC4, &p, &[x, &out], groups),
        (None, _) => frame.dispatch(&UPSAMPLE, &p, &[x, &out], groups),
        (Some(s), 4) => frame.dispatch(&UPSAMPLE_ADD_VEC4, &p, &[x, s, &out], groups),
        (Some(s), _) => frame.dispatch(&UPSAMPLE_ADD, &p, &[x, s, &out], groups),
    }
    Ok(out)
}

/// Nearest-neighbour upsampling of `x` `[N, H, W, C]` by integer factors: `[N, H·fy, W·fx, C]`.
pub fn upsample_nearest(frame: &mut Frame, x: &Tensor, fy: usize, fx: usize) -> Result<Tensor, GpuError> {
    upsample_impl(frame, "upsample_nearest", x, fy, fx, None)
}

/// `skip + upsample_nearest(x, fy, fx)` in one pass (the fusion block's `x_hr + Upsample(y)`).
pub fn upsample_nearest_add(
    frame: &mut Frame,
    x: &Tensor,
    fy: usize,
    fx: usize,
    skip: &Tensor,
) -> Result<Tensor, GpuError> {
    upsample_impl(frame, "upsample_nearest_add", x, fy, fx, Some(skip))
}

/// Appends one token per batch item: `x` `[N, L, C]`, `token` `[N, C]` → `[N, L + 1, C]` with the
/// token last. With `pos` `[L, C]` the first L tokens become `x + pos` in the same pass (the
/// bottleneck's position code).
pub fn append_token(
    frame: &mut Frame,
    x: &Tensor,
    token: &Tensor,
    pos: Option<&Tensor>,
) -> Result<Tensor, GpuError> {
    const OP: &str = "append_token";
    check_f32(OP, x)?;
    check_f32(OP, token)?;
    let &[n, l, c] = x.shape() else {
        return Err(GpuError::shape(OP, format!("x must be [N, L, C], got {:?}", x.shape())));
    };
    if token.shape() != [n, c] {
        return Err(GpuError::shape(OP, format!("token must be [{n}, {c}], got {:?}", token.shape())));
    }
    if let Some(pos) = pos {
        if pos.shape() != [l, c] || pos.dtype() != DType::F32 {
            return Err(GpuError::shape(OP, format!("pos must be f32 [{l}, {c}], got {:?}", pos.shape())));
        }
    }
    let shape = [n, l + 1, c];
    let elements = n * (l + 1) * c;
    check_len(OP, elements)?;
    let out = frame.gpu().tensor(&shape, DType::F32)?;
    if elements == 0 {
        return Ok(out);
    }
    match pos {
        Some(pos) => {
            let p = Params { len: elements as u32, width: c as u32, h: l as u32, ..Default::default() };
            let groups = frame.gpu().fold_workgroups(groups_for(elements, ELEMENTWISE_WORKGROUP));
            frame.dispatch(&TOKENS_POS_APPEND, &p, &[x, token, pos, &out], groups);
        }
        None => {
            copy_window_raw(frame, x, &out, n, l * c, l * c, 0, (l + 1) * c, 0);
            copy_window_raw(frame, token, &out, n, c, c, 0, (l + 1) * c, l * c);
        }
    }
    Ok(out)
}

/// Tokens `[start, start + len)` of `x` `[N, L, C]`: `[N, len, C]` (drop the time token with
/// `slice_tokens(x, 0, L - 1)`).
pub fn slice_tokens(frame: &mut Frame, x: &Tensor, start: usize, len: usize) -> Result<Tensor, GpuError> {
    const OP: &str = "slice_tokens";
    check_f32(OP, x)?;
    let &[n, l, c] = x.shape() else {
        return Err(GpuError::shape(OP, format!("x must be [N, L, C], got {:?}", x.shape())));
    };
    if start + len > l {
        return Err(GpuError::shape(
            OP,
            format!("tokens [{start}, {}) are outside the {l} of {:?}", start + len, x.shape()),
        ));
    }
    check_len(OP, x.len())?;
    let out = frame.gpu().tensor(&[n, len, c], DType::F32)?;
    copy_window_raw(frame, x, &out, n, len * c, l * c, start * c, len * c, 0);
    Ok(out)
}

/// CPU references (flat channels-last slices).
pub mod cpu {
    /// `parts[i]` is `(data, channels)`; all have the same number of rows.
    pub fn concat_channels(parts: &[(&[f32], usize)]) -> Vec<f32> {
        let rows = parts.first().map_or(0, |(d, c)| if *c == 0 { 0 } else { d.len() / c });
        let mut out = Vec::new();
        for r in 0..rows {
            for (d, c) in parts {
                out.extend_from_slice(&d[r * c..(r + 1) * c]);
            }
        }
        out
    }

    pub fn slice_channels(x: &[f32], c: usize, start: usize, len: usize) -> Vec<f32> {
        x.chunks_exact(c).flat_map(|row| row[start..start + len].iter().copied()).collect()
    }

    /// `[N, H, W, C]` → `[N, H·fy, W·fx, C]`, optionally `+ skip`.
    #[allow(clippy::too_many_arguments)]
    pub fn upsample_nearest(
        x: &[f32],
        n: usize,
        h: usize,
        w: usize,
        c: usize,
        fy: usize,
        fx: usize,
        skip: Option<&[f32]>,
    ) -> Vec<f32> {
        let (ho, wo) = (h * fy, w * fx);
        let mut out = Vec::with_capacity(n * ho * wo * c);
        for b in 0..n {
            for y in 0..ho {
                for xx in 0..wo {
                    let src = ((b * h + y / fy) * w + xx / fx) * c;
                    out.extend_from_slice(&x[src..src + c]);
                }
            }
        }
        if let Some(s) = skip {
            out.iter_mut().zip(s).for_each(|(o, s)| *o += s);
        }
        out
    }

    /// `[N, L, C]` + `[N, C]` (+ pos `[L, C]` on the first L) → `[N, L + 1, C]`.
    pub fn append_token(
        x: &[f32],
        token: &[f32],
        pos: Option<&[f32]>,
        n: usize,
        l: usize,
        c: usize,
    ) -> Vec<f32> {
        let mut out = Vec::with_capacity(n * (l + 1) * c);
        for b in 0..n {
            for t in 0..l {
                for ch in 0..c {
                    out.push(x[(b * l + t) * c + ch] + pos.map_or(0.0, |p| p[t * c + ch]));
                }
            }
            out.extend_from_slice(&token[b * c..(b + 1) * c]);
        }
        out
    }

    pub fn slice_tokens(x: &[f32], n: usize, l: usize, c: usize, start: usize, len: usize) -> Vec<f32> {
        (0..n).flat_map(|b| x[(b * l + start) * c..(b * l + start + len) * c].iter().copied()).collect()
    }
}
