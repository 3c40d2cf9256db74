// conv2d (groups = 1) as an implicit GEMM over channels-last tensors.
//
//   x  [N, H, W, Cin]          (NHWC activations)
//   w  [KH, KW, Cin, Cout]     (HWIO: row k = (kh * KW + kw) * Cin + ci of a K x Cout matrix)
//   y  [N, OH, OW, Cout]       y = act((conv(x, w) + bias + residual) * scale)
//
// GEMM view: M = N*OH*OW output pixels, N = Cout, K = KH*KW*Cin. The A operand (im2col of x) is
// never materialised: each K step gathers its 128 x 16 slice straight from x, with padding cells
// read as zero. One workgroup computes a 128 (pixels) x 64 (Cout) tile with 256 threads, each
// holding 8 pixels x 4 output channels in registers (32 accumulators; per 4 taps it reads 8 + 4
// vec4 from workgroup memory for 32 vec4 FMAs). The K loop stages 128 x 16 of A and 16 x 64 of B
// in workgroup memory (12 KiB) and prefetches the next step's global loads into registers while
// the current step is multiplied.
//
// Three entry points differ only in how they touch memory:
//   conv2d_vec4   Cin % 4 == 0 and Cout % 4 == 0: vec4 loads of x along Cin, vec4 w/bias/residual/y
//   conv2d_vec4w  Cout % 4 == 0 (any Cin, e.g. the RGB stem): scalar x, vec4 everything else
//   conv2d_scalar any shape
// A 1x1 conv needs no special kernel: its taps are k = ci with no division (see tap_of), and the
// gather of a stride-1 unpadded 1x1 conv reads x[m * Cin + k], a plain GEMM.

struct Params {
    n: u32,
    h: u32,
    w: u32,
    cin: u32,
    oh: u32,
    ow: u32,
    cout: u32,
    kh: u32,
    kw: u32,
    stride_h: u32,
    stride_w: u32,
    pad_top: u32,
    pad_left: u32,
    m: u32,          // N * OH * OW
    k: u32,          // KH * KW * Cin
    act: u32,
    flags: u32,      // bit 0: bias, bit 1: residual
    tiles_n: u32,    // ceil(Cout / 64)
    tiles: u32,      // tiles_n * ceil(M / 128)
    scale: f32,
}

const BM: u32 = 128u;  // pixels per tile
const BN: u32 = 64u;   // output channels per tile
const BK: u32 = 16u;   // taps per K step
const FLAG_BIAS: u32 = 1u;
const FLAG_RESIDUAL: u32 = 2u;

@group(0) @binding(0) var<uniform> p: Params;

@group(1) @binding(0) var<storage, read> x: array<f32>;
@group(1) @binding(0) var<storage, read> x4: array<vec4<f32>>;
@group(1) @binding(1) var<storage, read> wt: array<f32>;
@group(1) @binding(1) var<storage, read> wt4: array<vec4<f32>>;
@group(1) @binding(2) var<storage, read> bias: array<f32>;
@group(1) @binding(2) var<storage, read> bias4: array<vec4<f32>>;
@group(1) @binding(3) var<storage, read> res: array<f32>;
@group(1) @binding(3) var<storage, read> res4: array<vec4<f32>>;
@group(1) @binding(4) var<storage, read_write> y: array<f32>;
@group(1) @binding(4) var<storage, read_write> y4: array<vec4<f32>>;

// a_tile[m * 4 + k / 4][k % 4]: pixel m, tap k of the step (8 KiB).
// b_tile[k * 16 + n / 4][n % 4]: tap k, output channel n of the tile (4 KiB).
var<workgroup> a_tile: array<vec4<f32>, 512>;
var<workgroup> b_tile: array<vec4<f32>, 256>;

// Thread (tx, ty) = (lid % 16, lid / 16) owns pixels ty * 8 + i (i < 8) and channels tx * 4 ..;
// its accumulators acc[i] (a function variable of the entry point) hold pixel ty * 8 + i.
alias Acc = array<vec4<f32>, 8>;

