//! Convolutions and pooling over channels-last (`[N, H, W, C]`) f32 tensors.
//!
//! - [`conv2d`]: groups = 1, any kernel size, stride and (asymmetric) padding, as an implicit GEMM
//!   (`shaders/conv.wgsl`) with a fused epilogue `y = act((conv + bias + residual) * scale)`.
//! - [`depthwise_conv2d`]: groups = C, any kernel size and stride, bias + activation
//!   (`shaders/conv_depthwise.wgsl`).
//! - [`max_pool2d`]: padded cells are ignored, as PyTorch does.
//!
//! # Weight layouts (what the dispatchers take)
//!
//! | op | layout | from PyTorch |
//! |---|---|---|
//! | conv2d | `[KH, KW, Cin, Cout]` (HWIO) | [`oihw_to_hwio`] from `[Cout, Cin, KH, KW]` |
//! | depthwise | `[KH, KW, C]` | [`depthwise_oihw_to_hwc`] from `[C, 1, KH, KW]` |
//!
//! HWIO makes the weights the GEMM's `K x Cout` matrix with `k = (kh * KW + kw) * Cin + ci`, so
//! the kernel reads them as vec4 along Cout, and reads x as vec4 along Cin (K's fastest index).
//! BatchNorm is folded into the weights on the host with [`fold_batch_norm`] (in OIHW, before the
//! relayout).
//!
//! # Geometry
//!
//! [`Geometry`] holds stride and the four paddings: [`Geometry::symmetric`] is PyTorch's
//! `padding=p`, [`Geometry::same`] is TensorFlow's `"SAME"` (the extra cell goes bottom/right),
//! [`Geometry::valid`] is no padding. There is no dilation.

use crate::gpu::{Access, DType, Frame, GpuError, Kernel, Shader, Tensor};
use crate::ops::uniform::{uniform, UniformLayout};
use crate::ops::{groups_for, Activation};

pub static SHADER: Shader = Shader { name: "conv", source: include_str!("../../shaders/conv.wgsl") };
pub static DEPTHWISE_SHADER: Shader =
    Shader { name: "conv_depthwise", source: include_str!("../../shaders/conv_depthwise.wgsl") };

const CONV_BINDINGS: &[Access] = &[Access::Read, Access::Read, Access::Read, Access::Read, Access::ReadWrite];
const DEPTHWISE_BINDINGS: &[Access] = &[Access::Read, Access::Read, Access::Read, Access::ReadWrite];
const POOL_BINDINGS: &[Access] = &[Access::Read, Access::ReadWrite];

/// conv2d, Cin % 4 == 0 and Cout % 4 == 0: vec4 loads of x, w, bias, residual and y.
pub static CONV2D_VEC4: Kernel = Kernel { shader: &SHADER, entry: "conv2d_vec4", bindings: CONV_BINDINGS };
/// conv2d, Cout % 4 == 0 and any Cin (the RGB stem): scalar gathers of x, vec4 for the rest.
pub static CONV2D_VEC4W: Kernel = Kernel { shader: &SHADER, entry: "conv2d_vec4w", bindings: CONV_BINDINGS };
/// conv2d, any shape.
pub static CONV2D_SCALAR: Kernel =
    Kernel { shader: &SHADER, entry: "conv2d_scalar", bindings: CONV_BINDINGS };
pub static DEPTHWISE_VEC4: Kernel =
    Kernel { shader: &DEPTHWISE_SHADER, entry: "depthwise_vec4", bindings: DEPTHWISE_BINDINGS };
pub static DEPTHWISE_SCALAR: Kernel =
    Kernel { shader: &DEPTHWISE_SHADER, entry: "depthwise_scalar", bindings: DEPTHWISE_BINDINGS };
pub static MAX_POOL_VEC4: Kernel =
    Kernel { shader: &DEPTHWISE_SHADER, entry: "max_pool_vec4", bindings: POOL_BINDINGS };
pub static MAX_POOL_SCALAR: Kernel =
    Kernel { shader: &DEPTHWISE_SHADER, entry: "max_pool_scalar", bindings: POOL_BINDINGS };

