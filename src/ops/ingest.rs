//! Ingest: a decoded RGBA8 image → the letterboxed, normalised model input `[1, H, W, 3]` f32
//! (design §2, the first GPU stage of a frame).
//!
//! The geometry is the training pipeline's (`train/pix2seqd_train/data/common.py`: `fit_scale`,
//! `Geometry.resized_hw`, `place_on_canvas`): the image is resized to fit the canvas keeping its
//! aspect ratio, placed at the top left, and the bottom/right padding is [`PAD_VALUE`]. The resize
//! is PIL's `Image.resize(..., BILINEAR)`: a tent filter whose support widens with the downscale
//! factor (antialiased), pixel centres at +0.5, weights normalised per output pixel. The kernel
//! evaluates it in f32 over the 2-D window in one pass, where PIL runs a horizontal then a vertical
//! pass with 22-bit fixed-point weights and rounds to uint8 in between and at the end: our value
//! differs from PIL's `byte / 255` by at most 1/255 (half a step from each of PIL's two roundings).
//! An axis that keeps its size is not filtered, so an unscaled image gives exactly `byte / 255`.
//!
//! The backbone's input scale and offset are folded in: every value `v` (padding included) is
//! written as `v · alpha + beta`.

use crate::geometry::Letterbox;
use crate::gpu::{Access, DType, Frame, Gpu, GpuError, Kernel, Shader, Tensor};
use crate::ops::uniform::{uniform, UniformLayout};
use crate::ops::{groups_for, ELEMENTWISE_WORKGROUP};

pub static SHADER: Shader = Shader { name: "ingest", source: include_str!("../../shaders/ingest.wgsl") };

pub static INGEST: Kernel =
    Kernel { shader: &SHADER, entry: "ingest", bindings: &[Access::Read, Access::ReadWrite] };

pub const SHADERS: &[&Shader] = &[&SHADER];
pub const KERNELS: &[&Kernel] = &[&INGEST];
/// The uniform structs of this family (checked against the shaders in tests/engine/shaders.rs).
pub const UNIFORMS: &[UniformLayout] = &[Params::layout(&SHADER, "Params")];

/// Image value of the canvas padding (the official pipeline's `PAD_VALUE`), before `alpha`/`beta`.
pub const PAD_VALUE: f32 = 0.3;

/// Uploads an RGBA8 image (`width · height · 4` bytes, row-major, as decoders produce it) as the
/// packed u32 tensor `[height, width]` the kernels read (byte 0 = R, i.e. the bytes unchanged).
pub fn upload_rgba8(gpu: &Gpu, width: usize, height: usize, rgba: &[u8]) -> Result<Tensor, GpuError> {
    let want = width.checked_mul(height).and_then(|n| n.checked_mul(4));
    if want != Some(rgba.len()) {
        return Err(GpuError::shape(
            "upload_rgba8",
            format!("a {width}x{height} RGBA8 image needs {want:?} bytes, got {}", rgba.len()),
        ));
    }
    match bytemuck::try_cast_slice::<u8, u32>(rgba) {
        Ok(words) => gpu.upload_u32(&[height, width], words),
        Err(_) => gpu.upload_u32(&[height, width], &pack_rgba8(rgba)),
    }
}

/// RGBA8 bytes as the packed u32 words the kernels read (byte 0 = R); trailing bytes short of a
/// word are dropped.
pub fn pack_rgba8(rgba: &[u8]) -> Vec<u32> {
    bytemuck::pod_collect_to_vec::<u8, u32>(&rgba[..rgba.len() / 4 * 4])
}

uniform! {
    #[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
    struct Params {
        orig_h: u32,
        orig_w: u32,
        canvas_h: u32,
        canvas_w: u32,
        content_h: u32,
        content_w: u32,
        pixels: u32,
        _pad0: u32,
        alpha: f32,
        beta: f32,
        pad_value: f32,
        _pad1: u32,
    }
}

/// The kernel's integer tent arithmetic, `(2o + 1)·src ± (2j + 1)·dst ± 2·max`, must fit in i32.
fn check_axis(op: &'static str, src: usize, dst: usize) -> Result<(), GpuError> {
    if 4 * (src as u64 + 1) * (dst as u64 + 1) > i32::MAX as u64 {
        return Err(GpuError::shape(
            op,
            format!("resizing {src} to {dst} pixels exceeds the kernel's 32-bit arithmetic"),
        ));
    }
    Ok(())
}

