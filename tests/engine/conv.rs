//! conv2d (implicit GEMM), depthwise conv2d and max-pool on the GPU against the CPU references,
//! plus the host helpers (OIHW relayout, BatchNorm folding) against PyTorch-layout loops.
//!
//! Tolerances: conv2d and depthwise |got - want| <= 1e-4 * |want| + ATOL with ATOL = 1e-5. Inputs
//! are uniform in [-1, 1] and weights scaled by 1/sqrt(fan-in), so outputs are O(1); the floor
//! covers outputs that cancel to near 0, whose error is the f32 rounding of the O(1) terms
//! (~sqrt(K) * 6e-8 for K up to 1152). Max-pool and the relayouts are exact (no arithmetic).

use crate::common;

use common::{assert_close, gpu, Rand};
use pix2seqd::gpu::Gpu;
use pix2seqd::ops::conv::{self, cpu, Epilogue, Geometry};
use pix2seqd::ops::Activation;

const RTOL: f32 = 1e-4;
const ATOL: f32 = 1e-5;
const ACTS: [Activation; 5] =
    [Activation::None, Activation::Relu, Activation::Relu6, Activation::Silu, Activation::Gelu];

/// One conv2d case: GPU vs CPU, with bias, activation and optionally a residual and scale.
struct Case {
    n: usize,
    h: usize,
    w: usize,
    cin: usize,
    cout: usize,
    k: (usize, usize),
    geom: Geometry,
    bias: bool,
    act: Activation,
    residual: bool,
    scale: f32,
}

impl Case {
    fn new(n: usize, (h, w): (usize, usize), cin: usize, cout: usize, k: usize, geom: Geometry) -> Case {
        Case {
            n,
            h,
            w,
            cin,
            cout,
            k: (k, k),
            geom,
            bias: true,
            act: Activation::Relu,
            residual: false,
            scale: 1.0,
        }
    }

    fn run(&self, gpu: &Gpu, r: &mut Rand) {
        let (kh, kw) = self.k;
        let xs = [self.n, self.h, self.w, self.cin];
        let ws = [kh, kw, self.cin, self.cout];
        let (oh, ow) = self.geom.output_size((self.h, self.w), self.k).unwrap();
        let ys = [self.n, oh, ow, self.cout];
        let bound = 1.0 / ((kh * kw * self.cin) as f32).sqrt();
        let x = r.vec(xs.iter().product(), -1.0, 1.0);
        let w = r.vec(ws.iter().product(), -bound, bound);
        let b = r.vec(self.cout, -0.5, 0.5);
        let res = if self.residual { r.vec(ys.iter().product(), -1.0, 1.0) } else { vec![0.0; 4] };
        let tx = gpu.upload(&xs, &x).unwrap();
        let tw = gpu.upload(&ws, &w).unwrap();
        let tb = gpu.upload(&[self.cout], &b).unwrap();
        let tr = gpu.upload(if self.residual { &ys[..] } else { &[4] }, &res).unwrap();
        let epi = Epilogue {
            bias: self.bias.then_some(&tb),
            act: self.act,
            residual: self.residual.then_some(&tr),
            scale: self.scale,
        };
        let mut f = gpu.frame();
        let y = conv::conv2d(&mut f, &tx, &tw, &self.geom, &epi).unwrap();
        f.submit();
        assert_eq!(y.shape(), ys);
        let cpu_epi = cpu::Epilogue {
            bias: self.bias.then_some(&b[..]),
            act: self.act,
            residual: self.residual.then_some(&res[..]),
            scale: self.scale,
        };
        let want = cpu::conv2d(&x, xs, &w, ws, &self.geom, &cpu_epi);
        let name = format!(
            "conv2d {xs:?} k{kh}x{kw} {:?} -> {ys:?} bias={} {:?} residual={} scale={}",
            self.geom, self.bias, self.act, self.residual, self.scale
        );
        assert_close(&name, &gpu.read_blocking(&y).unwrap(), &want, RTOL, ATOL);
    }
}

