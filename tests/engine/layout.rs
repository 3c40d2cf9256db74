use crate::common;

use common::{gpu, Rand};
use pix2seqd::ops::layout::{self, cpu};

// Layout ops only move (or add once) f32 values: results must be bit-identical to the CPU.

#[test]
fn concat_and_slice_channels() {
    let gpu = gpu();
    let mut r = Rand::new("concat");
    // (N, H, W, channels of the parts): odd channel counts take the scalar path, multiples of 4
    // the vec4 path; the UNet's [x | skip] and the decoder input [m_t (16) | F (256)].
    let cases: Vec<(usize, usize, usize, Vec<usize>)> = vec![
        (2, 5, 7, vec![3, 37]),
        (1, 9, 11, vec![16, 256]),
        (2, 8, 8, vec![256, 128]),
        (1, 3, 13, vec![4, 5, 8, 1]),
        (r.range(1, 3), r.range(1, 17), r.range(1, 17), vec![r.range(1, 70), r.range(1, 70), r.range(1, 70)]),
    ];
    for (n, h, w, chans) in cases {
        let px = n * h * w;
        let data: Vec<Vec<f32>> = chans.iter().map(|&c| r.vec(px * c, -1.0, 1.0)).collect();
        let ts: Vec<_> =
            data.iter().zip(&chans).map(|(d, &c)| gpu.upload(&[n, h, w, c], d).unwrap()).collect();
        let total: usize = chans.iter().sum();
        let (start, len) = (chans[0] / 2, total - chans[0] / 2 - 1);
        let mut f = gpu.frame();
        let cat = layout::concat_channels(&mut f, &ts.iter().collect::<Vec<_>>()).unwrap();
        let sl = layout::slice_channels(&mut f, &cat, start, len).unwrap();
        f.submit();
        assert_eq!(cat.shape(), [n, h, w, total]);
        let parts: Vec<(&[f32], usize)> = data.iter().zip(&chans).map(|(d, &c)| (&d[..], c)).collect();
        let want = cpu::concat_channels(&parts);
        assert_eq!(gpu.read_blocking(&cat).unwrap(), want, "concat {chans:?}");
        assert_eq!(sl.shape(), [n, h, w, len]);
        assert_eq!(
            gpu.read_blocking(&sl).unwrap(),
            cpu::slice_channels(&want, total, start, len),
            "slice {start}+{len} of {chans:?}"
        );
    }
}

#[test]
fn nearest_upsample_with_and_without_skip() {
    let gpu = gpu();
    let mut r = Rand::new("upsample");
    let cases = [
        (1usize, 5usize, 7usize, 3usize, 2usize, 2usize),
        (2, 4, 3, 37, 2, 2),
        (1, 16, 16, 256, 2, 2), // fusion / UNet up path (vec4)
        (2, 3, 5, 8, 3, 1),
        (1, 2, 2, 12, 4, 4),
        (r.range(1, 3), r.range(1, 9), r.range(1, 9), r.range(1, 40), r.range(1, 4), r.range(1, 4)),
    ];
    for (n, h, w, c, fy, fx) in cases {
        let x = r.vec(n * h * w * c, -2.0, 2.0);
        let skip = r.vec(n * h * fy * w * fx * c, -2.0, 2.0);
        let tx = gpu.upload(&[n, h, w, c], &x).unwrap();
        let ts = gpu.upload(&[n, h * fy, w * fx, c], &skip).unwrap();
        let mut f = gpu.frame();
        let up = layout::upsample_nearest(&mut f, &tx, fy, fx).unwrap();
        let upa = layout::upsample_nearest_add(&mut f, &tx, fy, fx, &ts).unwrap();
        f.submit();
        assert_eq!(up.shape(), [n, h * fy, w * fx, c]);
        let name = format!("{n}x{h}x{w}x{c} by {fy}x{fx}");
        assert_eq!(
            gpu.read_blocking(&up).unwrap(),
            cpu::upsample_nearest(&x, n, h, w, c, fy, fx, None),
            "upsample {name}"
        );
        assert_eq!(
            gpu.read_blocking(&upa).unwrap(),
            cpu::upsample_nearest(&x, n, h, w, c, fy, fx, Some(&skip)),
            "upsample+skip {name}"
        );
    }
}

