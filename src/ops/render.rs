//! Render: class / instance maps → a packed RGBA8 overlay on the original image, with segment
//! outlines (design §2: "palette overlay + outlines"; the page draws it from a GPU buffer).
//!
//! Each output pixel maps to the label maps like `unletterbox` in
//! `train/pix2seqd_train/data/common.py`: original pixel → content pixel (nearest at pixel
//! centres) → the same canvas pixel → mask pixel (nearest). The indices are computed in exact
//! integers, `min(⌊(2i + 1)·dst / (2·src)⌋, dst − 1)`; numpy's float64 `(i + 0.5)·(src/dst)` can
//! land one pixel lower where the exact value is an integer (e.g. 2 → 49 at row 24).
//! When the maps are at the original resolution pass [`Letterbox::identity`].
//!
//! Colours follow `panoptic.py` (`colorize`, `default_color`, `instance_boundaries`), blended with
//! the image: void (class 0) keeps the image; other pixels mix the image with the class colour by
//! `opacity` (thing classes shade the colour by instance id, `0.7 + 0.6·frac(id·0.618…)`, clamped
//! to 0..255; the fraction is the exact one of the constant's 32-bit fixed-point part plus its rest
//! in f32, within about 1e-7 of float64 for every u32 id);
//! a non-void pixel whose right or lower neighbour (after mapping) has another (class, instance)
//! is white. Class ids past the palette use its last entry, as `colorize` clips them. Output alpha
//! is 255.

use crate::geometry::Letterbox;
use crate::gpu::{Access, DType, Frame, GpuError, Kernel, Shader, Tensor};
use crate::ops::uniform::{uniform, UniformLayout};
use crate::ops::{groups_for, ELEMENTWISE_WORKGROUP};

pub static SHADER: Shader = Shader { name: "render", source: include_str!("../../shaders/render.wgsl") };

pub static OVERLAY: Kernel = Kernel {
    shader: &SHADER,
    entry: "overlay",
    bindings: &[Access::Read, Access::Read, Access::Read, Access::Read, Access::Read, Access::ReadWrite],
};

pub const SHADERS: &[&Shader] = &[&SHADER];
pub const KERNELS: &[&Kernel] = &[&OVERLAY];
/// The uniform structs of this family (checked against the shaders in tests/engine/shaders.rs).
pub const UNIFORMS: &[UniformLayout] = &[Params::layout(&SHADER, "Params")];

/// `panoptic.py` `default_color`: golden-ratio hue steps, value 0.9, saturation 0.65.
pub fn default_color(class_id: u32) -> [u8; 3] {
    let hue = (class_id as f64 * 0.618033988749895) % 1.0;
    let h6 = hue * 6.0;
    let i = h6 as u32;
    let f = h6 - i as f64;
    let (v, s) = (0.9f64, 0.65f64);
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    let (r, g, b) = match i % 6 {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    };
    [(r * 255.0) as u8, (g * 255.0) as u8, (b * 255.0) as u8]
}

/// Packs RGB colours as the kernel's palette words (byte 0 = R, alpha 255).
pub fn pack_palette(colors: &[[u8; 3]]) -> Vec<u32> {
    colors.iter().map(|&[r, g, b]| u32::from_le_bytes([r, g, b, 255])).collect()
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
        map_h: u32,
        map_w: u32,
        classes: u32,
        pixels: u32,
        opacity: f32,
        outline: u32,
    }
}

/// Nearest index arithmetic `(2i + 1)·dst` with `i < src` must fit in u32.
fn check_nearest(op: &'static str, src: usize, dst: usize) -> Result<(), GpuError> {
    if 2 * src as u64 * dst as u64 > u32::MAX as u64 {
        return Err(GpuError::shape(
            op,
            format!("mapping {src} to {dst} pixels exceeds the kernel's 32-bit arithmetic"),
        ));
    }
    Ok(())
}

