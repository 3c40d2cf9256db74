use crate::common;

use std::time::Instant;

use common::{assert_close, gpu, Rand};
use pix2seqd::ops::norm::{self, cpu};
use pix2seqd::ops::Activation;

// Tolerances: the CPU reference accumulates in f64; the GPU merges f32 partial statistics (pivot
// shifted, Chan merges) and normalises in f32, so outputs of O(1) agree to a few 1e-6.
// rtol 1e-4 with an absolute floor of 1e-5, also for inputs with a large common offset (the
// kernels work relative to a pivot taken from the data, so the offset's ulp never enters).

#[allow(clippy::too_many_arguments)]
fn check_gn(
    gpu: &pix2seqd::gpu::Gpu,
    r: &mut Rand,
    n: usize,
    h: usize,
    w: usize,
    c: usize,
    groups: usize,
    film: bool,
    act: Activation,
    offset: f32,
) -> f32 {
    let x: Vec<f32> = r.vec(n * h * w * c, -2.0, 2.0).into_iter().map(|v| v + offset).collect();
    let gamma = r.vec(c, 0.5, 1.5);
    let beta = r.vec(c, -0.5, 0.5);
    let ss = r.vec(n * 2 * c, -0.5, 0.5);
    let tx = gpu.upload(&[n, h, w, c], &x).unwrap();
    let (tg, tb, tss) = (
        gpu.upload(&[c], &gamma).unwrap(),
        gpu.upload(&[c], &beta).unwrap(),
        gpu.upload(&[n, 2 * c], &ss).unwrap(),
    );
    let mut f = gpu.frame();
    let y = if film {
        norm::group_norm_film(&mut f, &tx, &tg, &tb, groups, 1e-5, &tss, act).unwrap()
    } else {
        norm::group_norm(&mut f, &tx, &tg, &tb, groups, 1e-5, act).unwrap()
    };
    f.submit();
    let got = gpu.read_blocking(&y).unwrap();
    let want = cpu::group_norm(&x, n, c, groups, &gamma, &beta, 1e-5, film.then_some(&ss[..]), act);
    let atol = 1e-5;
    let name = format!("gn {n}x{h}x{w}x{c} G{groups} film {film} {act:?} offset {offset}");
    assert_close(&name, &got, &want, 1e-4, atol);
    got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max)
}

#[test]
fn group_norm_odd_sizes() {
    let gpu = gpu();
    let mut r = Rand::new("gn-odd");
    for (n, h, w, c, g, film, act) in [
        (1usize, 5usize, 7usize, 3usize, 1usize, false, Activation::None),
        (2, 9, 11, 37, 1, true, Activation::Silu),
        (2, 13, 3, 64, 8, false, Activation::Silu),
        (1, 17, 19, 96, 32, true, Activation::Silu), // 3 channels per group, vec4 apply
        (2, 6, 5, 300, 3, true, Activation::Gelu),   // > 256 channels: two channel blocks, groups across them
        (2, 4, 5, 520, 2, true, Activation::Silu),   // 260 channels per group, three channel blocks
        (1, 1, 1, 8, 2, false, Activation::Relu),    // one pixel
        (3, r.range(1, 20), r.range(1, 20), 4 * r.range(1, 20), 4, true, Activation::Silu),
    ] {
        check_gn(&gpu, &mut r, n, h, w, c, g, film, act, 0.0);
    }
}

#[test]
fn group_norm_is_robust_to_a_large_mean() {
    let gpu = gpu();
    let mut r = Rand::new("gn-offset");
    check_gn(&gpu, &mut r, 2, 33, 31, 32, 8, true, Activation::None, 300.0);
    check_gn(&gpu, &mut r, 1, 64, 64, 37, 1, false, Activation::None, -1000.0);
    check_gn(&gpu, &mut r, 1, 16, 16, 260, 4, false, Activation::None, 5000.0);
}

#[test]
fn group_norm_real_sizes() {
    let gpu = gpu();
    let mut r = Rand::new("gn-real");
    // TransUNet levels: 128x128x64 with 16 groups; 128x128x256 with 32 groups (the FiLM + SiLU of a
    // ResBlock); 512x512x128 (COCO mask resolution, exactly the 128 MiB binding limit) with 32.
    let t = Instant::now();
    let e1 = check_gn(&gpu, &mut r, 1, 128, 128, 64, 16, false, Activation::Silu, 0.0);
    let e2 = check_gn(&gpu, &mut r, 1, 128, 128, 256, 32, true, Activation::Silu, 0.0);
    eprintln!("128x128 cases: {:.2?}, max abs err {e1:.2e}, {e2:.2e}", t.elapsed());
    let t = Instant::now();
    let e3 = check_gn(&gpu, &mut r, 1, 512, 512, 128, 32, true, Activation::Silu, 0.5);
    eprintln!("512x512x128: {:.2?}, max abs err {e3:.2e}", t.elapsed());
}

