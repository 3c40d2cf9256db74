// Normalisations on channels-last tensors.
//
// GroupNorm over x [N, R, C] (R = H·W), G groups of Cg = C/G channels, in three dispatches:
//   1. gn_stats: one workgroup per (n, chunk of rows, block of ≤ 256 channels). Thread t owns
//      channel t % Cb of the block and rows lane, lane + lanes, ... of the chunk (lanes = 256 / Cb),
//      so a warp reads consecutive channels of a row. Each thread sums d = x − first and d² (first:
//      its first value, which keeps the sums well conditioned when |mean| ≫ std), turns them into
//      (count, mean − K, M2) with K the group's pivot x[n, 0, g·Cg], the threads of one channel
//      merge theirs (Chan et al.), and the workgroup writes per-channel partials (mean − K, M2) of
//      its chunk: partial[n, chunk, c] (and the pivots K after them).
//   2. gn_finalize(_film): one workgroup per (n, group) merges the chunks × Cg partials of the
//      group (Chan merge, then a tree over 256 threads), computes rstd = 1/sqrt(M2/count + eps) and
//      folds γ, β and the optional FiLM (scale, shift) into per-(n, c) coefficients
//      coef[n] = [K (C) | a (C) | b (C)] with a = rstd·γ·(1 + scale),
//      b = β·(1 + scale) + shift − (mean − K)·a.
//   3. gn_apply(_vec4): y = act((x − K)·a + b), one thread per element (vec4 when C % 4 == 0).
//      x − K is exact for x within a factor 2 of K, so a large common offset costs no precision.
//
// LayerNorm over the last axis: a team of 16 threads per row (16 rows per workgroup: few barriers
// per row; a team's vec4 loads cover 256 contiguous bytes), two passes
// (mean, then the mean of squared deviations) reduced in shared memory, then
// y = act((x − mean)·rstd·γ + β); vec4 loads when d % 4 == 0. Everything is computed relative to
// the row's first element (x − x0 is exact near x0), so a large common offset loses nothing.

