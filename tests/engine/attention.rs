use crate::common;

use common::{assert_close, gpu, Rand};
use pix2seqd::gpu::Gpu;
use pix2seqd::ops::attention::{self, cpu};

/// Tolerance. Each output is a convex combination of V rows (|v| ≤ 1 here), so its rounding error
/// is about a few ulp of max|v| whatever the value itself: relative 1e-4 for values of ordinary
/// size, plus an absolute floor of 1e-5·max|v| (≈ 100 ulp of the largest term, well above the f32
/// sums and the exp2-vs-exp differences, ~1e-7) for outputs that average out to near zero — with
/// uniform V over ~1000 keys many outputs are ~0.01, where a purely relative bound is too tight.
const RTOL: f32 = 1e-4;
const ATOL: f32 = 1e-5;

struct Shape {
    batch: usize,
    lq: usize,
    lk: usize,
    heads: usize,
    dh: usize,
}

/// Random q, k, v in [-amp, amp] (v in [-1, 1]).
fn inputs(r: &mut Rand, s: &Shape, amp: f32) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let d = s.heads * s.dh;
    (
        r.vec(s.batch * s.lq * d, -amp, amp),
        r.vec(s.batch * s.lk * d, -amp, amp),
        r.vec(s.batch * s.lk * d, -1.0, 1.0),
    )
}

fn separate(gpu: &Gpu, r: &mut Rand, s: &Shape, amp: f32) {
    let d = s.heads * s.dh;
    let (q, k, v) = inputs(r, s, amp);
    let tq = gpu.upload(&[s.batch, s.lq, d], &q).unwrap();
    let tk = gpu.upload(&[s.batch, s.lk, d], &k).unwrap();
    let tv = gpu.upload(&[s.batch, s.lk, d], &v).unwrap();
    let mut f = gpu.frame();
    let o = attention::attention(&mut f, &tq, &tk, &tv, s.heads).unwrap();
    f.submit();
    assert_eq!(o.shape(), [s.batch, s.lq, d]);
    let want = cpu::attention(&q, &k, &v, s.batch, s.lq, s.lk, s.heads, s.dh);
    let name = format!("attention b{} {}x{} {}x{} amp {amp}", s.batch, s.lq, s.lk, s.heads, s.dh);
    assert_close(&name, &gpu.read_blocking(&o).unwrap(), &want, RTOL, ATOL);
}

/// [rows, a] ++ [rows, b] ++ ... along the channels.
fn concat_channels(parts: &[(&[f32], usize)]) -> Vec<f32> {
    let rows = parts[0].0.len() / parts[0].1;
    (0..rows)
        .flat_map(|r| parts.iter().flat_map(move |(p, c)| p[r * c..(r + 1) * c].iter().copied()))
        .collect()
}

#[test]
fn cross_attention_paper_and_web_shapes() {
    let gpu = gpu();
    let mut r = Rand::new("attention-cross");
    // Paper encoder (16 heads of 32) and decoder (8 heads of 64) at d 512, web d 256 (4 × 64).
    for (heads, dh) in [(16, 32), (8, 64), (4, 64)] {
        for (lq, lk) in [(65, 64), (17, 16)] {
            separate(&gpu, &mut r, &Shape { batch: 2, lq, lk, heads, dh }, 1.0);
        }
    }
    separate(&gpu, &mut r, &Shape { batch: 2, lq: 1025, lk: 1024, heads: 4, dh: 64 }, 1.0);
}

#[test]
fn odd_lengths_and_head_dims() {
    // Lengths around the 64-query block and the 32/64-key blocks and the 8-key chunk; head dims
    // other than 32 and 64.
    let gpu = gpu();
    let mut r = Rand::new("attention-odd");
    for (lq, lk, heads, dh) in [
        (1, 1, 1, 4),
        (3, 5, 2, 8),
        (63, 33, 3, 16),
        (64, 31, 2, 64),
        (129, 97, 1, 32),
        (70, 200, 2, 48),
        (5, 65, 5, 20),
    ] {
        separate(&gpu, &mut r, &Shape { batch: 1 + lq % 2, lq, lk, heads, dh }, 1.0);
    }
}

