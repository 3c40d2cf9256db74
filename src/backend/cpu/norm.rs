//! Normalisation and activations for the CPU backend. GroupNorm folds its statistics, γ, β and
//! the ResBlock's FiLM into one per-channel `y = act(x · a + b)` pass, run over row tiles on all
//! threads; statistics are per-channel sums in f64 (two passes, as the plain twin), combined per
//! group.

use super::par;
use crate::ops::Activation;

/// `act` applied to every value, the match hoisted out of the loop so each arm vectorises (SiLU
/// and GELU with [`exp`]).
pub fn activate(act: Activation, xs: &mut [f32]) {
    match act {
        Activation::None => {}
        Activation::Relu => xs.iter_mut().for_each(|v| *v = v.max(0.0)),
        Activation::Relu6 => xs.iter_mut().for_each(|v| *v = v.clamp(0.0, 6.0)),
        Activation::Silu => xs.iter_mut().for_each(|v| *v /= 1.0 + exp(-*v)),
        Activation::Gelu => xs.iter_mut().for_each(|v| *v = gelu(*v)),
    }
}

/// GELU with the twin's erf (Abramowitz & Stegun 7.1.26, as `ops::erf` and the shaders), its
/// `exp` the vectorisable one.
#[inline]
fn gelu(x: f32) -> f32 {
    let z = x * std::f32::consts::FRAC_1_SQRT_2;
    let a = z.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = (((1.061_405_4 * t - 1.453_152) * t + 1.421_413_7) * t - 0.284_496_74) * t + 0.254_829_6;
    let erf = (1.0 - poly * t * exp(-a * a)).copysign(z);
    0.5 * x * (1.0 + erf)
}

/// `e^x` in plain arithmetic that the compiler vectorises (libm's `expf` is a call per value):
/// `2^n · p(r)` with `x = n·ln 2 + r`, |r| ≤ ln2/2, and a degree-6 polynomial: relative error
/// below 1e-6 (checked in `check.rs`), +inf past 88.7 as `expf`, and about 1e-38 below -87.5
/// where `expf` goes subnormal (harmless for SiLU and softmax, the two users).
#[inline]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Round to nearest by adding and subtracting 1.5·2^23 (no rounding instruction needed).
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.5, 88.75);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // 2^n as an f32 built from its exponent bits, in two halves so n up to 128 does not overflow
    // the exponent field.
    let half = (n as i32) >> 1;
    let scale = |e: i32| f32::from_bits(((e + 127) as u32) << 23);
    p * scale(half) * scale(n as i32 - half)
}

/// Per-channel sums over the rows of `x` `[rows, c]`: `Σ (v - centre[ch])^power` in f64, power 1
/// or 2.
fn channel_sums(x: &[f32], centre: &[f64], power: i32) -> Vec<f64> {
    let mut sums = vec![0f64; centre.len()];
    for row in x.chunks_exact(centre.len()) {
        for ((s, &v), m) in sums.iter_mut().zip(row).zip(centre) {
            let d = v as f64 - m;
            *s += if power == 1 { d } else { d * d };
        }
    }
    sums
}

/// Sums channels into their groups of `c / groups` consecutive channels.
fn per_group(sums: &[f64], groups: usize) -> Vec<f64> {
    let cg = sums.len() / groups;
    sums.chunks_exact(cg).map(|g| g.iter().sum()).collect()
}

/// A GroupNorm layer: `groups` groups, per-channel `gamma` and `beta`, then `act`.
#[derive(Clone, Copy, Debug)]
pub struct GroupNorm<'a> {
    pub groups: usize,
    pub gamma: &'a [f32],
    pub beta: &'a [f32],
    pub eps: f32,
    pub act: Activation,
}

/// GroupNorm of `x` `[N, R, C]` flattened, with the ResBlock's `(1 + scale)·y + shift` when
/// `scale_shift` `[N, 2C]` is given; the same result as `ops::norm::cpu::group_norm` up to float
/// rounding.
pub fn group_norm(x: &[f32], n: usize, c: usize, layer: &GroupNorm, scale_shift: Option<&[f32]>) -> Vec<f32> {
    let GroupNorm { groups, gamma, beta, eps, act } = *layer;
    let mut y = vec![0.0f32; x.len()];
    let per = x.len() / n.max(1);
    if per == 0 || c == 0 {
        return y;
    }
    let cg = c / groups;
    let count = (per / groups) as f64;
    for (b, (xb, yb)) in x.chunks_exact(per).zip(y.chunks_exact_mut(per)).enumerate() {
        let mean: Vec<f64> =
            per_group(&channel_sums(xb, &vec![0.0; c], 1), groups).iter().map(|s| s / count).collect();
        let channel_mean: Vec<f64> = (0..c).map(|ch| mean[ch / cg]).collect();
        let var = per_group(&channel_sums(xb, &channel_mean, 2), groups);
        // y = act(x · a + b) per channel.
        let (mut a, mut shift) = (vec![0f32; c], vec![0f32; c]);
        for ch in 0..c {
            let g = ch / cg;
            let rstd = 1.0 / (var[g] / count + eps as f64).sqrt();
            let (film_scale, film_shift) =
                scale_shift.map_or((1.0, 0.0), |ss| (1.0 + ss[b * 2 * c + ch], ss[b * 2 * c + c + ch]));
            a[ch] = (rstd as f32) * gamma[ch] * film_scale;
            shift[ch] = (beta[ch] - (mean[g] * rstd) as f32 * gamma[ch]) * film_scale + film_shift;
        }
        let rows = par::tile_rows(per / c, c, 16 * 1024);
        par::for_each_chunk(yb, rows * c, |t, out| {
            let src = &xb[t * rows * c..][..out.len()];
            for (out_row, src_row) in out.chunks_exact_mut(c).zip(src.chunks_exact(c)) {
                for (((o, &v), &a), &s) in out_row.iter_mut().zip(src_row).zip(&a).zip(&shift) {
                    *o = v * a + s;
                }
            }
            activate(act, out);
        });
    }
    y
}
