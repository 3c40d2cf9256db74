//! Row bands (`backend::bands`): ops on tensors larger than the storage-binding limit. The GPU
//! here gets a tiny limit (`GpuOptions::max_binding_bytes`), so tensors of a few KiB take the
//! banded path that the `paper` config's 512² decoder takes at WebGPU's 128 MiB; every op must
//! still equal its CPU twin, and a whole model must still match PyTorch.

use crate::common;

use std::path::Path;

use common::{assert_close, Rand};
use pix2seqd::backend::{Backend, Epilogue, GpuBackend};
use pix2seqd::backend::{CpuBackend, CpuTensor};
use pix2seqd::diffusion::ddim_coefficients;
use pix2seqd::geometry::Letterbox;
use pix2seqd::gpu::{Gpu, GpuOptions, Tensor};
use pix2seqd::ops::bits::BitSpec;
use pix2seqd::ops::conv::Geometry;
use pix2seqd::ops::readout::{self, IdSpace, Resample};
use pix2seqd::ops::Activation;
use pix2seqd::{BackendKind, Image, Segmenter};

const LIMIT: u64 = 8 * 1024;

fn small_binding_gpu(limit: u64) -> Gpu {
    Gpu::new_blocking(GpuOptions { max_binding_bytes: Some(limit), ..Default::default() })
        .unwrap_or_else(|e| panic!("GPU tests need an adapter (install mesa-vulkan-drivers): {e}"))
}

struct Pair {
    gpu_t: Tensor,
    cpu_t: CpuTensor,
}

fn pair(gpu: &Gpu, shape: &[usize], data: Vec<f32>) -> Pair {
    Pair { gpu_t: gpu.upload(shape, &data).unwrap(), cpu_t: CpuTensor::new(shape, data).unwrap() }
}

fn random(gpu: &Gpu, rng: &mut Rand, shape: &[usize], lo: f32, hi: f32) -> Pair {
    let n = shape.iter().product();
    pair(gpu, shape, rng.vec(n, lo, hi))
}

/// Runs `op` on the GPU (one frame) and on the CPU and compares the outputs.
fn compare<const K: usize>(
    name: &str,
    gpu: &Gpu,
    rtol: f32,
    atol: f32,
    gpu_op: impl FnOnce(&mut GpuBackend) -> [Tensor; K],
    cpu_op: impl FnOnce(&mut CpuBackend) -> [CpuTensor; K],
) -> usize {
    let passes_before = gpu.stats().compute_passes;
    let mut frame = gpu.frame();
    let outs = gpu_op(&mut GpuBackend::new(&mut frame));
    let reads: Vec<_> = outs.iter().map(|t| frame.read(t)).collect();
    frame.submit();
    gpu.check().unwrap_or_else(|e| panic!("{name}: {e}"));
    let passes = (gpu.stats().compute_passes - passes_before) as usize;
    let want = cpu_op(&mut CpuBackend);
    for (i, (r, w)) in reads.into_iter().zip(&want).enumerate() {
        let got = pollster::block_on(r.into_f32(gpu)).unwrap();
        assert_close(&format!("{name} output {i}"), &got, w.f32().unwrap(), rtol, atol);
    }
    passes
}

