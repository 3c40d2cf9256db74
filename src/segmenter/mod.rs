//! The public entry point (design §3): [`Segmenter`] loads a model onto the GPU (or the CPU
//! fallback) and segments images and video frames.
//!
//! One image is one GPU frame: ingest (letterbox + normalise) → encoder → conditioning → the whole
//! sampler loop → the readout, recorded into one compute pass and submitted once. The readout
//! ([`crate::ops::readout`]) reads the last step's logits bilinearly at the output resolution
//! (the image's own size up to [`SegmentOptions::max_output_side`]); those ids are read back and
//! post-processed on the CPU (thing vote or majority vote, minimum area, stuff merge).
//!
//! Video: [`Segmenter::segment_frame`] feeds the last k predicted maps (k = the config's
//! `video_prev_masks`) back as analog bits: the per-cell argmax of the logits at mask resolution,
//! which is what the readout gives at the cell centres. They stay on the GPU between frames.
//! [`Segmenter::reset`] forgets them (a new clip).

mod frame;
mod overlay;
mod video;

pub use overlay::overlay_rgba_with;

use frame::Output;
use video::VideoHistory;

use crate::backend::GpuBackend;
use crate::backend::{CpuBackend, CpuTensor};
use crate::error::Error;
use crate::geometry::Letterbox;
use crate::gpu::{Gpu, GpuOptions, Presenter, Tensor};
use crate::model::config::Postprocess;
use crate::model::{ModelConfig, Pix2SeqD, Weights};
use crate::ops::render;
use crate::panoptic::{self, PanopticMap};

/// Largest accepted image side (a decoded 16k image is already 1 GiB of RGBA).
pub const MAX_IMAGE_SIDE: usize = 16384;

/// The default cap on the output's longest side ([`SegmentOptions::max_output_side`]): a 4096 ×
/// 3072 map is 12.6 M pixels, and the GPU's id maps stay well inside a 128 MiB binding.
pub const DEFAULT_MAX_OUTPUT_SIDE: usize = 4096;

/// The size of the output maps for an image of `height × width`: the image's own size while its
/// longest side is at most `max_side`, else scaled down to it (aspect ratio kept, sides rounded,
/// at least 1).
pub fn output_size(height: usize, width: usize, max_side: usize) -> (usize, usize) {
    let longest = height.max(width);
    if longest <= max_side || max_side == 0 {
        return (height, width);
    }
    let scale = max_side as f64 / longest as f64;
    let side = |n: usize| ((n as f64 * scale).round() as usize).clamp(1, max_side);
    (side(height), side(width))
}

/// A decoded image: RGBA8, row-major, `width · height · 4` bytes.
#[derive(Clone, Copy, Debug)]
pub struct Image<'a> {
    pub width: usize,
    pub height: usize,
    pub rgba: &'a [u8],
}

impl<'a> Image<'a> {
    pub fn new(width: usize, height: usize, rgba: &'a [u8]) -> Result<Image<'a>, Error> {
        let invalid = |detail: String| Error::Image { name: format!("{width}x{height}"), detail };
        if width == 0 || height == 0 || width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE {
            return Err(invalid(format!("sides must be 1..={MAX_IMAGE_SIDE} pixels")));
        }
        if rgba.len() != width * height * 4 {
            return Err(invalid(format!(
                "{} bytes of RGBA data, expected {}",
                rgba.len(),
                width * height * 4
            )));
        }
        Ok(Image { width, height, rgba })
    }
}

/// The pixels of an image or frame: RGBA8 bytes in host memory, or an RGBA8 texture already on
/// the segmenter's GPU (a video frame copied with `copy_external_image_to_texture`: nothing
/// crosses to host memory). The texture needs `COPY_SRC` and a width that is a multiple of 64
/// (row copies are 256-byte aligned).
#[derive(Clone, Copy, Debug)]
pub enum Pixels<'a> {
    Rgba(Image<'a>),
    Texture(&'a wgpu::Texture),
}

impl<'a> From<Image<'a>> for Pixels<'a> {
    fn from(image: Image<'a>) -> Self {
        Pixels::Rgba(image)
    }
}

impl Pixels<'_> {
    /// `(height, width)`.
    pub fn size(&self) -> (usize, usize) {
        match self {
            Pixels::Rgba(i) => (i.height, i.width),
            Pixels::Texture(t) => (t.height() as usize, t.width() as usize),
        }
    }
}

