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
    let data: Vec<f32> = (0..n).map(|i| (((i * 2_654_435_761) % 2001) as f32 / 1000.0 - 1.0) * scale).collect();
    gpu.upload(shape, &data).map_err(|e| e.to_string())
}

fn cases(gpu: &Gpu) -> Result<Vec<Case>, String> {
    let mut out = Vec::new();

    for (name, hw, cin, cout, k) in [("conv 3x3 128->128 @128x128", 128, 128, 128, 3), ("conv 1x1 256->256 @64x64", 64, 256, 256, 1)] {
        let x = filled(gpu, &[1, hw, hw, cin], 1.0)?;
        let w = filled(gpu, &[k, k, cin, cout], 0.05)?;
        let b = filled(gpu, &[cout], 0.1)?;
        let geom = conv::Geometry::symmetric(1, k / 2);
        let work = conv::conv2d_flops([1, hw, hw, cin], [k, k, cin, cout], &geom);
        out.push(Case {
            name,
            work,
            unit: "GFLOP/s",
            record: Box::new(move |f| conv::conv2d(f, &x, &w, &geom, &conv::Epilogue::bias_act(Some(&b), Activation::Silu))),
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
            pollster::block_on(frame.submit_profiled().map_err(|e| e.to_string())?.into_timings(gpu)).map_err(|e| e.to_string())?;
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
        println!("timer: {}", if gpu_timestamps(gpu) { "GPU timestamps" } else { "wall clock, submit to completion" });
        println!("{:<38} {:>10} {:>12}", "kernel", "ms", "throughput");
    }
    gpu.preload(&pix2seqd::ops::all_kernels());
    let mut rows = Vec::new();
    for case in cases(gpu)? {
        time_frame(gpu, &case)?; // warm-up: pipelines, buffers, bind groups
        let mut samples: Vec<f64> = (0..iters.max(1)).map(|_| time_frame(gpu, &case)).collect::<Result<_, _>>()?;
        samples.sort_by(f64::total_cmp);
        let ms = samples[samples.len() / 2];
        let rate = case.work / (ms * 1e-3) / 1e9;
        if json {
            rows.push(serde_json::json!({"kernel": case.name, "ms": ms, "throughput": rate, "unit": case.unit}));
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