#[test]
fn layer_norm_rows() {
    let gpu = gpu();
    let mut r = Rand::new("ln");
    // 4096 + 1 tokens of d 512 (paper) and 256 (web), batch 2; 1024 + 1 and 64 + 1 tokens; odd
    // d (scalar path: 3, 37, 130) and d = 1000 (several vec4 per thread).
    for (shape, offset) in [
        (vec![4097usize, 512usize], 0.0f32),
        (vec![2, 4097, 256], 0.0),
        (vec![1025, 512], 10.0),
        (vec![2, 65, 256], 0.0),
        (vec![7, 3], 0.0),
        (vec![3, 11, 37], 100.0),
        (vec![5, 130], 0.0),
        (vec![9, 1000], 0.0),
    ] {
        let d = *shape.last().unwrap();
        let len: usize = shape.iter().product();
        let x: Vec<f32> = r.vec(len, -3.0, 3.0).into_iter().map(|v| v + offset).collect();
        let gamma = r.vec(d, 0.5, 1.5);
        let beta = r.vec(d, -0.5, 0.5);
        let tx = gpu.upload(&shape, &x).unwrap();
        let (tg, tb) = (gpu.upload(&[d], &gamma).unwrap(), gpu.upload(&[d], &beta).unwrap());
        let mut f = gpu.frame();
        let y = norm::layer_norm(&mut f, &tx, &tg, &tb, 1e-6, Activation::None).unwrap();
        let z = norm::layer_norm(&mut f, &tx, &tg, &tb, 1e-6, Activation::Gelu).unwrap();
        f.submit();
        assert_eq!(y.shape(), &shape[..]);
        let atol = 1e-5;
        assert_close(
            &format!("ln {shape:?} offset {offset}"),
            &gpu.read_blocking(&y).unwrap(),
            &cpu::layer_norm(&x, d, &gamma, &beta, 1e-6, Activation::None),
            1e-4,
            atol,
        );
        assert_close(
            &format!("ln+gelu {shape:?}"),
            &gpu.read_blocking(&z).unwrap(),
            &cpu::layer_norm(&x, d, &gamma, &beta, 1e-6, Activation::Gelu),
            1e-4,
            atol,
        );
    }
}

#[test]
fn bad_shapes_are_errors_naming_the_op() {
    let gpu = gpu();
    let x = gpu.upload(&[1, 2, 2, 6], &[0.0; 24]).unwrap();
    let g = gpu.upload(&[6], &[1.0; 6]).unwrap();
    let g5 = gpu.upload(&[5], &[1.0; 5]).unwrap();
    let mut f = gpu.frame();
    let err = norm::group_norm(&mut f, &x, &g, &g, 4, 1e-5, Activation::None).unwrap_err().to_string();
    assert!(err.starts_with("group_norm:"), "{err}");
    let err =
        norm::group_norm_film(&mut f, &x, &g, &g, 2, 1e-5, &g, Activation::Silu).unwrap_err().to_string();
    assert!(err.starts_with("group_norm_film:"), "{err}");
    let err = norm::layer_norm(&mut f, &x, &g5, &g, 1e-6, Activation::None).unwrap_err().to_string();
    assert!(err.starts_with("layer_norm:"), "{err}");
    assert_eq!((norm::default_groups(128), norm::default_groups(64), norm::default_groups(3)), (32, 16, 1));
}

#[test]
fn chained_norms_in_one_frame_reuse_pooled_scratch_safely() {
    // Each GN returns its partials / coefficients to the pool while the frame is still recording;
    // the next GN of the same frame takes the same buffers. Dispatch order must keep it correct.
    let gpu = gpu();
    let mut r = Rand::new("gn-chain");
    let (n, h, w, c, g) = (2usize, 24usize, 20usize, 64usize, 16usize);
    let x = r.vec(n * h * w * c, -2.0, 2.0);
    let (g1, b1, g2, b2) = (r.vec(c, 0.5, 1.5), r.vec(c, -0.5, 0.5), r.vec(c, 0.5, 1.5), r.vec(c, -0.5, 0.5));
    let ss = r.vec(n * 2 * c, -0.5, 0.5);
    let up = |v: &[f32], s: &[usize]| gpu.upload(s, v).unwrap();
    let (tx, tg1, tb1, tg2, tb2, tss) = (
        up(&x, &[n, h, w, c]),
        up(&g1, &[c]),
        up(&b1, &[c]),
        up(&g2, &[c]),
        up(&b2, &[c]),
        up(&ss, &[n, 2 * c]),
    );
    let mut f = gpu.frame();
    let y1 = norm::group_norm(&mut f, &tx, &tg1, &tb1, g, 1e-5, Activation::Silu).unwrap();
    let y2 = norm::group_norm_film(&mut f, &y1, &tg2, &tb2, g, 1e-5, &tss, Activation::Silu).unwrap();
    let y3 = norm::layer_norm(&mut f, &y2, &tg1, &tb1, 1e-6, Activation::None).unwrap();
    f.submit();
    let w1 = cpu::group_norm(&x, n, c, g, &g1, &b1, 1e-5, None, Activation::Silu);
    let w2 = cpu::group_norm(&w1, n, c, g, &g2, &b2, 1e-5, Some(&ss), Activation::Silu);
    let w3 = cpu::layer_norm(&w2, c, &g1, &b1, 1e-6, Activation::None);
    assert_close("chain gn", &gpu.read_blocking(&y2).unwrap(), &w2, 1e-4, 1e-5);
    assert_close("chain ln", &gpu.read_blocking(&y3).unwrap(), &w3, 1e-4, 1e-5);
}
