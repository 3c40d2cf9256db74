// Ingest: decoded image -> letterboxed, normalised model input. One thread per canvas pixel.
//
// image:  [orig_h, orig_w] u32, packed RGBA8 (byte 0 = R; alpha ignored, as PIL's convert("RGB")).
// out:    [1, canvas_h, canvas_w, 3] f32 channels-last.
//
// Inside the content window [0, content_h) x [0, content_w) the value is PIL's
// Image.resize(BILINEAR) of the image to content_h x content_w, in [0, 1]; outside it is PAD_VALUE
// (0.3, the official pipeline's padding). Every value then becomes v * alpha + beta.
//
// PIL's bilinear filter is a tent whose support grows with the downscale factor (antialiased),
// sampled at pixel centres and normalised per output pixel. With in/out the axis sizes, the tent
// weight of source pixel j for output pixel o is proportional to the integer
//     w(o, j) = max(0, D - |(2o + 1)·in - (2j + 1)·out|),   D = 2·max(in, out),
// (the distance of the centres in units of 1/(2·out), over the scaled support), so the weights are
// exact integers and only the final normalisation divides. Unlike PIL this runs in f32 over the
// 2-D window in one pass, without PIL's uint8 rounding between its horizontal and vertical
// passes: the result differs from PIL's bytes by at most one step of 1/255. When an axis keeps its
// size the filter is the identity (weight 1 on the pixel itself), so an unscaled image gives
// exactly byte / 255.

struct Params {
    orig_h: u32,
    orig_w: u32,
    canvas_h: u32,
    canvas_w: u32,
    content_h: u32,
    content_w: u32,
    pixels: u32,     // canvas_h * canvas_w
    _pad0: u32,
    alpha: f32,
    beta: f32,
    pad_value: f32,  // 0.3
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(1) @binding(0) var<storage, read> image: array<u32>;
@group(1) @binding(1) var<storage, read_write> out: array<f32>;

// Source window [start, end) of output index o along an axis of size src -> dst (dst > 0).
fn window(o: u32, src: u32, dst: u32) -> vec2<u32> {
    if src == dst {
        return vec2<u32>(o, o + 1u);
    }
    let d = 2 * i32(max(src, dst));
    let c = i32(2u * o + 1u) * i32(src);
    let lo = c - d - i32(dst);
    let hi = c + d - i32(dst);
    let two_dst = 2 * i32(dst);
    var start = 0u;
    if lo > 0 {
        start = u32(lo / two_dst);
    }
    let end = min(src, u32(hi / two_dst) + 1u);
    return vec2<u32>(start, end);
}

// Unnormalised tent weight of source index j for output index o.
fn weight(o: u32, j: u32, src: u32, dst: u32) -> f32 {
    if src == dst {
        return 1.0;
    }
    let d = 2 * i32(max(src, dst));
    let n = i32(2u * o + 1u) * i32(src) - i32(2u * j + 1u) * i32(dst);
    return f32(max(0, d - abs(n)));
}

fn rgb(px: u32) -> vec3<f32> {
    return vec3<f32>(f32(px & 0xFFu), f32((px >> 8u) & 0xFFu), f32((px >> 16u) & 0xFFu));
}

@compute @workgroup_size(256)
fn ingest(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = folded_group(wg, nwg) * 256u + lid;
    if i >= p.pixels { return; }
    let y = i / p.canvas_w;
    let x = i % p.canvas_w;
    var v = vec3<f32>(p.pad_value);
    if y < p.content_h && x < p.content_w {
        let wy = window(y, p.orig_h, p.content_h);
        let wx = window(x, p.orig_w, p.content_w);
        var sum_x = 0.0;
        for (var j = wx.x; j < wx.y; j++) {
            sum_x += weight(x, j, p.orig_w, p.content_w);
        }
        var sum_y = 0.0;
        var acc = vec3<f32>(0.0);
        for (var r = wy.x; r < wy.y; r++) {
            let ky = weight(y, r, p.orig_h, p.content_h);
            sum_y += ky;
            var row = vec3<f32>(0.0);
            for (var j = wx.x; j < wx.y; j++) {
                row += weight(x, j, p.orig_w, p.content_w) * rgb(image[r * p.orig_w + j]);
            }
            acc += ky * row;
        }
        v = acc / (sum_x * sum_y * 255.0);
    }
    let o = i * 3u;
    out[o] = v.x * p.alpha + p.beta;
    out[o + 1u] = v.y * p.alpha + p.beta;
    out[o + 2u] = v.z * p.alpha + p.beta;
}
