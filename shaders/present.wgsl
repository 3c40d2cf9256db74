// Present: copies a packed RGBA8 image (a storage buffer, byte 0 = R) into the canvas texture
// with one full-screen triangle. The canvas is configured at the image's size, so each fragment
// reads exactly one pixel; this is the only render pipeline (everything else is compute).

struct Size {
    width: u32,
    height: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> size: Size;
@group(0) @binding(1) var<storage, read> pixels: array<u32>;

@vertex
fn vs_main(@builtin(vertex_index) i: u32) -> @builtin(position) vec4<f32> {
    // (−1, −1), (3, −1), (−1, 3): one triangle covering the viewport.
    let corner = vec2<f32>(f32((i << 1u) & 2u), f32(i & 2u));
    return vec4<f32>(corner * 2.0 - 1.0, 0.0, 1.0);
}

@fragment
fn fs_main(@builtin(position) position: vec4<f32>) -> @location(0) vec4<f32> {
    let x = min(u32(position.x), size.width - 1u);
    let y = min(u32(position.y), size.height - 1u);
    return unpack4x8unorm(pixels[y * size.width + x]);
}