/// Where the model runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    Gpu,
    Cpu,
}

impl BackendKind {
    /// "webgpu" in the browser (the page's API), "gpu" natively (wgpu on Vulkan, Metal or DX12:
    /// the adapter's API is reported beside it), "cpu".
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Gpu if cfg!(target_arch = "wasm32") => "webgpu",
            BackendKind::Gpu => "gpu",
            BackendKind::Cpu => "cpu",
        }
    }
}

/// Per-call options; [`Segmenter::default_options`] gives the model's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SegmentOptions {
    pub steps: usize,
    pub td: f64,
    pub seed: u32,
    /// Segments smaller than this (in output pixels) become void (official: 40).
    pub min_area: u64,
    /// How sampled ids become segments (the model card's `sampler.postprocess`).
    pub postprocess: Postprocess,
    /// The longest side of the output maps (readout, post-processing, overlay, metrics): the
    /// image's own size up to this, scaled down beyond it. `min_area` counts output pixels.
    pub max_output_side: usize,
    /// Time every stage with GPU timestamps (when the adapter has them).
    pub profile: bool,
}

/// Milliseconds per stage. GPU stages come from timestamp queries when profiling, CPU stages
/// from the wall clock; `None` where a stage was not measured separately.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Timings {
    pub ingest: Option<f64>,
    pub encoder: Option<f64>,
    pub decoder_steps: Vec<f64>,
    /// The readout of the last logits (cell ids and the output-resolution ids).
    pub readout: Option<f64>,
    /// Read-back wait + post-processing on the CPU.
    pub postprocess: Option<f64>,
    /// Wall clock of the whole call.
    pub total: f64,
    /// "gpu-timestamps", "wall-clock" (per stage) or "total-only".
    pub source: &'static str,
}

/// One segment of the result (design §9's `segments`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SegmentInfo {
    /// Segment id (1..n; the COCO panoptic PNG's id).
    pub id: u32,
    pub class: u32,
    pub label: String,
    #[serde(rename = "isThing")]
    pub is_thing: bool,
    pub instance: u32,
    pub area: u64,
    /// `[x, y, width, height]` in original-image pixels.
    pub bbox: [u32; 4],
}

/// The result of one image or frame.
#[derive(Clone, Debug)]
pub struct Segmentation {
    /// The per-cell argmax of the last step's logits at mask resolution (letterboxed canvas): the
    /// map a video model is conditioned on next.
    pub mask: PanopticMap,
    /// The readout before this one, kept for one release so `eval` can show the difference: the
    /// final x̂0 thresholded per bit at mask resolution (map it to the image with
    /// [`panoptic::postprocess`], which resizes by nearest neighbour).
    pub threshold_mask: PanopticMap,
    /// The readout at the output resolution, before post-processing.
    pub raw: PanopticMap,
    /// Post-processed at the output resolution (the image's own size up to
    /// [`SegmentOptions::max_output_side`]).
    pub panoptic: PanopticMap,
    /// Segment id map of `panoptic` (0 = void), numbered as `segments`.
    pub segment_ids: Vec<u32>,
    pub segments: Vec<SegmentInfo>,
    pub letterbox: Letterbox,
    pub timings: Timings,
    pub backend: BackendKind,
    /// Previous frames this frame was conditioned on (0 for images and the first frame).
    pub conditioned_on: usize,
}

/// How a result is drawn into a canvas on the GPU ([`Segmenter::segment_and_draw`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DrawStyle {
    /// Overlay opacity in [0, 1].
    pub opacity: f32,
    /// White outlines between segments.
    pub outline: bool,
}

impl Default for DrawStyle {
    fn default() -> Self {
        DrawStyle { opacity: 0.55, outline: true }
    }
}

