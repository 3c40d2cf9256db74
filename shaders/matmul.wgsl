// Batched matrix multiply with a fused epilogue:
//   C[b] = act(A[b] · B[b] + bias) + residual[b]
// A [batch, M, K] row-major; B [K, N] shared by every batch item (b_stride = 0, the linear layer)
// or batched [batch, K, N]; bias [N] and residual [batch, M, N] optional; C [batch, M, N].
//
// Tiling: a workgroup of 64 threads computes a 64×64 tile of C, stepping through K by 16. Each
// step stages an A tile (64×16, rows of vec4 along k) and a B tile (16×64, rows of vec4 along n)
// in workgroup memory (9 KiB); each thread then accumulates an 8×8 register block: rows
// ty + 8i (i < 8) and vec4 columns tx + 8j (j < 2), so neighbouring threads read neighbouring
// vec4s of B and share the vec4s of A (broadcast). The next step's global loads are issued into
// registers before the current step's arithmetic (software prefetch).
//
// Why 64 threads × 8×8 rather than 256 × 4×4: the same 64×64 tile, but twice the arithmetic per
// workgroup-memory read and a quarter of the invocations meeting at each barrier. On CPU
// adapters (lavapipe, SwiftShader), where a barrier switches between coroutines, that was worth
// ~1.7× (1024³: 3.0 → 5.0 GFLOP per CPU-second on lavapipe).
//
// Two load paths: `_v4` binds A, B, C (and the epilogue tensors) as vec4 arrays and needs
// K % 4 == 0 and N % 4 == 0; `_s` binds them as f32 arrays and bounds-checks every element (any
// shape). Entry points differ only in their bindings: no epilogue tensor, one (bias or residual,
// told by `p.epi`), or two (bias then residual); the output is the last binding.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    tiles_m: u32,   // ceil(M / TM)
    tiles_n: u32,   // ceil(N / TN)
    a_stride: u32,  // elements between batch items of A (M*K)
    b_stride: u32,  // elements between batch items of B (K*N, or 0 when shared)
    c_stride: u32,  // elements between batch items of C and the residual (M*N)
    act: u32,
    epi: u32,       // with one epilogue binding: 1 = it is the bias, 2 = it is the residual
    groups: u32,    // tiles_m * tiles_n * batch
}

@group(0) @binding(0) var<uniform> p: Params;

const TX: u32 = 8u;             // threads along N
const TY: u32 = 8u;             // threads along M
const NT: u32 = TX * TY;        // 64 threads, each computing 8 rows × 2 vec4 columns
const TM: u32 = 64u;            // rows per tile (TY * 8)
const TN4: u32 = 16u;           // vec4 columns per tile (TX * 2): 64 columns
const TK: u32 = 16u;            // K step
const TK4: u32 = TK / 4u;
const AS: u32 = TK4 + 1u;       // padded row stride of the A tile (vec4), against bank conflicts

var<workgroup> a_tile: array<vec4<f32>, TM * AS>;    // [row][k4]: 5 KiB
var<workgroup> b_tile: array<vec4<f32>, TK * TN4>;   // [k][n4]:   4 KiB

// The thread's finished 8×2 vec4 block for the epilogue: element i*2 + j = row ty + 8i, vec4
// column tx + 8j. During the K loop the block lives in an `Acc` value instead (below).
var<private> acc: array<vec4<f32>, 16>;

struct Tile {
    batch: u32,
    row0: u32,   // first row of the tile
    col40: u32,  // first vec4 column of the tile
    tx: u32,
    ty: u32,
    lid: u32,
}

fn tile_of(g: u32, lid: u32) -> Tile {
    let per_batch = p.tiles_m * p.tiles_n;
    let b = g / per_batch;
    let r = g % per_batch;
    return Tile(b, (r / p.tiles_n) * TM, (r % p.tiles_n) * TN4, lid % TX, lid / TX, lid);
}