/// The overlay of `class` / `instance` (u32 `[Hm, Wm]`, the canvas at mask resolution) on `image`
/// (u32 packed RGBA8 `[orig_h, orig_w]`, see [`crate::ops::ingest::upload_rgba8`]): a new packed
/// RGBA8 u32 tensor `[orig_h, orig_w]`. `palette` (u32 packed RGB(A)8, [`pack_palette`]) and
/// `isthing` (u32 0/1) are indexed by class id and have the same length ≥ 1; `opacity` is in
/// [0, 1].
#[allow(clippy::too_many_arguments)]
pub fn overlay(
    frame: &mut Frame,
    image: &Tensor,
    class: &Tensor,
    instance: &Tensor,
    lb: &Letterbox,
    palette: &Tensor,
    isthing: &Tensor,
    opacity: f32,
    outline: bool,
) -> Result<Tensor, GpuError> {
    const OP: &str = "overlay";
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
    // The sampler's maps carry a batch of one: [1, H, W].
    let (map_h, map_w) = match *class.shape() {
        [h, w] | [1, h, w] => (h, w),
        _ => {
            return Err(GpuError::shape(
                OP,
                format!("class map must be [H, W] or [1, H, W], got {:?}", class.shape()),
            ))
        }
    };
    if class.dtype() != DType::U32
        || instance.dtype() != DType::U32
        || instance.shape() != class.shape()
        || map_h == 0
        || map_w == 0
    {
        return Err(GpuError::shape(
            OP,
            format!(
                "class and instance maps must be non-empty u32 of one shape, got {:?} {:?} and {:?} {:?}",
                class.shape(),
                class.dtype(),
                instance.shape(),
                instance.dtype()
            ),
        ));
    }
    let classes = palette.len();
    if palette.dtype() != DType::U32
        || isthing.dtype() != DType::U32
        || palette.shape().len() != 1
        || isthing.shape() != palette.shape()
        || classes == 0
    {
        return Err(GpuError::shape(
            OP,
            format!(
                "palette and isthing must be u32 [classes ≥ 1], got {:?} and {:?}",
                palette.shape(),
                isthing.shape()
            ),
        ));
    }
    if !(0.0..=1.0).contains(&opacity) {
        return Err(GpuError::shape(OP, format!("opacity {opacity} must be in [0, 1]")));
    }
    check_nearest(OP, lb.orig_h, lb.content_h)?;
    check_nearest(OP, lb.orig_w, lb.content_w)?;
    check_nearest(OP, lb.canvas_h, map_h)?;
    check_nearest(OP, lb.canvas_w, map_w)?;
    let pixels = lb.orig_h as u64 * lb.orig_w as u64;
    if pixels > u32::MAX as u64 || class.len() as u64 > u32::MAX as u64 || classes as u64 > u32::MAX as u64 {
        return Err(GpuError::shape(OP, "sizes exceed the 32-bit index"));
    }
    let out = frame.gpu().tensor(&[lb.orig_h, lb.orig_w], DType::U32)?;
    let p = Params {
        orig_h: lb.orig_h as u32,
        orig_w: lb.orig_w as u32,
        canvas_h: lb.canvas_h as u32,
        canvas_w: lb.canvas_w as u32,
        content_h: lb.content_h as u32,
        content_w: lb.content_w as u32,
        map_h: map_h as u32,
        map_w: map_w as u32,
        classes: classes as u32,
        pixels: pixels as u32,
        opacity,
        outline: outline as u32,
    };
    let groups = frame.gpu().fold_workgroups(groups_for(pixels as usize, ELEMENTWISE_WORKGROUP));
    frame.dispatch(&OVERLAY, &p, &[image, class, instance, palette, isthing, &out], groups);
    Ok(out)
}

/// CPU reference: the same arithmetic as `shaders/render.wgsl`.
pub mod cpu {
    use super::Letterbox;

    /// `0.618033988749895 − 0x9E3779B9 / 2^32`: the golden-ratio constant past its 32-bit
    /// fixed-point part (`PHI_REST` in render.wgsl).
    const PHI_REST: f32 = 1.157_706_2e-10;

    /// The pixel of a `dst`-long axis that pixel `i` of a `src`-long axis maps to (nearest, at
    /// pixel centres, exact integers).
    pub fn nearest(i: usize, src: usize, dst: usize) -> usize {
        ((2 * i + 1) * dst / (2 * src)).min(dst - 1)
    }

