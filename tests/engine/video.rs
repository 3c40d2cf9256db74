//! Video: 10 frames of a DAVIS clip through `segment_frame` with a video model (the fixture's
//! tiny-efficientnet conditions on k = 2 previous masks). The streaming state must be used — the
//! conditioning bits are exactly the previous predictions' analog bits — and `reset` must clear it.

use crate::common;

use std::path::Path;

use pix2seqd::data::davis::Davis;
use pix2seqd::ops::bits::{cpu::ids_to_bits, BitSpec};
use pix2seqd::{BackendKind, Image, Segmenter};

fn segmenter() -> Segmenter {
    let stem = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-efficientnet/model");
    Segmenter::from_path(&stem, BackendKind::Gpu)
        .unwrap_or_else(|e| panic!("GPU tests need an adapter (install mesa-vulkan-drivers): {e}"))
}

/// The expected condition for a history of mask-resolution maps (oldest first), padded with
/// all-void maps at the start: per pixel, frame after frame, the analog bits of (class, id).
fn expected_condition(history: &[(Vec<u32>, Vec<u32>)], k: usize, pixels: usize, spec: &BitSpec) -> Vec<f32> {
    let void = (vec![0u32; pixels], vec![0u32; pixels]);
    let mut frames: Vec<&(Vec<u32>, Vec<u32>)> = vec![&void; k.saturating_sub(history.len())];
    frames.extend(history.iter().rev().take(k).rev());
    let bits: Vec<Vec<f32>> = frames.iter().map(|(c, i)| ids_to_bits(c, i, spec)).collect();
    let n = spec.n_bits();
    (0..pixels).flat_map(|p| bits.iter().flat_map(move |b| b[p * n..(p + 1) * n].iter().copied())).collect()
}

#[test]
fn streaming_state_conditions_every_frame_and_reset_clears_it() {
    let dir = pix2seqd::data::data_root().join("davis2016");
    if !dir.exists() {
        eprintln!(
            "SKIPPING streaming video test: {} is missing (see ../shared/data/README.md)",
            dir.display()
        );
        return;
    }
    let davis = Davis::open(&dir).unwrap();
    let seq = davis.sequences()[0].clone();
    let mut seg = segmenter();
    let cfg = seg.config().clone();
    let k = cfg.video_prev_masks;
    assert_eq!(k, 2, "the fixture model conditions on 2 previous masks");
    let pixels = cfg.mask_size[0] * cfg.mask_size[1];
    let spec = cfg.bit_spec();
    let opts = seg.default_options();

    let frames: Vec<_> = (0..10).map(|t| davis.load(&seq, t).unwrap()).collect();
    let mut history: Vec<(Vec<u32>, Vec<u32>)> = Vec::new();
    let mut first = None;
    for (t, ex) in frames.iter().enumerate() {
        let cond = pollster::block_on(seg.conditioning()).unwrap().expect("a video model has a condition");
        assert_eq!(
            cond,
            expected_condition(&history, k, pixels, &spec),
            "frame {t}: condition is not the previous predictions' bits"
        );
        let rgba = ex.image.to_rgba();
        let out = seg
            .segment_frame_blocking(Image::new(ex.image.width, ex.image.height, &rgba).unwrap(), &opts)
            .unwrap();
        assert_eq!(out.conditioned_on, t.min(k), "frame {t}");
        assert_eq!((out.panoptic.height, out.panoptic.width), (ex.image.height, ex.image.width));
        if t == 0 {
            first = Some(out.mask.clone());
        }
        history.push((out.mask.class.clone(), out.mask.instance.clone()));
        eprintln!(
            "frame {t}: {} segments, conditioned on {} previous",
            out.segments.len(),
            out.conditioned_on
        );
    }
    assert_eq!(seg.history_len(), k);
    // The condition really changes with the predictions (a constant one would prove nothing).
    let last = pollster::block_on(seg.conditioning()).unwrap().unwrap();
    assert!(last.iter().any(|&v| v > 0.0), "the last predictions are all void: the condition never changed");

    // Still images neither use nor change the state.
    let rgba = frames[3].image.to_rgba();
    let still = seg
        .segment_blocking(Image::new(frames[3].image.width, frames[3].image.height, &rgba).unwrap(), &opts)
        .unwrap();
    assert_eq!(still.conditioned_on, 0);
    assert_eq!(pollster::block_on(seg.conditioning()).unwrap().unwrap(), last);

    // After reset the condition is all void again, and frame 0 reproduces its first result.
    seg.reset();
    assert_eq!(seg.history_len(), 0);
    let cond = pollster::block_on(seg.conditioning()).unwrap().unwrap();
    assert!(cond.iter().all(|&v| v == -cfg.b_scale), "reset left a non-void condition");
    let rgba = frames[0].image.to_rgba();
    let again = seg
        .segment_frame_blocking(
            Image::new(frames[0].image.width, frames[0].image.height, &rgba).unwrap(),
            &opts,
        )
        .unwrap();
    assert_eq!(Some(again.mask), first, "frame 0 after reset differs from frame 0 at the start");
}