// One K step's share of global loads of this thread: 4 vec4 of the A tile (rows lid/4 + 16s,
// vec4 column lid%4) and 4 vec4 of the B tile (rows lid/16 + 4s, vec4 column lid%16).
struct Prefetch {
    a0: vec4<f32>,
    a1: vec4<f32>,
    a2: vec4<f32>,
    a3: vec4<f32>,
    b0: vec4<f32>,
    b1: vec4<f32>,
    b2: vec4<f32>,
    b3: vec4<f32>,
}

// ---- vec4 path: A as vec4 along k (K % 4 == 0), B as vec4 along n (N % 4 == 0) ----------------

@group(1) @binding(0) var<storage, read> a_v4: array<vec4<f32>>;
@group(1) @binding(1) var<storage, read> b_v4: array<vec4<f32>>;

fn load_a_v4(t: Tile, row: u32, k4: u32) -> vec4<f32> {
    let k4n = p.k / 4u;
    if row < p.m && k4 < k4n {
        return a_v4[(t.batch * p.a_stride) / 4u + row * k4n + k4];
    }
    return vec4<f32>(0.0);
}

fn load_b_v4(t: Tile, k: u32, n4: u32) -> vec4<f32> {
    let n4n = p.n / 4u;
    if k < p.k && n4 < n4n {
        return b_v4[(t.batch * p.b_stride) / 4u + k * n4n + n4];
    }
    return vec4<f32>(0.0);
}

fn fetch_v4(t: Tile, k0: u32) -> Prefetch {
    let ar = t.row0 + t.lid / TK4;
    let ak = k0 / 4u + t.lid % TK4;
    let bk = k0 + t.lid / TN4;
    let bn = t.col40 + t.lid % TN4;
    return Prefetch(
        load_a_v4(t, ar, ak), load_a_v4(t, ar + 16u, ak), load_a_v4(t, ar + 32u, ak), load_a_v4(t, ar + 48u, ak),
        load_b_v4(t, bk, bn), load_b_v4(t, bk + 4u, bn), load_b_v4(t, bk + 8u, bn), load_b_v4(t, bk + 12u, bn),
    );
}

// ---- scalar path: any K and N, every element bounds-checked -----------------------------------

@group(1) @binding(0) var<storage, read> a_f32: array<f32>;
@group(1) @binding(1) var<storage, read> b_f32: array<f32>;

// A[row, k .. k+4] (zero past K or M).
fn load_a_s(t: Tile, row: u32, k: u32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    if row < p.m {
        let base = t.batch * p.a_stride + row * p.k;
        for (var c = 0u; c < 4u; c++) {
            if k + c < p.k {
                v[c] = a_f32[base + k + c];
            }
        }
    }
    return v;
}

// B[k, n .. n+4] (zero past N or K).
fn load_b_s(t: Tile, k: u32, n: u32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    if k < p.k {
        let base = t.batch * p.b_stride + k * p.n;
        for (var c = 0u; c < 4u; c++) {
            if n + c < p.n {
                v[c] = b_f32[base + n + c];
            }
        }
    }
    return v;
}

fn fetch_s(t: Tile, k0: u32) -> Prefetch {
    let ar = t.row0 + t.lid / TK4;
    let ak = k0 + (t.lid % TK4) * 4u;
    let bk = k0 + t.lid / TN4;
    let bn = (t.col40 + t.lid % TN4) * 4u;
    return Prefetch(
        load_a_s(t, ar, ak), load_a_s(t, ar + 16u, ak), load_a_s(t, ar + 32u, ak), load_a_s(t, ar + 48u, ak),
        load_b_s(t, bk, bn), load_b_s(t, bk + 4u, bn), load_b_s(t, bk + 8u, bn), load_b_s(t, bk + 12u, bn),
    );
}

// ---- shared arithmetic ------------------------------------------------------------------------

