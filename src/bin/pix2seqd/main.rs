//! The `pix2seqd` command line (design §9): `segment`, `eval pq|camvid|davis`, `bench`,
//! `bench ops`, `info`. `--json` puts machine-readable JSON on stdout; errors end the process with
//! a non-zero status and one clear line on stderr.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use pix2seqd::gpu::{Gpu, GpuOptions};
use pix2seqd::Postprocess;

mod bench;
mod common;
mod eval;
mod figure;
mod segment;

#[derive(Parser)]
#[command(name = "pix2seqd", version, about = "Pix2Seq-D panoptic segmentation by bit diffusion, on the GPU")]
struct Cli {
    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

/// Model and sampler options shared by the commands that run the model.
#[derive(Args, Clone)]
struct ModelOpts {
    /// Model: a shipped model's name (`objects`, `street`: assets/models/NAME), a stem (for
    /// STEM.json + STEM.safetensors) or either file. Default: `objects` (`street` for `eval
    /// camvid`), found from the repository root.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Diffusion steps (default: the model's). `eval` takes a list (`1,2,4,10`) and reports each.
    #[arg(long, value_delimiter = ',', value_parser = steps_parser())]
    steps: Vec<usize>,
    /// Time difference of the sampler, in steps (default: the model's).
    #[arg(long, value_parser = parse_td, allow_negative_numbers = true)]
    td: Option<f64>,
    /// Noise seed.
    #[arg(long, default_value_t = 0)]
    seed: u32,
    /// Minimum segment area in output pixels (the image's own, unless `segment --max-output-side`
    /// scales the output down); smaller segments become void.
    #[arg(long, default_value_t = 40)]
    min_area: u64,
    /// How sampled ids become segments: `majority_vote` (official) or `thing_vote` (stuff keeps
    /// its class bits; ids vote among thing pixels). Default: the model card's.
    #[arg(long, value_parser = parse_postprocess)]
    postprocess: Option<Postprocess>,
    /// Run on the CPU instead of the GPU.
    #[arg(long)]
    cpu: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Segment images: writes NAME.png (overlay), NAME_panoptic.png and panoptic.json (COCO panoptic).
    Segment {
        /// Image files (JPEG or PNG).
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// Output folder (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Longest side of the output (readout, segments, PNGs): the image's own size up to
        /// this, scaled down beyond it.
        #[arg(long, default_value_t = pix2seqd::DEFAULT_MAX_OUTPUT_SIDE as u64, value_parser = clap::value_parser!(u64).range(1..=pix2seqd::MAX_IMAGE_SIDE as u64))]
        max_output_side: u64,
        #[command(flatten)]
        model: ModelOpts,
    },
    /// Evaluate: PQ of COCO panoptic files, or the model on CamVid / DAVIS.
    Eval {
        #[command(subcommand)]
        what: EvalWhat,
    },
    /// Before/after figure for docs/: input, ground truth and prediction, one row per image.
    Figure {
        #[command(subcommand)]
        what: FigureWhat,
    },
    /// Show the GPU adapter, backend, limits and features this machine offers.
    Info,
    /// Per-stage milliseconds and fps of whole images (`bench ops`: kernel throughput).
    Bench {
        #[command(subcommand)]
        what: Option<BenchWhat>,
        /// Benchmark this model file instead of the built-in configs.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Configs to benchmark with synthetic weights: web, paper or a config JSON file.
        #[arg(long, value_delimiter = ',', default_value = "web,paper")]
        config: Vec<String>,
        /// Square input size instead of the config's (the mask keeps the config's ratio).
        #[arg(long, value_parser = parse_bench_size)]
        size: Option<usize>,
        /// Sampler steps to time.
        #[arg(long, value_delimiter = ',', default_value = "1,4,10", value_parser = steps_parser())]
        steps: Vec<usize>,
        /// Timed runs per setting (after one warm-up run per model); the median is reported.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
        iters: u32,
        /// Skip the warm-up run (pipelines are created up front anyway; a `paper` run on a
        /// software adapter takes many minutes).
        #[arg(long)]
        no_warmup: bool,
        /// Run on the CPU instead of the GPU.
        #[arg(long)]
        cpu: bool,
    },
}

#[derive(Subcommand)]
enum EvalWhat {
    /// PQ/SQ/RQ (all, things, stuff) of COCO panoptic predictions, panopticapi semantics.
    Pq {
        #[arg(long)]
        gt_json: PathBuf,
        #[arg(long)]
        gt_dir: PathBuf,
        #[arg(long)]
        pred_json: PathBuf,
        #[arg(long)]
        pred_dir: PathBuf,
    },
    /// mIoU and PQ of the model on a CamVid split (../shared/data/camvid).
    Camvid {
        #[arg(long, default_value = "test")]
        split: String,
        /// Only the first N images.
        #[arg(long, value_parser = positive_count())]
        limit: Option<usize>,
        #[command(flatten)]
        model: ModelOpts,
    },
    /// PQ (things) and mIoU on coco128-seg (`val`: the 16 held-out images).
    Coco128 {
        #[arg(long, default_value = "val")]
        split: String,
        /// Only the first N images.
        #[arg(long, value_parser = positive_count())]
        limit: Option<usize>,
        #[command(flatten)]
        model: ModelOpts,
    },
    /// J&F of streaming video segmentation on DAVIS 2016 sequences.
    Davis {
        /// The davis2016 folder (SEQ/images, SEQ/masks). Default: the data root's davis2016.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Sequences: val, train or all.
        #[arg(long, default_value = "val")]
        split: String,
        /// Only the first N frames of every sequence.
        #[arg(long, value_parser = positive_count())]
        max_frames: Option<usize>,
        #[command(flatten)]
        model: ModelOpts,
    },
}

#[derive(Subcommand)]
enum FigureWhat {
    /// CamVid images (default model: `street`).
    Camvid(FigureArgs),
    /// coco128-seg images, held-out `val` by default (default model: `objects`).
    Coco128(FigureArgs),
    /// Frames of a DAVIS 2016 sequence, segmented in order from the first frame (a video model
    /// streams; default model: `objects`).
    Davis(DavisFigureArgs),
    /// Photos read out as before (x̂0 thresholded at mask resolution, nearest neighbour) and with
    /// the bilinear readout, side by side (default model: `objects`).
    Readout(ReadoutFigureArgs),
}

#[derive(Args)]
struct ReadoutFigureArgs {
    /// Image files (JPEG or PNG), one row each.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    #[command(flatten)]
    output: FigureOutput,
}

#[derive(Args)]
struct DavisFigureArgs {
    /// Sequence name (default: the first held-out val sequence).
    #[arg(long)]
    sequence: Option<String>,
    /// Frame indices to show; every frame up to the last one is segmented.
    #[arg(long, value_delimiter = ',', default_value = "0,20,40")]
    frames: Vec<usize>,
    #[command(flatten)]
    output: FigureOutput,
}

/// Where and how large a figure is drawn, and by which model.
#[derive(Args)]
struct FigureOutput {
    /// Width of each panel in pixels.
    #[arg(long, default_value_t = 360, value_parser = clap::value_parser!(u32).range(16..=pix2seqd::limits::MAX_PANEL_WIDTH as i64))]
    panel_width: u32,
    /// Output file (.jpg or .png).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    model: ModelOpts,
}

#[derive(Args)]
struct FigureArgs {
    /// Split: CamVid train, val or test (default test); coco128-seg train, val or all (default val).
    #[arg(long)]
    split: Option<String>,
    /// Image indices in the split.
    #[arg(long, value_delimiter = ',', default_value = "0,5,10")]
    images: Vec<usize>,
    #[command(flatten)]
    output: FigureOutput,
}

#[derive(Subcommand)]
enum BenchWhat {
    /// Throughput of the core kernels (conv 3x3, matmul, attention, group norm) in GFLOP/s.
    Ops {
        /// Timed repetitions per kernel (after one warm-up).
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
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

fn open_gpu() -> Result<Gpu, String> {
    Gpu::new_blocking(GpuOptions::default()).map_err(|e| e.to_string())
}

fn run(cli: &Cli) -> Result<(), String> {
    match &cli.command {
        Command::Info => info(cli),
        Command::Bench { what: Some(BenchWhat::Ops { iters }), .. } => {
            bench::ops(&open_gpu()?, *iters, cli.json)
        }
        Command::Bench { what: None, model, config, size, steps, iters, no_warmup, cpu } => {
            bench::pipeline(&bench::PipelineArgs {
                model: model.clone(),
                configs: config.clone(),
                size: *size,
                steps: steps.clone(),
                iters: *iters,
                warmup: !*no_warmup,
                cpu: *cpu,
                json: cli.json,
            })
        }
        Command::Segment { images, out, max_output_side, model: m } => segment::run(segment::Args {
            images,
            model: m.model.as_deref(),
            out,
            max_output_side: *max_output_side as usize,
            steps: single_steps(&m.steps)?,
            td: m.td,
            seed: m.seed,
            min_area: m.min_area,
            postprocess: m.postprocess,
            cpu: m.cpu,
            json: cli.json,
        }),
        Command::Figure { what } => {
            let (dataset, a, default_split) = match what {
                FigureWhat::Camvid(a) => (figure::Dataset::Camvid, a, "test"),
                FigureWhat::Coco128(a) => (figure::Dataset::Coco128, a, "val"),
                FigureWhat::Davis(a) => {
                    let o = &a.output;
                    return figure::davis_figure(
                        &model_args(&o.model),
                        a.sequence.as_deref(),
                        &a.frames,
                        o.panel_width,
                        &o.out,
                        cli.json,
                    );
                }
                FigureWhat::Readout(a) => {
                    let o = &a.output;
                    return figure::readout_figure(
                        &model_args(&o.model),
                        &a.images,
                        o.panel_width,
                        &o.out,
                        cli.json,
                    );
                }
            };
            let split = a.split.as_deref().unwrap_or(default_split);
            let o = &a.output;
            figure::figure(&model_args(&o.model), dataset, split, &a.images, o.panel_width, &o.out, cli.json)
        }
        Command::Eval { what } => match what {
            EvalWhat::Pq { gt_json, gt_dir, pred_json, pred_dir } => {
                eval::pq(gt_json, gt_dir, pred_json, pred_dir, cli.json)
            }
            EvalWhat::Camvid { split, limit, model } => {
                eval::camvid(&model_args(model), split, *limit, cli.json)
            }
            EvalWhat::Coco128 { split, limit, model } => {
                eval::coco128(&model_args(model), split, *limit, cli.json)
            }
            EvalWhat::Davis { dir, split, max_frames, model } => {
                eval::davis(&model_args(model), dir.as_deref(), split, *max_frames, cli.json)
            }
        },
    }
}

fn model_args(m: &ModelOpts) -> eval::ModelArgs<'_> {
    eval::ModelArgs {
        model: m.model.as_deref(),
        steps: m.steps.clone(),
        td: m.td,
        seed: m.seed,
        min_area: m.min_area,
        postprocess: m.postprocess,
        cpu: m.cpu,
    }
}

/// `--steps`: 1 to `limits::MAX_STEPS` each.
fn steps_parser() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..=pix2seqd::limits::MAX_STEPS as u64)
}

