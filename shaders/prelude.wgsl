// Prelude: prepended to every shader of shaders/ (see src/gpu/kernel.rs). Helpers only, no bindings.

// Flat workgroup index of a dispatch folded into x and y (more than 65535 workgroups).
fn folded_group(wg: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wg.x + wg.y * nwg.x;
}

// Activation codes shared with src/ops/mod.rs `Activation`.
const ACT_NONE: u32 = 0u;
const ACT_RELU: u32 = 1u;
const ACT_RELU6: u32 = 2u;
const ACT_SILU: u32 = 3u;
const ACT_GELU: u32 = 4u;

// erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7); WGSL has no erf. The CPU twin is
// `ops::erf` in Rust, the same formula.
fn erf_approx(x: f32) -> f32 {
    let s = sign(x);
    let a = abs(x);
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-a * a);
    return s * y;
}

fn activate(x: f32, act: u32) -> f32 {
    switch act {
        case 1u: { return max(x, 0.0); }
        case 2u: { return clamp(x, 0.0, 6.0); }
        case 3u: { return x / (1.0 + exp(-x)); }
        case 4u: { return 0.5 * x * (1.0 + erf_approx(x * 0.70710678118654752)); }
        default: { return x; }
    }
}

// The shared noise generator, defined in docs/rng.md (same code in src/ops/rng.rs and
// train/pix2seqd_train/rng.py).
fn pcg_hash(x: u32) -> u32 {
    let state = x * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

fn rng_u32(seed: u32, counter: u32) -> u32 {
    return pcg_hash(pcg_hash(counter) ^ pcg_hash(seed ^ 0x9E3779B9u));
}

fn rng_normal(seed: u32, i: u32) -> f32 {
    let u1 = f32((rng_u32(seed, 2u * i) >> 8u) + 1u) * (1.0 / 16777216.0);
    let u2 = f32(rng_u32(seed, 2u * i + 1u) >> 8u) * (1.0 / 16777216.0);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
