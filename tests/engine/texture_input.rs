//! Frames that are already on the GPU (a texture, as `copy_external_image_to_texture` leaves a
//! webcam frame in the browser) go through the same pipeline as RGBA bytes, with the same result.

use crate::common;

use common::{gpu, Rand};
use pix2seqd::ops::ingest::pack_rgba8;
use pix2seqd::{wgpu, BackendKind, Image, Pixels, Segmenter};

fn write_texture(gpu: &pix2seqd::Gpu, width: u32, height: u32, rgba: &[u8]) -> wgpu::Texture {
    let texture = gpu.rgba_texture(width, height);
    gpu.queue().write_texture(
        texture.as_image_copy(),
        rgba,
        wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(4 * width), rows_per_image: None },
        texture.size(),
    );
    texture
}

#[test]
fn a_texture_is_copied_into_packed_rgba_words_before_the_pass() {
    let gpu = gpu();
    let mut r = Rand::new("texture_in");
    let (w, h) = (128u32, 5u32);
    let rgba: Vec<u8> = (0..w * h * 4).map(|_| r.range(0, 256) as u8).collect();
    let texture = write_texture(&gpu, w, h, &rgba);
    let mut f = gpu.frame();
    let t = f.copy_texture_in(&texture).unwrap();
    f.submit();
    assert_eq!(t.shape(), [h as usize, w as usize]);
    assert_eq!(gpu.read_u32_blocking(&t).unwrap(), pack_rgba8(&rgba));
}

#[test]
fn widths_that_break_row_alignment_are_refused_clearly() {
    let gpu = gpu();
    let texture = gpu.rgba_texture(100, 4);
    let err = gpu.frame().copy_texture_in(&texture).unwrap_err().to_string();
    assert!(err.contains("multiple of 64") && err.contains("100x4"), "{err}");
}

#[test]
fn segmenting_a_texture_equals_segmenting_its_bytes() {
    let mut seg = Segmenter::from_path(
        std::path::Path::new("tests/fixtures/tiny-efficientnet/model"),
        BackendKind::Gpu,
    )
    .unwrap();
    let mut r = Rand::new("texture_segment");
    let (w, h) = (64usize, 40usize);
    let rgba: Vec<u8> = (0..w * h * 4).map(|_| r.range(0, 256) as u8).collect();
    let opts = seg.default_options();
    let from_bytes = seg.segment_blocking(Image::new(w, h, &rgba).unwrap(), &opts).unwrap();
    let gpu = seg.gpu().unwrap();
    let texture = write_texture(gpu, w as u32, h as u32, &rgba);
    let from_texture = pollster::block_on(seg.segment(Pixels::Texture(&texture), &opts)).unwrap();
    assert_eq!(from_texture.mask.class, from_bytes.mask.class);
    assert_eq!(from_texture.mask.instance, from_bytes.mask.instance);
    assert_eq!(from_texture.segment_ids, from_bytes.segment_ids);
    // The CPU engine has no GPU textures: a clear error, not a panic.
    let mut cpu = Segmenter::from_path(
        std::path::Path::new("tests/fixtures/tiny-efficientnet/model"),
        BackendKind::Cpu,
    )
    .unwrap();
    let err = pollster::block_on(cpu.segment(Pixels::Texture(&texture), &opts)).unwrap_err().to_string();
    assert!(err.contains("CPU engine"), "{err}");
}