#[test]
fn conv2d_kernel_sizes_strides_and_odd_channels() {
    let gpu = gpu();
    let mut r = Rand::new("conv2d_combos");
    let hw = (13, 29);
    let cases = [
        // 3x3 stride 1 and 2, scalar path (odd Cin and Cout), vec4 path, mixed.
        Case::new(2, hw, 5, 17, 3, Geometry::symmetric(1, 1)),
        Case::new(2, hw, 16, 32, 3, Geometry::symmetric(1, 1)),
        Case::new(2, hw, 17, 67, 3, Geometry::symmetric(2, 1)),
        Case::new(2, hw, 32, 68, 3, Geometry::symmetric(2, 1)),
        Case::new(2, hw, 3, 20, 3, Geometry::symmetric(2, 1)),
        // 7x7 stride 2: the ResNet stem (Cin 3 -> vec4 weights, scalar gathers).
        Case::new(2, (37, 29), 3, 64, 7, Geometry::symmetric(2, 3)),
        Case::new(2, hw, 5, 3, 7, Geometry::symmetric(2, 3)),
        // 1x1 stride 1 (pure GEMM) and stride 2 (ResNet downsample), odd and multiple-of-4.
        Case::new(2, hw, 67, 67, 1, Geometry::valid(1)),
        Case::new(2, hw, 64, 132, 1, Geometry::valid(1)),
        Case::new(2, hw, 40, 24, 1, Geometry::valid(2)),
        Case::new(1, hw, 17, 5, 1, Geometry::valid(2)),
        // TensorFlow "SAME" (asymmetric padding) and no padding, non-square window.
        Case::new(2, hw, 8, 12, 3, Geometry::same(2, (3, 3), hw)),
        Case::new(2, (14, 30), 3, 16, 7, Geometry::same(2, (7, 7), (14, 30))),
        Case::new(2, hw, 12, 8, 3, Geometry::valid(1)),
        Case {
            k: (3, 5),
            ..Case::new(
                2,
                hw,
                4,
                9,
                3,
                Geometry { stride_h: 1, stride_w: 2, pad_top: 0, pad_left: 2, pad_bottom: 2, pad_right: 1 },
            )
        },
        // no bias; tiny input (padded input exactly the window).
        Case { bias: false, act: Activation::None, ..Case::new(2, hw, 8, 8, 3, Geometry::symmetric(1, 1)) },
        Case::new(1, (1, 1), 4, 4, 3, Geometry::symmetric(1, 1)),
    ];
    for c in &cases {
        c.run(&gpu, &mut r);
    }
}

#[test]
fn conv2d_random_shapes() {
    let gpu = gpu();
    let mut r = Rand::new("conv2d_random");
    let channels = [1, 3, 4, 5, 8, 17, 32, 67];
    for _ in 0..10 {
        let k = [1, 3, 5, 7][r.range(0, 3)];
        let stride = r.range(1, 2);
        let pad = r.range(0, k / 2);
        let (h, w) = (r.range(k.max(2), 24), r.range(k.max(2), 24));
        let c = Case {
            act: ACTS[r.range(0, ACTS.len() - 1)],
            bias: r.range(0, 1) == 1,
            ..Case::new(
                r.range(1, 2),
                (h, w),
                channels[r.range(0, channels.len() - 1)],
                channels[r.range(0, channels.len() - 1)],
                k,
                Geometry::symmetric(stride, pad),
            )
        };
        c.run(&gpu, &mut r);
    }
}

