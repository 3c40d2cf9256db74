// Window ops over channels-last tensors: depthwise conv2d (groups = C) and max-pool.
//
//   x  [N, H, W, C]
//   w  [KH, KW, C]            (depthwise weights, channels last)
//   y  [N, OH, OW, C]
//
// One thread computes 4 horizontally adjacent output pixels of one group of channels (4 channels
// in the vec4 entry points, used when C % 4 == 0; 1 channel in the scalar ones), so each weight
// is loaded once per 4 outputs. Consecutive threads take consecutive channel groups, so a warp's
// loads of x are contiguous. Depthwise convs are memory-bound (9 or 25 FMAs per loaded input
// pixel at most); neighbouring threads' overlapping windows are served by the caches.
// Padding cells read as zero for the conv and are ignored by the max-pool (as PyTorch does).

struct Params {
    n: u32,
    h: u32,
    w: u32,
    c: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    stride_h: u32,
    stride_w: u32,
    pad_top: u32,
    pad_left: u32,
    groups: u32,     // channel groups: C / 4 (vec4) or C (scalar)
    ow_blocks: u32,  // ceil(OW / 4)
    threads: u32,    // N * OH * ow_blocks * groups
    act: u32,
    flags: u32,      // bit 0: bias
}

const OWT: u32 = 4u;  // output pixels per thread along W
const FLAG_BIAS: u32 = 1u;

@group(0) @binding(0) var<uniform> p: Params;

@group(1) @binding(0) var<storage, read> x: array<f32>;
@group(1) @binding(0) var<storage, read> x4: array<vec4<f32>>;
@group(1) @binding(1) var<storage, read> wt: array<f32>;
@group(1) @binding(1) var<storage, read> wt4: array<vec4<f32>>;
@group(1) @binding(2) var<storage, read> bias: array<f32>;
@group(1) @binding(2) var<storage, read> bias4: array<vec4<f32>>;
@group(1) @binding(3) var<storage, read_write> y: array<f32>;
@group(1) @binding(3) var<storage, read_write> y4: array<vec4<f32>>;

// Max-pool binds only x and y.
@group(1) @binding(1) var<storage, read_write> pool_y: array<f32>;
@group(1) @binding(1) var<storage, read_write> pool_y4: array<vec4<f32>>;

struct Job {
    valid: bool,
    nb: u32,
    oh: u32,
    ow0: u32,
    cg: u32,
}

fn job_of(t: u32) -> Job {
    if t >= p.threads {
        return Job(false, 0u, 0u, 0u, 0u);
    }
    let cg = t % p.groups;
    let r = t / p.groups;
    let ob = r % p.ow_blocks;
    let r2 = r / p.ow_blocks;
    return Job(true, r2 / p.oh, r2 % p.oh, ob * OWT, cg);
}

fn act4(v: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(activate(v.x, p.act), activate(v.y, p.act), activate(v.z, p.act), activate(v.w, p.act));
}

@compute @workgroup_size(256)
fn depthwise_vec4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let j = job_of(folded_group(wg, nwg) * 256u + lid);
    if !j.valid {
        return;
    }
    var acc = array<vec4<f32>, 4>();
    let iw0 = i32(j.ow0 * p.stride_w) - i32(p.pad_left);
    for (var kh = 0u; kh < p.kh; kh++) {
        let ih = i32(j.oh * p.stride_h + kh) - i32(p.pad_top);
        if ih < 0 || ih >= i32(p.h) {
            continue;
        }
        let row = (j.nb * p.h + u32(ih)) * p.w;
        for (var kw = 0u; kw < p.kw; kw++) {
            let wv = wt4[(kh * p.kw + kw) * p.groups + j.cg];
            for (var o = 0u; o < OWT; o++) {
                let iw = iw0 + i32(o * p.stride_w + kw);
                if iw >= 0 && iw < i32(p.w) {
                    acc[o] = fma(x4[(row + u32(iw)) * p.groups + j.cg], wv, acc[o]);
                }
            }
        }
    }
    var b = vec4<f32>(0.0);
    if (p.flags & FLAG_BIAS) != 0u {
        b = bias4[j.cg];
    }
    let out_row = (j.nb * p.oh + j.oh) * p.ow;
    for (var o = 0u; o < OWT; o++) {
        if j.ow0 + o < p.ow {
            y4[(out_row + j.ow0 + o) * p.groups + j.cg] = act4(acc[o] + b);
        }
    }
}

