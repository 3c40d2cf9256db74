use crate::common;

use common::{gpu, Rand};
use pix2seqd::geometry::Letterbox;
use pix2seqd::ops::ingest::{self, cpu, PAD_VALUE};

fn random_rgba(r: &mut Rand, h: usize, w: usize) -> Vec<u8> {
    (0..h * w * 4).map(|_| r.next_u64() as u8).collect()
}

/// Worst |a - b|, printed.
fn worst_abs(name: &str, got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len(), "{name}: length");
    let worst = got.iter().zip(want).map(|(g, w)| (g - w).abs()).fold(0f32, f32::max);
    eprintln!("{name}: {} values, max abs err {worst:.3e}", got.len());
    worst
}

#[test]
fn letterbox_fit_matches_the_training_geometry() {
    // From train/: letterbox_geometry(h, w, (ch, cw)).resized_hw(h, w), e.g.
    //   python3 -c "from pix2seqd_train.data.common import letterbox_geometry as g; print(g(4, 5, (2, 3)).resized_hw(4, 5))"
    for ((h, w, ch, cw), (rh, rw)) in [
        ((1080, 1920, 512, 512), (288, 512)),
        ((37, 53, 32, 32), (22, 32)),
        ((4, 5, 2, 3), (2, 2)), // 2.5 rounds half to even
        ((1, 1000, 64, 64), (1, 64)),
        ((700, 300, 96, 128), (96, 41)),
        ((300, 700, 96, 128), (55, 128)),
        ((3, 3, 512, 512), (512, 512)),
        ((480, 640, 512, 512), (384, 512)),
    ] {
        let lb = Letterbox::fit(h, w, ch, cw).unwrap();
        assert_eq!((lb.content_h, lb.content_w), (rh, rw), "fit {h}x{w} into {ch}x{cw}");
        assert_eq!((lb.orig_h, lb.orig_w, lb.canvas_h, lb.canvas_w), (h, w, ch, cw));
    }
    for (h, w, ch, cw) in [(0, 5, 8, 8), (5, 0, 8, 8), (5, 5, 0, 8), (5, 5, 8, 0)] {
        let err = Letterbox::fit(h, w, ch, cw).unwrap_err().to_string();
        assert!(err.starts_with("letterbox:"), "{err}");
    }
}