#[test]
fn upsample_folds_past_65535_workgroups() {
    // 1x256x256x64 -> 512x512x64 = 16.8M elements: 16,384 vec4 groups; the scalar path with C = 65
    // needs 66,560 workgroups of 256 threads, so it folds.
    let gpu = gpu();
    let mut r = Rand::new("upsample-fold");
    let (h, w, c) = (256usize, 256usize, 65usize);
    let x = r.vec(h * w * c, -1.0, 1.0);
    let tx = gpu.upload(&[1, h, w, c], &x).unwrap();
    let mut f = gpu.frame();
    let up = layout::upsample_nearest(&mut f, &tx, 2, 2).unwrap();
    f.submit();
    let got = gpu.read_blocking(&up).unwrap();
    assert_eq!(got, cpu::upsample_nearest(&x, 1, h, w, c, 2, 2, None));
}

#[test]
fn time_token_append_and_drop() {
    let gpu = gpu();
    let mut r = Rand::new("tokens");
    // Bottleneck sizes: 64x64 = 4096 tokens of 512 (paper), 32x32 of 256 (web), 8x8 of 512;
    // odd: 37 tokens of 3 and 13 channels.
    for (n, l, c) in [(1usize, 4096usize, 512usize), (2, 1024, 256), (2, 64, 512), (3, 37, 3), (2, 5, 13)] {
        let x = r.vec(n * l * c, -1.0, 1.0);
        let tok = r.vec(n * c, -1.0, 1.0);
        let pos = r.vec(l * c, -1.0, 1.0);
        let (tx, tt, tp) = (
            gpu.upload(&[n, l, c], &x).unwrap(),
            gpu.upload(&[n, c], &tok).unwrap(),
            gpu.upload(&[l, c], &pos).unwrap(),
        );
        let mut f = gpu.frame();
        let plain = layout::append_token(&mut f, &tx, &tt, None).unwrap();
        let with_pos = layout::append_token(&mut f, &tx, &tt, Some(&tp)).unwrap();
        let dropped = layout::slice_tokens(&mut f, &plain, 0, l).unwrap();
        let last = layout::slice_tokens(&mut f, &with_pos, l, 1).unwrap();
        f.submit();
        assert_eq!(plain.shape(), [n, l + 1, c]);
        assert_eq!(
            gpu.read_blocking(&plain).unwrap(),
            cpu::append_token(&x, &tok, None, n, l, c),
            "append {n}x{l}x{c}"
        );
        let want_pos = cpu::append_token(&x, &tok, Some(&pos), n, l, c);
        assert_eq!(gpu.read_blocking(&with_pos).unwrap(), want_pos, "append+pos {n}x{l}x{c}");
        assert_eq!(gpu.read_blocking(&dropped).unwrap(), x, "drop {n}x{l}x{c}");
        assert_eq!(gpu.read_blocking(&last).unwrap(), tok);
        assert_eq!(cpu::slice_tokens(&want_pos, n, l + 1, c, l, 1), tok);
    }
}

#[test]
fn bad_shapes_are_errors_naming_the_op() {
    let gpu = gpu();
    let a = gpu.upload(&[1, 2, 2, 3], &[0.0; 12]).unwrap();
    let b = gpu.upload(&[1, 2, 3, 3], &[0.0; 18]).unwrap();
    let mut f = gpu.frame();
    let err = layout::concat_channels(&mut f, &[&a, &b]).unwrap_err().to_string();
    assert!(err.starts_with("concat_channels:"), "{err}");
    let err = layout::upsample_nearest_add(&mut f, &a, 2, 2, &b).unwrap_err().to_string();
    assert!(err.starts_with("upsample_nearest_add:"), "{err}");
    let err = layout::slice_tokens(&mut f, &a.reshape(&[1, 4, 3]), 2, 3).unwrap_err().to_string();
    assert!(err.starts_with("slice_tokens:"), "{err}");
}