/// A count of things to do (`--limit`, `--max-frames`): at least 1, as 0 would measure nothing.
fn positive_count() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..)
}

/// `--td`: a finite number of steps in 0..=`limits::MAX_TD`.
fn parse_td(text: &str) -> Result<f64, String> {
    let max = pix2seqd::limits::MAX_TD;
    match text.parse::<f64>() {
        Ok(td) if (0.0..=max).contains(&td) => Ok(td),
        _ => Err(format!("the time difference must be a number of steps in 0..={max}")),
    }
}

/// `bench --size`: a model input side, a multiple of 16 up to `limits::MAX_MODEL_IMAGE_SIDE`.
fn parse_bench_size(text: &str) -> Result<usize, String> {
    let max = pix2seqd::limits::MAX_MODEL_IMAGE_SIDE;
    match text.parse::<usize>() {
        Ok(size) if size > 0 && size <= max && size % 16 == 0 => Ok(size),
        _ => Err(format!("the input side must be a multiple of 16 in 16..={max}")),
    }
}

fn parse_postprocess(name: &str) -> Result<Postprocess, String> {
    Postprocess::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Postprocess::ALL.iter().map(|p| p.name()).collect();
        format!("unknown post-processing {name:?} (use {})", names.join(" or "))
    })
}

/// `segment` samples with one step count.
fn single_steps(steps: &[usize]) -> Result<Option<usize>, String> {
    match steps {
        [] => Ok(None),
        [s] => Ok(Some(*s)),
        _ => Err(format!("segment takes one --steps value, not {}", steps.len())),
    }
}

