//! `pix2seqd bench ops`: throughput of the core kernels on this machine's adapter, at the sizes the
//! models use. Each kernel is recorded into its own frame after one warm-up frame and timed with
//! GPU timestamps (wall time from submit to completion where the adapter has none); the median of
//! `iters` frames gives ms per kernel and GFLOP/s (GB/s for the bandwidth-bound norm).

use std::time::Instant;

use pix2seqd::gpu::{Frame, Gpu, GpuError, Tensor};
use pix2seqd::ops::{attention, conv, matmul, norm, Activation};

/// Records one kernel into a frame and returns its output (kept alive until the frame is done).
type Record = Box<dyn Fn(&mut Frame) -> Result<Tensor, GpuError>>;

struct Case {
    name: &'static str,
    /// Work per kernel: FLOPs, or bytes moved for bandwidth-bound kernels.
    work: f64,
    unit: &'static str,
    record: Record,
}

fn filled(gpu: &Gpu, shape: &[usize], scale: f32) -> Result<Tensor, String> {
    let n: usize = shape.iter().product();
    // A cheap deterministic pattern in [-scale, scale]: the values do not matter for timing.
    let data: Vec<f32> =
        (0..n).map(|i| (((i * 2_654_435_761) % 2001) as f32 / 1000.0 - 1.0) * scale).collect();
    gpu.upload(shape, &data).map_err(|e| e.to_string())
}

fn cases(gpu: &Gpu) -> Result<Vec<Case>, String> {
    let mut out = Vec::new();

    for (name, hw, cin, cout, k) in
        [("conv 3x3 128->128 @128x128", 128, 128, 128, 3), ("conv 1x1 256->256 @64x64", 64, 256, 256, 1)]
    {
        let x = filled(gpu, &[1, hw, hw, cin], 1.0)?;
        let w = filled(gpu, &[k, k, cin, cout], 0.05)?;
        let b = filled(gpu, &[cout], 0.1)?;
        let geom = conv::Geometry::symmetric(1, k / 2);
        let work = conv::conv2d_flops([1, hw, hw, cin], [k, k, cin, cout], &geom);
        out.push(Case {
            name,
            work,
            unit: "GFLOP/s",
            record: Box::new(move |f| {
                conv::conv2d(f, &x, &w, &geom, &conv::Epilogue::bias_act(Some(&b), Activation::Silu))
            }),
        });
    }

    let (m, n, k) = (1024, 1024, 1024);
    let a = filled(gpu, &[m, k], 1.0)?;
    let b = filled(gpu, &[k, n], 0.05)?;
    out.push(Case {
        name: "matmul 1024x1024x1024",
        work: matmul::matmul_flops(m, n, k, 1),
        unit: "GFLOP/s",
        record: Box::new(move |f| matmul::matmul(f, &a, &b, matmul::Epilogue::default())),
    });

    // The paper decoder's bottleneck: 64² tokens + the time token, d 512 in 8 heads of 64.
    let (tokens, d, heads) = (4097, 512, 8);
    let q = filled(gpu, &[1, tokens, d], 1.0)?;
    let kk = filled(gpu, &[1, tokens, d], 1.0)?;
    let v = filled(gpu, &[1, tokens, d], 1.0)?;
    out.push(Case {
        name: "attention 4097 tokens d512 8 heads",
        work: attention::attention_flops(1, tokens, tokens, heads, d / heads),
        unit: "GFLOP/s",
        record: Box::new(move |f| attention::attention(f, &q, &kk, &v, heads)),
    });

    // The web decoder's full-resolution level: group norm + SiLU, read once for statistics, once to
    // normalise, written once.
    let (hw, c) = (128, 128);
    let x = filled(gpu, &[1, hw * hw, c], 1.0)?;
    let gamma = filled(gpu, &[c], 1.0)?;
    let beta = filled(gpu, &[c], 0.1)?;
    out.push(Case {
        name: "group norm + SiLU 128x128x128",
        work: 3.0 * (hw * hw * c * 4) as f64,
        unit: "GB/s",
        record: Box::new(move |f| norm::group_norm(f, &x, &gamma, &beta, 32, 1e-5, Activation::Silu)),
    });
    Ok(out)
}

/// Milliseconds of one frame holding the case's kernel(s): GPU time from timestamp queries where
/// the adapter has them, else wall time from submit to completion.
fn time_frame(gpu: &Gpu, case: &Case) -> Result<f64, String> {
    let mut frame = gpu.frame();
    let output = (case.record)(&mut frame).map_err(|e| e.to_string())?;
    let ms = if gpu_timestamps(gpu) {
        let timings =
            pollster::block_on(frame.submit_profiled().map_err(|e| e.to_string())?.into_timings(gpu))
                .map_err(|e| e.to_string())?;
        timings.iter().map(|(_, ms)| ms).sum()
    } else {
        let start = Instant::now();
        frame.submit();
        gpu.wait_idle();
        start.elapsed().as_secs_f64() * 1e3
    };
    drop(output);
    Ok(ms)
}

