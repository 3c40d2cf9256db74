// Multi-head scaled dot-product attention, flash style: softmax(q kᵀ / sqrt(dh)) v computed with
// an online softmax, never materialising the Lq×Lk score matrix.
//
// Specialisation: src/ops/attention.rs compiles this file three times, each time prepending
//   const DH4: u32      head dim / 4 the registers are sized for,
//   const QPT: u32      queries per thread,
//   const GENERIC: bool true: the head dim is p.dh4 (≤ DH4, loops guarded); false: exactly DH4.
// as dh 64 (16, 1, false), dh 32 (8, 2, false) and any other multiple of 4 up to 64 (16, 1, true).
// Every loop over DH4, QPT or CHUNK has a constant trip count, so compilers unroll it and the
// register arrays below are only ever indexed by constants.
//
// Layout: tokens channels-last. q [batch, Lq, *], k and v [batch, Lk, *]; head h of a token is the
// dh channels starting at `off + h*dh` of its row (rows of `row` channels), so q, k and v may be
// separate tensors [.., heads*dh] or slices of one packed tensor (fused QKV linear: [q | k | v]).
// Output o [batch, Lq, heads*dh], head h in channels h*dh.. (ready for the output projection).
// All offsets and strides are in vec4 units: dh and every row and offset are multiples of 4.
//
// Tiling: one workgroup = QB threads × QPT queries of one (batch, head). Each thread keeps its
// queries (pre-scaled by log2(e)/sqrt(dh)), their running max m, sum l and output accumulators
// in registers (QPT·dh ≤ 64 floats each for q and the accumulator). K and V stream through
// workgroup memory in blocks of `kv_block` keys (2 × 8 KiB = 16 KiB); within a block, keys go in
// chunks of 8: 8 scores per query, one rescale of its accumulator by exp2(m_old - m_new), then 8
// weighted V rows. Every read of a staged tile has the same address in every thread (a
// broadcast) and feeds QPT queries. Keys past Lk get score -3e38 (exp2 → 0); queries past Lq
// compute on a clamped row and do not store.
//
// Entry points differ only in their bindings: `attn` (q, k, v, o), `attn_qkv` (qkv, o) and
// `attn_q_kv` (q, kv, o).

struct Params {
    lq: u32,
    lk: u32,
    heads: u32,
    dh4: u32,       // head dim / 4
    q_row: u32,     // vec4 per token row of q's tensor
    q_off: u32,     // vec4 offset of q's channel 0 within a row
    k_row: u32,
    k_off: u32,
    v_row: u32,
    v_off: u32,
    q_blocks: u32,  // ceil(Lq / (QB * QPT))
    groups: u32,    // q_blocks * heads * batch
    kv_block: u32,  // keys per staged block: a multiple of CHUNK with kv_block * dh4 <= KV_VEC4
    scale: f32,     // log2(e) / sqrt(dh)
}

@group(0) @binding(0) var<uniform> p: Params;

const QB: u32 = 64u;          // threads per workgroup
const KV_VEC4: u32 = 512u;    // vec4 per staged K (and V) block: 8 KiB each
const CHUNK: u32 = 8u;        // keys per online-softmax update
const NEG: f32 = -3.0e38;     // "minus infinity" (WGSL has no infinities)
const QN: u32 = QPT * DH4;    // register vec4 per thread for q (and for the accumulator)

var<workgroup> k_tile: array<vec4<f32>, KV_VEC4>;   // [key][d4], rows of dh4
var<workgroup> v_tile: array<vec4<f32>, KV_VEC4>;

// Query r (< QPT ≤ 2) of this thread: q[r * DH4 + d], acc[r * DH4 + d], m_run[r], l_run[r].
// The code below handles the second query in `if TWO { }` blocks rather than in loops over r,
// which compilers unrolled less readily (llvmpipe: 15% slower).
const TWO: bool = QPT == 2u;
var<private> q: array<vec4<f32>, QN>;
var<private> acc: array<vec4<f32>, QN>;
var<private> m_run: array<f32, QPT>;
var<private> l_run: array<f32, QPT>;

fn head_vec4s() -> u32 {
    if GENERIC {
        return p.dh4;
    }
    return DH4;
}

struct Job {
    batch: u32,
    head: u32,
    query0: u32,  // query of r = 0 (unclamped); query r is query0 + r * QB
}