fn stage(t: Tile, f: Prefetch) {
    let ar = t.lid / TK4;
    let ak = t.lid % TK4;
    a_tile[ar * AS + ak] = f.a0;
    a_tile[(ar + 16u) * AS + ak] = f.a1;
    a_tile[(ar + 32u) * AS + ak] = f.a2;
    a_tile[(ar + 48u) * AS + ak] = f.a3;
    b_tile[t.lid] = f.b0;
    b_tile[t.lid + NT] = f.b1;
    b_tile[t.lid + 2u * NT] = f.b2;
    b_tile[t.lid + 3u * NT] = f.b3;
}

// c + a.x*b0 + a.y*b1 + a.z*b2 + a.w*b3: one row's 4-k update of one vec4 of columns.
fn fma_row(c: vec4<f32>, a: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>) -> vec4<f32> {
    return fma(vec4<f32>(a.w), b3, fma(vec4<f32>(a.z), b2, fma(vec4<f32>(a.y), b1, fma(vec4<f32>(a.x), b0, c))));
}

// c + A tile · B tile, written out by hand, with the accumulators as named struct fields: loops
// over the register block, or an array read and written at every step, indexed the accumulators
// in ways llvmpipe kept in memory (1.3-1.6× slower there).
struct Acc {
    c00: vec4<f32>,
    c01: vec4<f32>,
    c10: vec4<f32>,
    c11: vec4<f32>,
    c20: vec4<f32>,
    c21: vec4<f32>,
    c30: vec4<f32>,
    c31: vec4<f32>,
    c40: vec4<f32>,
    c41: vec4<f32>,
    c50: vec4<f32>,
    c51: vec4<f32>,
    c60: vec4<f32>,
    c61: vec4<f32>,
    c70: vec4<f32>,
    c71: vec4<f32>,
}

fn multiply(t: Tile, a_in: Acc) -> Acc {
    var c00 = a_in.c00;
    var c01 = a_in.c01;
    var c10 = a_in.c10;
    var c11 = a_in.c11;
    var c20 = a_in.c20;
    var c21 = a_in.c21;
    var c30 = a_in.c30;
    var c31 = a_in.c31;
    var c40 = a_in.c40;
    var c41 = a_in.c41;
    var c50 = a_in.c50;
    var c51 = a_in.c51;
    var c60 = a_in.c60;
    var c61 = a_in.c61;
    var c70 = a_in.c70;
    var c71 = a_in.c71;
    for (var k4 = 0u; k4 < TK4; k4++) {
        let a0 = a_tile[t.ty * AS + k4];
        let a1 = a_tile[(t.ty + 8u) * AS + k4];
        let a2 = a_tile[(t.ty + 16u) * AS + k4];
        let a3 = a_tile[(t.ty + 24u) * AS + k4];
        let a4 = a_tile[(t.ty + 32u) * AS + k4];
        let a5 = a_tile[(t.ty + 40u) * AS + k4];
        let a6 = a_tile[(t.ty + 48u) * AS + k4];
        let a7 = a_tile[(t.ty + 56u) * AS + k4];
        let kb = k4 * 4u * TN4 + t.tx;
        let b00 = b_tile[kb];
        let b01 = b_tile[kb + 8u];
        let b10 = b_tile[kb + TN4];
        let b11 = b_tile[kb + TN4 + 8u];
        let b20 = b_tile[kb + 2u * TN4];
        let b21 = b_tile[kb + 2u * TN4 + 8u];
        let b30 = b_tile[kb + 3u * TN4];
        let b31 = b_tile[kb + 3u * TN4 + 8u];
        c00 = fma_row(c00, a0, b00, b10, b20, b30);
        c01 = fma_row(c01, a0, b01, b11, b21, b31);
        c10 = fma_row(c10, a1, b00, b10, b20, b30);
        c11 = fma_row(c11, a1, b01, b11, b21, b31);
        c20 = fma_row(c20, a2, b00, b10, b20, b30);
        c21 = fma_row(c21, a2, b01, b11, b21, b31);
        c30 = fma_row(c30, a3, b00, b10, b20, b30);
        c31 = fma_row(c31, a3, b01, b11, b21, b31);
        c40 = fma_row(c40, a4, b00, b10, b20, b30);
        c41 = fma_row(c41, a4, b01, b11, b21, b31);
        c50 = fma_row(c50, a5, b00, b10, b20, b30);
        c51 = fma_row(c51, a5, b01, b11, b21, b31);
        c60 = fma_row(c60, a6, b00, b10, b20, b30);
        c61 = fma_row(c61, a6, b01, b11, b21, b31);
        c70 = fma_row(c70, a7, b00, b10, b20, b30);
        c71 = fma_row(c71, a7, b01, b11, b21, b31);
    }
    return Acc(c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71);
}

