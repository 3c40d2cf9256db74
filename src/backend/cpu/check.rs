//! The fast CPU kernels against their plain twins (`ops::*::cpu`, the test oracle) on odd shapes,
//! batch > 1, strides, asymmetric padding and every epilogue. `cargo test` runs it natively; the
//! browser tests run it in the page's wasm (`cpuSelfCheck`), so the SIMD build is checked where it
//! runs.

use super::attention::{self, Rows};
use super::gemm::{self, RowEpilogue};
use super::{conv, norm};
use crate::ops::conv::Geometry;
use crate::ops::{attention as attention_ops, conv as conv_ops, matmul, norm as norm_ops, Activation};

/// Values in [-1, 1) that differ per index and seed.
fn pattern(n: usize, seed: usize) -> Vec<f32> {
    (0..n).map(|i| (((i + seed) * 2_654_435_761) % 2001) as f32 / 1000.0 - 1.0).collect()
}

fn compare(what: &str, fast: &[f32], plain: &[f32]) -> Result<(), String> {
    if fast.len() != plain.len() {
        return Err(format!("{what}: {} values, the plain twin gives {}", fast.len(), plain.len()));
    }
    // NaN is never within tolerance.
    let within = |f: f32, p: f32| (f - p).abs() <= 1e-4 * (1.0 + p.abs());
    match fast.iter().zip(plain).position(|(f, p)| !within(*f, *p)) {
        None => Ok(()),
        Some(i) => Err(format!("{what}: value {i} is {}, the plain twin gives {}", fast[i], plain[i])),
    }
}

/// Input shapes, windows and geometries: odd sizes, batch 2 and 3, 1×1 and k×k, strides,
/// TF-"same" (asymmetric) padding.
fn geometries() -> Vec<([usize; 4], (usize, usize), Geometry)> {
    let tf_same = Geometry { stride_h: 2, stride_w: 2, pad_top: 0, pad_left: 0, pad_bottom: 1, pad_right: 1 };
    vec![
        ([2, 7, 9, 5], (3, 3), Geometry::symmetric(1, 1)),
        ([1, 13, 11, 3], (3, 3), tf_same),
        ([2, 6, 5, 8], (1, 1), Geometry::valid(1)),
        ([1, 9, 10, 4], (1, 1), Geometry::valid(2)),
        ([1, 11, 8, 6], (5, 5), Geometry::symmetric(2, 2)),
        ([3, 1, 1, 2], (1, 1), Geometry::valid(1)),
        ([1, 40, 33, 17], (3, 3), Geometry::symmetric(1, 1)),
    ]
}

fn convs() -> Result<usize, String> {
    let mut cases = 0;
    for (xs, (kh, kw), geom) in geometries() {
        for (cout, act, with_residual, scale) in
            [(7, Activation::Silu, true, 0.5), (1, Activation::None, false, 1.0)]
        {
            let ws = [kh, kw, xs[3], cout];
            let (x, w, bias) =
                (pattern(xs.iter().product(), 1), pattern(ws.iter().product(), 2), pattern(cout, 3));
            let (oh, ow) =
                geom.output_size((xs[1], xs[2]), (kh, kw)).ok_or("a check geometry has no output")?;
            let residual = pattern(xs[0] * oh * ow * cout, 4);
            let residual = with_residual.then_some(residual.as_slice());
            let fast =
                conv::conv2d(&x, xs, &w, ws, &geom, &RowEpilogue::conv(Some(&bias), residual, act, scale));
            let twin = conv_ops::cpu::Epilogue { bias: Some(&bias), act, residual, scale };
            compare(
                &format!("conv2d {xs:?} {ws:?}"),
                &fast,
                &conv_ops::cpu::conv2d(&x, xs, &w, ws, &geom, &twin),
            )?;

            let (w, bias) = (pattern(kh * kw * xs[3], 5), pattern(xs[3], 6));
            let bias = with_residual.then_some(bias.as_slice());
            let fast = conv::depthwise_conv2d(&x, xs, &w, (kh, kw), bias, &geom, act);
            let twin = conv_ops::cpu::depthwise_conv2d(&x, xs, &w, (kh, kw), bias, &geom, act);
            compare(&format!("depthwise {xs:?} {kh}x{kw}"), &fast, &twin)?;
            cases += 2;
        }
    }
    Ok(cases)
}