fn gpu_timestamps(gpu: &Gpu) -> bool {
    gpu.features().contains(wgpu::Features::TIMESTAMP_QUERY)
}

pub fn ops(gpu: &Gpu, iters: u32, json: bool) -> Result<(), String> {
    let a = gpu.adapter();
    if !json {
        println!(
            "adapter: {} ({}, {}){}",
            a.name,
            a.device_type,
            a.backend,
            if gpu.is_fallback_adapter() { " — software adapter" } else { "" }
        );
        println!(
            "timer: {}",
            if gpu_timestamps(gpu) { "GPU timestamps" } else { "wall clock, submit to completion" }
        );
        println!("{:<38} {:>10} {:>12}", "kernel", "ms", "throughput");
    }
    gpu.preload(&pix2seqd::ops::all_kernels());
    let mut rows = Vec::new();
    for case in cases(gpu)? {
        time_frame(gpu, &case)?; // warm-up: pipelines, buffers, bind groups
        let mut samples: Vec<f64> =
            (0..iters.max(1)).map(|_| time_frame(gpu, &case)).collect::<Result<_, _>>()?;
        samples.sort_by(f64::total_cmp);
        let ms = samples[samples.len() / 2];
        let rate = case.work / (ms * 1e-3) / 1e9;
        if json {
            rows.push(
                serde_json::json!({"kernel": case.name, "ms": ms, "throughput": rate, "unit": case.unit}),
            );
        } else {
            println!("{:<38} {:>10.3} {:>8.1} {}", case.name, ms, rate, case.unit);
        }
    }
    if json {
        println!(
            "{:#}",
            serde_json::json!({"adapter": a.name, "backend": a.backend, "fallback_adapter": gpu.is_fallback_adapter(), "gpu_timestamps": gpu_timestamps(gpu), "iters": iters, "kernels": rows})
        );
    }
    Ok(())
}

/// What `pix2seqd bench` runs: a model file, or built-in / file configs with synthetic weights.
pub struct PipelineArgs {
    pub model: Option<std::path::PathBuf>,
    pub configs: Vec<String>,
    pub size: Option<usize>,
    pub steps: Vec<usize>,
    pub iters: u32,
    pub warmup: bool,
    pub cpu: bool,
    pub json: bool,
}

const WEB_CONFIG: &str = include_str!("../../../train/configs/web.json");
const PAPER_CONFIG: &str = include_str!("../../../train/configs/paper.json");

fn builtin_config(name: &str) -> Result<pix2seqd::model::ModelConfig, String> {
    let text = match name {
        "web" => WEB_CONFIG.to_string(),
        "paper" => PAPER_CONFIG.to_string(),
        path => pix2seqd::limits::read_text_file(path.as_ref(), pix2seqd::limits::MAX_CARD_BYTES)
            .map_err(|e| format!("config {e} (use web, paper or a config JSON file)"))?,
    };
    pix2seqd::model::ModelConfig::from_json(&text).map_err(|e| format!("config {name}: {e}"))
}

