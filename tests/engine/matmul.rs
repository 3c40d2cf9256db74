use crate::common;

use common::{assert_close, gpu, Rand};
use pix2seqd::gpu::Gpu;
use pix2seqd::ops::matmul::{self, cpu, Epilogue};
use pix2seqd::ops::Activation;

const ACTS: [Activation; 5] =
    [Activation::None, Activation::Relu, Activation::Relu6, Activation::Silu, Activation::Gelu];

/// Tolerance. Inputs are uniform in [-1, 1], so a value of C has magnitude about sqrt(K/9) and the
/// f32 rounding of a K-term dot product (GPU and CPU sum in different orders) is about
/// eps·K/4 ≈ 1.5e-8·K in absolute terms. Relative 1e-4 covers every value of ordinary size; the
/// floor 1e-5·sqrt(K) (≈ 3e-5 of a typical |C|, and ≳ 30× the expected rounding) covers values
/// that happen to cancel to near zero, where a relative bound means nothing.
fn tol(k: usize) -> (f32, f32) {
    (1e-4, 1e-5 * (k.max(1) as f32).sqrt())
}

struct Case {
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
    b_shared: bool,
    bias: bool,
    residual: bool,
    act: Activation,
}

fn check(gpu: &Gpu, r: &mut Rand, c: &Case) {
    let Case { batch, m, k, n, b_shared, bias, residual, act } = *c;
    let a = r.vec(batch * m * k, -1.0, 1.0);
    let b = r.vec(if b_shared { k * n } else { batch * k * n }, -1.0, 1.0);
    let bias_v = bias.then(|| r.vec(n, -1.0, 1.0));
    let res_v = residual.then(|| r.vec(batch * m * n, -1.0, 1.0));
    let ta = gpu.upload(&[batch, m, k], &a).unwrap();
    let tb =
        if b_shared { gpu.upload(&[k, n], &b).unwrap() } else { gpu.upload(&[batch, k, n], &b).unwrap() };
    let tbias = bias_v.as_ref().map(|v| gpu.upload(&[n], v).unwrap());
    let tres = res_v.as_ref().map(|v| gpu.upload(&[batch, m, n], v).unwrap());
    let mut f = gpu.frame();
    let tc =
        matmul::matmul(&mut f, &ta, &tb, Epilogue { bias: tbias.as_ref(), act, residual: tres.as_ref() })
            .unwrap();
    f.submit();
    assert_eq!(tc.shape(), [batch, m, n]);
    let got = gpu.read_blocking(&tc).unwrap();
    let want = cpu::matmul(&a, &b, bias_v.as_deref(), res_v.as_deref(), act, batch, m, k, n, b_shared);
    let (rtol, atol) = tol(k);
    let name = format!("matmul b{batch} {m}x{k}x{n} shared={b_shared} bias={bias} res={residual} {act:?}");
    assert_close(&name, &got, &want, rtol, atol);
}

#[test]
fn odd_sizes_every_epilogue() {
    // Sizes that are not multiples of 4 (scalar path) nor of the 64×64 tile.
    let gpu = gpu();
    let mut r = Rand::new("matmul-odd");
    let sizes = [1usize, 3, 17, 67, 130];
    for (i, &m) in sizes.iter().enumerate() {
        for (j, &k) in sizes.iter().enumerate() {
            let n = sizes[(i + 2 * j) % sizes.len()];
            let case = Case {
                batch: 1 + (i + j) % 3,
                m,
                k,
                n,
                b_shared: (i + j) % 2 == 0,
                bias: j % 2 == 0,
                residual: i % 2 == 1,
                act: ACTS[(i + j) % ACTS.len()],
            };
            check(&gpu, &mut r, &case);
        }
    }
}

#[test]
fn vec4_path_edges() {
    // K and N multiples of 4 (vec4 path) but M, N, K not multiples of the tile or the K step.
    let gpu = gpu();
    let mut r = Rand::new("matmul-vec4");
    let shapes = [(1, 4, 4), (3, 20, 8), (67, 68, 132), (130, 36, 68), (65, 512, 4), (17, 4, 260)];
    for (i, &(m, k, n)) in shapes.iter().enumerate() {
        for (bias, residual) in [(false, false), (true, false), (false, true), (true, true)] {
            let case = Case {
                batch: 1 + i % 2,
                m,
                k,
                n,
                b_shared: i % 3 != 0,
                bias,
                residual,
                act: ACTS[i % ACTS.len()],
            };
            check(&gpu, &mut r, &case);
        }
    }
    // Random shapes, both paths.
    for _ in 0..6 {
        let case = Case {
            batch: r.range(1, 3),
            m: r.range(1, 150),
            k: r.range(1, 40) * if r.range(0, 1) == 0 { 4 } else { 1 },
            n: r.range(1, 40) * if r.range(0, 1) == 0 { 4 } else { 1 },
            b_shared: r.range(0, 1) == 0,
            bias: r.range(0, 1) == 0,
            residual: r.range(0, 1) == 0,
            act: ACTS[r.range(0, 4)],
        };
        check(&gpu, &mut r, &case);
    }
}