fn job_of(g: u32, lid: u32) -> Job {
    let qb = g % p.q_blocks;
    let bh = g / p.q_blocks;
    return Job(bh / p.heads, bh % p.heads, qb * QB * QPT + lid);
}

// vec4 index of channel-vec4 d of the job's head in token t of the job's batch item.
fn q_index(job: Job, t: u32, d: u32) -> u32 {
    return (job.batch * p.lq + t) * p.q_row + p.q_off + job.head * p.dh4 + d;
}
fn k_index(job: Job, t: u32, d: u32) -> u32 {
    return (job.batch * p.lk + t) * p.k_row + p.k_off + job.head * p.dh4 + d;
}
fn v_index(job: Job, t: u32, d: u32) -> u32 {
    return (job.batch * p.lk + t) * p.v_row + p.v_off + job.head * p.dh4 + d;
}
fn o_index(job: Job, t: u32, d: u32) -> u32 {
    return (job.batch * p.lq + t) * (p.heads * p.dh4) + job.head * p.dh4 + d;
}

// One staged block of `nk` keys (k_tile, v_tile) against this thread's queries.
fn attend_block(nk: u32) {
    let dh4 = head_vec4s();
    for (var c0 = 0u; c0 < nk; c0 += CHUNK) {
        // Scores of the chunk (log2 units) and the new running maxima.
        var s0: array<f32, CHUNK>;
        var s1: array<f32, CHUNK>;
        var mx0 = m_run[0];
        var mx1 = m_run[QPT - 1u];
        for (var jj = 0u; jj < CHUNK; jj++) {
            let j = c0 + jj;
            var sj0 = NEG;
            var sj1 = NEG;
            if j < nk {
                var dot0 = vec4<f32>(0.0);
                var dot1 = vec4<f32>(0.0);
                let base = j * dh4;
                for (var d = 0u; d < DH4; d++) {
                    if d < dh4 {
                        let kv = k_tile[base + d];
                        dot0 = fma(q[d], kv, dot0);
                        if TWO {
                            dot1 = fma(q[DH4 + d], kv, dot1);
                        }
                    }
                }
                sj0 = dot0.x + dot0.y + dot0.z + dot0.w;
                sj1 = dot1.x + dot1.y + dot1.z + dot1.w;
            }
            s0[jj] = sj0;
            s1[jj] = sj1;
            mx0 = max(mx0, sj0);
            mx1 = max(mx1, sj1);
        }
        // Rescale what was accumulated under the old maxima.
        let corr0 = exp2(m_run[0] - mx0);
        let corr1 = exp2(m_run[QPT - 1u] - mx1);
        m_run[0] = mx0;
        l_run[0] = l_run[0] * corr0;
        if TWO {
            m_run[QPT - 1u] = mx1;
            l_run[QPT - 1u] = l_run[QPT - 1u] * corr1;
        }
        for (var d = 0u; d < DH4; d++) {
            acc[d] = acc[d] * corr0;
            if TWO {
                acc[DH4 + d] = acc[DH4 + d] * corr1;
            }
        }
        // Accumulate the chunk's weighted values.
        for (var jj = 0u; jj < CHUNK; jj++) {
            let j = c0 + jj;
            if j < nk {
                let p0 = exp2(s0[jj] - mx0);
                let p1 = exp2(s1[jj] - mx1);
                l_run[0] = l_run[0] + p0;
                if TWO {
                    l_run[QPT - 1u] = l_run[QPT - 1u] + p1;
                }
                let base = j * dh4;
                for (var d = 0u; d < DH4; d++) {
                    if d < dh4 {
                        let vv = v_tile[base + d];
                        acc[d] = fma(vec4<f32>(p0), vv, acc[d]);
                        if TWO {
                            acc[DH4 + d] = fma(vec4<f32>(p1), vv, acc[DH4 + d]);
                        }
                    }
                }
            }
        }
    }
}

// ---- bindings and entry points ----------------------------------------------------------------

@group(1) @binding(0) var<storage, read> src0: array<vec4<f32>>;
@group(1) @binding(1) var<storage, read> src1: array<vec4<f32>>;
@group(1) @binding(2) var<storage, read> src2: array<vec4<f32>>;
@group(1) @binding(1) var<storage, read_write> out1: array<vec4<f32>>;
@group(1) @binding(2) var<storage, read_write> out2: array<vec4<f32>>;
@group(1) @binding(3) var<storage, read_write> out3: array<vec4<f32>>;

