//! Shared test harness: one GPU per test binary (lavapipe in CI), seeded random inputs whose seed
//! is fresh each run and printed (set PIX2SEQD_TEST_SEED to replay), and tolerance checks that
//! print the worst error.
#![allow(dead_code)]

use std::sync::OnceLock;

use pix2seqd::gpu::{Gpu, GpuOptions};

/// The GPU of this test thread. Every test fails (never skips) when no adapter exists: CI installs
/// lavapipe, and a silent skip would hide a broken runtime.
pub fn gpu() -> Gpu {
    Gpu::new_blocking(GpuOptions::default())
        .unwrap_or_else(|e| panic!("GPU tests need an adapter (install mesa-vulkan-drivers): {e}"))
}

/// The run's base seed: PIX2SEQD_TEST_SEED if set, else derived from the clock; printed once.
pub fn base_seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| {
        let seed =
            std::env::var("PIX2SEQD_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        eprintln!("test seed: {seed} (replay with PIX2SEQD_TEST_SEED={seed})");
        seed
    })
}

/// A small deterministic generator (SplitMix64) for test inputs.
pub struct Rand(u64);

impl Rand {
    /// A generator for one test: the run's seed mixed with the test's name.
    pub fn new(test: &str) -> Rand {
        let mut h = base_seed() ^ 0x9E37_79B9_7F4A_7C15;
        for b in test.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x100_0000_01B3);
        }
        Rand(h)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32)
    }

    pub fn vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(lo, hi)).collect()
    }

    /// Uniform integer in [lo, hi].
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }
}

/// Asserts `|got - want| <= atol + rtol * |want|` elementwise and prints the worst errors.
#[track_caller]
pub fn assert_close(name: &str, got: &[f32], want: &[f32], rtol: f32, atol: f32) {
    assert_eq!(got.len(), want.len(), "{name}: length {} vs {}", got.len(), want.len());
    let (mut worst_abs, mut worst_rel, mut worst_i) = (0f32, 0f32, 0usize);
    let mut excess = 0f32;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let abs = (g - w).abs();
        if !(abs.is_finite() || (g.is_nan() && w.is_nan())) {
            panic!("{name}: element {i} is {g}, want {w}");
        }
        let rel = abs / w.abs().max(1e-30);
        let over = abs - (atol + rtol * w.abs());
        if over > excess || (excess == 0.0 && abs > worst_abs) {
            worst_i = i;
        }
        excess = excess.max(over);
        worst_abs = worst_abs.max(abs);
        if w.abs() > atol {
            worst_rel = worst_rel.max(rel);
        }
    }
    eprintln!("{name}: {} values, max abs err {worst_abs:.3e}, max rel err {worst_rel:.3e} (rtol {rtol:.0e}, atol {atol:.0e})", got.len());
    assert!(
        excess <= 0.0,
        "{name}: element {worst_i} is {} but want {} (rtol {rtol}, atol {atol})",
        got[worst_i],
        want[worst_i]
    );
}

/// Pixels where two (class, instance) map pairs agree.
pub fn identical_pixels(class_a: &[u32], inst_a: &[u32], class_b: &[u32], inst_b: &[u32]) -> usize {
    class_a
        .iter()
        .zip(class_b)
        .zip(inst_a.iter().zip(inst_b))
        .filter(|(c, i)| c.0 == c.1 && i.0 == i.1)
        .count()
}