/// What [`Segmenter::draw_frame`] reports: it reads nothing back.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DrawnFrame {
    /// Wall clock until the GPU finished the frame.
    pub total_ms: f64,
    pub conditioned_on: usize,
}

/// Where [`Segmenter::run`]'s result goes.
/// The loaded model on its backend, with the video history beside it.
enum BackendState {
    Gpu(Box<GpuEngine>),
    Cpu(CpuEngine),
}

struct GpuEngine {
    gpu: Gpu,
    model: Pix2SeqD<Tensor>,
    history: VideoHistory<Tensor>,
    /// Packed class colours and thing flags for the overlay kernel, uploaded once.
    palette: Tensor,
    isthing: Tensor,
}

struct CpuEngine {
    model: Pix2SeqD<CpuTensor>,
    history: VideoHistory<CpuTensor>,
}

pub struct Segmenter {
    engine: BackendState,
    cfg: ModelConfig,
    isthing: Vec<bool>,
}

fn now_ms() -> f64 {
    use std::sync::OnceLock;
    static START: OnceLock<web_time::Instant> = OnceLock::new();
    START.get_or_init(web_time::Instant::now).elapsed().as_secs_f64() * 1e3
}

impl Segmenter {
    /// Loads a model (`json`: the model card or a config; `weights`: the safetensors bytes) onto
    /// the GPU, or the CPU when `backend` says so. Fails with a clear error when no GPU adapter
    /// exists and the GPU was asked for.
    pub async fn new(json: &str, weights: Vec<u8>, backend: BackendKind) -> Result<Segmenter, Error> {
        Segmenter::new_with(json, weights, backend, GpuOptions::default()).await
    }

    /// [`Segmenter::new`] with explicit GPU options (f16 off, a smaller binding limit, …).
    pub async fn new_with(
        json: &str,
        weights: Vec<u8>,
        backend: BackendKind,
        gpu: GpuOptions,
    ) -> Result<Segmenter, Error> {
        let cfg = ModelConfig::from_json(json)?;
        Segmenter::with_weights(cfg, Weights::parse(weights)?, backend, gpu).await
    }

    /// A model for `cfg` with made-up weights ([`Weights::synthetic`]): for benchmarking configs
    /// that have no trained weights; its masks are meaningless.
    pub async fn synthetic(cfg: ModelConfig, seed: u64, backend: BackendKind) -> Result<Segmenter, Error> {
        Segmenter::with_weights(cfg, Weights::synthetic(seed), backend, GpuOptions::default()).await
    }

    async fn with_weights(
        cfg: ModelConfig,
        mut weights: Weights,
        backend: BackendKind,
        options: GpuOptions,
    ) -> Result<Segmenter, Error> {
        let engine = match backend {
            BackendKind::Gpu => {
                let gpu = Gpu::new(options).await?;
                gpu.preload(&crate::ops::all_kernels());
                let model = Pix2SeqD::load(cfg.clone(), &mut weights, &gpu)?;
                let flags: Vec<u32> = cfg.isthing().iter().map(|&t| t as u32).collect();
                let palette = gpu.upload_u32(&[flags.len()], &render::pack_palette(&cfg.palette()))?;
                let isthing = gpu.upload_u32(&[flags.len()], &flags)?;
                // Browsers compile pipelines in the GPU process after `create` returns; waiting
                // here makes "loaded" mean "ready", instead of a stalled first frame (and, on a
                // software adapter, a page that stops repainting for seconds after it says ready).
                gpu.work_done().await?;
                BackendState::Gpu(Box::new(GpuEngine {
                    gpu,
                    model,
                    history: VideoHistory::new(),
                    palette,
                    isthing,
                }))
            }
            BackendKind::Cpu => BackendState::Cpu(CpuEngine {
                model: Pix2SeqD::load(cfg.clone(), &mut weights, &CpuBackend)?,
                history: VideoHistory::new(),
            }),
        };
        let isthing = cfg.isthing();
        Ok(Segmenter { engine, cfg, isthing })
    }