#[test]
fn conv2d_fused_epilogues() {
    let gpu = gpu();
    let mut r = Rand::new("conv2d_epilogue");
    let hw = (13, 29);
    for act in ACTS {
        // vec4 and scalar paths with a residual and a scale (the ResBlock's (h + skip) / sqrt 2).
        Case {
            act,
            residual: true,
            scale: std::f32::consts::FRAC_1_SQRT_2,
            ..Case::new(2, hw, 8, 16, 3, Geometry::symmetric(1, 1))
        }
        .run(&gpu, &mut r);
        Case { act, residual: true, scale: 0.5, ..Case::new(2, hw, 5, 7, 1, Geometry::valid(1)) }
            .run(&gpu, &mut r);
    }
    // ResNet's relu(conv + bias + identity), 3-input-channel gathers with vec4 outputs.
    Case { residual: true, ..Case::new(2, hw, 3, 4, 3, Geometry::symmetric(1, 1)) }.run(&gpu, &mut r);
}

/// One real-size case: the decoder's 3x3 128 -> 128 conv at 64x64.
#[test]
fn conv2d_3x3_128_to_128_at_64x64() {
    let gpu = gpu();
    let mut r = Rand::new("conv2d_real");
    Case { act: Activation::Silu, ..Case::new(1, (64, 64), 128, 128, 3, Geometry::symmetric(1, 1)) }
        .run(&gpu, &mut r);
}

#[test]
fn conv2d_many_workgroups_fold_into_y() {
    // 1x1 conv 1 -> 1 over 2 x 2049 x 2049 pixels: 65,601 tiles of 128 pixels (> 65535).
    let gpu = gpu();
    let mut r = Rand::new("conv2d_fold");
    let c = Case { act: Activation::None, ..Case::new(2, (2049, 2049), 1, 1, 1, Geometry::valid(1)) };
    c.run(&gpu, &mut r);
}

#[allow(clippy::too_many_arguments)]
fn run_depthwise(
    gpu: &Gpu,
    r: &mut Rand,
    n: usize,
    (h, w): (usize, usize),
    c: usize,
    k: usize,
    geom: Geometry,
    bias: bool,
    act: Activation,
) {
    let xs = [n, h, w, c];
    let bound = 1.0 / (k as f32);
    let x = r.vec(xs.iter().product(), -1.0, 1.0);
    let wt = r.vec(k * k * c, -bound, bound);
    let b = r.vec(c, -0.5, 0.5);
    let tx = gpu.upload(&xs, &x).unwrap();
    let tw = gpu.upload(&[k, k, c], &wt).unwrap();
    let tb = gpu.upload(&[c], &b).unwrap();
    let mut f = gpu.frame();
    let y = conv::depthwise_conv2d(&mut f, &tx, &tw, bias.then_some(&tb), &geom, act).unwrap();
    f.submit();
    let want = cpu::depthwise_conv2d(&x, xs, &wt, (k, k), bias.then_some(&b[..]), &geom, act);
    let name = format!("depthwise {xs:?} k{k} {geom:?} bias={bias} {act:?} -> {:?}", y.shape());
    assert_close(&name, &gpu.read_blocking(&y).unwrap(), &want, RTOL, ATOL);
}

#[test]
fn depthwise_3x3_and_5x5_strides_and_channels() {
    let gpu = gpu();
    let mut r = Rand::new("depthwise");
    let hw = (13, 29);
    for c in [32, 40, 112, 7, 17] {
        for k in [3, 5] {
            for stride in [1, 2] {
                // PyTorch padding k/2 and TensorFlow SAME (asymmetric at stride 2 on even sizes).
                run_depthwise(
                    &gpu,
                    &mut r,
                    2,
                    hw,
                    c,
                    k,
                    Geometry::symmetric(stride, k / 2),
                    true,
                    Activation::Relu6,
                );
                run_depthwise(
                    &gpu,
                    &mut r,
                    2,
                    (14, 30),
                    c,
                    k,
                    Geometry::same(stride, (k, k), (14, 30)),
                    true,
                    Activation::Relu6,
                );
            }
        }
    }
    for act in ACTS {
        run_depthwise(&gpu, &mut r, 1, (9, 11), 12, 3, Geometry::symmetric(1, 1), false, act);
    }
    run_depthwise(&gpu, &mut r, 1, (5, 6), 3, 3, Geometry::valid(1), true, Activation::Silu);
}

