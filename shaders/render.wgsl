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
// Colour (panoptic.py colorize, blended): void (class 0) keeps the image; otherwise the class colour
// (class ids past the palette use its last entry), for thing classes scaled by
// shade = 0.7 + 0.6·frac(id·0.618…) and clamped to [0, 255], is mixed with the image:
// image·(1 - opacity) + colour·opacity, rounded. frac(id·0.618033988749895) is computed exactly
// for the 32-bit fixed-point part of the constant (id·0x9E3779B9 mod 2^32, top 24 bits) plus the
// rest of the constant (PHI_REST) in f32: within about 1e-7 of float64 for every u32 id.
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

// 0.618033988749895 - 0x9E3779B9 / 2^32
const PHI_REST: f32 = 1.1577062e-10;

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
    var color = rgb(palette[k]);
    if isthing[k] != 0u {
        let frac = fract(f32((inst * 0x9E3779B9u) >> 8u) * (1.0 / 16777216.0) + f32(inst) * PHI_REST);
        color = clamp(color * (0.7 + 0.6 * frac), vec3<f32>(0.0), vec3<f32>(255.0));
    }
    let mixed = rgb(px) * (1.0 - p.opacity) + color * p.opacity;
    let v = vec3<u32>(clamp(floor(mixed + 0.5), vec3<f32>(0.0), vec3<f32>(255.0)));
    out[i] = v.x | (v.y << 8u) | (v.z << 16u) | 0xFF000000u;
}