    /// [`Segmenter::new`] from `NAME.json` + `NAME.safetensors` (`path` may name either file or
    /// the stem).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_path(path: &std::path::Path, backend: BackendKind) -> Result<Segmenter, Error> {
        // Bounded reads of regular files only (a FIFO or /dev/zero never blocks or fills memory).
        let (json, weights) = crate::limits::read_model_files(path)?;
        pollster::block_on(Segmenter::new(&json, weights, backend))
    }

    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    pub fn backend(&self) -> BackendKind {
        match self.engine {
            BackendState::Gpu(_) => BackendKind::Gpu,
            BackendState::Cpu(_) => BackendKind::Cpu,
        }
    }

    /// The GPU, when running on one.
    pub fn gpu(&self) -> Option<&Gpu> {
        match &self.engine {
            BackendState::Gpu(engine) => Some(&engine.gpu),
            BackendState::Cpu(_) => None,
        }
    }

    pub fn default_options(&self) -> SegmentOptions {
        SegmentOptions {
            steps: self.cfg.sampler.steps,
            td: self.cfg.sampler.td,
            seed: 0,
            min_area: 40,
            postprocess: self.cfg.sampler.postprocess,
            max_output_side: DEFAULT_MAX_OUTPUT_SIDE,
            profile: false,
        }
    }

    /// Segments one still image (video state is neither used nor changed).
    pub async fn segment(
        &mut self,
        image: impl Into<Pixels<'_>>,
        opts: &SegmentOptions,
    ) -> Result<Segmentation, Error> {
        self.read(image.into(), opts, false, Output::Read, None).await
    }

    /// Segments the next frame of a video, conditioned on the previous frames' masks.
    pub async fn segment_frame(
        &mut self,
        image: impl Into<Pixels<'_>>,
        opts: &SegmentOptions,
    ) -> Result<Segmentation, Error> {
        self.read(image.into(), opts, true, Output::Read, None).await
    }

    /// [`Segmenter::segment`] (`video` false) or [`Segmenter::segment_frame`] (`video` true) that
    /// calls `on_step(done, steps)` as each sampling step finishes, for a progress display. Only
    /// the CPU engine reports steps while they run: the GPU engine records every step into one
    /// submission, whose steps finish together, so it reports none (the page shows no progress
    /// there; a GPU frame takes milliseconds).
    pub async fn segment_with_progress(
        &mut self,
        image: impl Into<Pixels<'_>>,
        opts: &SegmentOptions,
        video: bool,
        on_step: &mut dyn FnMut(usize, usize),
    ) -> Result<Segmentation, Error> {
        self.read(image.into(), opts, video, Output::Read, Some(on_step)).await
    }

    /// [`Segmenter::segment`] (`video` false) or [`Segmenter::segment_frame`] (`video` true) that
    /// also draws the overlay into `presenter`'s canvas on the GPU, at the image's size: the
    /// post-processed segmentation for a still image, the sampler's maps for a video frame.
    pub async fn segment_and_draw(
        &mut self,
        image: impl Into<Pixels<'_>>,
        opts: &SegmentOptions,
        video: bool,
        presenter: &mut Presenter,
        style: DrawStyle,
    ) -> Result<Segmentation, Error> {
        self.read(image.into(), opts, video, Output::ReadAndDraw(presenter, style), None).await
    }

    /// The next video frame, drawn into `presenter`'s canvas with nothing read back: the webcam
    /// loop. It resolves when the GPU has finished the frame (back-pressure, no queue build-up).
    pub async fn draw_frame(
        &mut self,
        image: impl Into<Pixels<'_>>,
        opts: &SegmentOptions,
        presenter: &mut Presenter,
        style: DrawStyle,
    ) -> Result<DrawnFrame, Error> {
        let start = now_ms();
        let conditioned_on = self.history_len().min(self.cfg.video_prev_masks);
        self.run(image.into(), opts, true, Output::DrawOnly(presenter, style), None).await?;
        Ok(DrawnFrame { total_ms: now_ms() - start, conditioned_on })
    }

    /// The blended overlay of `seg` on `image` (RGBA8, the image's size), computed on the CPU
    /// with the render kernel's twin: for the CLI's PNGs and the CPU path in the browser.
    pub fn overlay_rgba(
        &self,
        image: Image<'_>,
        seg: &Segmentation,
        style: DrawStyle,
    ) -> Result<Vec<u8>, Error> {
        self.overlay_map_rgba(image, &seg.panoptic, style)
    }

    /// The overlay of any panoptic map of the image's size in this model's classes (a
    /// prediction, or ground truth for a before/after figure).
    pub fn overlay_map_rgba(
        &self,
        image: Image<'_>,
        p: &PanopticMap,
        style: DrawStyle,
    ) -> Result<Vec<u8>, Error> {
        overlay_rgba_with(image, p, &self.cfg.palette(), &self.isthing, style)
    }

    /// Forgets the previous frames (start of a new clip).
    pub fn reset(&mut self) {
        match &mut self.engine {
            BackendState::Gpu(engine) => engine.history.clear(),
            BackendState::Cpu(engine) => engine.history.clear(),
        }
    }

    /// The analog bits the next [`Segmenter::segment_frame`] will be conditioned on
    /// (`[Hm, Wm, k·n_bits]` flattened, oldest frame first), or `None` for an image model. For
    /// tests and debugging: it reads the state back from the GPU.
    pub async fn conditioning(&self) -> Result<Option<Vec<f32>>, Error> {
        match &self.engine {
            BackendState::Gpu(engine) => {
                let mut frame = engine.gpu.frame();
                let bits = engine.history.bits(&mut GpuBackend::new(&mut frame), &self.cfg, true)?;
                let Some(bits) = bits else { return Ok(None) };
                let pending = frame.read(&bits);
                frame.submit();
                Ok(Some(pending.into_f32(&engine.gpu).await?))
            }
            BackendState::Cpu(engine) => Ok(engine
                .history
                .bits(&mut CpuBackend, &self.cfg, true)?
                .map(|t| t.f32().map(|v| v.to_vec()))
                .transpose()?),
        }
    }

    /// Previous frames currently held for conditioning.
    pub fn history_len(&self) -> usize {
        match &self.engine {
            BackendState::Gpu(engine) => engine.history.len(),
            BackendState::Cpu(engine) => engine.history.len(),
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub fn segment_blocking(
        &mut self,
        image: Image<'_>,
        opts: &SegmentOptions,
    ) -> Result<Segmentation, Error> {
        pollster::block_on(self.segment(image, opts))
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub fn segment_frame_blocking(
        &mut self,
        image: Image<'_>,
        opts: &SegmentOptions,
    ) -> Result<Segmentation, Error> {
        pollster::block_on(self.segment_frame(image, opts))
    }

    async fn read(
        &mut self,
        image: Pixels<'_>,
        opts: &SegmentOptions,
        video: bool,
        output: Output<'_>,
        on_step: Option<&mut dyn FnMut(usize, usize)>,
    ) -> Result<Segmentation, Error> {
        self.run(image, opts, video, output, on_step)
            .await?
            .ok_or_else(|| Error::Invalid("a read-back frame returned no maps".into()))
    }

    /// Numbers the segments of a post-processed map and describes them.
    fn segment_infos(&self, panoptic: &PanopticMap) -> (Vec<u32>, Vec<SegmentInfo>) {
        let (segment_ids, segs) = panoptic::segments(panoptic);
        let infos = segs
            .iter()
            .map(|s| SegmentInfo {
                id: s.id,
                class: s.class,
                label: self.cfg.class_name(s.class as usize),
                is_thing: self.isthing.get(s.class as usize).copied().unwrap_or(false),
                instance: s.instance,
                area: s.area,
                bbox: s.bbox,
            })
            .collect();
        (segment_ids, infos)
    }
}

/// `NAME.json` and `NAME.safetensors` for a path naming either file or the stem.
#[cfg(not(target_arch = "wasm32"))]
pub fn model_paths(path: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let stem = match path.extension().and_then(|e| e.to_str()) {
        Some("json") | Some("safetensors") => path.with_extension(""),
        _ => path.to_path_buf(),
    };
    let with = |ext: &str| {
        let mut s = stem.clone().into_os_string();
        s.push(ext);
        std::path::PathBuf::from(s)
    };
    (with(".json"), with(".safetensors"))
}