fn run_max_pool(gpu: &Gpu, r: &mut Rand, xs: [usize; 4], k: usize, geom: Geometry, lo: f32, hi: f32) {
    let x = r.vec(xs.iter().product(), lo, hi);
    let tx = gpu.upload(&xs, &x).unwrap();
    let mut f = gpu.frame();
    let y = conv::max_pool2d(&mut f, &tx, (k, k), &geom).unwrap();
    f.submit();
    let want = cpu::max_pool2d(&x, xs, (k, k), &geom);
    assert!(want.iter().all(|v| v.is_finite()));
    // Exact: a max selects one of the inputs.
    assert_close(&format!("max_pool {xs:?} k{k} {geom:?}"), &gpu.read_blocking(&y).unwrap(), &want, 0.0, 0.0);
}

#[test]
fn max_pool_3x3_stride_2() {
    let gpu = gpu();
    let mut r = Rand::new("max_pool");
    for xs in [[2, 13, 29, 64], [2, 13, 29, 5], [1, 14, 30, 3], [2, 32, 32, 68]] {
        let (h, w) = (xs[1], xs[2]);
        // All-negative inputs: a padding cell read as 0 would win.
        run_max_pool(&gpu, &mut r, xs, 3, Geometry::symmetric(2, 1), -2.0, -1.0);
        run_max_pool(&gpu, &mut r, xs, 3, Geometry::same(2, (3, 3), (h, w)), -2.0, 2.0);
        run_max_pool(&gpu, &mut r, xs, 3, Geometry::valid(2), -2.0, 2.0);
    }
    // Padding as large as the window is rejected (a window could be all padding).
    let tx = gpu.upload(&[1, 4, 4, 4], &[0.0; 64]).unwrap();
    let mut f = gpu.frame();
    let err = conv::max_pool2d(&mut f, &tx, (3, 3), &Geometry::symmetric(2, 3)).unwrap_err().to_string();
    assert!(err.starts_with("max_pool2d:"), "{err}");
}

/// PyTorch's conv2d, written independently: NCHW input, OIHW weights, symmetric padding.
fn torch_conv2d(
    x: &[f32],
    [n, c, h, w]: [usize; 4],
    wt: &[f32],
    [o, _, kh, kw]: [usize; 4],
    bias: Option<&[f32]>,
    stride: usize,
    pad: usize,
) -> (Vec<f32>, [usize; 4]) {
    let oh = (h + 2 * pad - kh) / stride + 1;
    let ow = (w + 2 * pad - kw) / stride + 1;
    let mut y = vec![0.0f32; n * o * oh * ow];
    for b in 0..n {
        for oc in 0..o {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut s = bias.map_or(0.0, |bb| bb[oc]);
                    for ic in 0..c {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * stride + ky) as isize - pad as isize;
                                let ix = (ox * stride + kx) as isize - pad as isize;
                                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                    s += x[((b * c + ic) * h + iy as usize) * w + ix as usize]
                                        * wt[((oc * c + ic) * kh + ky) * kw + kx];
                                }
                            }
                        }
                    }
                    y[((b * o + oc) * oh + oy) * ow + ox] = s;
                }
            }
        }
    }
    (y, [n, o, oh, ow])
}

fn nchw_to_nhwc(x: &[f32], [n, c, h, w]: [usize; 4]) -> Vec<f32> {
    let mut y = vec![0.0; x.len()];
    for b in 0..n {
        for ch in 0..c {
            for i in 0..h * w {
                y[(b * h * w + i) * c + ch] = x[(b * c + ch) * h * w + i];
            }
        }
    }
    y
}