pub const SHADERS: &[&Shader] = &[&SHADER, &DEPTHWISE_SHADER];
pub const KERNELS: &[&Kernel] = &[
    &CONV2D_VEC4,
    &CONV2D_VEC4W,
    &CONV2D_SCALAR,
    &DEPTHWISE_VEC4,
    &DEPTHWISE_SCALAR,
    &MAX_POOL_VEC4,
    &MAX_POOL_SCALAR,
];
/// The uniform structs of this family (checked against the shaders in tests/engine/shaders.rs).
pub const UNIFORMS: &[UniformLayout] =
    &[ConvParams::layout(&SHADER, "Params"), WindowParams::layout(&DEPTHWISE_SHADER, "Params")];

/// Output tile of one conv2d workgroup: 128 pixels x 64 output channels (see `shaders/conv.wgsl`).
const TILE_M: usize = 128;
const TILE_N: usize = 64;
/// Threads of the depthwise / pooling workgroups, each computing 4 pixels along W.
const WINDOW_WORKGROUP: u32 = 256;
const WINDOW_PIXELS_PER_THREAD: usize = 4;

const FLAG_BIAS: u32 = 1;
const FLAG_RESIDUAL: u32 = 2;

/// Stride and padding of a convolution or pooling window (no dilation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub stride_h: usize,
    pub stride_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub pad_bottom: usize,
    pub pad_right: usize,
}

impl Geometry {
    /// PyTorch's `stride=s, padding=p`: `p` cells on every side.
    pub fn symmetric(stride: usize, pad: usize) -> Geometry {
        Geometry {
            stride_h: stride,
            stride_w: stride,
            pad_top: pad,
            pad_left: pad,
            pad_bottom: pad,
            pad_right: pad,
        }
    }

    /// No padding.
    pub fn valid(stride: usize) -> Geometry {
        Geometry::symmetric(stride, 0)
    }

    /// TensorFlow's `"SAME"` for an `h x w` input and a `kh x kw` window: output `ceil(h / s)`,
    /// total padding `max((out - 1) * s + k - in, 0)` with the odd cell at the bottom / right.
    pub fn same(stride: usize, (kh, kw): (usize, usize), (h, w): (usize, usize)) -> Geometry {
        let total = |size: usize, k: usize| {
            ((size.div_ceil(stride.max(1)).max(1) - 1) * stride + k).saturating_sub(size)
        };
        let (th, tw) = (total(h, kh), total(w, kw));
        Geometry {
            stride_h: stride,
            stride_w: stride,
            pad_top: th / 2,
            pad_left: tw / 2,
            pad_bottom: th - th / 2,
            pad_right: tw - tw / 2,
        }
    }

    /// `(OH, OW)` for an `h x w` input and a `kh x kw` window, or `None` when the padded input is
    /// smaller than the window or a stride is zero.
    pub fn output_size(&self, (h, w): (usize, usize), (kh, kw): (usize, usize)) -> Option<(usize, usize)> {
        if self.stride_h == 0 || self.stride_w == 0 || kh == 0 || kw == 0 {
            return None;
        }
        let (ph, pw) = (h + self.pad_top + self.pad_bottom, w + self.pad_left + self.pad_right);
        if ph < kh || pw < kw {
            return None;
        }
        Some(((ph - kh) / self.stride_h + 1, (pw - kw) / self.stride_w + 1))
    }
}

/// What conv2d does after the sum: `y = act((conv + bias + residual) * scale)`.
/// `residual` has the output's shape; `scale = 1/√2` gives the TransUNet ResBlock's
/// `(h + skip) / √2`, `act = Relu` with a residual gives ResNet's `relu(conv + bias + identity)`.
#[derive(Clone, Copy, Debug)]
pub struct Epilogue<'a> {
    pub bias: Option<&'a Tensor>,
    pub act: Activation,
    pub residual: Option<&'a Tensor>,
    pub scale: f32,
}

impl Default for Epilogue<'_> {
    fn default() -> Self {
        Epilogue { bias: None, act: Activation::None, residual: None, scale: 1.0 }
    }
}

impl<'a> Epilogue<'a> {
    /// `act(conv + bias)`.
    pub fn bias_act(bias: Option<&'a Tensor>, act: Activation) -> Self {
        Epilogue { bias, act, ..Default::default() }
    }
}

uniform! {
    #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    struct ConvParams {
        n: u32,
        h: u32,
        w: u32,
        cin: u32,
        oh: u32,
        ow: u32,
        cout: u32,
        kh: u32,
        kw: u32,
        stride_h: u32,
        stride_w: u32,
        pad_top: u32,
        pad_left: u32,
        m: u32,
        k: u32,
        act: u32,
        flags: u32,
        tiles_n: u32,
        tiles: u32,
        scale: f32,
    }
}