fn keep(c: Acc) {
    acc[0] = c.c00;
    acc[1] = c.c01;
    acc[2] = c.c10;
    acc[3] = c.c11;
    acc[4] = c.c20;
    acc[5] = c.c21;
    acc[6] = c.c30;
    acc[7] = c.c31;
    acc[8] = c.c40;
    acc[9] = c.c41;
    acc[10] = c.c50;
    acc[11] = c.c51;
    acc[12] = c.c60;
    acc[13] = c.c61;
    acc[14] = c.c70;
    acc[15] = c.c71;
}

fn activate4(v: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(activate(v.x, p.act), activate(v.y, p.act), activate(v.z, p.act), activate(v.w, p.act));
}

// The main loop: fetch step 0, then per step: stage → barrier → fetch the next step into
// registers (its latency hidden behind the arithmetic) → multiply → barrier. Every branch here
// depends on uniforms only, so the barriers stay in uniform control flow.
fn run_v4(t: Tile) {
    var c = Acc();   // zero
    var f = fetch_v4(t, 0u);
    for (var k0 = 0u; k0 < p.k; k0 += TK) {
        stage(t, f);
        workgroupBarrier();
        if k0 + TK < p.k {
            f = fetch_v4(t, k0 + TK);
        }
        c = multiply(t, c);
        workgroupBarrier();
    }
    keep(c);
}

fn run_s(t: Tile) {
    var c = Acc();   // zero
    var f = fetch_s(t, 0u);
    for (var k0 = 0u; k0 < p.k; k0 += TK) {
        stage(t, f);
        workgroupBarrier();
        if k0 + TK < p.k {
            f = fetch_s(t, k0 + TK);
        }
        c = multiply(t, c);
        workgroupBarrier();
    }
    keep(c);
}

// Output coordinates of accumulator i*2 + j of this thread.
fn out_row(t: Tile, i: u32) -> u32 {
    return t.row0 + t.ty + i * TY;
}
fn out_col4(t: Tile, j: u32) -> u32 {
    return t.col40 + t.tx + j * TX;
}

// ---- epilogues: one per binding set -----------------------------------------------------------

@group(1) @binding(2) var<storage, read_write> c4_2: array<vec4<f32>>;
@group(1) @binding(2) var<storage, read> e4_2: array<vec4<f32>>;
@group(1) @binding(3) var<storage, read_write> c4_3: array<vec4<f32>>;
@group(1) @binding(3) var<storage, read> e4_3: array<vec4<f32>>;
@group(1) @binding(4) var<storage, read_write> c4_4: array<vec4<f32>>;
@group(1) @binding(2) var<storage, read_write> c1_2: array<f32>;
@group(1) @binding(2) var<storage, read> e1_2: array<f32>;
@group(1) @binding(3) var<storage, read_write> c1_3: array<f32>;
@group(1) @binding(3) var<storage, read> e1_3: array<f32>;
@group(1) @binding(4) var<storage, read_write> c1_4: array<f32>;