#[test]
fn cpu_and_gpu_segmenters_agree_on_a_real_frame() {
    let dir = pix2seqd::data::data_root().join("davis2016");
    if !dir.exists() {
        eprintln!("SKIPPING cpu/gpu agreement test: {} is missing", dir.display());
        return;
    }
    let davis = Davis::open(&dir).unwrap();
    let ex = davis.load(&davis.sequences()[1], 0).unwrap();
    let rgba = ex.image.to_rgba();
    let image = Image::new(ex.image.width, ex.image.height, &rgba).unwrap();
    let stem = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-efficientnet/model");
    let mut cpu = Segmenter::from_path(&stem, BackendKind::Cpu).unwrap();
    let mut gpu = segmenter();
    let opts = cpu.default_options();
    let a = cpu.segment_blocking(image, &opts).unwrap();
    let b = gpu.segment_blocking(image, &opts).unwrap();
    let same = common::identical_pixels(&a.mask.class, &a.mask.instance, &b.mask.class, &b.mask.instance);
    let share = same as f64 / a.mask.class.len() as f64;
    eprintln!("cpu vs gpu: {same} of {} mask pixels identical ({:.2}%)", a.mask.class.len(), 100.0 * share);
    // Float differences (~1e-6) can flip a bit that sits on the threshold; nothing more.
    assert!(share > 0.99, "CPU and GPU masks agree on only {:.2}% of pixels", 100.0 * share);
    assert_eq!(a.backend, BackendKind::Cpu);
    assert_eq!(b.backend, BackendKind::Gpu);
}

#[test]
fn a_steady_video_loop_creates_no_gpu_objects() {
    let dir = pix2seqd::data::data_root().join("davis2016");
    if !dir.exists() {
        eprintln!("SKIPPING steady video loop test: {} is missing", dir.display());
        return;
    }
    let davis = Davis::open(&dir).unwrap();
    let seq = davis.sequences()[0].clone();
    let frames: Vec<_> = (0..4).map(|t| davis.load(&seq, t).unwrap().image.to_rgba()).collect();
    let (w, h) = {
        let ex = davis.load(&seq, 0).unwrap();
        (ex.image.width, ex.image.height)
    };
    let mut seg = segmenter();
    let opts = seg.default_options();
    // Warm-up: the history fills (k = 2), so the pool's buffers settle into their rotation.
    for t in 0..6 {
        seg.segment_frame_blocking(Image::new(w, h, &frames[t % 4]).unwrap(), &opts).unwrap();
    }
    let before = seg.gpu().unwrap().stats();
    for t in 6..30 {
        seg.segment_frame_blocking(Image::new(w, h, &frames[t % 4]).unwrap(), &opts).unwrap();
    }
    let after = seg.gpu().unwrap().stats();
    eprintln!(
        "frames 6..30: {} dispatches, {} objects created (bind groups {} -> {}, buffers {} -> {})",
        after.dispatches - before.dispatches,
        after.objects_created_since(&before),
        before.bind_groups,
        after.bind_groups,
        before.buffers,
        after.buffers
    );
    assert_eq!(
        after.objects_created_since(&before),
        0,
        "a warmed-up video loop created GPU objects: {before:?} -> {after:?}"
    );
}

/// The maps a video model is conditioned on are the readout at mask resolution: a frame that fills
/// the canvas, read out at the mask's size, gives exactly the mask (on the GPU and the CPU).
#[test]
fn the_fed_back_mask_is_the_readout_at_mask_resolution() {
    let stem = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-efficientnet/model");
    for backend in [BackendKind::Gpu, BackendKind::Cpu] {
        let mut seg = Segmenter::from_path(&stem, backend).unwrap();
        let cfg = seg.config().clone();
        let ([h, w], [hm, wm]) = (cfg.image_size, cfg.mask_size);
        let mut rng = common::Rand::new("fed-back-mask");
        let rgba: Vec<u8> = (0..h * w * 4).map(|_| (rng.next_u64() & 0xff) as u8).collect();
        let opts = pix2seqd::SegmentOptions { max_output_side: hm.max(wm), ..seg.default_options() };
        for t in 0..3 {
            let out = seg.segment_frame_blocking(Image::new(w, h, &rgba).unwrap(), &opts).unwrap();
            assert_eq!((out.raw.height, out.raw.width), (hm, wm), "{backend:?} frame {t}: output size");
            assert_eq!(
                out.raw, out.mask,
                "{backend:?} frame {t}: the readout at mask resolution is not the fed-back mask"
            );
            assert_eq!(
                out.mask.instance, out.threshold_mask.instance,
                "{backend:?} frame {t}: cell instances are x̂0's bits"
            );
        }
    }
}