uniform! {
    #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    struct WindowParams {
        n: u32,
        h: u32,
        w: u32,
        c: u32,
        oh: u32,
        ow: u32,
        kh: u32,
        kw: u32,
        stride_h: u32,
        stride_w: u32,
        pad_top: u32,
        pad_left: u32,
        groups: u32,
        ow_blocks: u32,
        threads: u32,
        act: u32,
        flags: u32,
    }
}

/// Floating-point operations of a conv2d (2 per multiply-add; bias and epilogue not counted):
/// `2 · N · OH · OW · Cout · KH · KW · Cin`. `input` is `[N, H, W, Cin]`, `weight` HWIO
/// `[KH, KW, Cin, Cout]`; 0 when the geometry gives no output.
pub fn conv2d_flops(input: [usize; 4], weight: [usize; 4], geom: &Geometry) -> f64 {
    let [n, h, w, _] = input;
    let [kh, kw, cin, cout] = weight;
    match geom.output_size((h, w), (kh, kw)) {
        Some((oh, ow)) => 2.0 * (n * oh * ow) as f64 * (cout * kh * kw * cin) as f64,
        None => 0.0,
    }
}

fn check_f32(op: &'static str, what: &str, t: &Tensor) -> Result<(), GpuError> {
    if t.dtype() != DType::F32 {
        return Err(GpuError::shape(op, format!("{what} must be f32, got {:?}", t.dtype())));
    }
    Ok(())
}

fn check_nhwc(op: &'static str, x: &Tensor) -> Result<[usize; 4], GpuError> {
    check_f32(op, "input", x)?;
    match *x.shape() {
        [n, h, w, c] if n * h * w * c > 0 => Ok([n, h, w, c]),
        _ => Err(GpuError::shape(
            op,
            format!("input must be a non-empty [N, H, W, C] tensor, got {:?}", x.shape()),
        )),
    }
}

fn check_u32(op: &'static str, what: &str, v: usize) -> Result<u32, GpuError> {
    u32::try_from(v)
        .ok()
        .filter(|v| *v < (1 << 30))
        .ok_or_else(|| GpuError::shape(op, format!("{what} = {v} is too large for the kernel's indices")))
}

fn distinct(op: &'static str, tensors: &[(&str, &Tensor)]) -> Result<(), GpuError> {
    for (i, (na, a)) in tensors.iter().enumerate() {
        for (nb, b) in &tensors[i + 1..] {
            if a.same_storage(b) {
                return Err(GpuError::shape(
                    op,
                    format!("{na} and {nb} share one buffer; a dispatch cannot bind a buffer twice"),
                ));
            }
        }
    }
    Ok(())
}

