// Render: class / instance maps -> RGBA8 overlay on the original image, with segment outlines.
// One thread per output pixel (the original image size).
//
// image:    [orig_h, orig_w] u32 packed RGBA8 (byte 0 = R)
// class:    [map_h, map_w] u32, instance: [map_h, map_w] u32 (maps of the canvas at mask resolution)
// palette:  [classes] u32 packed RGB(A)8 per class id; isthing: [classes] u32 0/1
// out:      [orig_h, orig_w] u32 packed RGBA8, alpha 255
//
// Mapping (train/.../data/common.py unletterbox, nearest at pixel centres, in exact integers):
//   row_c = min(floor((2y + 1)·content_h / (2·orig_h)), content_h - 1)      original -> content
//   row_m = min(floor((2row_c + 1)·map_h / (2·canvas_h)), map_h - 1)         canvas -> mask
// and the same for columns.
// Colour: void (class 0) keeps the image; stuff, and things without an instance id, take the
// class colour; a thing instance takes its own colour, derived from the instance id alone (so it
// stays put while streaming keeps the id) and tinted by the class: (3·class + 5·hue(id) + 4) / 8
// per channel in integers, where hue(id) is a saturated colour at hue frac(id·0.618…) (the top 16
// bits of id·0x9E3779B9, then an integer HSV → RGB at value 235, minimum 60). All of it is integer
// arithmetic, so the CPU twin (src/ops/render.rs, `segment_color`) gives the same bytes, and the
// page reports each segment's colour exactly as drawn. The colour is mixed with the image:
// image·(1 - opacity) + colour·opacity, rounded.
// Outlines (panoptic.py instance_boundaries on the mapped labels): a non-void pixel whose right or
// lower neighbour has another (class, instance) is white (when `outline` is set).

struct Params {
    orig_h: u32,
    orig_w: u32,
    canvas_h: u32,
    canvas_w: u32,
    content_h: u32,
    content_w: u32,
    map_h: u32,
    map_w: u32,
    classes: u32,
    pixels: u32,     // orig_h * orig_w
    opacity: f32,
    outline: u32,    // 0: no outlines
}

@group(0) @binding(0) var<uniform> p: Params;
@group(1) @binding(0) var<storage, read> image: array<u32>;
@group(1) @binding(1) var<storage, read> class_map: array<u32>;
@group(1) @binding(2) var<storage, read> instance_map: array<u32>;
@group(1) @binding(3) var<storage, read> palette: array<u32>;
@group(1) @binding(4) var<storage, read> isthing: array<u32>;
@group(1) @binding(5) var<storage, read_write> out: array<u32>;

fn nearest(i: u32, src: u32, dst: u32) -> u32 {
    return min((2u * i + 1u) * dst / (2u * src), dst - 1u);
}

// Index into the maps of original pixel (y, x).
fn map_index(y: u32, x: u32) -> u32 {
    let row = nearest(nearest(y, p.orig_h, p.content_h), p.canvas_h, p.map_h);
    let col = nearest(nearest(x, p.orig_w, p.content_w), p.canvas_w, p.map_w);
    return row * p.map_w + col;
}

// The instance colour's value and minimum channel (HSV with v = 235/255, s = 1 - 60/235).
const HUE_MAX: u32 = 235u;
const HUE_MIN: u32 = 60u;

// A saturated colour at hue frac(id·0.618…), in integers (src/ops/render.rs `hue_color`).
fn hue_color(id: u32) -> vec3<u32> {
    let h6 = ((id * 0x9E3779B9u) >> 16u) * 6u;
    let f = h6 & 0xFFFFu;
    let rise = HUE_MIN + (((HUE_MAX - HUE_MIN) * f) >> 16u);
    let fall = HUE_MAX - (((HUE_MAX - HUE_MIN) * f) >> 16u);
    var c = vec3<u32>(HUE_MAX, HUE_MIN, fall);
    switch h6 >> 16u {
        case 0u: { c = vec3<u32>(HUE_MAX, rise, HUE_MIN); }
        case 1u: { c = vec3<u32>(fall, HUE_MAX, HUE_MIN); }
        case 2u: { c = vec3<u32>(HUE_MIN, HUE_MAX, rise); }
        case 3u: { c = vec3<u32>(HUE_MIN, fall, HUE_MAX); }
        case 4u: { c = vec3<u32>(rise, HUE_MIN, HUE_MAX); }
        default: {}
    }
    return c;
}

// The colour a segment is drawn in (src/ops/render.rs `segment_color`).
fn segment_color(class_px: u32, thing: bool, inst: u32) -> vec3<u32> {
    let k = vec3<u32>(class_px & 0xFFu, (class_px >> 8u) & 0xFFu, (class_px >> 16u) & 0xFFu);
    if !thing || inst == 0u {
        return k;
    }
    return (3u * k + 5u * hue_color(inst) + vec3<u32>(4u)) >> vec3<u32>(3u);
}

fn rgb(px: u32) -> vec3<f32> {
    return vec3<f32>(f32(px & 0xFFu), f32((px >> 8u) & 0xFFu), f32((px >> 16u) & 0xFFu));
}

@compute @workgroup_size(256)
fn overlay(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = folded_group(wg, nwg) * 256u + lid;
    if i >= p.pixels { return; }
    let y = i / p.orig_w;
    let x = i % p.orig_w;
    let m = map_index(y, x);
    let cls = class_map[m];
    let inst = instance_map[m];
    let px = image[i];
    if cls == 0u {
        out[i] = px | 0xFF000000u;
        return;
    }
    var edge = false;
    if x + 1u < p.orig_w {
        let n = map_index(y, x + 1u);
        edge = class_map[n] != cls || instance_map[n] != inst;
    }
    if y + 1u < p.orig_h {
        let n = map_index(y + 1u, x);
        edge = edge || class_map[n] != cls || instance_map[n] != inst;
    }
    if edge && p.outline != 0u {
        out[i] = 0xFFFFFFFFu;
        return;
    }
    let k = min(cls, p.classes - 1u);
    let color = vec3<f32>(segment_color(palette[k], isthing[k] != 0u, inst));
    let mixed = rgb(px) * (1.0 - p.opacity) + color * p.opacity;
    let v = vec3<u32>(clamp(floor(mixed + 0.5), vec3<f32>(0.0), vec3<f32>(255.0)));
    out[i] = v.x | (v.y << 8u) | (v.z << 16u) | 0xFF000000u;
}
