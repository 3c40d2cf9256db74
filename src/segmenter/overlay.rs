//! Overlays drawn on the CPU (the render kernel's twin): the CLI's PNGs and the page's CPU path.

use super::{DrawStyle, Image};
use crate::error::Error;
use crate::geometry::Letterbox;
use crate::ops::{ingest, render};
use crate::panoptic::PanopticMap;

/// The overlay of a panoptic map on `image` (RGBA8) with any class colours (`palette[c]`,
/// `isthing[c]` per class id): for maps in classes other than a model's, such as DAVIS's
/// class-free object masks. The overlay has the map's size, which is the image's or smaller (an
/// output capped by [`SegmentOptions::max_output_side`]: the image is then sampled at the map's
/// pixel centres).
pub fn overlay_rgba_with(
    image: Image<'_>,
    p: &PanopticMap,
    palette: &[[u8; 3]],
    isthing: &[bool],
    style: DrawStyle,
) -> Result<Vec<u8>, Error> {
    if p.height == 0 || p.width == 0 || p.height > image.height || p.width > image.width {
        return Err(Error::Image {
            name: format!("{}x{}", image.width, image.height),
            detail: format!(
                "the segmentation is {}x{}: it must be non-empty and at most the image's size",
                p.width, p.height
            ),
        });
    }
    if palette.is_empty()
        || palette.len() != isthing.len()
        || p.class.iter().any(|&c| c as usize >= palette.len())
    {
        return Err(Error::Image {
            name: format!("{}x{}", image.width, image.height),
            detail: format!("the map's classes do not fit the {} colours given", palette.len()),
        });
    }
    let palette = render::pack_palette(palette);
    let isthing: Vec<u32> = isthing.iter().map(|&t| t as u32).collect();
    let words = ingest::pack_rgba8(image.rgba);
    let words = if (p.height, p.width) == (image.height, image.width) {
        words
    } else {
        let pick = render::cpu::nearest;
        (0..p.height * p.width)
            .map(|k| {
                words[pick(k / p.width, p.height, image.height) * image.width
                    + pick(k % p.width, p.width, image.width)]
            })
            .collect()
    };
    let lb = Letterbox::identity(p.height, p.width);
    let overlay = render::cpu::overlay(
        &words,
        &p.class,
        &p.instance,
        p.height,
        p.width,
        &lb,
        &palette,
        &isthing,
        style.opacity,
        style.outline,
    );
    Ok(bytemuck::cast_slice(&overlay).to_vec())
}