/// Letterboxes and normalises `image` (`[orig_h, orig_w]` u32 packed RGBA8, see [`upload_rgba8`])
/// into a new `[1, canvas_h, canvas_w, 3]` f32 tensor: the bilinear-resized image in [0, 1] inside
/// the content window, [`PAD_VALUE`] outside, every value then `v · alpha + beta`.
pub fn ingest(
    frame: &mut Frame,
    image: &Tensor,
    lb: &Letterbox,
    alpha: f32,
    beta: f32,
) -> Result<Tensor, GpuError> {
    const OP: &str = "ingest";
    lb.validate().map_err(|e| GpuError::shape(OP, e.detail()))?;
    if image.dtype() != DType::U32 || image.shape() != [lb.orig_h, lb.orig_w] {
        return Err(GpuError::shape(
            OP,
            format!(
                "image must be u32 packed RGBA8 [{}, {}], got {:?} {:?}",
                lb.orig_h,
                lb.orig_w,
                image.shape(),
                image.dtype()
            ),
        ));
    }
    if !alpha.is_finite() || !beta.is_finite() {
        return Err(GpuError::shape(OP, format!("alpha {alpha} and beta {beta} must be finite")));
    }
    check_axis(OP, lb.orig_h, lb.content_h)?;
    check_axis(OP, lb.orig_w, lb.content_w)?;
    let pixels = lb.canvas_h as u64 * lb.canvas_w as u64;
    if pixels * 3 > u32::MAX as u64 || image.len() as u64 > u32::MAX as u64 {
        return Err(GpuError::shape(OP, format!("{lb:?} exceeds the 32-bit index")));
    }
    let out = frame.gpu().tensor(&[1, lb.canvas_h, lb.canvas_w, 3], DType::F32)?;
    let p = Params {
        orig_h: lb.orig_h as u32,
        orig_w: lb.orig_w as u32,
        canvas_h: lb.canvas_h as u32,
        canvas_w: lb.canvas_w as u32,
        content_h: lb.content_h as u32,
        content_w: lb.content_w as u32,
        pixels: pixels as u32,
        alpha,
        beta,
        pad_value: PAD_VALUE,
        ..Default::default()
    };
    let groups = frame.gpu().fold_workgroups(groups_for(pixels as usize, ELEMENTWISE_WORKGROUP));
    frame.dispatch(&INGEST, &p, &[image, &out], groups);
    Ok(out)
}

/// CPU reference: the same arithmetic as `shaders/ingest.wgsl`, in the same order.
pub mod cpu {
    use super::{Letterbox, PAD_VALUE};

    /// Source window `[start, end)` of output index `o` along an axis of `src → dst` pixels.
    fn window(o: usize, src: usize, dst: usize) -> (usize, usize) {
        if src == dst {
            return (o, o + 1);
        }
        let (src, dst, o) = (src as i64, dst as i64, o as i64);
        let d = 2 * src.max(dst);
        let c = (2 * o + 1) * src;
        let (lo, hi) = (c - d - dst, c + d - dst);
        let start = if lo > 0 { lo / (2 * dst) } else { 0 };
        (start as usize, (src as usize).min((hi / (2 * dst)) as usize + 1))
    }

    /// Unnormalised tent weight of source index `j` for output index `o`: an exact integer.
    fn weight(o: usize, j: usize, src: usize, dst: usize) -> f32 {
        if src == dst {
            return 1.0;
        }
        let (src, dst) = (src as i64, dst as i64);
        let d = 2 * src.max(dst);
        let n = (2 * o as i64 + 1) * src - (2 * j as i64 + 1) * dst;
        (d - n.abs()).max(0) as f32
    }

    /// `rgba` (`orig_h · orig_w · 4` bytes) → `[canvas_h, canvas_w, 3]` as [`super::ingest`].
    ///
    /// # Panics
    /// If `rgba` is shorter than `orig_h · orig_w · 4` bytes or `lb` is invalid
    /// ([`Letterbox::validate`]); the GPU dispatcher returns errors for both instead.
    pub fn ingest(rgba: &[u8], lb: &Letterbox, alpha: f32, beta: f32) -> Vec<f32> {
        assert!(lb.validate().is_ok(), "invalid letterbox {lb:?}");
        assert!(
            rgba.len() >= lb.orig_h * lb.orig_w * 4,
            "ingest: {} bytes for a {}x{} RGBA8 image",
            rgba.len(),
            lb.orig_w,
            lb.orig_h
        );
        let mut out = Vec::with_capacity(lb.canvas_h * lb.canvas_w * 3);
        for y in 0..lb.canvas_h {
            for x in 0..lb.canvas_w {
                let mut v = [PAD_VALUE; 3];
                if y < lb.content_h && x < lb.content_w {
                    let (y0, y1) = window(y, lb.orig_h, lb.content_h);
                    let (x0, x1) = window(x, lb.orig_w, lb.content_w);
                    let mut sum_x = 0f32;
                    for j in x0..x1 {
                        sum_x += weight(x, j, lb.orig_w, lb.content_w);
                    }
                    let (mut sum_y, mut acc) = (0f32, [0f32; 3]);
                    for r in y0..y1 {
                        let ky = weight(y, r, lb.orig_h, lb.content_h);
                        sum_y += ky;
                        let mut row = [0f32; 3];
                        for j in x0..x1 {
                            let kx = weight(x, j, lb.orig_w, lb.content_w);
                            let px = &rgba[(r * lb.orig_w + j) * 4..][..3];
                            for (acc, &byte) in row.iter_mut().zip(px) {
                                *acc += kx * byte as f32;
                            }
                        }
                        for (a, r) in acc.iter_mut().zip(row) {
                            *a += ky * r;
                        }
                    }
                    let norm = sum_x * sum_y * 255.0;
                    v = acc.map(|a| a / norm);
                }
                out.extend(v.map(|v| v * alpha + beta));
            }
        }
        out
    }
}