#[test]
fn large_scores_stay_stable() {
    // Scores up to ±dh·16/sqrt(dh) = ±64 (|q|, |k| ≤ 4): exp without the running maximum
    // would overflow.
    let gpu = gpu();
    let mut r = Rand::new("attention-large");
    separate(&gpu, &mut r, &Shape { batch: 1, lq: 40, lk: 300, heads: 2, dh: 64 }, 4.0);
    separate(&gpu, &mut r, &Shape { batch: 2, lq: 17, lk: 16, heads: 16, dh: 32 }, 4.0);
}

#[test]
fn packed_self_attention() {
    // Self-attention from one fused QKV linear, [q | k | v] along the channels: 65 tokens at the
    // paper's d 512 (16 heads of 32), and 4097 tokens (64² + the time token) with one head of 32 to
    // keep the CPU reference quick.
    let gpu = gpu();
    let mut r = Rand::new("attention-qkv");
    for s in [
        Shape { batch: 2, lq: 65, lk: 65, heads: 16, dh: 32 },
        Shape { batch: 1, lq: 4097, lk: 4097, heads: 1, dh: 32 },
    ] {
        let d = s.heads * s.dh;
        let (q, k, v) = inputs(&mut r, &s, 1.0);
        let qkv = concat_channels(&[(&q, d), (&k, d), (&v, d)]);
        assert_eq!(cpu::split_channels(&qkv, 3, d)[1], k);
        let t = gpu.upload(&[s.batch, s.lq, 3 * d], &qkv).unwrap();
        let mut f = gpu.frame();
        let o = attention::attention_qkv(&mut f, &t, s.heads).unwrap();
        f.submit();
        assert_eq!(o.shape(), [s.batch, s.lq, d]);
        let want = cpu::attention(&q, &k, &v, s.batch, s.lq, s.lk, s.heads, s.dh);
        assert_close(
            &format!("attention_qkv b{} L{} {}x{}", s.batch, s.lq, s.heads, s.dh),
            &gpu.read_blocking(&o).unwrap(),
            &want,
            RTOL,
            ATOL,
        );
    }
}

#[test]
fn packed_cross_attention() {
    // Cross-attention with K/V of the context from one fused linear, [k | v] along the channels.
    let gpu = gpu();
    let mut r = Rand::new("attention-q-kv");
    for s in [
        Shape { batch: 2, lq: 17, lk: 16, heads: 8, dh: 64 },
        Shape { batch: 1, lq: 1025, lk: 1024, heads: 2, dh: 32 },
    ] {
        let d = s.heads * s.dh;
        let (q, k, v) = inputs(&mut r, &s, 1.0);
        let kv = concat_channels(&[(&k, d), (&v, d)]);
        let tq = gpu.upload(&[s.batch, s.lq, d], &q).unwrap();
        let tkv = gpu.upload(&[s.batch, s.lk, 2 * d], &kv).unwrap();
        let mut f = gpu.frame();
        let o = attention::attention_q_kv(&mut f, &tq, &tkv, s.heads).unwrap();
        f.submit();
        let want = cpu::attention(&q, &k, &v, s.batch, s.lq, s.lk, s.heads, s.dh);
        assert_close(
            &format!("attention_q_kv b{} {}x{} {}x{}", s.batch, s.lq, s.lk, s.heads, s.dh),
            &gpu.read_blocking(&o).unwrap(),
            &want,
            RTOL,
            ATOL,
        );
    }
}

#[test]
fn shape_errors_name_the_op() {
    let gpu = gpu();
    let q = gpu.upload(&[1, 2, 8], &[0.0; 16]).unwrap();
    let k = gpu.upload(&[1, 3, 8], &[0.0; 24]).unwrap();
    let v = gpu.upload(&[1, 4, 8], &[0.0; 32]).unwrap();
    let mut f = gpu.frame();
    let err = attention::attention(&mut f, &q, &k, &v, 2).unwrap_err().to_string();
    assert!(err.starts_with("attention:"), "{err}");
    let err = attention::attention(&mut f, &q, &k, &k, 3).unwrap_err().to_string();
    assert!(err.starts_with("attention:") && err.contains("heads"), "{err}");
    let err = attention::attention(&mut f, &q, &k, &k, 4).unwrap_err().to_string(); // dh 2
    assert!(err.starts_with("attention:") && err.contains("head dim"), "{err}");
    let err = attention::attention_qkv(&mut f, &q, 1).unwrap_err().to_string();
    assert!(err.starts_with("attention_qkv:"), "{err}");
    let err = attention::attention_q_kv(&mut f, &q, &k, 1).unwrap_err().to_string();
    assert!(err.starts_with("attention_q_kv:"), "{err}");
}
