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
//! Colours: void (class 0) keeps the image; stuff, and things without an instance id, take the
//! class colour (`panoptic.py` `default_color` unless the card names colours); each thing
//! instance takes [`segment_color`]: a colour derived from the instance id alone (stable while
//! streaming keeps the id), tinted by its class. It departs from `panoptic.py` `colorize`, which
//! only shades the class colour by id (nine people in nine shades of one red): the page's users
//! expect a colour per instance. The colour is mixed with the image by `opacity`;
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

/// The value and the minimum channel of [`hue_color`]'s colours.
const HUE_MAX: u32 = 235;
const HUE_MIN: u32 = 60;

/// A saturated colour at hue `frac(id·0.618…)` (the top 16 bits of `id·0x9E3779B9`), by an
/// integer HSV → RGB at value 235 and minimum channel 60: consecutive ids land far apart on the
/// colour wheel. Integer arithmetic only, so `shaders/render.wgsl` computes the same bytes.
pub fn hue_color(id: u32) -> [u8; 3] {
    let h6 = (id.wrapping_mul(0x9E37_79B9) >> 16) * 6;
    let f = h6 & 0xFFFF;
    let rise = HUE_MIN + (((HUE_MAX - HUE_MIN) * f) >> 16);
    let fall = HUE_MAX - (((HUE_MAX - HUE_MIN) * f) >> 16);
    let (r, g, b) = match h6 >> 16 {
        0 => (HUE_MAX, rise, HUE_MIN),
        1 => (fall, HUE_MAX, HUE_MIN),
        2 => (HUE_MIN, HUE_MAX, rise),
        3 => (HUE_MIN, fall, HUE_MAX),
        4 => (rise, HUE_MIN, HUE_MAX),
        _ => (HUE_MAX, HUE_MIN, fall),
    };
    [r as u8, g as u8, b as u8]
}

/// The colour a segment is drawn in: the class colour for stuff and for things without an
/// instance id (0), else `(3·class + 5·hue_color(instance) + 4) / 8` per channel: the
/// instance's own colour, tinted by its class. The page reports it as each segment's `color`.
pub fn segment_color(class_color: [u8; 3], is_thing: bool, instance: u32) -> [u8; 3] {
    if !is_thing || instance == 0 {
        return class_color;
    }
    let hue = hue_color(instance);
    // ≤ (3·255 + 5·255 + 4) / 8 = 255: fits a byte.
    std::array::from_fn(|c| ((3 * class_color[c] as u32 + 5 * hue[c] as u32 + 4) >> 3) as u8)
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
    use super::{segment_color, Letterbox};

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
                let [r, g, b, _] = palette[k].to_le_bytes();
                let color = segment_color([r, g, b], isthing[k] != 0, id).map(f32::from);
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