@compute @workgroup_size(NT)
fn mm_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = folded_group(wg, nwg);
    if g >= p.groups { return; }
    let t = tile_of(g, lid);
    run_v4(t);
    let n4n = p.n / 4u;
    for (var i = 0u; i < 8u; i++) {
        let row = out_row(t, i);
        for (var j = 0u; j < 2u; j++) {
            let n4 = out_col4(t, j);
            if row < p.m && n4 < n4n {
                c4_2[(t.batch * p.c_stride) / 4u + row * n4n + n4] = activate4(acc[i * 2u + j]);
            }
        }
    }
}

@compute @workgroup_size(NT)
fn mm_v4_e1(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = folded_group(wg, nwg);
    if g >= p.groups { return; }
    let t = tile_of(g, lid);
    run_v4(t);
    let n4n = p.n / 4u;
    for (var i = 0u; i < 8u; i++) {
        let row = out_row(t, i);
        for (var j = 0u; j < 2u; j++) {
            let n4 = out_col4(t, j);
            if row < p.m && n4 < n4n {
                let o = (t.batch * p.c_stride) / 4u + row * n4n + n4;
                if p.epi == 1u {
                    c4_3[o] = activate4(acc[i * 2u + j] + e4_2[n4]);
                } else {
                    c4_3[o] = activate4(acc[i * 2u + j]) + e4_2[o];
                }
            }
        }
    }
}

@compute @workgroup_size(NT)
fn mm_v4_e2(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = folded_group(wg, nwg);
    if g >= p.groups { return; }
    let t = tile_of(g, lid);
    run_v4(t);
    let n4n = p.n / 4u;
    for (var i = 0u; i < 8u; i++) {
        let row = out_row(t, i);
        for (var j = 0u; j < 2u; j++) {
            let n4 = out_col4(t, j);
            if row < p.m && n4 < n4n {
                let o = (t.batch * p.c_stride) / 4u + row * n4n + n4;
                c4_4[o] = activate4(acc[i * 2u + j] + e4_2[n4]) + e4_3[o];
            }
        }
    }
}

@compute @workgroup_size(NT)
fn mm_s(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = folded_group(wg, nwg);
    if g >= p.groups { return; }
    let t = tile_of(g, lid);
    run_s(t);
    for (var i = 0u; i < 8u; i++) {
        let row = out_row(t, i);
        for (var j = 0u; j < 2u; j++) {
            let n = out_col4(t, j) * 4u;
            for (var c = 0u; c < 4u; c++) {
                if row < p.m && n + c < p.n {
                    c1_2[t.batch * p.c_stride + row * p.n + n + c] = activate(acc[i * 2u + j][c], p.act);
                }
            }
        }
    }
}

@compute @workgroup_size(NT)
fn mm_s_e1(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = folded_group(wg, nwg);
    if g >= p.groups { return; }
    let t = tile_of(g, lid);
    run_s(t);
    for (var i = 0u; i < 8u; i++) {
        let row = out_row(t, i);
        for (var j = 0u; j < 2u; j++) {
            let n = out_col4(t, j) * 4u;
            for (var c = 0u; c < 4u; c++) {
                if row < p.m && n + c < p.n {
                    let o = t.batch * p.c_stride + row * p.n + n + c;
                    if p.epi == 1u {
                        c1_3[o] = activate(acc[i * 2u + j][c] + e1_2[n + c], p.act);
                    } else {
                        c1_3[o] = activate(acc[i * 2u + j][c], p.act) + e1_2[o];
                    }
                }
            }
        }
    }
}

@compute @workgroup_size(NT)
fn mm_s_e2(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = folded_group(wg, nwg);
    if g >= p.groups { return; }
    let t = tile_of(g, lid);
    run_s(t);
    for (var i = 0u; i < 8u; i++) {
        let row = out_row(t, i);
        for (var j = 0u; j < 2u; j++) {
            let n = out_col4(t, j) * 4u;
            for (var c = 0u; c < 4u; c++) {
                if row < p.m && n + c < p.n {
                    let o = t.batch * p.c_stride + row * p.n + n + c;
                    c1_4[o] = activate(acc[i * 2u + j][c] + e1_2[n + c], p.act) + e1_3[o];
                }
            }
        }
    }
}