#[test]
fn banded_convs_equal_the_cpu() {
    let gpu = small_binding_gpu(LIMIT);
    let mut rng = Rand::new("banded_convs");
    // (H, W, Cin, Cout, k, stride, pad): 3x3 s1, 1x1, 3x3 s2, 7x7 s2 p3, odd heights
    for &(h, w, cin, cout, k, s, p) in &[
        (37, 20, 8, 12, 3, 1, 1),
        (33, 16, 16, 8, 1, 1, 0),
        (31, 18, 8, 8, 3, 2, 1),
        (29, 24, 4, 8, 7, 2, 3),
    ] {
        let geom = Geometry::symmetric(s, p);
        let x = random(&gpu, &mut rng, &[1, h, w, cin], -1.0, 1.0);
        let wt = random(&gpu, &mut rng, &[k, k, cin, cout], -0.3, 0.3);
        let bias = random(&gpu, &mut rng, &[cout], -0.5, 0.5);
        let (oh, ow) = geom.output_size((h, w), (k, k)).unwrap();
        let res = random(&gpu, &mut rng, &[1, oh, ow, cout], -1.0, 1.0);
        assert!(x.gpu_t.byte_size() > LIMIT, "the test input must exceed the limit");
        let passes = compare(
            &format!("conv {k}x{k}/{s} {h}x{w}x{cin}->{cout}"),
            &gpu,
            1e-4,
            1e-5,
            |b| {
                [b.conv2d(
                    &x.gpu_t,
                    &wt.gpu_t,
                    &geom,
                    Epilogue::new(Some(&bias.gpu_t), Activation::Silu)
                        .with_residual(&res.gpu_t)
                        .with_scale(0.7),
                )
                .unwrap()]
            },
            |b| {
                [b.conv2d(
                    &x.cpu_t,
                    &wt.cpu_t,
                    &geom,
                    Epilogue::new(Some(&bias.cpu_t), Activation::Silu)
                        .with_residual(&res.cpu_t)
                        .with_scale(0.7),
                )
                .unwrap()]
            },
        );
        eprintln!("  {passes} compute passes (bands)");
        assert!(passes > 1, "a tensor above the limit ran unbanded");
    }
}

#[test]
fn banded_group_norms_equal_the_cpu() {
    let gpu = small_binding_gpu(LIMIT);
    let mut rng = Rand::new("banded_group_norms");
    for &(h, w, c, groups, film) in &[(40, 24, 16, 4, false), (33, 20, 12, 3, true), (24, 40, 32, 8, true)] {
        // a large common offset: the pivots must be shared across bands
        let x = random(&gpu, &mut rng, &[1, h, w, c], 95.0, 105.0);
        let gamma = random(&gpu, &mut rng, &[c], 0.5, 1.5);
        let beta = random(&gpu, &mut rng, &[c], -0.5, 0.5);
        let ss = random(&gpu, &mut rng, &[1, 2 * c], -0.5, 0.5);
        let passes = compare(
            &format!("group norm {h}x{w}x{c}/{groups} film {film}"),
            &gpu,
            1e-4,
            1e-4,
            |b| {
                [b.group_norm(
                    &x.gpu_t,
                    &gamma.gpu_t,
                    &beta.gpu_t,
                    groups,
                    1e-5,
                    film.then_some(&ss.gpu_t),
                    Activation::Silu,
                )
                .unwrap()]
            },
            |b| {
                [b.group_norm(
                    &x.cpu_t,
                    &gamma.cpu_t,
                    &beta.cpu_t,
                    groups,
                    1e-5,
                    film.then_some(&ss.cpu_t),
                    Activation::Silu,
                )
                .unwrap()]
            },
        );
        assert!(passes > 1, "a tensor above the limit ran unbanded");
    }
}