fn linears() -> Result<usize, String> {
    let shapes = [(1, 1, 1), (2, 256, 37), (7, 13, 5), (193, 33, 71), (300, 0, 4), (64, 256, 768)];
    for (rows, k, n) in shapes {
        let (x, w, b, r) = (pattern(rows * k, 1), pattern(k * n, 2), pattern(n, 3), pattern(rows * n, 4));
        let fast =
            gemm::linear(&x, rows, k, &w, n, &RowEpilogue::linear(Some(&b), Some(&r), Activation::Gelu));
        let plain = matmul::cpu::matmul(&x, &w, Some(&b), Some(&r), Activation::Gelu, 1, rows, k, n, true);
        compare(&format!("linear {rows}x{k}x{n}"), &fast, &plain)?;
    }
    Ok(shapes.len())
}

fn attentions() -> Result<usize, String> {
    let shapes = [(1, 1, 1, 1, 1), (2, 7, 7, 3, 5), (1, 193, 193, 4, 16), (2, 9, 31, 2, 8)];
    for (batch, lq, lk, heads, dh) in shapes {
        let d = heads * dh;
        // q on its own, k and v packed as `[k | v]`: both ways the backend reads them.
        let (q, kv) = (pattern(batch * lq * d, 1), pattern(batch * lk * 2 * d, 2));
        let parts = attention_ops::cpu::split_channels(&kv, 2, d);
        let plain = attention_ops::cpu::attention(&q, &parts[0], &parts[1], batch, lq, lk, heads, dh);
        let packed = |offset| Rows { data: &kv, offset, row_stride: 2 * d };
        let q_rows = Rows { data: &q, offset: 0, row_stride: d };
        let shape = attention::Shape { batch, lq, lk, heads, dh };
        let fast = attention::attention(q_rows, packed(0), packed(d), &shape);
        compare(&format!("attention {batch}x{lq}x{lk} {heads}x{dh}"), &fast, &plain)?;
    }
    Ok(shapes.len())
}

fn group_norms() -> Result<usize, String> {
    let mut cases = 0;
    for (n, rows, c, groups) in [(1, 1, 4, 2), (2, 37, 12, 3), (1, 3072, 64, 32), (3, 5, 8, 8)] {
        let x = pattern(n * rows * c, 1);
        let (gamma, beta, ss) = (pattern(c, 2), pattern(c, 3), pattern(n * 2 * c, 4));
        for (ss, act) in [(Some(ss.as_slice()), Activation::Silu), (None, Activation::None)] {
            let layer = norm::GroupNorm { groups, gamma: &gamma, beta: &beta, eps: 1e-5, act };
            let fast = norm::group_norm(&x, n, c, &layer, ss);
            let plain = norm_ops::cpu::group_norm(&x, n, c, groups, &gamma, &beta, 1e-5, ss, act);
            compare(&format!("group_norm {n}x{rows}x{c} / {groups}"), &fast, &plain)?;
            cases += 1;
        }
    }
    let x: Vec<f32> = pattern(101, 9).iter().map(|v| v * 8.0).collect();
    for act in [Activation::None, Activation::Relu, Activation::Relu6, Activation::Silu, Activation::Gelu] {
        let mut fast = x.clone();
        norm::activate(act, &mut fast);
        let plain: Vec<f32> = x.iter().map(|v| act.apply(*v)).collect();
        compare(&format!("activation {act:?}"), &fast, &plain)?;
        cases += 1;
    }
    Ok(cases + exps()?)
}

/// The vectorisable `exp` against `f32::exp` from underflow to overflow.
fn exps() -> Result<usize, String> {
    for i in -2000..=2000 {
        let x = i as f32 * 0.0449;
        let (fast, libm) = (norm::exp(x), x.exp());
        let both_tiny = libm < 1e-37 && fast < 1e-37;
        let both_infinite = libm.is_infinite() && fast.is_infinite();
        if !((fast - libm).abs() <= 1e-6 * libm || both_tiny || both_infinite) {
            return Err(format!("exp({x}) is {fast}, f32::exp gives {libm}"));
        }
    }
    Ok(1)
}

/// Runs every comparison; the number of cases, or the first mismatch in one sentence.
pub fn self_check() -> Result<usize, String> {
    Ok(convs()? + linears()? + attentions()? + group_norms()?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_fast_kernels_match_their_plain_twins() {
        let cases = super::self_check().unwrap();
        assert!(cases >= 40, "{cases} cases");
    }
}
