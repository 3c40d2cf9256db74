// Sin-cos codes (spec §2.1, §2.4), one thread per output element.
//
// The 1-D code of dim d for a coordinate c is [sin(c·ω_0 .. c·ω_{d/2-1}), cos(c·ω_0 ..)] with
// ω_j = 1 / 10000^(2j/d) (concatenated, not interleaved). The 2-D code of an H×W grid of dim D puts
// the y code (dim D/2, coordinate i/(H-1)·2π) in the first half and the x code in the second; a
// grid with one row or one column gets the 1-D code (dim D) of its flat index.
//
// Angles are reduced to [-π, π] here (Cody-Waite, 2π in three parts) before sin/cos: WGSL only
// bounds sin/cos error on [-π, π], and the time embedding's angles reach γ·time_scaling = 1000.

struct Params {
    rows: u32,     // N (1-D) or H·W (2-D)
    dim: u32,      // D
    height: u32,   // 2-D only
    width: u32,    // 2-D only
    value: f32,    // scalar_uniform: the scalar (γ)
    scale: f32,    // multiplier (time_scaling)
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(1) @binding(0) var<storage, read_write> out: array<f32>;
// scalar_tensor binds its scalars first and its output second.
@group(1) @binding(0) var<storage, read> xs: array<f32>;
@group(1) @binding(1) var<storage, read_write> out_t: array<f32>;

const POS_MAX: f32 = 6.2831852;       // coordinate of the last grid row/column (train/ layers.py)
const LOG2_10000: f32 = 13.287712379549449;

fn reduced_angle(a: f32) -> f32 {
    let k = round(a * 0.15915494309189535);
    return ((a - k * 6.28125) - k * 0.0019353071693331003) - k * 1.0253131677018246e-11;
}

// Element k (0 ≤ k < 2·(dim/2)) of the 1-D code of `coord` with `dim` channels.
fn code_1d(coord: f32, k: u32, dim: u32) -> f32 {
    let half = dim / 2u;
    let j = select(k - half, k, k < half);
    let omega = 1.0 / exp2(f32(2u * j) / f32(dim) * LOG2_10000);
    let r = reduced_angle(coord * omega);
    return select(cos(r), sin(r), k < half);
}

fn normalized(i: u32, len: u32) -> f32 {
    return f32(i) / f32(max(len, 2u) - 1u) * POS_MAX;
}

@compute @workgroup_size(256)
fn scalar_uniform(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = folded_group(wg, nwg) * 256u + lid;
    if i >= p.rows * p.dim { return; }
    out[i] = code_1d(p.value * p.scale, i % p.dim, p.dim);
}

@compute @workgroup_size(256)
fn scalar_tensor(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = folded_group(wg, nwg) * 256u + lid;
    if i >= p.rows * p.dim { return; }
    out_t[i] = code_1d(xs[i / p.dim] * p.scale, i % p.dim, p.dim);
}

@compute @workgroup_size(256)
fn position_2d(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = folded_group(wg, nwg) * 256u + lid;
    if i >= p.rows * p.dim { return; }
    let pixel = i / p.dim;
    let k = i % p.dim;
    if p.height == 1u || p.width == 1u {
        out[i] = code_1d(normalized(pixel, p.rows), k, p.dim);
        return;
    }
    let half = p.dim / 2u;
    if k < half {
        out[i] = code_1d(normalized(pixel / p.width, p.height), k, half);
    } else {
        out[i] = code_1d(normalized(pixel % p.width, p.width), k - half, half);
    }
}
