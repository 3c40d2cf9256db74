// Multi-head scaled dot-product attention, flash style: softmax(q kᵀ / sqrt(dh)) v computed with
// an online softmax, never materialising the Lq×Lk score matrix.
//
// Layout: tokens channels-last. q [batch, Lq, *], k and v [batch, Lk, *]; head h of a token is the
// dh channels starting at `off + h*dh` of its row (rows of `row` channels), so q, k and v may be
// separate tensors [.., heads*dh] or slices of one packed tensor (fused QKV linear: [q | k | v]).
// Output o [batch, Lq, heads*dh], head h in channels h*dh.. (ready for the output projection).
// All offsets and strides are in vec4 units: dh and every row and offset are multiples of 4.
//
// Tiling: one workgroup = QB queries of one (batch, head); each thread owns one query and keeps
// q (pre-scaled by log2(e)/sqrt(dh)), its running max m, sum l and output accumulator in
// registers (dh ≤ 64). K and V stream through workgroup memory in blocks of `kv_block` keys
// (2 × 8 KiB = 16 KiB); within a block keys go in chunks of 8: 8 scores, one rescale of the
// accumulator by exp2(m_old - m_new), then 8 weighted V rows. Every read of the staged tile has
// the same address in every thread of the workgroup (a broadcast). Keys past Lk get score -3e38
// (exp2 → 0); queries past Lq compute on a clamped row and do not store.
//
// Entry points differ only in their bindings: `attn` (q, k, v, o), `attn_qkv` (qkv, o) and
// `attn_q_kv` (q, kv, o).

struct Params {
    lq: u32,
    lk: u32,
    heads: u32,
    dh4: u32,       // head dim / 4 (1..=16)
    q_row: u32,     // vec4 per token row of q's tensor
    q_off: u32,     // vec4 offset of q's channel 0 within a row
    k_row: u32,
    k_off: u32,
    v_row: u32,
    v_off: u32,
    q_blocks: u32,  // ceil(Lq / QB)
    groups: u32,    // q_blocks * heads * batch
    kv_block: u32,  // keys per staged block: a multiple of 8 with kv_block * dh4 <= KV_VEC4
    scale: f32,     // log2(e) / sqrt(dh)
}

@group(0) @binding(0) var<uniform> p: Params;

const QB: u32 = 64u;          // queries (threads) per workgroup
const DH4_MAX: u32 = 16u;     // dh ≤ 64
const KV_VEC4: u32 = 512u;    // vec4 per staged K (and V) block: 8 KiB each
const CHUNK: u32 = 8u;        // keys per online-softmax update
const NEG: f32 = -3.0e38;     // "minus infinity" (WGSL has no infinities)

var<workgroup> k_tile: array<vec4<f32>, KV_VEC4>;   // [key][d4], row length dh4
var<workgroup> v_tile: array<vec4<f32>, KV_VEC4>;

var<private> q: array<vec4<f32>, DH4_MAX>;
var<private> acc: array<vec4<f32>, DH4_MAX>;
var<private> m_run: f32;
var<private> l_run: f32;

struct Job {
    batch: u32,
    head: u32,
    query: u32,   // clamped to Lq - 1
    valid: bool,  // query < Lq
    lid: u32,
}

fn job_of(g: u32, lid: u32) -> Job {
    let qb = g % p.q_blocks;
    let bh = g / p.q_blocks;
    let qi = qb * QB + lid;
    return Job(bh / p.heads, bh % p.heads, min(qi, p.lq - 1u), qi < p.lq, lid);
}

// vec4 index of channel-vec4 d4 of head `job.head` of token `t` of the current batch item.
fn q_index(job: Job, t: u32, d4: u32) -> u32 {
    return (job.batch * p.lq + t) * p.q_row + p.q_off + job.head * p.dh4 + d4;
}
fn k_index(job: Job, t: u32, d4: u32) -> u32 {
    return (job.batch * p.lk + t) * p.k_row + p.k_off + job.head * p.dh4 + d4;
}
fn v_index(job: Job, t: u32, d4: u32) -> u32 {
    return (job.batch * p.lk + t) * p.v_row + p.v_off + job.head * p.dh4 + d4;
}
fn o_index(job: Job, d4: u32) -> u32 {
    return (job.batch * p.lq + job.query) * (p.heads * p.dh4) + job.head * p.dh4 + d4;
}

fn reset() {
    for (var d = 0u; d < DH4_MAX; d++) {
        acc[d] = vec4<f32>(0.0);
    }
    m_run = NEG;
    l_run = 0.0;
}

