//! The `pix2seqd` command line: `info` (adapter, backend, limits, features) and `bench ops`
//! (kernel throughput). Errors end the process with a non-zero status and one clear line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pix2seqd::gpu::{Gpu, GpuOptions};

mod bench;

#[derive(Parser)]
#[command(name = "pix2seqd", version, about = "Pix2Seq-D panoptic segmentation by bit diffusion, on the GPU")]
struct Cli {
    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Do not use shader-f16 even where the adapter has it.
    #[arg(long, global = true)]
    no_f16: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the GPU adapter, backend, limits and features this machine offers.
    Info,
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
}

#[derive(Subcommand)]
enum BenchWhat {
    /// Throughput of the core kernels (conv 3x3, matmul, attention, group norm) in GFLOP/s.
    Ops {
        /// Timed repetitions per kernel (after one warm-up).
        #[arg(long, default_value_t = 3)]
        iters: u32,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("pix2seqd: {message}");
            ExitCode::FAILURE
        }
    }
}

fn open_gpu(cli: &Cli) -> Result<Gpu, String> {
    Gpu::new_blocking(GpuOptions { allow_f16: !cli.no_f16, ..Default::default() }).map_err(|e| e.to_string())
}

fn run(cli: &Cli) -> Result<(), String> {
    match &cli.command {
        Command::Info => info(cli),
        Command::Bench { what: BenchWhat::Ops { iters } } => bench::ops(&open_gpu(cli)?, *iters, cli.json),
    }
}

fn info(cli: &Cli) -> Result<(), String> {
    let gpu = open_gpu(cli)?;
    let a = gpu.adapter();
    let l = gpu.limits();
    let limits = [
        ("max_buffer_size", l.max_buffer_size),
        ("max_storage_buffer_binding_size", l.max_storage_buffer_binding_size),
        ("max_storage_buffers_per_shader_stage", l.max_storage_buffers_per_shader_stage as u64),
        ("max_compute_workgroup_storage_size", l.max_compute_workgroup_storage_size as u64),
        ("max_compute_invocations_per_workgroup", l.max_compute_invocations_per_workgroup as u64),
        ("max_compute_workgroups_per_dimension", l.max_compute_workgroups_per_dimension as u64),
        ("min_uniform_buffer_offset_alignment", l.min_uniform_buffer_offset_alignment as u64),
    ];
    let features = [("shader-f16", gpu.has_f16()), ("timestamp-query", gpu.features().contains(wgpu::Features::TIMESTAMP_QUERY))];
    if cli.json {
        let json = serde_json::json!({
            "adapter": a.name, "backend": a.backend, "device_type": a.device_type,
            "driver": a.driver, "driver_info": a.driver_info, "fallback_adapter": gpu.is_fallback_adapter(),
            "limits": limits.iter().map(|(k, v)| (k.to_string(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
            "features": features.iter().map(|(k, v)| (k.to_string(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
            "kernels": pix2seqd::ops::all_kernels().len(),
        });
        println!("{json:#}");
    } else {
        println!("adapter   {} ({}, {})", a.name, a.device_type, a.backend);
        println!("driver    {} {}", a.driver, a.driver_info);
        if gpu.is_fallback_adapter() {
            println!("note      this is a software adapter: correct, but far slower than a GPU");
        }
        println!(
            "features  {}",
            features.iter().map(|(k, v)| format!("{k}: {}", if *v { "yes" } else { "no" })).collect::<Vec<_>>().join(", ")
        );
        println!("limits");
        for (k, v) in limits {
            println!("  {k:<40} {v}");
        }
        println!("kernels   {}", pix2seqd::ops::all_kernels().len());
    }
    Ok(())
}