/// conv2d over `x [N, H, W, Cin]` with HWIO weights `w [KH, KW, Cin, Cout]`, giving
/// `[N, OH, OW, Cout]` = `act((conv + bias + residual) * scale)` (see [`Epilogue`]).
pub fn conv2d(
    frame: &mut Frame,
    x: &Tensor,
    w: &Tensor,
    geom: &Geometry,
    epi: &Epilogue,
) -> Result<Tensor, GpuError> {
    const OP: &str = "conv2d";
    let [n, h, wd, cin] = check_nhwc(OP, x)?;
    check_f32(OP, "weight", w)?;
    let [kh, kw, wcin, cout] = match *w.shape() {
        [a, b, c, d] if a * b * c * d > 0 => [a, b, c, d],
        _ => {
            return Err(GpuError::shape(
                OP,
                format!("weight must be a non-empty HWIO [KH, KW, Cin, Cout] tensor, got {:?}", w.shape()),
            ))
        }
    };
    if wcin != cin {
        return Err(GpuError::shape(
            OP,
            format!("weight {:?} expects Cin = {wcin} but the input {:?} has {cin}", w.shape(), x.shape()),
        ));
    }
    let (oh, ow) = geom.output_size((h, wd), (kh, kw)).ok_or_else(|| {
        GpuError::shape(OP, format!("window {kh}x{kw} with {geom:?} gives no output for a {h}x{wd} input"))
    })?;
    let out_shape = [n, oh, ow, cout];
    let mut bound = vec![("input", x), ("weight", w)];
    if let Some(b) = epi.bias {
        check_f32(OP, "bias", b)?;
        if b.shape() != [cout] {
            return Err(GpuError::shape(OP, format!("bias must be [{cout}], got {:?}", b.shape())));
        }
        bound.push(("bias", b));
    }
    if let Some(r) = epi.residual {
        check_f32(OP, "residual", r)?;
        if r.shape() != out_shape {
            return Err(GpuError::shape(
                OP,
                format!("residual must have the output's shape {out_shape:?}, got {:?}", r.shape()),
            ));
        }
        bound.push(("residual", r));
    }
    distinct(OP, &bound)?;
    let m = n * oh * ow;
    let k = kh * kw * cin;
    for (what, v) in [
        ("input elements", x.len()),
        ("weight elements", w.len()),
        ("output elements", m * cout),
        ("N*OH*OW", m),
        ("KH*KW*Cin", k),
    ] {
        check_u32(OP, what, v)?;
    }
    let gpu = frame.gpu();
    let y = gpu.tensor(&out_shape, DType::F32)?;
    let bias_dummy;
    let bias = match epi.bias {
        Some(b) => b,
        None => {
            bias_dummy = gpu.tensor(&[4], DType::F32)?;
            &bias_dummy
        }
    };
    let res_dummy;
    let residual = match epi.residual {
        Some(r) => r,
        None => {
            res_dummy = gpu.tensor(&[4], DType::F32)?;
            &res_dummy
        }
    };
    let tiles_n = cout.div_ceil(TILE_N);
    let tiles = tiles_n * m.div_ceil(TILE_M);
    let params = ConvParams {
        n: n as u32,
        h: h as u32,
        w: wd as u32,
        cin: cin as u32,
        oh: oh as u32,
        ow: ow as u32,
        cout: cout as u32,
        kh: kh as u32,
        kw: kw as u32,
        stride_h: geom.stride_h as u32,
        stride_w: geom.stride_w as u32,
        pad_top: geom.pad_top as u32,
        pad_left: geom.pad_left as u32,
        m: m as u32,
        k: k as u32,
        act: epi.act.code(),
        flags: if epi.bias.is_some() { FLAG_BIAS } else { 0 }
            | if epi.residual.is_some() { FLAG_RESIDUAL } else { 0 },
        tiles_n: tiles_n as u32,
        tiles: check_u32(OP, "workgroups", tiles)?,
        scale: epi.scale,
    };
    let kernel = match (cin % 4 == 0, cout % 4 == 0) {
        (true, true) => &CONV2D_VEC4,
        (false, true) => &CONV2D_VEC4W,
        _ => &CONV2D_SCALAR,
    };
    let groups = gpu.fold_workgroups(tiles as u32);
    frame.dispatch(kernel, &params, &[x, w, bias, residual, &y], groups);
    Ok(y)
}

/// Shared validation of the depthwise conv and max-pool.
fn window_params(
    op: &'static str,
    xs: [usize; 4],
    (kh, kw): (usize, usize),
    geom: &Geometry,
    act: Activation,
    flags: u32,
) -> Result<(WindowParams, [usize; 4], bool), GpuError> {
    let [n, h, w, c] = xs;
    let (oh, ow) = geom.output_size((h, w), (kh, kw)).ok_or_else(|| {
        GpuError::shape(op, format!("window {kh}x{kw} with {geom:?} gives no output for a {h}x{w} input"))
    })?;
    let vec4 = c % 4 == 0;
    let groups = if vec4 { c / 4 } else { c };
    let ow_blocks = ow.div_ceil(WINDOW_PIXELS_PER_THREAD);
    let threads = n * oh * ow_blocks * groups;
    for (what, v) in [
        ("input elements", n * h * w * c),
        ("output elements", n * oh * ow * c),
        ("threads", threads),
        ("window", kh * kw * c),
    ] {
        check_u32(op, what, v)?;
    }
    let p = WindowParams {
        n: n as u32,
        h: h as u32,
        w: w as u32,
        c: c as u32,
        oh: oh as u32,
        ow: ow as u32,
        kh: kh as u32,
        kw: kw as u32,
        stride_h: geom.stride_h as u32,
        stride_w: geom.stride_w as u32,
        pad_top: geom.pad_top as u32,
        pad_left: geom.pad_left as u32,
        groups: groups as u32,
        ow_blocks: ow_blocks as u32,
        threads: threads as u32,
        act: act.code(),
        flags,
    };
    Ok((p, [n, oh, ow, c], vec4))
}

