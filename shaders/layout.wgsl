// Layout kernels on channels-last tensors, one thread per output element (per vec4 of 4 channels
// in the *_vec4 entries, used when every channel count and offset is a multiple of 4).
//
// - copy_window: dst[r, dst_off + j] = src[r, src_off + j] for rows r < rows, j < width. Concat
//   along channels is one copy_window per part; slicing channels or tokens is one copy_window
//   (tokens [N, L, C] are rows of L·C).
// - upsample: nearest, integer factors fy, fx: out[n, y, x, c] = in[n, y / fy, x / fx, c]
//   (+ skip[n, y, x, c] in upsample_add, the fusion block's x_hr + Upsample(y)).
// - tokens_pos_append: out[n, l, c] = x[n, l, c] + pos[l, c] for l < L, token[n, c] for l = L.

struct Params {
    len: u32,        // output elements (vec4s in the vec4 entries) this dispatch writes
    rows: u32,
    width: u32,      // copy_window: elements per row copied; upsample/tokens: C
    src_stride: u32, // copy_window: src row length
    dst_stride: u32, // copy_window: dst row length
    src_off: u32,
    dst_off: u32,
    h: u32,          // upsample: input H; tokens: L
    w: u32,          // upsample: input W
    fy: u32,
    fx: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

fn flat(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return folded_group(wg, nwg) * 256u + lid;
}

// ---- copy_window -------------------------------------------------------------------------------
@group(1) @binding(0) var<storage, read> src: array<f32>;
@group(1) @binding(1) var<storage, read_write> dst: array<f32>;
@group(1) @binding(0) var<storage, read> src4: array<vec4<f32>>;
@group(1) @binding(1) var<storage, read_write> dst4: array<vec4<f32>>;

@compute @workgroup_size(256)
fn copy_window(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat(wg, nwg, lid);
    if i >= p.len { return; }
    let r = i / p.width;
    let j = i % p.width;
    dst[r * p.dst_stride + p.dst_off + j] = src[r * p.src_stride + p.src_off + j];
}

// All of width, strides and offsets in vec4 units.
@compute @workgroup_size(256)
fn copy_window_vec4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat(wg, nwg, lid);
    if i >= p.len { return; }
    let r = i / p.width;
    let j = i % p.width;
    dst4[r * p.dst_stride + p.dst_off + j] = src4[r * p.src_stride + p.src_off + j];
}

// ---- nearest upsample (+ skip) ----------------------------------------------------------------
// Output element i (channels c = i % C fastest) reads input pixel (n, y / fy, x / fx).
fn upsample_source(i: u32, c_units: u32) -> u32 {
    let c = i % c_units;
    let pix = i / c_units;
    let wo = p.w * p.fx;
    let ho = p.h * p.fy;
    let x = pix % wo;
    let t = pix / wo;
    let y = t % ho;
    let n = t / ho;
    return ((n * p.h + y / p.fy) * p.w + x / p.fx) * c_units + c;
}

@group(1) @binding(1) var<storage, read> skip: array<f32>;
@group(1) @binding(2) var<storage, read_write> up_out: array<f32>;
@group(1) @binding(1) var<storage, read> skip4: array<vec4<f32>>;
@group(1) @binding(2) var<storage, read_write> up_out4: array<vec4<f32>>;

@compute @workgroup_size(256)
fn upsample(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat(wg, nwg, lid);
    if i >= p.len { return; }
    dst[i] = src[upsample_source(i, p.width)];
}

@compute @workgroup_size(256)
fn upsample_vec4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat(wg, nwg, lid);
    if i >= p.len { return; }
    dst4[i] = src4[upsample_source(i, p.width)];
}

@compute @workgroup_size(256)
fn upsample_add(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat(wg, nwg, lid);
    if i >= p.len { return; }
    up_out[i] = skip[i] + src[upsample_source(i, p.width)];
}

@compute @workgroup_size(256)
fn upsample_add_vec4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat(wg, nwg, lid);
    if i >= p.len { return; }
    up_out4[i] = skip4[i] + src4[upsample_source(i, p.width)];
}

// ---- tokens + position code, then the appended token ------------------------------------------
@group(1) @binding(1) var<storage, read> token: array<f32>;
@group(1) @binding(2) var<storage, read> pos: array<f32>;
@group(1) @binding(3) var<storage, read_write> tok_out: array<f32>;

@compute @workgroup_size(256)
fn tokens_pos_append(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat(wg, nwg, lid);
    if i >= p.len { return; }
    let c = i % p.width;
    let t = i / p.width;
    let l = t % (p.h + 1u);
    let n = t / (p.h + 1u);
    if l < p.h {
        tok_out[i] = src[(n * p.h + l) * p.width + c] + pos[l * p.width + c];
    } else {
        tok_out[i] = token[n * p.width + c];
    }
}