#[test]
fn oihw_relayout_matches_pytorch_layout_conv() {
    let gpu = gpu();
    let mut r = Rand::new("relayout");
    let (n, c, h, w, o, k, stride, pad) = (2, 5, 11, 9, 7, 3, 2, 1);
    let x_nchw = r.vec(n * c * h * w, -1.0, 1.0);
    let w_oihw = r.vec(o * c * k * k, -0.3, 0.3);
    let b = r.vec(o, -0.5, 0.5);
    let (want_nchw, ys) = torch_conv2d(&x_nchw, [n, c, h, w], &w_oihw, [o, c, k, k], Some(&b), stride, pad);
    let want = nchw_to_nhwc(&want_nchw, ys);
    let x = nchw_to_nhwc(&x_nchw, [n, c, h, w]);
    let w_hwio = conv::oihw_to_hwio(&w_oihw, [o, c, k, k]).unwrap();
    let epi = cpu::Epilogue { bias: Some(&b), ..Default::default() };
    let geom = Geometry::symmetric(stride, pad);
    assert_close(
        "cpu conv2d vs OIHW/NCHW conv",
        &cpu::conv2d(&x, [n, h, w, c], &w_hwio, [k, k, c, o], &geom, &epi),
        &want,
        RTOL,
        ATOL,
    );
    let (tx, tw, tb) = (
        gpu.upload(&[n, h, w, c], &x).unwrap(),
        gpu.upload(&[k, k, c, o], &w_hwio).unwrap(),
        gpu.upload(&[o], &b).unwrap(),
    );
    let mut f = gpu.frame();
    let y = conv::conv2d(&mut f, &tx, &tw, &geom, &Epilogue::bias_act(Some(&tb), Activation::None)).unwrap();
    f.submit();
    assert_close("gpu conv2d vs OIHW/NCHW conv", &gpu.read_blocking(&y).unwrap(), &want, RTOL, ATOL);

    // Depthwise [C, 1, KH, KW] -> [KH, KW, C]: a depthwise conv is a per-channel conv.
    let wd = r.vec(c * k * k, -0.3, 0.3);
    let wd_hwc = conv::depthwise_oihw_to_hwc(&wd, [c, 1, k, k]).unwrap();
    let got = cpu::depthwise_conv2d(&x, [n, h, w, c], &wd_hwc, (k, k), None, &geom, Activation::None);
    let mut want_dw = Vec::new();
    for ch in 0..c {
        let xc: Vec<f32> = (0..n).flat_map(|b| x_nchw[(b * c + ch) * h * w..][..h * w].to_vec()).collect();
        let (yc, ycs) =
            torch_conv2d(&xc, [n, 1, h, w], &wd[ch * k * k..][..k * k], [1, 1, k, k], None, stride, pad);
        want_dw.push((yc, ycs));
    }
    let [_, _, oh, ow] = want_dw[0].1;
    let mut want_nhwc = vec![0.0; n * oh * ow * c];
    for (ch, (yc, _)) in want_dw.iter().enumerate() {
        for (i, v) in yc.iter().enumerate() {
            want_nhwc[i * c + ch] = *v;
        }
    }
    assert_close("cpu depthwise vs per-channel OIHW conv", &got, &want_nhwc, RTOL, ATOL);
    assert!(conv::oihw_to_hwio(&w_oihw, [o, c, k, 2]).is_err());
    assert!(conv::depthwise_oihw_to_hwc(&wd, [c, 2, k, k]).is_err());
}