// q always comes from binding 0; the accumulators start empty.
fn start(job: Job) {
    let dh4 = head_vec4s();
    for (var r = 0u; r < QPT; r++) {
        let t = min(job.query0 + r * QB, p.lq - 1u);
        for (var d = 0u; d < DH4; d++) {
            var v = vec4<f32>(0.0);
            if d < dh4 {
                v = src0[q_index(job, t, d)] * p.scale;
            }
            q[r * DH4 + d] = v;
            acc[r * DH4 + d] = vec4<f32>(0.0);
        }
        m_run[r] = NEG;
        l_run[r] = 0.0;
    }
}

// Query r's output row, if it exists: acc / l.
fn result(r: u32, d: u32) -> vec4<f32> {
    return acc[r * DH4 + d] / l_run[r];
}

// Per-thread share of one block's staging: slot i of a tile is key i / dh4, vec4 i % dh4.
const SLOTS: u32 = KV_VEC4 / QB;

@compute @workgroup_size(QB)
fn attn(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = folded_group(wg, nwg);
    if g >= p.groups { return; }
    let job = job_of(g, lid);
    let dh4 = head_vec4s();
    start(job);
    for (var j0 = 0u; j0 < p.lk; j0 += p.kv_block) {
        let nk = min(p.kv_block, p.lk - j0);
        workgroupBarrier();
        for (var s = 0u; s < SLOTS; s++) {
            let i = lid + s * QB;
            if i < nk * dh4 {
                let t = j0 + i / dh4;
                k_tile[i] = src1[k_index(job, t, i % dh4)];
                v_tile[i] = src2[v_index(job, t, i % dh4)];
            }
        }
        workgroupBarrier();
        attend_block(nk);
    }
    for (var r = 0u; r < QPT; r++) {
        let t = job.query0 + r * QB;
        for (var d = 0u; d < DH4; d++) {
            if t < p.lq && d < dh4 {
                out3[o_index(job, t, d)] = result(r, d);
            }
        }
    }
}

@compute @workgroup_size(QB)
fn attn_qkv(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = folded_group(wg, nwg);
    if g >= p.groups { return; }
    let job = job_of(g, lid);
    let dh4 = head_vec4s();
    start(job);
    for (var j0 = 0u; j0 < p.lk; j0 += p.kv_block) {
        let nk = min(p.kv_block, p.lk - j0);
        workgroupBarrier();
        for (var s = 0u; s < SLOTS; s++) {
            let i = lid + s * QB;
            if i < nk * dh4 {
                let t = j0 + i / dh4;
                k_tile[i] = src0[k_index(job, t, i % dh4)];
                v_tile[i] = src0[v_index(job, t, i % dh4)];
            }
        }
        workgroupBarrier();
        attend_block(nk);
    }
    for (var r = 0u; r < QPT; r++) {
        let t = job.query0 + r * QB;
        for (var d = 0u; d < DH4; d++) {
            if t < p.lq && d < dh4 {
                out1[o_index(job, t, d)] = result(r, d);
            }
        }
    }
}

@compute @workgroup_size(QB)
fn attn_q_kv(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = folded_group(wg, nwg);
    if g >= p.groups { return; }
    let job = job_of(g, lid);
    let dh4 = head_vec4s();
    start(job);
    for (var j0 = 0u; j0 < p.lk; j0 += p.kv_block) {
        let nk = min(p.kv_block, p.lk - j0);
        workgroupBarrier();
        for (var s = 0u; s < SLOTS; s++) {
            let i = lid + s * QB;
            if i < nk * dh4 {
                let t = j0 + i / dh4;
                k_tile[i] = src1[k_index(job, t, i % dh4)];
                v_tile[i] = src1[v_index(job, t, i % dh4)];
            }
        }
        workgroupBarrier();
        attend_block(nk);
    }
    for (var r = 0u; r < QPT; r++) {
        let t = job.query0 + r * QB;
        for (var d = 0u; d < DH4; d++) {
            if t < p.lq && d < dh4 {
                out2[o_index(job, t, d)] = result(r, d);
            }
        }
    }
}