// Where one output pixel's receptive field starts in x; ih0 is pushed far out of range for
// pixels past M so every load of theirs reads as padding.
struct Pixel {
    base: i32,  // index of x[n, 0, 0, 0]
    ih0: i32,
    iw0: i32,
}

fn pixel_of(m: u32) -> Pixel {
    if m >= p.m {
        return Pixel(0, -1073741824, 0);
    }
    let plane = p.oh * p.ow;
    let nb = m / plane;
    let r = m - nb * plane;
    let oh = r / p.ow;
    let ow = r - oh * p.ow;
    return Pixel(i32(nb * p.h * p.w * p.cin), i32(oh * p.stride_h) - i32(p.pad_top), i32(ow * p.stride_w) - i32(p.pad_left));
}

// Position of GEMM row k inside the filter window: (kh, kw, ci), or kh far out of range past K.
fn tap_of(k: u32) -> vec3<i32> {
    if k >= p.k {
        return vec3<i32>(-1073741824, 0, 0);
    }
    if p.k == p.cin {
        return vec3<i32>(0, 0, i32(k));  // 1x1 window: no division
    }
    let r = k / p.cin;
    let ci = k - r * p.cin;
    let khi = r / p.kw;
    return vec3<i32>(i32(khi), i32(r - khi * p.kw), i32(ci));
}

// Index of x for (pixel, tap), or -1 for a padding cell.
fn x_index(px: Pixel, tap: vec3<i32>) -> i32 {
    let ih = px.ih0 + tap.x;
    let iw = px.iw0 + tap.y;
    if ih < 0 || iw < 0 || ih >= i32(p.h) || iw >= i32(p.w) {
        return -1;
    }
    return px.base + (ih * i32(p.w) + iw) * i32(p.cin) + tap.z;
}

// ---- A loads: 128 pixels x 16 taps per step ----

// vec4 gather (Cin % 4 == 0): thread t loads taps k0 + (t % 4) * 4 .. + 3 (one kh, kw: 4
// consecutive input channels) of pixels t / 4 and t / 4 + 64.
fn load_a_vec4(px: Pixel, k: u32) -> vec4<f32> {
    let idx = x_index(px, tap_of(k));
    if idx < 0 {
        return vec4<f32>(0.0);
    }
    return x4[u32(idx) >> 2u];
}

// scalar gather: thread t loads tap k0 + t % 16 of pixels t / 16 + 16 c, c = 0..7, as two vec4
// (c = 0..3 and 4..7).
fn load_a_scalar(px: array<Pixel, 4>, tap: vec3<i32>) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    for (var c = 0u; c < 4u; c++) {
        let idx = x_index(px[c], tap);
        if idx >= 0 {
            v[c] = x[u32(idx)];
        }
    }
    return v;
}

fn store_a_scalar(v: vec4<f32>, lid: u32, m_offset: u32) {
    let lk = lid & 15u;
    for (var c = 0u; c < 4u; c++) {
        let m = (lid >> 4u) + 16u * c + m_offset;
        a_tile[m * 4u + (lk >> 2u)][lk & 3u] = v[c];
    }
}

// ---- B loads: 16 taps x 64 output channels per step; thread t owns row t / 16, channels (t % 16) * 4.. ----

fn load_b_vec4(k0: u32, n0: u32, lid: u32) -> vec4<f32> {
    let k = k0 + (lid >> 4u);
    let n = n0 + (lid & 15u) * 4u;
    if k >= p.k || n >= p.cout {
        return vec4<f32>(0.0);
    }
    return wt4[(k * p.cout + n) >> 2u];
}

fn load_b_scalar(k0: u32, n0: u32, lid: u32) -> vec4<f32> {
    let k = k0 + (lid >> 4u);
    let n = n0 + (lid & 15u) * 4u;
    var v = vec4<f32>(0.0);
    if k < p.k {
        for (var j = 0u; j < 4u; j++) {
            if n + j < p.cout {
                v[j] = wt[k * p.cout + n + j];
            }
        }
    }
    return v;
}

// ---- the multiply: the 16 staged taps into this thread's 8 x 4 accumulators ----