#[test]
fn cpu_resize_matches_pil_bilinear_within_one_step() {
    // PIL resizes in two passes with uint8 rounding after each; we round nowhere, so each value
    // may differ from PIL's by half a step per rounding: at most 1/255 (plus PIL's 22-bit weights).
    //
    // python3 -c "
    // import numpy as np; from PIL import Image
    // a = (np.arange(4*5*3, dtype=np.uint32).reshape(4, 5, 3) * 37 % 256).astype(np.uint8)
    // print(np.asarray(Image.fromarray(a).resize((3, 2), Image.BILINEAR)).flatten().tolist())
    // b = (np.arange(2*3*3, dtype=np.uint32).reshape(2, 3, 3) * 91 % 256).astype(np.uint8)
    // print(np.asarray(Image.fromarray(b).resize((4, 5), Image.BILINEAR)).flatten().tolist())
    // c = (np.arange(3*11*3, dtype=np.uint32).reshape(3, 11, 3) * 53 % 256).astype(np.uint8)
    // print(np.asarray(Image.fromarray(c).resize((2, 3), Image.BILINEAR)).flatten().tolist())"
    #[rustfmt::skip]
    let a: [u8; 60] = [
        0, 37, 74, 111, 148, 185, 222, 3, 40, 77, 114, 151, 188, 225, 6, 43, 80, 117, 154, 191, 228, 9, 46, 83, 120, 157, 194,
        231, 12, 49, 86, 123, 160, 197, 234, 15, 52, 89, 126, 163, 200, 237, 18, 55, 92, 129, 166, 203, 240, 21, 58, 95, 132,
        169, 206, 243, 24, 61, 98, 135,
    ];
    #[rustfmt::skip]
    let pil_a: [u8; 18] = [79, 116, 137, 115, 91, 120, 150, 124, 99, 146, 136, 126, 121, 134, 122, 113, 129, 119];
    let b: [u8; 18] = [0, 91, 182, 17, 108, 199, 34, 125, 216, 51, 142, 233, 68, 159, 250, 85, 176, 11];
    #[rustfmt::skip]
    let pil_b: [u8; 60] = [
        0, 91, 182, 11, 102, 193, 23, 114, 205, 34, 125, 216, 5, 96, 187, 16, 107, 198, 28, 119, 201, 39, 130, 196, 26, 117, 208,
        37, 128, 219, 49, 140, 183, 60, 151, 114, 46, 137, 228, 57, 148, 239, 69, 160, 164, 80, 171, 31, 51, 142, 233, 62, 153,
        244, 74, 165, 160, 85, 176, 11,
    ];
    let c: Vec<u8> = (0..3 * 11 * 3u32).map(|i| (i * 53 % 256) as u8).collect();
    let pil_c: [u8; 18] =
        [113, 120, 115, 139, 135, 110, 128, 123, 130, 123, 99, 145, 135, 138, 133, 111, 133, 109];
    assert_eq!(a.to_vec(), (0..60u32).map(|i| (i * 37 % 256) as u8).collect::<Vec<_>>());
    assert_eq!(b.to_vec(), (0..18u32).map(|i| (i * 91 % 256) as u8).collect::<Vec<_>>());

    let rgba = |rgb: &[u8]| -> Vec<u8> { rgb.chunks(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect() };
    let mut worst = 0f32;
    for (name, rgb, (h, w), (oh, ow), pil) in [
        ("4x5 -> 2x3", &a[..], (4, 5), (2, 3), &pil_a[..]),
        ("2x3 -> 5x4", &b[..], (2, 3), (5, 4), &pil_b[..]),
        ("3x11 -> 3x2", &c[..], (3, 11), (3, 2), &pil_c[..]),
    ] {
        // Content = the PIL size; one extra canvas row and column must be padding.
        let lb = Letterbox {
            orig_h: h,
            orig_w: w,
            canvas_h: oh + 1,
            canvas_w: ow + 1,
            content_h: oh,
            content_w: ow,
        };
        let got = cpu::ingest(&rgba(rgb), &lb, 1.0, 0.0);
        for y in 0..oh + 1 {
            for x in 0..ow + 1 {
                for ch in 0..3 {
                    let g = got[(y * (ow + 1) + x) * 3 + ch];
                    if y < oh && x < ow {
                        let err = (g * 255.0 - pil[(y * ow + x) * 3 + ch] as f32).abs();
                        assert!(
                            err <= 1.001,
                            "{name}: ({y}, {x}, {ch}) = {} vs PIL {}",
                            g * 255.0,
                            pil[(y * ow + x) * 3 + ch]
                        );
                        worst = worst.max(err);
                    } else {
                        assert_eq!(g, PAD_VALUE, "{name}: padding at ({y}, {x})");
                    }
                }
            }
        }
    }
    eprintln!("cpu ingest vs PIL: worst error {worst:.3} / 255");
}

#[test]
fn ingest_matches_cpu_on_resizes_and_paddings() {
    let gpu = gpu();
    let mut r = Rand::new("ingest");
    let fit = |h, w, ch, cw| Letterbox::fit(h, w, ch, cw).unwrap();
    let cases = [
        fit(300, 700, 96, 128), // large downscale (x5.5), wide
        fit(700, 300, 96, 128), // large downscale, tall: padding on the right
        fit(5, 7, 64, 64),      // upscale
        fit(37, 53, 32, 32),    // odd sizes
        fit(1, 1, 8, 8),        // one pixel, upscaled
        fit(1, 1000, 64, 64),   // one row
        fit(13, 1, 9, 5),
        Letterbox { orig_h: 9, orig_w: 9, canvas_h: 3, canvas_w: 4, content_h: 1, content_w: 1 }, // down to one pixel
        Letterbox { orig_h: 19, orig_w: 23, canvas_h: 19, canvas_w: 30, content_h: 19, content_w: 11 }, // one axis unscaled
        fit(r.range(1, 200), r.range(1, 200), r.range(1, 96), r.range(1, 96)),
    ];
    let mut worst = 0f32;
    for (k, lb) in cases.iter().enumerate() {
        let (alpha, beta) = if k % 2 == 0 { (1.0, 0.0) } else { (1.0 / 0.226, -0.449 / 0.226) };
        let rgba = random_rgba(&mut r, lb.orig_h, lb.orig_w);
        let image = ingest::upload_rgba8(&gpu, lb.orig_w, lb.orig_h, &rgba).unwrap();
        let mut f = gpu.frame();
        let x = ingest::ingest(&mut f, &image, lb, alpha, beta).unwrap();
        f.submit();
        assert_eq!(x.shape(), [1, lb.canvas_h, lb.canvas_w, 3]);
        let got = gpu.read_blocking(&x).unwrap();
        let want = cpu::ingest(&rgba, lb, alpha, beta);
        let name = format!(
            "{}x{} -> {}x{} in {}x{}",
            lb.orig_h, lb.orig_w, lb.content_h, lb.content_w, lb.canvas_h, lb.canvas_w
        );
        let err = worst_abs(&name, &got, &want);
        assert!(err <= 1e-5, "{name}: max abs err {err}");
        worst = worst.max(err);
        // The padding is exactly PAD_VALUE·alpha + beta.
        if lb.content_w < lb.canvas_w {
            let pad = PAD_VALUE * alpha + beta;
            assert!((want[(lb.canvas_w - 1) * 3] - pad).abs() <= 1e-6, "{name}: padding");
        }
    }
    eprintln!("ingest GPU vs CPU: worst abs err {worst:.3e}");
}

#[test]
fn unscaled_image_is_exactly_bytes_over_255() {
    let gpu = gpu();
    let mut r = Rand::new("ingest-identity");
    for lb in [
        Letterbox::identity(17, 23),
        Letterbox::identity(1, 1),
        Letterbox { orig_h: 30, orig_w: 20, canvas_h: 32, canvas_w: 32, content_h: 30, content_w: 20 },
    ] {
        let rgba = random_rgba(&mut r, lb.orig_h, lb.orig_w);
        let image = ingest::upload_rgba8(&gpu, lb.orig_w, lb.orig_h, &rgba).unwrap();
        let mut f = gpu.frame();
        let x = ingest::ingest(&mut f, &image, &lb, 1.0, 0.0).unwrap();
        f.submit();
        let got = gpu.read_blocking(&x).unwrap();
        let mut want = vec![PAD_VALUE; lb.canvas_h * lb.canvas_w * 3];
        for y in 0..lb.orig_h {
            for xx in 0..lb.orig_w {
                for c in 0..3 {
                    want[(y * lb.canvas_w + xx) * 3 + c] = rgba[(y * lb.orig_w + xx) * 4 + c] as f32 / 255.0;
                }
            }
        }
        assert_eq!(cpu::ingest(&rgba, &lb, 1.0, 0.0), want, "cpu {lb:?}");
        assert_eq!(got, want, "gpu {lb:?}");
    }
}

#[test]
fn bad_inputs_are_errors_naming_the_op() {
    let gpu = gpu();
    let err = ingest::upload_rgba8(&gpu, 3, 2, &[0u8; 23]).unwrap_err().to_string();
    assert!(err.starts_with("upload_rgba8:"), "{err}");
    let err = ingest::upload_rgba8(&gpu, usize::MAX, 2, &[0u8; 8]).unwrap_err().to_string();
    assert!(err.starts_with("upload_rgba8:"), "{err}");
    let image = ingest::upload_rgba8(&gpu, 3, 2, &[0u8; 24]).unwrap();
    assert_eq!(image.shape(), [2, 3]);
    let mut f = gpu.frame();
    let lb = Letterbox::fit(3, 2, 8, 8).unwrap(); // transposed: the image is 2x3
    let err = ingest::ingest(&mut f, &image, &lb, 1.0, 0.0).unwrap_err().to_string();
    assert!(err.starts_with("ingest:"), "{err}");
    let bad = Letterbox { orig_h: 2, orig_w: 3, canvas_h: 4, canvas_w: 4, content_h: 5, content_w: 4 };
    let err = ingest::ingest(&mut f, &image, &bad, 1.0, 0.0).unwrap_err().to_string();
    assert!(err.starts_with("ingest:"), "{err}");
    assert!(bad.validate().is_err());
    let floats = gpu.upload(&[2, 3], &[0.0; 6]).unwrap();
    let err = ingest::ingest(&mut f, &floats, &Letterbox::identity(2, 3), 1.0, 0.0).unwrap_err().to_string();
    assert!(err.starts_with("ingest:"), "{err}");
    let err =
        ingest::ingest(&mut f, &image, &Letterbox::identity(2, 3), f32::NAN, 0.0).unwrap_err().to_string();
    assert!(err.starts_with("ingest:"), "{err}");
    assert!(f.is_empty());
}