// One staged block of `nk` keys (k_tile, v_tile) against this thread's query.
fn attend_block(nk: u32) {
    let dh4 = p.dh4;
    for (var c0 = 0u; c0 < nk; c0 += CHUNK) {
        var s: array<f32, CHUNK>;
        var mx = m_run;
        for (var jj = 0u; jj < CHUNK; jj++) {
            let j = c0 + jj;
            var sj = NEG;
            if j < nk {
                var d4v = vec4<f32>(0.0);
                let base = j * dh4;
                for (var d = 0u; d < DH4_MAX; d++) {
                    if d < dh4 {
                        d4v = fma(q[d], k_tile[base + d], d4v);
                    }
                }
                sj = d4v.x + d4v.y + d4v.z + d4v.w;
            }
            s[jj] = sj;
            mx = max(mx, sj);
        }
        let corr = exp2(m_run - mx);
        m_run = mx;
        var lsum = l_run * corr;
        for (var d = 0u; d < DH4_MAX; d++) {
            acc[d] = acc[d] * corr;
        }
        for (var jj = 0u; jj < CHUNK; jj++) {
            let j = c0 + jj;
            if j < nk {
                let pj = exp2(s[jj] - mx);
                lsum += pj;
                let base = j * dh4;
                for (var d = 0u; d < DH4_MAX; d++) {
                    if d < dh4 {
                        acc[d] = fma(vec4<f32>(pj), v_tile[base + d], acc[d]);
                    }
                }
            }
        }
        l_run = lsum;
    }
}

// ---- bindings and entry points ----------------------------------------------------------------

@group(1) @binding(0) var<storage, read> src0: array<vec4<f32>>;
@group(1) @binding(1) var<storage, read> src1: array<vec4<f32>>;
@group(1) @binding(2) var<storage, read> src2: array<vec4<f32>>;
@group(1) @binding(1) var<storage, read_write> out1: array<vec4<f32>>;
@group(1) @binding(2) var<storage, read_write> out2: array<vec4<f32>>;
@group(1) @binding(3) var<storage, read_write> out3: array<vec4<f32>>;

// q always comes from binding 0.
fn load_q(job: Job) {
    for (var d = 0u; d < DH4_MAX; d++) {
        var v = vec4<f32>(0.0);
        if d < p.dh4 {
            v = src0[q_index(job, job.query, d)] * p.scale;
        }
        q[d] = v;
    }
}

// Per-thread share of one block's staging: slot i of the tile is key i / dh4, vec4 i % dh4.
const SLOTS: u32 = KV_VEC4 / QB;

@compute @workgroup_size(QB)
fn attn(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = folded_group(wg, nwg);
    if g >= p.groups { return; }
    let job = job_of(g, lid);
    load_q(job);
    reset();
    for (var j0 = 0u; j0 < p.lk; j0 += p.kv_block) {
        let nk = min(p.kv_block, p.lk - j0);
        workgroupBarrier();
        for (var s = 0u; s < SLOTS; s++) {
            let i = lid + s * QB;
            if i < nk * p.dh4 {
                let t = j0 + i / p.dh4;
                let d = i % p.dh4;
                k_tile[i] = src1[k_index(job, t, d)];
                v_tile[i] = src2[v_index(job, t, d)];
            }
        }
        workgroupBarrier();
        attend_block(nk);
    }
    if job.valid {
        let inv = 1.0 / l_run;
        for (var d = 0u; d < DH4_MAX; d++) {
            if d < p.dh4 {
                out3[o_index(job, d)] = acc[d] * inv;
            }
        }
    }
}

@compute @workgroup_size(QB)
fn attn_qkv(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = folded_group(wg, nwg);
    if g >= p.groups { return; }
    let job = job_of(g, lid);
    load_q(job);
    reset();
    for (var j0 = 0u; j0 < p.lk; j0 += p.kv_block) {
        let nk = min(p.kv_block, p.lk - j0);
        workgroupBarrier();
        for (var s = 0u; s < SLOTS; s++) {
            let i = lid + s * QB;
            if i < nk * p.dh4 {
                let t = j0 + i / p.dh4;
                let d = i % p.dh4;
                k_tile[i] = src0[k_index(job, t, d)];
                v_tile[i] = src0[v_index(job, t, d)];
            }
        }
        workgroupBarrier();
        attend_block(nk);
    }
    if job.valid {
        let inv = 1.0 / l_run;
        for (var d = 0u; d < DH4_MAX; d++) {
            if d < p.dh4 {
                out1[o_index(job, d)] = acc[d] * inv;
            }
        }
    }
}

@compute @workgroup_size(QB)
fn attn_q_kv(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = folded_group(wg, nwg);
    if g >= p.groups { return; }
    let job = job_of(g, lid);
    load_q(job);
    reset();
    for (var j0 = 0u; j0 < p.lk; j0 += p.kv_block) {
        let nk = min(p.kv_block, p.lk - j0);
        workgroupBarrier();
        for (var s = 0u; s < SLOTS; s++) {
            let i = lid + s * QB;
            if i < nk * p.dh4 {
                let t = j0 + i / p.dh4;
                let d = i % p.dh4;
                k_tile[i] = src1[k_index(job, t, d)];
                v_tile[i] = src1[v_index(job, t, d)];
            }
        }
        workgroupBarrier();
        attend_block(nk);
    }
    if job.valid {
        let inv = 1.0 / l_run;
        for (var d = 0u; d < DH4_MAX; d++) {
            if d < p.dh4 {
                out2[o_index(job, d)] = acc[d] * inv;
            }
        }
    }
}