#[test]
fn square_512() {
    let gpu = gpu();
    let mut r = Rand::new("matmul-512");
    check(
        &gpu,
        &mut r,
        &Case {
            batch: 1,
            m: 512,
            k: 512,
            n: 512,
            b_shared: true,
            bias: true,
            residual: true,
            act: Activation::Gelu,
        },
    );
    // The same size through the scalar path (K odd).
    check(
        &gpu,
        &mut r,
        &Case {
            batch: 1,
            m: 512,
            k: 511,
            n: 512,
            b_shared: true,
            bias: false,
            residual: false,
            act: Activation::None,
        },
    );
}

#[test]
fn linear_with_torch_weights() {
    // Transformer shapes: tokens [2, 65, 256] through a [768, 256] (PyTorch [out, in]) QKV weight,
    // then an output projection with the residual fused.
    let gpu = gpu();
    let mut r = Rand::new("linear");
    let (bt, l, d) = (2, 65, 256);
    let x = r.vec(bt * l * d, -1.0, 1.0);
    let w_torch = r.vec(3 * d * d, -1.0, 1.0);
    let bias = r.vec(3 * d, -1.0, 1.0);
    let w = matmul::linear_weight_from_torch(&w_torch, 3 * d, d);
    let tx = gpu.upload(&[bt, l, d], &x).unwrap();
    let tw = gpu.upload(&[d, 3 * d], &w).unwrap();
    let tbias = gpu.upload(&[3 * d], &bias).unwrap();
    let w2_torch = r.vec(d * 3 * d, -1.0, 1.0);
    let tw2 = gpu.upload(&[3 * d, d], &matmul::linear_weight_from_torch(&w2_torch, d, 3 * d)).unwrap();
    let mut f = gpu.frame();
    let y = matmul::linear(
        &mut f,
        &tx,
        &tw,
        Epilogue { bias: Some(&tbias), act: Activation::Gelu, ..Default::default() },
    )
    .unwrap();
    let z = matmul::linear(&mut f, &y, &tw2, Epilogue { residual: Some(&tx), ..Default::default() }).unwrap();
    f.submit();
    assert_eq!(y.shape(), [bt, l, 3 * d]);
    assert_eq!(z.shape(), [bt, l, d]);
    // Reference straight from the PyTorch layout: y[r, o] = act(sum_i x[r, i] w[o, i] + b[o]).
    let rows = bt * l;
    let mut want_y = vec![0.0f32; rows * 3 * d];
    for row in 0..rows {
        for o in 0..3 * d {
            let s: f32 = (0..d).map(|i| x[row * d + i] * w_torch[o * d + i]).sum();
            want_y[row * 3 * d + o] = Activation::Gelu.apply(s + bias[o]);
        }
    }
    let got_y = gpu.read_blocking(&y).unwrap();
    let (rtol, atol) = tol(d);
    assert_close("linear qkv gelu", &got_y, &want_y, rtol, atol);
    let mut want_z = vec![0.0f32; rows * d];
    for row in 0..rows {
        for o in 0..d {
            let s: f32 = (0..3 * d).map(|i| got_y[row * 3 * d + i] * w2_torch[o * 3 * d + i]).sum();
            want_z[row * d + o] = s + x[row * d + o];
        }
    }
    // y after GELU lies in about [-0.2, 17]; scale the floor by its size.
    let ymax = got_y.iter().fold(0f32, |a, v| a.max(v.abs()));
    let (rtol, atol) = tol(3 * d);
    assert_close("linear proj + residual", &gpu.read_blocking(&z).unwrap(), &want_z, rtol, atol * ymax);
}

#[test]
fn shape_errors_name_the_op() {
    let gpu = gpu();
    let a = gpu.upload(&[2, 3, 4], &[0.0; 24]).unwrap();
    let b = gpu.upload(&[5, 6], &[0.0; 30]).unwrap();
    let w = gpu.upload(&[4, 6], &[0.0; 24]).unwrap();
    let bias = gpu.upload(&[5], &[0.0; 5]).unwrap();
    let mut f = gpu.frame();
    let err = matmul::matmul(&mut f, &a, &b, Epilogue::default()).unwrap_err().to_string();
    assert!(err.starts_with("matmul:"), "{err}");
    let err = matmul::linear(&mut f, &a, &w, Epilogue { bias: Some(&bias), ..Default::default() })
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("linear:") && err.contains("bias"), "{err}");
    let err = matmul::linear(&mut f, &a, &w, Epilogue { residual: Some(&a), ..Default::default() })
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("linear:") && err.contains("residual"), "{err}");
}