/// Depthwise conv2d (groups = C) over `x [N, H, W, C]` with weights `w [KH, KW, C]`, giving
/// `act(conv + bias)` of shape `[N, OH, OW, C]`.
pub fn depthwise_conv2d(
    frame: &mut Frame,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    geom: &Geometry,
    act: Activation,
) -> Result<Tensor, GpuError> {
    const OP: &str = "depthwise_conv2d";
    let xs = check_nhwc(OP, x)?;
    let c = xs[3];
    check_f32(OP, "weight", w)?;
    let (kh, kw) = match *w.shape() {
        [kh, kw, wc] if kh * kw > 0 && wc == c => (kh, kw),
        _ => {
            return Err(GpuError::shape(
                OP,
                format!("weight must be [KH, KW, {c}] for the input {:?}, got {:?}", x.shape(), w.shape()),
            ))
        }
    };
    let mut bound = vec![("input", x), ("weight", w)];
    if let Some(b) = bias {
        check_f32(OP, "bias", b)?;
        if b.shape() != [c] {
            return Err(GpuError::shape(OP, format!("bias must be [{c}], got {:?}", b.shape())));
        }
        bound.push(("bias", b));
    }
    distinct(OP, &bound)?;
    let (params, out_shape, vec4) =
        window_params(OP, xs, (kh, kw), geom, act, if bias.is_some() { FLAG_BIAS } else { 0 })?;
    let gpu = frame.gpu();
    let y = gpu.tensor(&out_shape, DType::F32)?;
    let bias_dummy;
    let bias = match bias {
        Some(b) => b,
        None => {
            bias_dummy = gpu.tensor(&[4], DType::F32)?;
            &bias_dummy
        }
    };
    let kernel = if vec4 { &DEPTHWISE_VEC4 } else { &DEPTHWISE_SCALAR };
    let groups = gpu.fold_workgroups(groups_for(params.threads as usize, WINDOW_WORKGROUP));
    frame.dispatch(kernel, &params, &[x, w, bias, &y], groups);
    Ok(y)
}

/// Max-pool with a `kh x kw` window over `x [N, H, W, C]`; padded cells are ignored (never win),
/// as in PyTorch. Each padding must be smaller than the window on its axis, so that every window
/// holds at least one input cell (PyTorch asks for at most half the window).
pub fn max_pool2d(
    frame: &mut Frame,
    x: &Tensor,
    (kh, kw): (usize, usize),
    geom: &Geometry,
) -> Result<Tensor, GpuError> {
    const OP: &str = "max_pool2d";
    let xs = check_nhwc(OP, x)?;
    if geom.pad_top.max(geom.pad_bottom) >= kh || geom.pad_left.max(geom.pad_right) >= kw {
        return Err(GpuError::shape(
            OP,
            format!("padding {geom:?} must be smaller than the {kh}x{kw} window"),
        ));
    }
    let (params, out_shape, vec4) = window_params(OP, xs, (kh, kw), geom, Activation::None, 0)?;
    let gpu = frame.gpu();
    let y = gpu.tensor(&out_shape, DType::F32)?;
    let kernel = if vec4 { &MAX_POOL_VEC4 } else { &MAX_POOL_SCALAR };
    let groups = gpu.fold_workgroups(groups_for(params.threads as usize, WINDOW_WORKGROUP));
    frame.dispatch(kernel, &params, &[x, &y], groups);
    Ok(y)
}

/// PyTorch conv weights `[Cout, Cin, KH, KW]` (OIHW) to this module's `[KH, KW, Cin, Cout]`.
pub fn oihw_to_hwio(w: &[f32], [o, i, kh, kw]: [usize; 4]) -> Result<Vec<f32>, GpuError> {
    if w.len() != o * i * kh * kw {
        return Err(GpuError::shape(
            "oihw_to_hwio",
            format!("{} values for shape [{o}, {i}, {kh}, {kw}]", w.len()),
        ));
    }
    let mut out = vec![0.0; w.len()];
    for oc in 0..o {
        for ic in 0..i {
            for y in 0..kh {
                for x in 0..kw {
                    out[((y * kw + x) * i + ic) * o + oc] = w[((oc * i + ic) * kh + y) * kw + x];
                }
            }
        }
    }
    Ok(out)
}

