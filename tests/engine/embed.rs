use crate::common;

use common::{assert_close, gpu, Rand};
use pix2seqd::ops::embed::{self, cpu};

#[test]
fn cpu_codes_follow_the_spec_formula() {
    // Spot checks of the layout against the closed form, in f64.
    let (h, w, d) = (3usize, 5usize, 8usize);
    let code = cpu::position_code_2d(h, w, d);
    for (i, j) in [(0, 0), (1, 3), (2, 4)] {
        let (py, px) = (i as f64 / 2.0 * 6.2831852, j as f64 / 4.0 * 6.2831852);
        let row = &code[(i * w + j) * d..(i * w + j + 1) * d];
        // each axis: dim 4, ω = [1, 10000^(-2/4) = 0.01]
        let want = [
            py.sin(),
            (py * 0.01).sin(),
            py.cos(),
            (py * 0.01).cos(),
            px.sin(),
            (px * 0.01).sin(),
            px.cos(),
            (px * 0.01).cos(),
        ];
        for (g, w) in row.iter().zip(want) {
            assert!((*g as f64 - w).abs() < 1e-6, "{row:?} vs {want:?}");
        }
    }
    let e = cpu::scalar_embedding(&[0.5], 1000.0, 6);
    let w = [1.0f64, 10000f64.powf(-2.0 / 6.0), 10000f64.powf(-4.0 / 6.0)];
    let want: Vec<f64> =
        w.iter().map(|w| (500.0 * w).sin()).chain(w.iter().map(|w| (500.0 * w).cos())).collect();
    for (g, w) in e.iter().zip(&want) {
        assert!((*g as f64 - w).abs() < 2e-4, "{e:?} vs {want:?}");
    }
}

#[test]
fn position_code_matches_cpu() {
    let gpu = gpu();
    let mut r = Rand::new("pos2d");
    // Real sizes: 64x64 tokens of d 512 (paper) / 256 (web), 32x32, 8x8; odd grids and dims
    // (d/4 odd), and the one-row / one-column degenerate grids.
    let mut cases = vec![
        (64usize, 64usize, 512usize),
        (64, 64, 256),
        (32, 32, 256),
        (8, 8, 512),
        (7, 13, 12),
        (1, 9, 6),
        (5, 1, 10),
    ];
    cases.push((r.range(2, 40), r.range(2, 40), 4 * (2 * r.range(1, 20) + 1)));
    for (h, w, d) in cases {
        let mut f = gpu.frame();
        let t = embed::position_code_2d(&mut f, h, w, d).unwrap();
        f.submit();
        assert_eq!(t.shape(), [h * w, d]);
        // Angles ≤ 2π: sin/cos and the GPU's exp2-based ω agree to ~1e-6 absolute.
        assert_close(
            &format!("pos2d {h}x{w} d{d}"),
            &gpu.read_blocking(&t).unwrap(),
            &cpu::position_code_2d(h, w, d),
            0.0,
            1e-5,
        );
    }
}

#[test]
fn scalar_embedding_matches_cpu() {
    let gpu = gpu();
    let mut r = Rand::new("scalar-emb");
    for (scale, dim) in [(1.0f32, 128usize), (1000.0, 128), (1000.0, 6), (1.0, 2 * (2 * r.range(1, 40) + 1))]
    {
        let n = r.range(1, 5);
        // γ over [0, 1], including the schedule's extremes.
        let mut values = r.vec(n, 0.0, 1.0);
        values[0] = 0.999_999_9;
        let mut f = gpu.frame();
        let tv = gpu.upload(&[n], &values).unwrap();
        let a = embed::scalar_embedding(&mut f, values[0], scale, 3, dim).unwrap();
        let b = embed::scalar_embedding_tensor(&mut f, &tv, scale, dim).unwrap();
        f.submit();
        // Angles reach γ·scale; a few-ulp difference of ω (GPU exp2 vs CPU powf) moves an angle of
        // 1000 by up to ~1e-4, so the absolute tolerance scales with the largest angle.
        let atol = 1e-5f32.max(scale * 2e-7);
        let want_a = cpu::scalar_embedding(&[values[0]; 3], scale, dim);
        assert_close(
            &format!("scalar uniform scale {scale} d{dim}"),
            &gpu.read_blocking(&a).unwrap(),
            &want_a,
            0.0,
            atol,
        );
        assert_close(
            &format!("scalar tensor scale {scale} d{dim} n{n}"),
            &gpu.read_blocking(&b).unwrap(),
            &cpu::scalar_embedding(&values, scale, dim),
            0.0,
            atol,
        );
    }
}

#[test]
fn bad_dims_are_errors_naming_the_op() {
    let gpu = gpu();
    let mut f = gpu.frame();
    let err = embed::position_code_2d(&mut f, 4, 4, 6).unwrap_err().to_string();
    assert!(err.starts_with("position_code_2d:"), "{err}");
    let err = embed::scalar_embedding(&mut f, 0.5, 1.0, 1, 7).unwrap_err().to_string();
    assert!(err.starts_with("scalar_embedding:"), "{err}");
}