    /// The labels at the original resolution (`unletterbox`): `class` / `instance` `[map_h, map_w]`
    /// → `[orig_h, orig_w]` each.
    pub fn unletterbox(
        class: &[u32],
        instance: &[u32],
        map_h: usize,
        map_w: usize,
        lb: &Letterbox,
    ) -> (Vec<u32>, Vec<u32>) {
        let rows: Vec<usize> = (0..lb.orig_h)
            .map(|y| nearest(nearest(y, lb.orig_h, lb.content_h), lb.canvas_h, map_h))
            .collect();
        let cols: Vec<usize> = (0..lb.orig_w)
            .map(|x| nearest(nearest(x, lb.orig_w, lb.content_w), lb.canvas_w, map_w))
            .collect();
        let index = || rows.iter().flat_map(|&r| cols.iter().map(move |&c| r * map_w + c));
        (index().map(|m| class[m]).collect(), index().map(|m| instance[m]).collect())
    }

    /// `panoptic.py` `instance_boundaries`: non-void pixels whose right or lower neighbour has
    /// another (class, instance). Maps `[h, w]`.
    pub fn outlines(class: &[u32], instance: &[u32], h: usize, w: usize) -> Vec<bool> {
        let differs = |a: usize, b: usize| class[a] != class[b] || instance[a] != instance[b];
        (0..h * w)
            .map(|i| {
                let (y, x) = (i / w, i % w);
                class[i] != 0 && ((x + 1 < w && differs(i, i + 1)) || (y + 1 < h && differs(i, i + w)))
            })
            .collect()
    }

    fn rgb(px: u32) -> [f32; 3] {
        [(px & 0xFF) as f32, ((px >> 8) & 0xFF) as f32, ((px >> 16) & 0xFF) as f32]
    }

    /// The overlay as [`super::overlay`]: `image` `[orig_h, orig_w]` packed RGBA8, maps
    /// `[map_h, map_w]`, `palette` / `isthing` per class id → packed RGBA8 `[orig_h, orig_w]`.
    ///
    /// # Panics
    /// If a slice is shorter than its shape, `palette` or `isthing` is empty or shorter than the
    /// other, or `lb` is invalid; the GPU dispatcher returns errors for these instead.
    #[allow(clippy::too_many_arguments)]
    pub fn overlay(
        image: &[u32],
        class: &[u32],
        instance: &[u32],
        map_h: usize,
        map_w: usize,
        lb: &Letterbox,
        palette: &[u32],
        isthing: &[u32],
        opacity: f32,
        outline: bool,
    ) -> Vec<u32> {
        assert!(
            lb.validate().is_ok() && map_h > 0 && map_w > 0,
            "overlay: invalid letterbox {lb:?} or map {map_h}x{map_w}"
        );
        assert!(
            !palette.is_empty() && isthing.len() >= palette.len(),
            "overlay: palette and isthing need ≥ 1 entry each"
        );
        let (cls, inst) = unletterbox(class, instance, map_h, map_w, lb);
        let edges =
            if outline { outlines(&cls, &inst, lb.orig_h, lb.orig_w) } else { vec![false; cls.len()] };
        (0..lb.orig_h * lb.orig_w)
            .map(|i| {
                let (c, id, px) = (cls[i], inst[i], image[i]);
                if c == 0 {
                    return px | 0xFF00_0000;
                }
                if edges[i] {
                    return 0xFFFF_FFFF;
                }
                let k = (c as usize).min(palette.len() - 1);
                let mut color = rgb(palette[k]);
                if isthing[k] != 0 {
                    let frac = (id.wrapping_mul(0x9E37_79B9) >> 8) as f32 * (1.0 / 16_777_216.0)
                        + id as f32 * PHI_REST;
                    let frac = frac - frac.floor();
                    let shade = 0.7 + 0.6 * frac;
                    color = color.map(|v| (v * shade).clamp(0.0, 255.0));
                }
                let img = rgb(px);
                let mut word = 0xFF00_0000u32;
                for (ch, (a, b)) in img.iter().zip(color).enumerate() {
                    let v = (a * (1.0 - opacity) + b * opacity + 0.5).floor().clamp(0.0, 255.0) as u32;
                    word |= v << (8 * ch);
                }
                word
            })
            .collect()
    }
}