/// PyTorch depthwise weights `[C, 1, KH, KW]` to this module's `[KH, KW, C]`.
pub fn depthwise_oihw_to_hwc(w: &[f32], [c, one, kh, kw]: [usize; 4]) -> Result<Vec<f32>, GpuError> {
    if one != 1 || w.len() != c * kh * kw {
        return Err(GpuError::shape(
            "depthwise_oihw_to_hwc",
            format!("{} values for shape [{c}, {one}, {kh}, {kw}] (want [C, 1, KH, KW])", w.len()),
        ));
    }
    let mut out = vec![0.0; w.len()];
    for ch in 0..c {
        for y in 0..kh {
            for x in 0..kw {
                out[(y * kw + x) * c + ch] = w[(ch * kh + y) * kw + x];
            }
        }
    }
    Ok(out)
}

/// Folds an inference BatchNorm that follows a conv into the conv:
/// `BN(conv(x, W) + b) = conv(x, W') + b'` with `s = gamma / sqrt(var + eps)`,
/// `W'[o, ...] = W[o, ...] * s[o]`, `b' = (b - mean) * s + beta`.
///
/// `weight_oihw` is any weight whose leading axis is the output channel (OIHW conv weights,
/// `[C, 1, KH, KW]` depthwise weights, `[out, in]` linear weights); the result keeps that layout
/// (relayout afterwards with [`oihw_to_hwio`] / [`depthwise_oihw_to_hwc`]). `bias` is the conv's
/// own bias, if any; the folded bias is always returned.
pub fn fold_batch_norm(
    weight_oihw: &[f32],
    bias: Option<&[f32]>,
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    eps: f32,
) -> Result<(Vec<f32>, Vec<f32>), GpuError> {
    let o = gamma.len();
    let lens_ok =
        o > 0 && beta.len() == o && mean.len() == o && var.len() == o && bias.is_none_or(|b| b.len() == o);
    if !lens_ok || weight_oihw.len() % o != 0 {
        return Err(GpuError::shape(
            "fold_batch_norm",
            format!(
                "weight of {} values, bias {:?}, gamma {o}, beta {}, mean {}, var {}: want C > 0 values each and a weight of C x something",
                weight_oihw.len(),
                bias.map(|b| b.len()),
                beta.len(),
                mean.len(),
                var.len()
            ),
        ));
    }
    let per = weight_oihw.len() / o;
    let scale: Vec<f32> = (0..o).map(|c| gamma[c] / (var[c] + eps).sqrt()).collect();
    let weight = weight_oihw.iter().enumerate().map(|(i, v)| v * scale[i / per]).collect();
    let folded_bias = (0..o).map(|c| (bias.map_or(0.0, |b| b[c]) - mean[c]) * scale[c] + beta[c]).collect();
    Ok((weight, folded_bias))
}

/// CPU references (direct loops, NHWC), used by the tests and the CPU fallback.
pub mod cpu {
    use super::Geometry;
    use crate::ops::Activation;