// c + a.x * b0 + a.y * b1 + a.z * b2 + a.w * b3: one pixel's 4 taps times a 4 x 4 block of B.
fn mac4(a: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>, c: vec4<f32>) -> vec4<f32> {
    return fma(vec4<f32>(a.w), b3, fma(vec4<f32>(a.z), b2, fma(vec4<f32>(a.y), b1, fma(vec4<f32>(a.x), b0, c))));
}

fn multiply_tile(acc: ptr<function, Acc>, tx: u32, ty: u32) {
    for (var q = 0u; q < BK / 4u; q++) {
        let b0 = b_tile[(q * 4u + 0u) * 16u + tx];
        let b1 = b_tile[(q * 4u + 1u) * 16u + tx];
        let b2 = b_tile[(q * 4u + 2u) * 16u + tx];
        let b3 = b_tile[(q * 4u + 3u) * 16u + tx];
        let row = ty * 32u + q;  // a_tile index of pixel ty * 8, taps q * 4 ..
        (*acc)[0] = mac4(a_tile[row], b0, b1, b2, b3, (*acc)[0]);
        (*acc)[1] = mac4(a_tile[row + 4u], b0, b1, b2, b3, (*acc)[1]);
        (*acc)[2] = mac4(a_tile[row + 8u], b0, b1, b2, b3, (*acc)[2]);
        (*acc)[3] = mac4(a_tile[row + 12u], b0, b1, b2, b3, (*acc)[3]);
        (*acc)[4] = mac4(a_tile[row + 16u], b0, b1, b2, b3, (*acc)[4]);
        (*acc)[5] = mac4(a_tile[row + 20u], b0, b1, b2, b3, (*acc)[5]);
        (*acc)[6] = mac4(a_tile[row + 24u], b0, b1, b2, b3, (*acc)[6]);
        (*acc)[7] = mac4(a_tile[row + 28u], b0, b1, b2, b3, (*acc)[7]);
    }
}

// ---- epilogues: y = act((acc + bias + residual) * scale) ----

fn finish(v: vec4<f32>) -> vec4<f32> {
    let s = v * p.scale;
    return vec4<f32>(activate(s.x, p.act), activate(s.y, p.act), activate(s.z, p.act), activate(s.w, p.act));
}

fn store_vec4(acc: ptr<function, Acc>, m0: u32, n: u32) {
    if n >= p.cout {
        return;
    }
    var b = vec4<f32>(0.0);
    if (p.flags & FLAG_BIAS) != 0u {
        b = bias4[n >> 2u];
    }
    for (var i = 0u; i < 8u; i++) {
        let m = m0 + i;
        if m < p.m {
            let o = (m * p.cout + n) >> 2u;
            var v = (*acc)[i] + b;
            if (p.flags & FLAG_RESIDUAL) != 0u {
                v += res4[o];
            }
            y4[o] = finish(v);
        }
    }
}

fn store_scalar(acc: ptr<function, Acc>, m0: u32, n: u32) {
    for (var i = 0u; i < 8u; i++) {
        let m = m0 + i;
        if m >= p.m {
            continue;
        }
        for (var j = 0u; j < 4u; j++) {
            if n + j < p.cout {
                let o = m * p.cout + n + j;
                var v = (*acc)[i][j];
                if (p.flags & FLAG_BIAS) != 0u {
                    v += bias[n + j];
                }
                if (p.flags & FLAG_RESIDUAL) != 0u {
                    v += res[o];
                }
                y[o] = activate(v * p.scale, p.act);
            }
        }
    }
}

// ---- entry points (the K loop differs only in the loaders) ----