#[test]
fn banded_layout_and_sampler_ops_equal_the_cpu() {
    let gpu = small_binding_gpu(LIMIT);
    let mut rng = Rand::new("banded_layout");
    let (h, w) = (36, 20);
    let a = random(&gpu, &mut rng, &[1, h, w, 6], -1.0, 1.0);
    let b2 = random(&gpu, &mut rng, &[1, h, w, 10], -1.0, 1.0);
    let passes = compare(
        "concat",
        &gpu,
        0.0,
        0.0,
        |b| [b.concat_channels(&[&a.gpu_t, &b2.gpu_t]).unwrap()],
        |b| [b.concat_channels(&[&a.cpu_t, &b2.cpu_t]).unwrap()],
    );
    assert!(passes > 1);
    let c = random(&gpu, &mut rng, &[1, h, w, 6], -1.0, 1.0);
    compare(
        "add",
        &gpu,
        1e-6,
        1e-6,
        |b| [b.add(&a.gpu_t, &c.gpu_t, Activation::Relu).unwrap()],
        |b| [b.add(&a.cpu_t, &c.cpu_t, Activation::Relu).unwrap()],
    );
    compare(
        "affine",
        &gpu,
        1e-6,
        1e-6,
        |b| [b.affine(&a.gpu_t, 2.0, -0.5).unwrap()],
        |b| [b.affine(&a.cpu_t, 2.0, -0.5).unwrap()],
    );
    let small = random(&gpu, &mut rng, &[1, 9, 5, 16], -1.0, 1.0);
    let skip = random(&gpu, &mut rng, &[1, 36, 20, 16], -1.0, 1.0);
    for with_skip in [false, true] {
        let passes = compare(
            &format!("upsample x4 skip {with_skip}"),
            &gpu,
            1e-6,
            1e-6,
            |b| [b.upsample_nearest(&small.gpu_t, 4, with_skip.then_some(&skip.gpu_t)).unwrap()],
            |b| [b.upsample_nearest(&small.cpu_t, 4, with_skip.then_some(&skip.cpu_t)).unwrap()],
        );
        assert!(passes > 1);
    }
    let spec = BitSpec { class_bits: 3, instance_bits: 4, b_scale: 0.1 };
    let logits = random(&gpu, &mut rng, &[1, h, w, spec.n_logits()], -4.0, 4.0);
    let m = random(&gpu, &mut rng, &[1, h, w, spec.n_bits()], -1.0, 1.0);
    let k = ddim_coefficients(0.6, 0.3);
    let passes = compare(
        "expected bits + ddim",
        &gpu,
        1e-5,
        1e-6,
        |b| {
            let (x0, m2) = b.expected_bits_ddim(&logits.gpu_t, &m.gpu_t, &spec, &k).unwrap();
            [x0, m2]
        },
        |b| {
            let (x0, m2) = b.expected_bits_ddim(&logits.cpu_t, &m.cpu_t, &spec, &k).unwrap();
            [x0, m2]
        },
    );
    assert!(passes > 1);
}

#[test]
fn an_op_that_cannot_be_banded_fails_naming_the_kernel_and_the_limit() {
    let gpu = small_binding_gpu(LIMIT);
    let mut rng = Rand::new("unbandable");
    let x = random(&gpu, &mut rng, &[1, 40, 20, 8], -1.0, 1.0);
    let wt = random(&gpu, &mut rng, &[3, 3, 8], -1.0, 1.0);
    let mut frame = gpu.frame();
    let y = GpuBackend::new(&mut frame)
        .depthwise_conv2d(&x.gpu_t, &wt.gpu_t, None, &Geometry::symmetric(1, 1), Activation::None)
        .unwrap();
    let _ = frame.read(&y);
    frame.submit();
    let err = gpu.check().expect_err("a binding above the limit must be reported").to_string();
    eprintln!("{err}");
    assert!(err.contains("depthwise") && err.contains(&LIMIT.to_string()), "{err}");
}

