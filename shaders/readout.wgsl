// Readout: the sampler's last step → class and instance ids (src/ops/readout.rs has the
// definition and the CPU twin; train/pix2seqd_train/readout.py the Python one). The class group
// reads the logits, channels last [Hm, Wm, 2^class_bits + 2^instance_bits], class group first;
// the instance group reads x̂0's instance bits, [Hm, Wm, class_bits + instance_bits].

struct Params {
    mask_h: u32,
    mask_w: u32,
    out_h: u32,
    out_w: u32,
    class_count: u32,      // valid class ids: min(2^class_bits, num_classes)
    instance_count: u32,   // valid instance ids: min(2^instance_bits, max_instances)
    instance_offset: u32,  // 2^class_bits: where the instance group starts in a cell's logits
    cell_logits: u32,      // 2^class_bits + 2^instance_bits
    scale_y: f32,          // mask cells per output pixel: content_h·Hm / (out_h·canvas_h)
    scale_x: f32,
    out_row0: u32,         // row bands: the first output row of this dispatch (out_h = its rows)
    cell_row0: u32,        // row bands: the first cell row the cell buffers hold
    class_bits: u32,
    instance_bits: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// Both entry points read the last step: logits (the class group) and x̂0 (the instance group).
@group(1) @binding(0) var<storage, read> logits: array<f32>;
@group(1) @binding(1) var<storage, read> x0: array<f32>;

// The cells (00, 01, 10, 11) around a pixel and their bilinear weights; a cell on its own is
// four times itself with weights (1, 0, 0, 0), which mixes every value to itself exactly.
struct Corners {
    cells: vec4<u32>,
    w: vec4<f32>,
}

fn at_cell(cell: u32) -> Corners {
    return Corners(vec4<u32>(cell), vec4<f32>(1.0, 0.0, 0.0, 0.0));
}

fn mix4(c: Corners, x: vec4<f32>) -> f32 {
    return ((c.w.x * x.x + c.w.y * x.y) + c.w.z * x.z) + c.w.w * x.w;
}

fn mixed_logit(c: Corners, v: u32) -> f32 {
    let base = c.cells * p.cell_logits + vec4<u32>(v);
    return mix4(c, vec4<f32>(logits[base.x], logits[base.y], logits[base.z], logits[base.w]));
}

// Void when the (mixed) void probability is ≥ 0.5 or void is the only valid class; else the
// non-void class of the first largest mixed logit (ties: the smaller id).
fn class_of(c: Corners, void_probability: f32) -> u32 {
    if p.class_count == 1u || void_probability >= 0.5 {
        return 0u;
    }
    var best = 1u;
    var best_score = mixed_logit(c, 1u);
    for (var v = 2u; v < p.class_count; v++) {
        let s = mixed_logit(c, v);
        if s > best_score {
            best_score = s;
            best = v;
        }
    }
    return best;
}

// The (mixed) x̂0 instance bits thresholded at 0, capped at the largest valid id.
fn instance_of(c: Corners) -> u32 {
    let base = c.cells * (p.class_bits + p.instance_bits) + vec4<u32>(p.class_bits);
    var id = 0u;
    for (var k = 0u; k < p.instance_bits; k++) {
        let m = mix4(c, vec4<f32>(x0[base.x + k], x0[base.y + k], x0[base.z + k], x0[base.w + k]));
        id |= select(0u, 1u << k, m > 0.0);
    }
    return min(id, p.instance_count - 1u);
}

// ---- (1) cells: one thread per mask cell ------------------------------------------------------
@group(1) @binding(2) var<storage, read_write> cell_class_out: array<u32>;
@group(1) @binding(3) var<storage, read_write> cell_instance_out: array<u32>;
@group(1) @binding(4) var<storage, read_write> cell_class_void_out: array<f32>;

@compute @workgroup_size(256)
fn cell_ids(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let cell = folded_group(wg, nwg) * 256u + lid;
    if cell >= p.mask_h * p.mask_w { return; }
    // The class group's void probability 1 / Σ_v exp(l_v − l_0), summed in id order.
    let base = cell * p.cell_logits;
    var sum = 0.0;
    for (var v = 0u; v < p.class_count; v++) {
        sum += exp(logits[base + v] - logits[base]);
    }
    let void_probability = 1.0 / sum;
    cell_class_void_out[cell] = void_probability;
    cell_class_out[cell] = class_of(at_cell(cell), void_probability);
    cell_instance_out[cell] = instance_of(at_cell(cell));
}

// ---- (2) bilinear readout at output resolution: one thread per output pixel -------------------
// Where the four surrounding cells agree on a group's id, that id (a convex combination keeps
// what all corners share); elsewhere the class and instance of the mixed values.
@group(1) @binding(2) var<storage, read> cell_class: array<u32>;
@group(1) @binding(3) var<storage, read> cell_instance: array<u32>;
@group(1) @binding(4) var<storage, read> cell_class_void: array<f32>;
@group(1) @binding(5) var<storage, read_write> class_out: array<u32>;
@group(1) @binding(6) var<storage, read_write> instance_out: array<u32>;

struct Axis {
    lo: u32,
    hi: u32,
    t: f32,
}

// Output index i → its two cells along an axis of `len` cells and the weight of the second.
fn axis(i: u32, scale: f32, len: u32) -> Axis {
    let f = (f32(i) + 0.5) * scale - 0.5;
    let fl = floor(f);
    let last = i32(len) - 1;
    let i0 = i32(fl);
    return Axis(u32(clamp(i0, 0, last)), u32(clamp(i0 + 1, 0, last)), f - fl);
}

fn agreed(ids: vec4<u32>) -> bool {
    return ids.x == ids.y && ids.x == ids.z && ids.x == ids.w;
}

@compute @workgroup_size(256)
fn readout(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = folded_group(wg, nwg) * 256u + lid;
    if i >= p.out_h * p.out_w { return; }
    let y = axis(i / p.out_w + p.out_row0, p.scale_y, p.mask_h);
    let x = axis(i % p.out_w, p.scale_x, p.mask_w);
    let lo = (y.lo - p.cell_row0) * p.mask_w;
    let hi = (y.hi - p.cell_row0) * p.mask_w;
    let cells = vec4<u32>(lo + x.lo, lo + x.hi, hi + x.lo, hi + x.hi);
    let corners = Corners(cells, vec4<f32>((1.0 - y.t) * (1.0 - x.t), (1.0 - y.t) * x.t, y.t * (1.0 - x.t), y.t * x.t));
    let classes = vec4<u32>(cell_class[cells.x], cell_class[cells.y], cell_class[cells.z], cell_class[cells.w]);
    if agreed(classes) {
        class_out[i] = classes.x;
    } else {
        let voids = vec4<f32>(cell_class_void[cells.x], cell_class_void[cells.y], cell_class_void[cells.z], cell_class_void[cells.w]);
        class_out[i] = class_of(corners, mix4(corners, voids));
    }
    let instances = vec4<u32>(cell_instance[cells.x], cell_instance[cells.y], cell_instance[cells.z], cell_instance[cells.w]);
    if agreed(instances) {
        instance_out[i] = instances.x;
    } else {
        instance_out[i] = instance_of(corners);
    }
}