/// A synthetic test image: colour gradients and a few rectangles, 640x480 (a webcam frame).
fn test_image() -> (usize, usize, Vec<u8>) {
    let (w, h) = (640, 480);
    let mut rgba = Vec::with_capacity(w * h * 4);
    for y in 0..h {
        for x in 0..w {
            let block = ((x / 80) + (y / 60)) % 3;
            rgba.extend_from_slice(&[(x * 255 / w) as u8, (y * 255 / h) as u8, (block * 120) as u8, 255]);
        }
    }
    (w, h, rgba)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Per-stage milliseconds (median over `iters` runs; one warm-up run per model) and fps of whole
/// images.
pub fn pipeline(a: &PipelineArgs) -> Result<(), String> {
    use pix2seqd::{BackendKind, Image, Segmenter};
    let backend = if a.cpu { BackendKind::Cpu } else { BackendKind::Gpu };
    let mut sources: Vec<(String, Result<Segmenter, String>, bool)> = Vec::new();
    if let Some(path) = &a.model {
        sources.push((
            path.display().to_string(),
            crate::common::open_segmenter(path, backend).map_err(|e| e.to_string()),
            false,
        ));
    } else {
        for name in &a.configs {
            let mut cfg = builtin_config(name)?;
            if let Some(s) = a.size {
                let ratio = cfg.image_size[0] / cfg.mask_size[0];
                cfg.image_size = [s, s];
                cfg.mask_size = [s / ratio, s / ratio];
                cfg.validate().map_err(|e| format!("--size {s}: {e}"))?;
            }
            sources.push((
                name.clone(),
                pollster::block_on(Segmenter::synthetic(cfg, 0, backend)).map_err(|e| e.to_string()),
                true,
            ));
        }
    }
    let (w, h, rgba) = test_image();
    let image = Image::new(w, h, &rgba).map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    // A setting that fails is reported in its row and the others still run; the exit status says so.
    let mut failures: Vec<String> = Vec::new();
    if !a.json {
        println!(
            "{:<8} {:>9} {:>5} {:>8} {:>8} {:>9} {:>8} {:>8} {:>9} {:>9} {:>7}",
            "model",
            "image",
            "steps",
            "ingest",
            "encoder",
            "step",
            "readout",
            "post",
            "gpu sum",
            "wall",
            "fps"
        );
    }
    for (name, seg, synthetic) in &mut sources {
        let seg = match seg {
            Ok(s) => s,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                rows.push(serde_json::json!({"model": name, "error": e.clone()}));
                if !a.json {
                    println!("{name:<8} error: {e}");
                }
                continue;
            }
        };
        let cfg = seg.config().clone();
        let size = format!("{}x{}", cfg.image_size[1], cfg.image_size[0]);
        // One warm-up per model (pipelines, buffers, bind groups), before its first setting: a
        // `paper` run on lavapipe takes minutes, so later settings are not warmed up again.
        let mut warm = !a.warmup;
        for &steps in &a.steps {
            let opts = pix2seqd::SegmentOptions { steps, profile: true, ..seg.default_options() };
            let mut runs = Vec::new();
            let mut failure = None;
            let first = if warm { 1 } else { 0 };
            warm = true;
            for i in first..=a.iters.max(1) {
                match seg.segment_blocking(image, &opts) {
                    Ok(r) if i > 0 => runs.push(r.timings),
                    Ok(_) => {}
                    Err(e) => {
                        failure = Some(e.to_string());
                        break;
                    }
                }
            }
            if let Some(e) = failure {
                failures.push(format!("{name} at {steps} steps: {e}"));
                if !a.json {
                    println!("{name:<8} {size:>9} {steps:>5} error: {e}");
                }
                rows.push(serde_json::json!({"model": name, "image_size": cfg.image_size, "steps": steps, "error": e}));
                continue;
            }
            let stage = |f: &dyn Fn(&pix2seqd::Timings) -> Option<f64>| {
                let mut v: Vec<f64> = runs.iter().filter_map(f).collect();
                (!v.is_empty()).then(|| median(&mut v))
            };
            let ingest = stage(&|t| t.ingest);
            let encoder = stage(&|t| t.encoder);
            let step = stage(&|t| {
                (!t.decoder_steps.is_empty())
                    .then(|| t.decoder_steps.iter().sum::<f64>() / t.decoder_steps.len() as f64)
            });
            let readout = stage(&|t| t.readout);
            let post = stage(&|t| t.postprocess);
            let wall = stage(&|t| Some(t.total)).unwrap_or(f64::NAN);
            let gpu_sum = match (ingest, encoder, step, readout, post) {
                (Some(i), Some(e), Some(s), Some(r), Some(p)) => Some(i + e + s * steps as f64 + r + p),
                _ => None,
            };
            let source = runs.first().map(|t| t.source).unwrap_or("none");
            let fmt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
            if !a.json {
                println!(
                    "{name:<8} {size:>9} {steps:>5} {:>8} {:>8} {:>9} {:>8} {:>8} {:>9} {:>9.1} {:>7.2}",
                    fmt(ingest),
                    fmt(encoder),
                    fmt(step),
                    fmt(readout),
                    fmt(post),
                    fmt(gpu_sum),
                    wall,
                    1000.0 / wall
                );
            }
            rows.push(serde_json::json!({
                "model": name, "synthetic_weights": *synthetic, "image_size": cfg.image_size, "mask_size": cfg.mask_size,
                "steps": steps, "iters": runs.len(), "timer": source,
                "ms": {"ingest": ingest, "encoder": encoder, "decoder_step": step, "readout": readout, "postprocess": post, "gpu_sum": gpu_sum, "wall": wall},
                "fps": 1000.0 / wall,
            }));
        }
    }
    let adapter = sources
        .iter()
        .find_map(|(_, s, _)| s.as_ref().ok().and_then(|s| s.gpu()).map(|g| g.adapter().name.clone()));
    let cpu_path = a.cpu.then(|| pix2seqd::backend::CpuPath::detect().to_string());
    if a.json {
        println!(
            "{:#}",
            serde_json::json!({"backend": backend.name(), "adapter": adapter, "cpu_path": cpu_path, "input": [h, w], "results": rows})
        );
    } else {
        println!(
            "(input {w}x{h}; stages: GPU timestamps where the adapter has them, post-processing and wall: CPU clock; fps = 1000 / wall)"
        );
        if let Some(a) = adapter {
            println!("adapter: {a}");
        }
        if let Some(path) = &cpu_path {
            println!("CPU path: {path} (RAYON_NUM_THREADS sets the threads)");
        }
    }
    match failures.first() {
        None => Ok(()),
        Some(first) => {
            Err(format!("{} of the benchmarked settings failed; the first: {first}", failures.len()))
        }
    }
}