@compute @workgroup_size(256)
fn depthwise_scalar(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let j = job_of(folded_group(wg, nwg) * 256u + lid);
    if !j.valid {
        return;
    }
    var acc = vec4<f32>(0.0);
    let iw0 = i32(j.ow0 * p.stride_w) - i32(p.pad_left);
    for (var kh = 0u; kh < p.kh; kh++) {
        let ih = i32(j.oh * p.stride_h + kh) - i32(p.pad_top);
        if ih < 0 || ih >= i32(p.h) {
            continue;
        }
        let row = (j.nb * p.h + u32(ih)) * p.w;
        for (var kw = 0u; kw < p.kw; kw++) {
            let wv = wt[(kh * p.kw + kw) * p.c + j.cg];
            for (var o = 0u; o < OWT; o++) {
                let iw = iw0 + i32(o * p.stride_w + kw);
                if iw >= 0 && iw < i32(p.w) {
                    acc[o] = fma(x[(row + u32(iw)) * p.c + j.cg], wv, acc[o]);
                }
            }
        }
    }
    var b = 0.0;
    if (p.flags & FLAG_BIAS) != 0u {
        b = bias[j.cg];
    }
    let out_row = (j.nb * p.oh + j.oh) * p.ow;
    for (var o = 0u; o < OWT; o++) {
        if j.ow0 + o < p.ow {
            y[(out_row + j.ow0 + o) * p.c + j.cg] = activate(acc[o] + b, p.act);
        }
    }
}

// The lowest finite f32 stands for -inf, the identity of max: WGSL has no infinities, and Tint
// (Chromium) rejects even `bitcast<f32>(0xff800000u)` because it folds it to a constant -inf.
// Every pooling window holds at least one input (padding < kernel), so the result is exact.
fn neg_inf() -> f32 {
    return -0x1.fffffep+127f;
}

@compute @workgroup_size(256)
fn max_pool_vec4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let j = job_of(folded_group(wg, nwg) * 256u + lid);
    if !j.valid {
        return;
    }
    var acc = array<vec4<f32>, 4>(vec4<f32>(neg_inf()), vec4<f32>(neg_inf()), vec4<f32>(neg_inf()), vec4<f32>(neg_inf()));
    let iw0 = i32(j.ow0 * p.stride_w) - i32(p.pad_left);
    for (var kh = 0u; kh < p.kh; kh++) {
        let ih = i32(j.oh * p.stride_h + kh) - i32(p.pad_top);
        if ih < 0 || ih >= i32(p.h) {
            continue;
        }
        let row = (j.nb * p.h + u32(ih)) * p.w;
        for (var kw = 0u; kw < p.kw; kw++) {
            for (var o = 0u; o < OWT; o++) {
                let iw = iw0 + i32(o * p.stride_w + kw);
                if iw >= 0 && iw < i32(p.w) {
                    acc[o] = max(acc[o], x4[(row + u32(iw)) * p.groups + j.cg]);
                }
            }
        }
    }
    let out_row = (j.nb * p.oh + j.oh) * p.ow;
    for (var o = 0u; o < OWT; o++) {
        if j.ow0 + o < p.ow {
            pool_y4[(out_row + j.ow0 + o) * p.groups + j.cg] = acc[o];
        }
    }
}

@compute @workgroup_size(256)
fn max_pool_scalar(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let j = job_of(folded_group(wg, nwg) * 256u + lid);
    if !j.valid {
        return;
    }
    var acc = vec4<f32>(neg_inf());
    let iw0 = i32(j.ow0 * p.stride_w) - i32(p.pad_left);
    for (var kh = 0u; kh < p.kh; kh++) {
        let ih = i32(j.oh * p.stride_h + kh) - i32(p.pad_top);
        if ih < 0 || ih >= i32(p.h) {
            continue;
        }
        let row = (j.nb * p.h + u32(ih)) * p.w;
        for (var kw = 0u; kw < p.kw; kw++) {
            for (var o = 0u; o < OWT; o++) {
                let iw = iw0 + i32(o * p.stride_w + kw);
                if iw >= 0 && iw < i32(p.w) {
                    acc[o] = max(acc[o], x[(row + u32(iw)) * p.c + j.cg]);
                }
            }
        }
    }
    let out_row = (j.nb * p.oh + j.oh) * p.ow;
    for (var o = 0u; o < OWT; o++) {
        if j.ow0 + o < p.ow {
            pool_y[(out_row + j.ow0 + o) * p.c + j.cg] = acc[o];
        }
    }
}