fn info(cli: &Cli) -> Result<(), String> {
    let gpu = open_gpu()?;
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
    let features = [
        ("shader-f16", gpu.has_f16()),
        ("timestamp-query", gpu.features().contains(wgpu::Features::TIMESTAMP_QUERY)),
    ];
    if cli.json {
        let json = serde_json::json!({
            "adapter": a.name, "backend": a.backend, "device_type": a.device_type,
            "driver": a.driver, "driver_info": a.driver_info, "fallback_adapter": gpu.is_fallback_adapter(),
            "limits": limits.iter().map(|(k, v)| (k.to_string(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
            "features": features.iter().map(|(k, v)| (k.to_string(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
            "kernels": pix2seqd::ops::all_kernels().len(),
            "cpu_path": pix2seqd::backend::CpuPath::detect(),
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
            features
                .iter()
                .map(|(k, v)| format!("{k}: {}", if *v { "yes" } else { "no" }))
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!("limits");
        for (k, v) in limits {
            println!("  {k:<40} {v}");
        }
        println!("kernels   {}", pix2seqd::ops::all_kernels().len());
        println!(
            "CPU path  {} (`--cpu`; RAYON_NUM_THREADS sets the threads)",
            pix2seqd::backend::CpuPath::detect()
        );
    }
    Ok(())
}
