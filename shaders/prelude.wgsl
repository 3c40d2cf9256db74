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