@compute @workgroup_size(256)
fn conv2d_vec4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = folded_group(wg, nwg);
    if g >= p.tiles {
        return;
    }
    let m0 = (g / p.tiles_n) * BM;
    let n0 = (g % p.tiles_n) * BN;
    let lm = lid >> 2u;
    let kq = (lid & 3u) * 4u;
    let px0 = pixel_of(m0 + lm);
    let px1 = pixel_of(m0 + lm + 64u);
    var acc = Acc();
    let steps = (p.k + BK - 1u) / BK;
    var a0 = load_a_vec4(px0, kq);
    var a1 = load_a_vec4(px1, kq);
    var b = load_b_vec4(0u, n0, lid);
    for (var s = 0u; s < steps; s++) {
        a_tile[lid] = a0;          // = a_tile[lm * 4 + kq / 4]
        a_tile[lid + 256u] = a1;   // pixel lm + 64
        b_tile[lid] = b;
        workgroupBarrier();
        if s + 1u < steps {
            let k0 = (s + 1u) * BK;
            a0 = load_a_vec4(px0, k0 + kq);
            a1 = load_a_vec4(px1, k0 + kq);
            b = load_b_vec4(k0, n0, lid);
        }
        multiply_tile(&acc, lid & 15u, lid >> 4u);
        workgroupBarrier();
    }
    store_vec4(&acc, m0 + (lid >> 4u) * 8u, n0 + (lid & 15u) * 4u);
}

@compute @workgroup_size(256)
fn conv2d_vec4w(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = folded_group(wg, nwg);
    if g >= p.tiles {
        return;
    }
    let m0 = (g / p.tiles_n) * BM;
    let n0 = (g % p.tiles_n) * BN;
    let lm = m0 + (lid >> 4u);
    let px0 = array<Pixel, 4>(pixel_of(lm), pixel_of(lm + 16u), pixel_of(lm + 32u), pixel_of(lm + 48u));
    let px1 = array<Pixel, 4>(pixel_of(lm + 64u), pixel_of(lm + 80u), pixel_of(lm + 96u), pixel_of(lm + 112u));
    var acc = Acc();
    let steps = (p.k + BK - 1u) / BK;
    var tap = tap_of(lid & 15u);
    var a0 = load_a_scalar(px0, tap);
    var a1 = load_a_scalar(px1, tap);
    var b = load_b_vec4(0u, n0, lid);
    for (var s = 0u; s < steps; s++) {
        store_a_scalar(a0, lid, 0u);
        store_a_scalar(a1, lid, 64u);
        b_tile[lid] = b;
        workgroupBarrier();
        if s + 1u < steps {
            let k0 = (s + 1u) * BK;
            tap = tap_of(k0 + (lid & 15u));
            a0 = load_a_scalar(px0, tap);
            a1 = load_a_scalar(px1, tap);
            b = load_b_vec4(k0, n0, lid);
        }
        multiply_tile(&acc, lid & 15u, lid >> 4u);
        workgroupBarrier();
    }
    store_vec4(&acc, m0 + (lid >> 4u) * 8u, n0 + (lid & 15u) * 4u);
}

@compute @workgroup_size(256)
fn conv2d_scalar(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = folded_group(wg, nwg);
    if g >= p.tiles {
        return;
    }
    let m0 = (g / p.tiles_n) * BM;
    let n0 = (g % p.tiles_n) * BN;
    let lm = m0 + (lid >> 4u);
    let px0 = array<Pixel, 4>(pixel_of(lm), pixel_of(lm + 16u), pixel_of(lm + 32u), pixel_of(lm + 48u));
    let px1 = array<Pixel, 4>(pixel_of(lm + 64u), pixel_of(lm + 80u), pixel_of(lm + 96u), pixel_of(lm + 112u));
    var acc = Acc();
    let steps = (p.k + BK - 1u) / BK;
    var tap = tap_of(lid & 15u);
    var a0 = load_a_scalar(px0, tap);
    var a1 = load_a_scalar(px1, tap);
    var b = load_b_scalar(0u, n0, lid);
    for (var s = 0u; s < steps; s++) {
        store_a_scalar(a0, lid, 0u);
        store_a_scalar(a1, lid, 64u);
        b_tile[lid] = b;
        workgroupBarrier();
        if s + 1u < steps {
            let k0 = (s + 1u) * BK;
            tap = tap_of(k0 + (lid & 15u));
            a0 = load_a_scalar(px0, tap);
            a1 = load_a_scalar(px1, tap);
            b = load_b_scalar(k0, n0, lid);
        }
        multiply_tile(&acc, lid & 15u, lid >> 4u);
        workgroupBarrier();
    }
    store_scalar(&acc, m0 + (lid >> 4u) * 8u, n0 + (lid & 15u) * 4u);
}
