//! Convolutions for the CPU backend. A conv is a GEMM of its im2col rows `[pixels, KH·KW·Cin]`
//! with the HWIO weights, which are already that matrix's `[KH·KW·Cin, Cout]` right-hand side;
//! the im2col rows are built one tile of output pixels at a time in per-thread scratch, so they
//! never exist for the whole image. A 1×1 conv with stride 1 and no padding is the GEMM of the
//! input itself. Depthwise convs run one output row per task, channels innermost (vectorised).

use super::gemm::{self, RowEpilogue, View};
use super::par;
use crate::ops::conv::cpu::tap;
use crate::ops::conv::Geometry;
use crate::ops::Activation;

/// Input shape `[N, H, W, C]` and the output size it gives under a window.
struct Plan {
    x: [usize; 4],
    window: (usize, usize),
    out: (usize, usize),
}

impl Plan {
    fn new(x: [usize; 4], window: (usize, usize), geom: &Geometry) -> Plan {
        let out = geom.output_size((x[1], x[2]), window).expect("conv: the backend checked the geometry");
        Plan { x, window, out }
    }

    fn pixels(&self) -> usize {
        self.x[0] * self.out.0 * self.out.1
    }

    /// (batch, oy, ox) of output pixel `p`.
    fn position(&self, p: usize) -> (usize, usize, usize) {
        let (oh, ow) = self.out;
        (p / (oh * ow), p / ow % oh, p % ow)
    }
}

/// Writes the im2col rows of output pixels `first..first + rows.len() / k` into `rows`.
fn im2col(x: &[f32], plan: &Plan, geom: &Geometry, first: usize, rows: &mut [f32]) {
    let [_, h, w, cin] = plan.x;
    let (kh, kw) = plan.window;
    let k = kh * kw * cin;
    for (r, row) in rows.chunks_mut(k).enumerate() {
        let (b, oy, ox) = plan.position(first + r);
        for ky in 0..kh {
            let iy = tap(oy, ky, geom.stride_h, geom.pad_top, h);
            for kx in 0..kw {
                let dst = &mut row[(ky * kw + kx) * cin..][..cin];
                match (iy, tap(ox, kx, geom.stride_w, geom.pad_left, w)) {
                    (Some(iy), Some(ix)) => dst.copy_from_slice(&x[((b * h + iy) * w + ix) * cin..][..cin]),
                    _ => dst.fill(0.0),
                }
            }
        }
    }
}

/// conv2d: `x [N, H, W, Cin]`, HWIO `w [KH, KW, Cin, Cout]` → `[N, OH, OW, Cout]`, the same
/// result as `ops::conv::cpu::conv2d` up to float summation order.
pub fn conv2d(
    x: &[f32],
    xs: [usize; 4],
    w: &[f32],
    [kh, kw, cin, cout]: [usize; 4],
    geom: &Geometry,
    epi: &RowEpilogue,
) -> Vec<f32> {
    let plan = Plan::new(xs, (kh, kw), geom);
    let pixel_only = (kh, kw, geom.stride_h, geom.stride_w) == (1, 1, 1, 1)
        && [geom.pad_top, geom.pad_left, geom.pad_bottom, geom.pad_right] == [0; 4];
    if pixel_only {
        return gemm::linear(x, plan.pixels(), cin, w, cout, epi);
    }
    let k = kh * kw * cin;
    let mut y = vec![0.0f32; plan.pixels() * cout];
    if cout == 0 {
        return y;
    }
    let tile = par::tile_rows(plan.pixels(), k + cout, gemm::TILE_FLOATS);
    par::for_each_chunk(&mut y, tile * cout, |t, out| {
        let first = t * tile;
        let m = out.len() / cout;
        gemm::with_scratch(m * k, |rows| {
            im2col(x, &plan, geom, first, rows);
            gemm::gemm(View::row_major(rows, m, k), View::row_major(w, k, cout), out, cout);
        });
        epi.apply(out, first, cout);
    });
    y
}

/// Depthwise conv2d: `x [N, H, W, C]`, `w [KH, KW, C]` → `act(conv + bias)` `[N, OH, OW, C]`.
pub fn depthwise_conv2d(
    x: &[f32],
    xs: [usize; 4],
    w: &[f32],
    window: (usize, usize),
    bias: Option<&[f32]>,
    geom: &Geometry,
    act: Activation,
) -> Vec<f32> {
    let plan = Plan::new(xs, window, geom);
    let [_, h, wd, c] = xs;
    let ((kh, kw), (oh, ow)) = (window, plan.out);
    let mut y = vec![0.0f32; plan.pixels() * c];
    if c == 0 || ow == 0 {
        return y;
    }
    par::for_each_chunk(&mut y, ow * c, |row, out_row| {
        let (b, oy) = (row / oh, row % oh);
        for (ox, out) in out_row.chunks_mut(c).enumerate() {
            match bias {
                Some(bias) => out.copy_from_slice(bias),
                None => out.fill(0.0),
            }
            for ky in 0..kh {
                let Some(iy) = tap(oy, ky, geom.stride_h, geom.pad_top, h) else { continue };
                for kx in 0..kw {
                    let Some(ix) = tap(ox, kx, geom.stride_w, geom.pad_left, wd) else { continue };
                    let pixel = &x[((b * h + iy) * wd + ix) * c..][..c];
                    let taps = &w[(ky * kw + kx) * c..][..c];
                    for ((acc, xv), wv) in out.iter_mut().zip(pixel).zip(taps) {
                        *acc += xv * wv;
                    }
                }
            }
            if act != Activation::None {
                out.iter_mut().for_each(|v| *v = act.apply(*v));
            }
        }
    });
    y
}