    /// The CPU twin of [`super::Epilogue`]: `y = act((conv + bias + residual) * scale)`.
    #[derive(Clone, Copy, Debug)]
    pub struct Epilogue<'a> {
        pub bias: Option<&'a [f32]>,
        pub act: Activation,
        pub residual: Option<&'a [f32]>,
        pub scale: f32,
    }

    impl Default for Epilogue<'_> {
        fn default() -> Self {
            Epilogue { bias: None, act: Activation::None, residual: None, scale: 1.0 }
        }
    }

    /// Input coordinate of output coordinate `o`, window tap `k`, or `None` in the padding.
    pub(crate) fn tap(o: usize, k: usize, stride: usize, pad: usize, size: usize) -> Option<usize> {
        (o * stride + k).checked_sub(pad).filter(|i| *i < size)
    }

    /// conv2d: `x [N, H, W, Cin]`, `w [KH, KW, Cin, Cout]` (HWIO) → `[N, OH, OW, Cout]`.
    /// Panics when the geometry gives no output.
    pub fn conv2d(
        x: &[f32],
        [n, h, wd, cin]: [usize; 4],
        w: &[f32],
        [kh, kw, wcin, cout]: [usize; 4],
        geom: &Geometry,
        epi: &Epilogue,
    ) -> Vec<f32> {
        assert_eq!(cin, wcin, "conv2d: Cin of input and weight differ");
        assert_eq!(x.len(), n * h * wd * cin, "conv2d: input length");
        assert_eq!(w.len(), kh * kw * cin * cout, "conv2d: weight length");
        let (oh, ow) = geom.output_size((h, wd), (kh, kw)).expect("conv2d: no output for this geometry");
        let mut y = vec![0.0f32; n * oh * ow * cout];
        for b in 0..n {
            for oy in 0..oh {
                for ox in 0..ow {
                    let out = &mut y[((b * oh + oy) * ow + ox) * cout..][..cout];
                    for ky in 0..kh {
                        let Some(iy) = tap(oy, ky, geom.stride_h, geom.pad_top, h) else { continue };
                        for kx in 0..kw {
                            let Some(ix) = tap(ox, kx, geom.stride_w, geom.pad_left, wd) else { continue };
                            let pixel = &x[((b * h + iy) * wd + ix) * cin..][..cin];
                            for (ci, xv) in pixel.iter().enumerate() {
                                let row = &w[((ky * kw + kx) * cin + ci) * cout..][..cout];
                                for (acc, wv) in out.iter_mut().zip(row) {
                                    *acc += xv * wv;
                                }
                            }
                        }
                    }
                }
            }
        }
        for (i, v) in y.iter_mut().enumerate() {
            let mut s = *v;
            if let Some(bias) = epi.bias {
                s += bias[i % cout];
            }
            if let Some(r) = epi.residual {
                s += r[i];
            }
            *v = epi.act.apply(s * epi.scale);
        }
        y
    }

    /// Depthwise conv2d: `x [N, H, W, C]`, `w [KH, KW, C]` → `act(conv + bias)` `[N, OH, OW, C]`.
    pub fn depthwise_conv2d(
        x: &[f32],
        [n, h, wd, c]: [usize; 4],
        w: &[f32],
        (kh, kw): (usize, usize),
        bias: Option<&[f32]>,
        geom: &Geometry,
        act: Activation,
    ) -> Vec<f32> {
        assert_eq!(x.len(), n * h * wd * c, "depthwise_conv2d: input length");
        assert_eq!(w.len(), kh * kw * c, "depthwise_conv2d: weight length");
        let (oh, ow) =
            geom.output_size((h, wd), (kh, kw)).expect("depthwise_conv2d: no output for this geometry");
        let mut y = vec![0.0f32; n * oh * ow * c];
        for b in 0..n {
            for oy in 0..oh {
                for ox in 0..ow {
                    let out = &mut y[((b * oh + oy) * ow + ox) * c..][..c];
                    for ky in 0..kh {
                        let Some(iy) = tap(oy, ky, geom.stride_h, geom.pad_top, h) else { continue };
                        for kx in 0..kw {
                            let Some(ix) = tap(ox, kx, geom.stride_w, geom.pad_left, wd) else { continue };
                            let pixel = &x[((b * h + iy) * wd + ix) * c..][..c];
                            let wrow = &w[(ky * kw + kx) * c..][..c];
                            for ((acc, xv), wv) in out.iter_mut().zip(pixel).zip(wrow) {
                                *acc += xv * wv;
                            }
                        }
                    }
                    for (ch, v) in out.iter_mut().enumerate() {
                        *v = act.apply(*v + bias.map_or(0.0, |b| b[ch]));
                    }
                }
            }
        }
        y
    }

    /// Max-pool over `x [N, H, W, C]`; padded cells are ignored. A window with no input cell
    /// (impossible when each padding is smaller than the window) gives -inf.
    pub fn max_pool2d(
        x: &[f32],
        [n, h, wd, c]: [usize; 4],
        (kh, kw): (usize, usize),
        geom: &Geometry,
    ) -> Vec<f32> {
        assert_eq!(x.len(), n * h * wd * c, "max_pool2d: input length");
        let (oh, ow) = geom.output_size((h, wd), (kh, kw)).expect("max_pool2d: no output for this geometry");
        let mut y = vec![f32::NEG_INFINITY; n * oh * ow * c];
        for b in 0..n {
            for oy in 0..oh {
                for ox in 0..ow {
                    let out = &mut y[((b * oh + oy) * ow + ox) * c..][..c];
                    for ky in 0..kh {
                        let Some(iy) = tap(oy, ky, geom.stride_h, geom.pad_top, h) else { continue };
                        for kx in 0..kw {
                            let Some(ix) = tap(ox, kx, geom.stride_w, geom.pad_left, wd) else { continue };
                            for (m, xv) in out.iter_mut().zip(&x[((b * h + iy) * wd + ix) * c..][..c]) {
                                *m = m.max(*xv);
                            }
                        }
                    }
                }
            }
        }
        y
    }
}