#[test]
fn batch_norm_folding_matches_conv_then_batch_norm() {
    let mut r = Rand::new("bn_fold");
    let (n, c, h, w, o, k) = (2, 6, 7, 8, 9, 3);
    let eps = 1e-5;
    let x = r.vec(n * c * h * w, -1.0, 1.0);
    let wt = r.vec(o * c * k * k, -0.3, 0.3);
    let gamma = r.vec(o, 0.5, 1.5);
    let beta = r.vec(o, -0.5, 0.5);
    let mean = r.vec(o, -0.5, 0.5);
    let var = r.vec(o, 0.1, 2.0);
    for with_bias in [false, true] {
        let b = r.vec(o, -0.5, 0.5);
        let bias = with_bias.then_some(&b[..]);
        // conv then BN in PyTorch's layout.
        let (conv_out, ys) = torch_conv2d(&x, [n, c, h, w], &wt, [o, c, k, k], bias, 1, 1);
        let plane = ys[2] * ys[3];
        let bn: Vec<f32> = conv_out
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let ch = (i / plane) % o;
                (v - mean[ch]) / (var[ch] + eps).sqrt() * gamma[ch] + beta[ch]
            })
            .collect();
        let (wf, bf) = conv::fold_batch_norm(&wt, bias, &gamma, &beta, &mean, &var, eps).unwrap();
        let (folded, _) = torch_conv2d(&x, [n, c, h, w], &wf, [o, c, k, k], Some(&bf), 1, 1);
        assert_close(&format!("folded BN (conv bias {with_bias})"), &folded, &bn, RTOL, ATOL);
    }
    assert!(conv::fold_batch_norm(&wt, None, &gamma, &beta[1..], &mean, &var, eps).is_err());
    assert!(conv::fold_batch_norm(&wt[1..], None, &gamma, &beta, &mean, &var, eps).is_err());
}

#[test]
fn shape_errors_name_the_op() {
    let gpu = gpu();
    let x = gpu.upload(&[1, 4, 4, 3], &[0.0; 48]).unwrap();
    let w = gpu.upload(&[3, 3, 4, 8], &[0.0; 288]).unwrap();
    let mut f = gpu.frame();
    let err = conv::conv2d(&mut f, &x, &w, &Geometry::symmetric(1, 1), &Epilogue::default())
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("conv2d:") && err.contains("Cin"), "{err}");
    // A residual that is the input itself cannot be bound twice.
    let x8 = gpu.upload(&[1, 4, 4, 4], &[0.0; 64]).unwrap();
    let w44 = gpu.upload(&[1, 1, 4, 4], &[0.0; 16]).unwrap();
    let err = conv::conv2d(
        &mut f,
        &x8,
        &w44,
        &Geometry::valid(1),
        &Epilogue { residual: Some(&x8), ..Default::default() },
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("conv2d:") && err.contains("share"), "{err}");
    let err = conv::conv2d(
        &mut f,
        &x8,
        &w44,
        &Geometry::valid(1),
        &Epilogue { bias: Some(&x), ..Default::default() },
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("conv2d:") && err.contains("bias"), "{err}");
    let err = conv::depthwise_conv2d(&mut f, &x8, &w, None, &Geometry::valid(1), Activation::None)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("depthwise_conv2d:"), "{err}");
    let err = conv::conv2d(
        &mut f,
        &x8,
        &gpu.upload(&[7, 7, 4, 4], &[0.0; 784]).unwrap(),
        &Geometry::valid(1),
        &Epilogue::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("conv2d:") && err.contains("no output"), "{err}");
    assert!(f.is_empty());
}

#[test]
fn geometry_helpers() {
    // TF SAME: 224 -> 112 at stride 2 with a 3x3 window pads 0 top/left and 1 bottom/right.
    let g = Geometry::same(2, (3, 3), (224, 224));
    assert_eq!((g.pad_top, g.pad_bottom, g.pad_left, g.pad_right), (0, 1, 0, 1));
    assert_eq!(g.output_size((224, 224), (3, 3)), Some((112, 112)));
    let g = Geometry::same(2, (7, 7), (1024, 1024));
    assert_eq!((g.pad_top, g.pad_bottom), (2, 3));
    assert_eq!(Geometry::symmetric(1, 1).output_size((13, 29), (3, 3)), Some((13, 29)));
    assert_eq!(Geometry::valid(1).output_size((2, 2), (3, 3)), None);
    // 3x3 128 -> 128 at 128x128: 2 * 128^2 * 128 * 9 * 128 = 4.83 GFLOP.
    let flops = conv::conv2d_flops([1, 128, 128, 128], [3, 3, 128, 128], &Geometry::symmetric(1, 1));
    assert_eq!(flops, 2.0 * 128.0 * 128.0 * 128.0 * 9.0 * 128.0);
}
