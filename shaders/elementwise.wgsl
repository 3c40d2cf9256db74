// Element-wise kernels, one thread per element: y = act((a + b) * alpha), y = act(x * alpha + beta),
// and FiLM y = act(x * (1 + scale[n, c]) + shift[n, c]) for channels-last x.

struct Params {
    len: u32,        // elements of the output
    channels: u32,   // C of channels-last x (film)
    per_batch: u32,  // elements of one batch item (film)
    act: u32,
    alpha: f32,
    beta: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(1) @binding(0) var<storage, read> a: array<f32>;
@group(1) @binding(1) var<storage, read> b: array<f32>;
@group(1) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn add(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = folded_group(wg, nwg) * 256u + lid;
    if i >= p.len { return; }
    y[i] = activate((a[i] + b[i]) * p.alpha, p.act);
}

// b holds [N, 2C]: the scale in the first C channels, the shift in the last C (one Dense(emb -> 2C)
// output, split as the official ResBlock does).
@compute @workgroup_size(256)
fn film(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = folded_group(wg, nwg) * 256u + lid;
    if i >= p.len { return; }
    let n = i / p.per_batch;
    let c = i % p.channels;
    let base = n * 2u * p.channels;
    y[i] = activate(a[i] * (1.0 + b[base + c]) + b[base + p.channels + c], p.act);
}

// y = act(x * alpha + beta): binds x at 0 and y at 1, so it declares its own output variable
// (WGSL allows two variables on one binding when no entry point uses both).
@group(1) @binding(1) var<storage, read_write> y_unary: array<f32>;

@compute @workgroup_size(256)
fn unary(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = folded_group(wg, nwg) * 256u + lid;
    if i >= p.len { return; }
    y_unary[i] = activate(a[i] * p.alpha + p.beta, p.act);
}
