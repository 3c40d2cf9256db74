//! Structural tests of the runtime: a frame is one compute pass and one submit, and a warmed-up
//! frame creates no pipeline, layout, buffer or bind group.

use crate::common;

use common::{gpu, Rand};
use pix2seqd::ops::{elementwise, Activation};

/// Records a chain of `n` dispatches (a residual-style chain that allocates and frees as it goes,
/// like a model forward) and returns the final value.
fn chain(gpu: &pix2seqd::Gpu, x: &pix2seqd::Tensor, ss: &pix2seqd::Tensor, n: usize) -> Vec<f32> {
    let mut f = gpu.frame();
    let mut h = x.clone();
    for i in 0..n {
        h = match i % 3 {
            0 => elementwise::add(&mut f, &h, x, 0.5, Activation::None).unwrap(),
            1 => elementwise::film(&mut f, &h, ss, Activation::Silu).unwrap(),
            _ => elementwise::affine(&mut f, &h, 0.9, 0.01, Activation::Gelu).unwrap(),
        };
    }
    assert_eq!(f.len(), n);
    let pending = f.read(&h);
    f.submit();
    pollster::block_on(pending.into_f32(gpu)).unwrap()
}

#[test]
fn a_frame_of_200_dispatches_is_one_pass_one_submit_and_creates_nothing_after_warm_up() {
    let gpu = gpu();
    gpu.preload(&pix2seqd::ops::all_kernels());
    let mut r = Rand::new("frame");
    let (n, h, w, c) = (1, 16, 16, 32);
    let x = gpu.upload(&[n, h, w, c], &r.vec(n * h * w * c, -1.0, 1.0)).unwrap();
    let ss = gpu.upload(&[n, 2 * c], &r.vec(2 * c, -0.1, 0.1)).unwrap();

    // Warm-up is two frames: the first creates buffers in allocation order, the second meets
    // them in the pool's free-list order, and from then on every frame is the same.
    let first = chain(&gpu, &x, &ss, 200);
    chain(&gpu, &x, &ss, 200);
    let warm = gpu.stats();
    let second = chain(&gpu, &x, &ss, 200);
    let after = gpu.stats();
    eprintln!("after warm-up: {warm:?}\nafter frame 2: {after:?}");

    assert_eq!(first, second, "the same frame must give the same result");
    assert_eq!(after.submits - warm.submits, 1, "one submit per frame");
    assert_eq!(after.compute_passes - warm.compute_passes, 1, "one compute pass per frame");
    assert_eq!(after.dispatches - warm.dispatches, 200);
    assert_eq!(
        after.objects_created_since(&warm),
        0,
        "a warmed-up frame created objects: {warm:?} -> {after:?}"
    );
    // The chain holds at most two live intermediates, so the pool recycles instead of growing.
    assert!(warm.buffers < 12, "the pool grew with the frame length: {} buffers", warm.buffers);
}

#[test]
fn pipelines_are_created_once_up_front() {
    let gpu = gpu();
    let kernels = pix2seqd::ops::all_kernels();
    gpu.preload(&kernels);
    let s = gpu.stats();
    assert_eq!(s.pipelines as usize, kernels.len(), "one pipeline per kernel");
    assert_eq!(
        s.shader_modules as usize,
        pix2seqd::ops::all_shaders()
            .iter()
            .filter(|sh| kernels.iter().any(|k| std::ptr::eq(k.shader, **sh)))
            .count()
    );
    gpu.preload(&kernels);
    assert_eq!(gpu.stats().pipelines, s.pipelines, "preloading twice creates nothing");
}

#[test]
fn tensors_read_back_in_the_frame_that_made_them() {
    let gpu = gpu();
    let a = gpu.upload(&[5], &[1.0, -2.0, 3.0, -4.0, 5.0]).unwrap();
    let mut f = gpu.frame();
    let y = elementwise::affine(&mut f, &a, 2.0, 1.0, Activation::Relu).unwrap();
    let pending = f.read(&y);
    f.submit();
    assert_eq!(pollster::block_on(pending.into_f32(&gpu)).unwrap(), vec![3.0, 0.0, 7.0, 0.0, 11.0]);
}