/// The whole pipeline with a binding limit that the tiny fixture's mask-resolution tensors
/// exceed (as the paper's 512² ones exceed 128 MiB): the same ids as without bands.
#[test]
fn a_whole_model_with_banded_decoder_gives_the_unbanded_result() {
    let stem = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-resnet/model");
    let json = std::fs::read_to_string(stem.with_extension("json")).unwrap();
    let weights = std::fs::read(stem.with_extension("safetensors")).unwrap();
    let plain = pollster::block_on(Segmenter::new(&json, weights.clone(), BackendKind::Gpu)).unwrap();
    let cfg = plain.config().clone();
    // The input image's size: above every backbone and token tensor, below the fusion output,
    // the decoder's concatenations and the logits at mask resolution (16 to 24 channels).
    let [h_in, w_in] = cfg.image_size;
    let limit = (h_in * w_in * 3 * 4) as u64;
    let banded = pollster::block_on(Segmenter::new_with(
        &json,
        weights,
        BackendKind::Gpu,
        GpuOptions { max_binding_bytes: Some(limit), ..Default::default() },
    ))
    .unwrap();
    let mut rng = Rand::new("whole_model_bands");
    let (w, h) = (150, 110);
    let rgba: Vec<u8> = (0..w * h * 4).map(|_| (rng.next_u64() & 0xff) as u8).collect();
    let image = Image::new(w, h, &rgba).unwrap();
    let (mut plain, mut banded) = (plain, banded);
    let opts = plain.default_options();
    let a = plain.segment_blocking(image, &opts).unwrap();
    let passes_before = banded.gpu().unwrap().stats().compute_passes;
    let b = banded.segment_blocking(image, &opts).unwrap();
    let passes = banded.gpu().unwrap().stats().compute_passes - passes_before;
    eprintln!("limit {limit} bytes: {passes} compute passes in the banded frame");
    assert!(passes > 1, "no op was banded at a {limit}-byte limit");
    let same = common::identical_pixels(&a.mask.class, &a.mask.instance, &b.mask.class, &b.mask.instance);
    eprintln!("{same} of {} mask pixels identical", a.mask.class.len());
    assert_eq!(a.mask, b.mask, "banded and unbanded masks differ");
    assert_eq!(a.threshold_mask, b.threshold_mask, "banded and unbanded thresholded masks differ");
    // The banded GroupNorm sums in another order, so the logits and x̂0 move in the last bits: the
    // readout mixes x̂0's bits and lands near 0 somewhere on every edge between two instance ids,
    // where such a difference may flip a bit. Anything more than a few such pixels is a bug.
    let same = common::identical_pixels(&a.raw.class, &a.raw.instance, &b.raw.class, &b.raw.instance);
    eprintln!("{same} of {} readout pixels identical", a.raw.class.len());
    assert!(
        same * 200 >= a.raw.class.len() * 199,
        "banded and unbanded readouts differ in {} pixels",
        a.raw.class.len() - same
    );
}

/// The readout's cells and its output rows in bands (logits and output above an 8 KiB limit):
/// the same ids as the CPU twin, up- and downsampling.
#[test]
fn banded_readout_equals_the_cpu() {
    let gpu = small_binding_gpu(LIMIT);
    let mut rng = Rand::new("banded_readout");
    let ids = IdSpace { class_bits: 3, instance_bits: 4, num_classes: 6, max_instances: 16 };
    for (mask, out) in [((23, 17), (97, 61)), ((29, 15), (9, 7))] {
        let logits = rng.vec(mask.0 * mask.1 * ids.cell_logits(), -3.0, 3.0);
        let x0 = rng.vec(mask.0 * mask.1 * ids.n_bits(), -0.1, 0.1);
        let lb = Letterbox::identity(mask.0, mask.1);
        let r = Resample::new(&lb, mask.0, mask.1, out.0, out.1).unwrap();
        let t = gpu.upload(&[1, mask.0, mask.1, ids.cell_logits()], &logits).unwrap();
        let tx = gpu.upload(&[1, mask.0, mask.1, ids.n_bits()], &x0).unwrap();
        assert!(t.byte_size() > LIMIT || (out.0 * out.1 * 4) as u64 > LIMIT);
        let mut frame = gpu.frame();
        let (class, instance) = {
            let mut b = GpuBackend::new(&mut frame);
            let cells = b.cells(&t, &tx, &ids).unwrap();
            b.readout(&t, &tx, &cells, &ids, &r).unwrap()
        };
        let (rc, ri) = (frame.read(&class), frame.read(&instance));
        frame.submit();
        gpu.check().unwrap();
        let cells = readout::cpu::cells(&logits, &x0, &ids);
        let (want_class, want_instance) = readout::cpu::readout(&logits, &x0, cells.view(), &ids, &r);
        let got_class = pollster::block_on(rc.into_u32(&gpu)).unwrap();
        let got_instance = pollster::block_on(ri.into_u32(&gpu)).unwrap();
        let same = common::identical_pixels(&got_class, &got_instance, &want_class, &want_instance);
        eprintln!("readout {mask:?} -> {out:?}: {same} of {} pixels identical", want_class.len());
        assert!(
            same * 1000 >= want_class.len() * 999,
            "banded readout differs from the CPU twin in {} pixels",
            want_class.len() - same
        );
    }
}