struct Params {
    n: u32,           // batch (GN); rows (LN)
    rows: u32,        // R = H·W per batch item (GN)
    c: u32,           // channels (GN); d (LN), in vec4 units in ln_vec4
    groups: u32,
    cg: u32,          // channels per group
    chunk_rows: u32,  // rows per stats chunk
    chunks: u32,      // chunks per batch item
    cblock: u32,      // channels per stats workgroup (≤ 256)
    cblocks: u32,
    eps: f32,
    act: u32,
    len: u32,         // elements written by gn_apply (vec4s in gn_apply_vec4)
    d_real: u32,      // LN: d in scalars (the mean's divisor)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

@group(1) @binding(0) var<storage, read> x_in: array<f32>;
@group(1) @binding(0) var<storage, read> x_in4: array<vec4<f32>>;
@group(1) @binding(0) var<storage, read> part_in: array<vec2<f32>>;

@group(1) @binding(1) var<storage, read_write> part_out: array<vec2<f32>>;
@group(1) @binding(1) var<storage, read> gamma: array<f32>;
@group(1) @binding(1) var<storage, read> gamma4: array<vec4<f32>>;
@group(1) @binding(1) var<storage, read> coef_in: array<f32>;
@group(1) @binding(1) var<storage, read> coef_in4: array<vec4<f32>>;

@group(1) @binding(2) var<storage, read> beta: array<f32>;
@group(1) @binding(2) var<storage, read> beta4: array<vec4<f32>>;
@group(1) @binding(2) var<storage, read_write> y_out: array<f32>;
@group(1) @binding(2) var<storage, read_write> y_out4: array<vec4<f32>>;
@group(1) @binding(2) var<storage, read> pivot_in: array<vec2<f32>>;

@group(1) @binding(3) var<storage, read_write> coef_out: array<f32>;
@group(1) @binding(3) var<storage, read> film: array<f32>;
@group(1) @binding(3) var<storage, read_write> ln_out: array<f32>;
@group(1) @binding(3) var<storage, read_write> ln_out4: array<vec4<f32>>;

@group(1) @binding(4) var<storage, read_write> coef_out_film: array<f32>;

var<workgroup> sm_cnt: array<f32, 256>;
var<workgroup> sm_mean: array<f32, 256>;
var<workgroup> sm_m2: array<f32, 256>;

// Chan et al. merge of (count, mean, M2) statistics; empty sides are neutral.
struct Stats {
    cnt: f32,
    mean: f32,
    m2: f32,
}

fn merge(a: Stats, b: Stats) -> Stats {
    if b.cnt == 0.0 { return a; }
    if a.cnt == 0.0 { return b; }
    let cnt = a.cnt + b.cnt;
    let delta = b.mean - a.mean;
    let wb = b.cnt / cnt;
    return Stats(cnt, a.mean + delta * wb, a.m2 + b.m2 + delta * delta * a.cnt * wb);
}

fn load_stats(i: u32) -> Stats {
    return Stats(sm_cnt[i], sm_mean[i], sm_m2[i]);
}

fn store_stats(i: u32, s: Stats) {
    sm_cnt[i] = s.cnt;
    sm_mean[i] = s.mean;
    sm_m2[i] = s.m2;
}

// One stats workgroup's share: channel block cb of rows [r0, r1) of chunk `chunk` of item n.
struct StatsJob {
    n: u32,
    chunk: u32,
    c: u32,      // this thread's channel
    cbn: u32,    // channels in this block
    lanes: u32,
    lane: u32,
    r0: u32,
    r1: u32,
}

// The image a stats workgroup works on; uniform per workgroup.
fn stats_image(wgi: u32) -> u32 {
    return wgi / p.cblocks / p.chunks;
}

fn stats_job(wgi: u32, lid: u32) -> StatsJob {
    let cb = wgi % p.cblocks;
    let t = wgi / p.cblocks;
    let c0 = cb * p.cblock;
    let cbn = min(p.cblock, p.c - c0);
    let r0 = (t % p.chunks) * p.chunk_rows;
    return StatsJob(t / p.chunks, t % p.chunks, c0 + lid % cbn, cbn, 256u / cbn, lid / cbn, r0, min(r0 + p.chunk_rows, p.rows));
}

// Statistics are kept relative to the group's pivot K (x[n, 0, first channel of the group]), so
// a large common offset never enters the f32 mean that the apply pass subtracts. Writes the
// (mean − K, M2) partial of this thread's channel over the chunk.
fn stats_accumulate(j: StatsJob, k_pivot: f32, lid: u32) {
    var s = Stats(0.0, 0.0, 0.0);
    if j.lane < j.lanes && j.r0 + j.lane < j.r1 {
        let base = j.n * p.rows * p.c + j.c;
        let first = x_in[base + (j.r0 + j.lane) * p.c];
        var s1 = 0.0;
        var s2 = 0.0;
        var cnt = 0u;
        for (var r = j.r0 + j.lane; r < j.r1; r += j.lanes) {
            let d = x_in[base + r * p.c] - first;
            s1 += d;
            s2 += d * d;
            cnt += 1u;
        }
        let fc = f32(cnt);
        s = Stats(fc, (first - k_pivot) + s1 / fc, max(s2 - s1 * s1 / fc, 0.0));
    }
    store_stats(lid, s);
    workgroupBarrier();
    if lid < j.cbn {
        var acc = s;
        for (var l = 1u; l < j.lanes; l++) {
            acc = merge(acc, load_stats(l * j.cbn + lid));
        }
        part_out[(j.n * p.chunks + j.chunk) * p.c + j.c] = vec2<f32>(acc.mean, acc.m2);
    }
}

@compute @workgroup_size(256)
fn gn_stats(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let wgi = folded_group(wg, nwg);
    // Excess groups of a folded dispatch leave; the test must not involve lid (Tint's uniformity
    // analysis would then reject the barrier in stats_accumulate).
    if stats_image(wgi) >= p.n { return; }
    let j = stats_job(wgi, lid);
    let k_pivot = x_in[j.n * p.rows * p.c + (j.c / p.cg) * p.cg];
    stats_accumulate(j, k_pivot, lid);
    // The pivots follow the partials: [N, G] after [N, chunks, C].
    if lid < j.cbn && j.chunk == 0u && j.c % p.cg == 0u {
        part_out[p.n * p.chunks * p.c + j.n * p.groups + j.c / p.cg] = vec2<f32>(k_pivot, 0.0);
    }
}

// gn_stats for one row band of a tensor too large to bind (backend::bands): the pivots are the
// first band's, read from pivot_in at index p.len + n·G + g, so every band's partials share them.
@compute @workgroup_size(256)
fn gn_stats_pivot(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let wgi = folded_group(wg, nwg);
    if stats_image(wgi) >= p.n { return; }
    let j = stats_job(wgi, lid);
    stats_accumulate(j, pivot_in[p.len + j.n * p.groups + j.c / p.cg].x, lid);
}

// Merges the partials of group (n, g) over the workgroup; returns (pivot K, mean − K, rstd) to
// every thread.
fn group_stats(n: u32, g: u32, lid: u32) -> vec3<f32> {
    var acc = Stats(0.0, 0.0, 0.0);
    let items = p.chunks * p.cg;
    for (var j = lid; j < items; j += 256u) {
        let k = j / p.cg;
        let c = g * p.cg + j % p.cg;
        let ms = part_in[(n * p.chunks + k) * p.c + c];
        let cnt = f32(min(p.chunk_rows, p.rows - k * p.chunk_rows));
        acc = merge(acc, Stats(cnt, ms.x, ms.y));
    }
    store_stats(lid, acc);
    for (var stride = 128u; stride > 0u; stride >>= 1u) {
        workgroupBarrier();
        if lid < stride {
            acc = merge(acc, load_stats(lid + stride));
            store_stats(lid, acc);
        }
    }
    workgroupBarrier();
    let total = load_stats(0u);
    let var_ = total.m2 / max(total.cnt, 1.0);
    let k_pivot = part_in[p.n * p.chunks * p.c + n * p.groups + g].x;
    return vec3<f32>(k_pivot, total.mean, inverseSqrt(var_ + p.eps));
}

fn group_index(wg: vec3<u32>, nwg: vec3<u32>) -> vec2<u32> {
    let wgi = folded_group(wg, nwg);
    return vec2<u32>(wgi / p.groups, wgi % p.groups);
}

@compute @workgroup_size(256)
fn gn_finalize(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let ng = group_index(wg, nwg);
    if ng.x >= p.n { return; }
    let st = group_stats(ng.x, ng.y, lid);
    for (var j = lid; j < p.cg; j += 256u) {
        let c = ng.y * p.cg + j;
        let base = ng.x * 3u * p.c + c;
        let a = st.z * gamma[c];
        coef_out[base] = st.x;
        coef_out[base + p.c] = a;
        coef_out[base + 2u * p.c] = beta[c] - st.y * a;
    }
}

@compute @workgroup_size(256)
fn gn_finalize_film(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let ng = group_index(wg, nwg);
    if ng.x >= p.n { return; }
    let st = group_stats(ng.x, ng.y, lid);
    for (var j = lid; j < p.cg; j += 256u) {
        let c = ng.y * p.cg + j;
        let scale = 1.0 + film[ng.x * 2u * p.c + c];
        let shift = film[ng.x * 2u * p.c + p.c + c];
        let base = ng.x * 3u * p.c + c;
        let a = st.z * gamma[c] * scale;
        coef_out_film[base] = st.x;
        coef_out_film[base + p.c] = a;
        coef_out_film[base + 2u * p.c] = (beta[c] * scale + shift) - st.y * a;
    }
}

@compute @workgroup_size(256)
fn gn_apply(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = folded_group(wg, nwg) * 256u + lid;
    if i >= p.len { return; }
    let c = i % p.c;
    let base = (i / (p.rows * p.c)) * 3u * p.c + c;
    y_out[i] = activate((x_in[i] - coef_in[base]) * coef_in[base + p.c] + coef_in[base + 2u * p.c], p.act);
}

fn activate4(v: vec4<f32>, act: u32) -> vec4<f32> {
    return vec4<f32>(activate(v.x, act), activate(v.y, act), activate(v.z, act), activate(v.w, act));
}

// p.c in vec4 units.
@compute @workgroup_size(256)
fn gn_apply_vec4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = folded_group(wg, nwg) * 256u + lid;
    if i >= p.len { return; }
    let c = i % p.c;
    let base = (i / (p.rows * p.c)) * 3u * p.c + c;
    y_out4[i] = activate4((x_in4[i] - coef_in4[base]) * coef_in4[base + p.c] + coef_in4[base + 2u * p.c], p.act);
}