#[test]
fn oversized_tensors_are_refused_with_a_clear_error() {
    let gpu = gpu();
    // Larger than a buffer may be: refused before anything is allocated.
    let limit = gpu.limits().max_buffer_size;
    let elements = (limit / 4 + 1) as usize;
    let err = gpu.tensor(&[elements], pix2seqd::gpu::DType::F32).unwrap_err().to_string();
    assert!(err.contains("allows at most"), "{err}");
    // Larger than a binding but not than a buffer: allowed (ops bind it in row bands).
    let small = pix2seqd::gpu::Gpu::new_blocking(pix2seqd::gpu::GpuOptions {
        max_binding_bytes: Some(1024),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(small.binding_limit(), 1024);
    assert!(small.tensor(&[1024], pix2seqd::gpu::DType::F32).is_ok());
}

#[test]
fn a_profiled_frame_times_every_dispatch_and_computes_the_same() {
    let gpu = gpu();
    assert!(
        gpu.features().contains(wgpu::Features::TIMESTAMP_QUERY),
        "lavapipe and real GPUs report timestamp queries"
    );
    let mut r = Rand::new("profile");
    let n = 1 << 16;
    let x = gpu.upload(&[n], &r.vec(n, -1.0, 1.0)).unwrap();
    let record = |f: &mut pix2seqd::gpu::Frame| {
        let a = elementwise::affine(f, &x, 2.0, 0.5, Activation::Gelu).unwrap();
        let b = elementwise::add(f, &a, &x, 1.0, Activation::Silu).unwrap();
        (a, b)
    };
    let mut plain = gpu.frame();
    let (_, want) = record(&mut plain);
    plain.submit();
    let want = gpu.read_blocking(&want).unwrap();

    let mut profiled = gpu.frame();
    let (_, got) = record(&mut profiled);
    let before = gpu.stats();
    let timings = pollster::block_on(profiled.submit_profiled().unwrap().into_timings(&gpu)).unwrap();
    assert_eq!(gpu.stats().compute_passes - before.compute_passes, 2, "one pass per dispatch when profiling");
    assert_eq!(timings.iter().map(|(e, _)| *e).collect::<Vec<_>>(), ["unary", "add"]);
    assert!(timings.iter().all(|(_, ms)| ms.is_finite() && *ms >= 0.0), "{timings:?}");
    assert!(timings.iter().map(|(_, ms)| ms).sum::<f64>() > 0.0, "{timings:?}");
    assert_eq!(gpu.read_blocking(&got).unwrap(), want);
    assert!(gpu.frame().submit_profiled().is_err(), "an empty frame has nothing to profile");
}

#[test]
fn uploads_mid_frame_never_land_in_a_buffer_the_frame_already_used() {
    // Gpu::upload writes at once, before the frame's dispatches run. A buffer the frame wrote
    // earlier and released would receive the upload too early and be overwritten by that
    // dispatch: Frame::upload must pick another one.
    let gpu = common::gpu();
    let ones = gpu.upload(&[64], &[1.0; 64]).unwrap();
    let mut f = gpu.frame();
    let scratch =
        pix2seqd::ops::elementwise::affine(&mut f, &ones, 2.0, 0.0, pix2seqd::ops::Activation::None).unwrap();
    drop(scratch); // back to the pool, still written by the recorded dispatch
    let data: Vec<f32> = (0..64).map(|i| i as f32).collect();
    let uploaded = f.upload(&[64], &data).unwrap();
    let copy =
        pix2seqd::ops::elementwise::affine(&mut f, &uploaded, 1.0, 0.0, pix2seqd::ops::Activation::None)
            .unwrap();
    f.submit();
    assert_eq!(gpu.read_blocking(&copy).unwrap(), data);
}

#[test]
fn work_done_waits_for_a_frame_without_read_back_and_reports_no_errors() {
    let gpu = gpu();
    let mut r = Rand::new("work_done");
    let data = r.vec(64 * 64, -1.0, 1.0);
    let x = gpu.upload(&[1, 64, 64], &data).unwrap();
    let mut f = gpu.frame();
    let y = elementwise::affine(&mut f, &x, 2.0, 0.5, Activation::None).unwrap();
    f.submit();
    pollster::block_on(gpu.work_done()).expect("work done");
    assert_eq!(gpu.lost(), None);
    gpu.check().expect("no uncaptured GPU errors");
    // The frame's result is complete: reading it needs no further work.
    let got = gpu.read_blocking(&y).unwrap();
    assert_eq!(got, elementwise::cpu::affine(&data, 2.0, 0.5, Activation::None));
}
