// The shared noise generator of docs/rng.md: fill a
// tensor with element i = normal(seed, offset + i) (or the raw random_u32(seed, offset + i)).
// One thread per element; more than 65535 workgroups fold into y.
//
// normal_fill evaluates the Box-Muller formula of docs/rng.md, kept accurate where GPU builtins
// are not: WGSL only bounds log's *absolute* error (2^-21) on
// [0.5, 2], and for u1 → 1 the radius sqrt(-2 ln u1) → 0 turns that into a large error
// (d radius = d ln / radius); and cos is only specified on [-π, π]. So:
//   - for u1 > 0.75, ln u1 = 2·atanh(s) with s = -d / (2 - d) and d = 1 - u1 (exact), by its series;
//   - the angle f32(2π·u2) (the same f32 product as the CPU) is reduced by 2π before cos.

struct Params {
    len: u32,     // elements to write
    seed: u32,
    offset: u32,  // counter of element 0 (wraps at 2^32)
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(1) @binding(0) var<storage, read_write> out_f32: array<f32>;
@group(1) @binding(0) var<storage, read_write> out_u32: array<u32>;

// PCG-RXS-M-XS output function; the same code in src/ops/rng.rs and train/pix2seqd_train/rng.py.
fn pcg_hash(x: u32) -> u32 {
    let state = x * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

fn rng_u32(seed: u32, counter: u32) -> u32 {
    return pcg_hash(pcg_hash(counter) ^ pcg_hash(seed ^ 0x9E3779B9u));
}

// ln(uniform_open(u)), accurate to a few f32 ulp relative over the whole range.
fn ln_uniform_open(u: u32) -> f32 {
    let k = u >> 8u;
    let d = f32(16777215u - k) * (1.0 / 16777216.0);  // 1 - u1, exact
    if d < 0.25 {
        // |s| < 1/7: the series 2s(1 + s²/3 + s⁴/5 + …) to s¹² leaves < 1e-12 relative.
        let s = -d / (2.0 - d);
        let s2 = s * s;
        let poly = 1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0 + s2 * (1.0 / 11.0 + s2 * (1.0 / 13.0))))));
        return 2.0 * s * poly;
    }
    return log(f32(k + 1u) * (1.0 / 16777216.0));
}

fn normal_precise(seed: u32, i: u32) -> f32 {
    let radius = sqrt(-2.0 * ln_uniform_open(rng_u32(seed, 2u * i)));
    let u2 = f32(rng_u32(seed, 2u * i + 1u) >> 8u) * (1.0 / 16777216.0);
    let a = 6.283185307179586 * u2;
    // a - 6.28125 is exact for a in [π, 2π) (Sterbenz); the rest of 2π is 0.00193530716933310.
    let r = select(a, (a - 6.28125) - 0.0019353071693331003, a > 3.1415927);
    return radius * cos(r);
}

@compute @workgroup_size(256)
fn normal_fill(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = folded_group(wg, nwg) * 256u + lid;
    if i >= p.len { return; }
    out_f32[i] = normal_precise(p.seed, p.offset + i);
}

@compute @workgroup_size(256)
fn u32_fill(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = folded_group(wg, nwg) * 256u + lid;
    if i >= p.len { return; }
    out_u32[i] = rng_u32(p.seed, p.offset + i);
}