// ---- LayerNorm ---------------------------------------------------------------------------------
const LN_TEAM: u32 = 16u;
const LN_ROWS: u32 = 16u;

var<workgroup> red: array<f32, 256>;

// Sum of v over the LN_TEAM-thread team of lid (every thread gets the total).
fn team_sum(v: f32, lid: u32) -> f32 {
    let lane = lid % LN_TEAM;
    red[lid] = v;
    for (var s = LN_TEAM / 2u; s > 0u; s >>= 1u) {
        workgroupBarrier();
        if lane < s { red[lid] += red[lid + s]; }
    }
    workgroupBarrier();
    let total = red[lid - lane];
    workgroupBarrier();
    return total;
}

@compute @workgroup_size(256)
fn layer_norm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = folded_group(wg, nwg) * LN_ROWS + lid / LN_TEAM;
    let lane = lid % LN_TEAM;
    let live = row < p.n;
    let base = row * p.c;
    var pivot = 0.0;
    var s = 0.0;
    if live {
        pivot = x_in[base];
        for (var j = lane; j < p.c; j += LN_TEAM) { s += x_in[base + j] - pivot; }
    }
    let mean = team_sum(s, lid) / f32(p.d_real);  // relative to the pivot
    var q = 0.0;
    if live {
        for (var j = lane; j < p.c; j += LN_TEAM) {
            let d = (x_in[base + j] - pivot) - mean;
            q += d * d;
        }
    }
    let rstd = inverseSqrt(team_sum(q, lid) / f32(p.d_real) + p.eps);
    if live {
        for (var j = lane; j < p.c; j += LN_TEAM) {
            ln_out[base + j] = activate(((x_in[base + j] - pivot) - mean) * rstd * gamma[j] + beta[j], p.act);
        }
    }
}

// p.c = d / 4.
@compute @workgroup_size(256)
fn layer_norm_vec4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = folded_group(wg, nwg) * LN_ROWS + lid / LN_TEAM;
    let lane = lid % LN_TEAM;
    let live = row < p.n;
    let base = row * p.c;
    var pivot = 0.0;
    var s = vec4<f32>(0.0);
    if live {
        pivot = x_in4[base].x;
        for (var j = lane; j < p.c; j += LN_TEAM) { s += x_in4[base + j] - pivot; }
    }
    let mean = team_sum(s.x + s.y + s.z + s.w, lid) / f32(p.d_real);  // relative to the pivot
    var q = vec4<f32>(0.0);
    if live {
        for (var j = lane; j < p.c; j += LN_TEAM) {
            let d = (x_in4[base + j] - pivot) - mean;
            q += d * d;
        }
    }
    let rstd = inverseSqrt(team_sum(q.x + q.y + q.z + q.w, lid) / f32(p.d_real) + p.eps);
    if live {
        for (var j = lane; j < p.c; j += LN_TEAM) {
            ln_out4[base + j] = activate4(((x_in4[base + j] - pivot) - mean) * rstd * gamma4[j] + beta4[j], p.act);
        }
    }
}
