//! One image or video frame through a backend: ingest → encoder → conditioning (the video
//! history) → the sampler → the readout, then post-processing on the host and, for a still image
//! drawn on the GPU, the overlay of the post-processed maps.

use super::video::VideoHistory;
use super::{
    now_ms, output_size, BackendState, CpuEngine, GpuEngine, Pixels, SegmentOptions, Segmentation, Segmenter,
    Timings,
};
use crate::backend::{Backend, GpuBackend};
use crate::backend::{CpuBackend, CpuTensor};
use crate::diffusion::{sample, SamplerOptions};
use crate::error::Error;
use crate::geometry::Letterbox;
use crate::gpu::{Frame, Presenter, Tensor};
use crate::model::{ModelConfig, Pix2SeqD};
use crate::ops::ingest;
use crate::ops::readout::{IdSpace, Resample};
use crate::ops::render;
use crate::panoptic::{self, PanopticMap};

use super::DrawStyle;

/// What to do with a frame's maps.
pub(super) enum Output<'p> {
    /// Read the maps back and post-process them (the CLI, stills without a canvas).
    Read,
    /// Read back, and draw into the canvas: the post-processed maps for still images, the raw
    /// sampler maps (in the same frame) for video.
    ReadAndDraw(&'p mut Presenter, DrawStyle),
    /// Draw the raw maps in the same frame and read nothing back (the webcam fast path).
    DrawOnly(&'p mut Presenter, DrawStyle),
}

/// Stage markers recorded while building one frame: dispatch indices on the GPU, wall-clock
/// milliseconds on the CPU.
#[derive(Default)]
struct Marks {
    ingest: f64,
    encoder: f64,
    steps: Vec<f64>,
    readout: f64,
}

impl Marks {
    /// Stage times from per-dispatch GPU timestamps `(kernel, ms)`, the marks being dispatch
    /// indices.
    fn gpu_timings(&self, per_dispatch: &[(&'static str, f64)]) -> Timings {
        let sum = |a: f64, b: f64| per_dispatch[a as usize..b as usize].iter().map(|t| t.1).sum::<f64>();
        Timings {
            ingest: Some(sum(0.0, self.ingest)),
            encoder: Some(sum(self.ingest, self.encoder)),
            decoder_steps: self.steps.windows(2).map(|w| sum(w[0], w[1])).collect(),
            readout: self.steps.last().map(|&last| sum(last, self.readout)),
            source: "gpu-timestamps",
            ..Default::default()
        }
    }
}

/// The geometry of one frame: where the image sits on the model's canvas, the output size, and
/// where the output pixels land on the image.
struct FramePlan {
    /// The image's (height, width).
    image: (usize, usize),
    lb: Letterbox,
    resample: Resample,
    out: (usize, usize),
    on_image: Letterbox,
    /// How many maps the video history keeps after this frame (0: a still image or an image model).
    keep: usize,
    /// How many previous masks condition this frame (what the history holds, up to the model's).
    conditioned_on: usize,
    video: bool,
}

impl FramePlan {
    fn new(
        cfg: &ModelConfig,
        image: (usize, usize),
        opts: &SegmentOptions,
        (video, history_len): (bool, usize),
    ) -> Result<Self, Error> {
        let (height, width) = image;
        let lb = Letterbox::fit(height, width, cfg.image_size[0], cfg.image_size[1])?;
        let out = output_size(height, width, opts.max_output_side);
        let resample = Resample::new(&lb, cfg.mask_size[0], cfg.mask_size[1], out.0, out.1)?;
        let on_image = output_letterbox(image, out);
        let keep = if video { cfg.video_prev_masks } else { 0 };
        let conditioned_on = history_len.min(keep);
        Ok(FramePlan { image, lb, resample, out, on_image, keep, conditioned_on, video })
    }
}

/// What the model part of one frame leaves on the backend: u32 (class, instance) maps.
struct ModelOutput<T> {
    /// The cell ids at mask resolution (the video history's maps).
    cells: (T, T),
    /// The bilinear readout at the output resolution.
    ids: (T, T),
    /// The previous readout's classes (x̂0's class bits thresholded) at mask resolution, for
    /// `eval`; its instances are the cells' (the same thresholded bits).
    threshold_class: T,
}

/// The model part of one frame, on any backend: encode, condition (with the video history),
/// sample, read the last logits out per cell and at the output resolution. `mark` reads the
/// backend's clock for [`Marks`].
fn run_model<B: Backend>(
    b: &mut B,
    model: &Pix2SeqD<B::Tensor>,
    (input, history): (&B::Tensor, &VideoHistory<B::Tensor>),
    (opts, plan): (&SegmentOptions, &FramePlan),
    (marks, mut on_step): (&mut Marks, Option<&mut dyn FnMut(usize, usize)>),
    mark: impl Fn(&mut B) -> f64,
) -> Result<ModelOutput<B::Tensor>, Error> {
    let cfg = &model.cfg;
    let enc = model.encode(b, input)?;
    let prev = history.bits(b, cfg, plan.video)?;
    let cond = model.condition(b, &enc, prev.as_ref())?;
    marks.encoder = mark(b);
    let sampler = SamplerOptions { steps: opts.steps, td: opts.td, seed: opts.seed };
    // `sample` calls back before each step and once after the last: call i > 0 means i steps done.
    let out = sample(b, model, &cond, &sampler, false, |b, i| {
        marks.steps.push(mark(b));
        if let (Some(f), true) = (on_step.as_mut(), i > 0) {
            f(i, opts.steps);
        }
    })?;
    let id_space = IdSpace::new(&cfg.bit_spec(), cfg.num_classes, cfg.max_instances);
    let cells = b.cells(&out.logits, &out.x0, &id_space)?;
    let ids = b.readout(&out.logits, &out.x0, &cells, &id_space, &plan.resample)?;
    marks.readout = mark(b);
    Ok(ModelOutput { cells: (cells.class, cells.instance), ids, threshold_class: out.class })
}

/// The maps of [`ModelOutput`] in host memory: class, instance.
struct HostMaps {
    cells: (Vec<u32>, Vec<u32>),
    ids: (Vec<u32>, Vec<u32>),
    threshold_class: Vec<u32>,
}

/// A read-back frame as a backend hands it over.
struct Readback {
    maps: HostMaps,
    timings: Timings,
    /// The packed image on the GPU, kept for drawing a still image after post-processing.
    image_words: Option<Tensor>,
}

/// Where a map of the output size lands on the image: nearest neighbour from `out` to `image`
/// (the identity when they agree).
fn output_letterbox(image: (usize, usize), out: (usize, usize)) -> Letterbox {
    Letterbox {
        orig_h: image.0,
        orig_w: image.1,
        canvas_h: out.0,
        canvas_w: out.1,
        content_h: out.0,
        content_w: out.1,
    }
}

impl GpuEngine {
    /// Draws the overlay of `class`/`instance` (output size) over the packed image into the canvas.
    fn draw(
        &self,
        frame: &mut Frame,
        (words, class, instance): (&Tensor, &Tensor, &Tensor),
        plan: &FramePlan,
        (presenter, style): (&mut Presenter, DrawStyle),
    ) -> Result<(), Error> {
        let overlay = render::overlay(
            frame,
            words,
            class,
            instance,
            &plan.on_image,
            &self.palette,
            &self.isthing,
            style.opacity,
            style.outline,
        )?;
        frame.present(presenter, &overlay)?;
        Ok(())
    }

    /// One GPU frame: everything recorded into one submission. `None` for [`Output::DrawOnly`].
    async fn frame(
        &mut self,
        image: Pixels<'_>,
        opts: &SegmentOptions,
        plan: &FramePlan,
        output: &mut Output<'_>,
    ) -> Result<Option<Readback>, Error> {
        self.gpu.check()?;
        let cfg = &self.model.cfg;
        let mut marks = Marks::default();
        let mut frame = self.gpu.frame();
        let words = match image {
            Pixels::Rgba(image) => {
                frame.upload_u32(&[plan.image.0, plan.image.1], &ingest::pack_rgba8(image.rgba))?
            }
            Pixels::Texture(texture) => frame.copy_texture_in(texture)?,
        };
        let (alpha, beta) = (cfg.backbone.input_scale, cfg.backbone.input_offset);
        let out = {
            let mut b = GpuBackend::new(&mut frame);
            let input = ingest::ingest(b.frame, &words, &plan.lb, alpha, beta)?;
            marks.ingest = b.frame.len() as f64;
            // Recorded, not run: the steps finish together after the submit.
            run_model(&mut b, &self.model, (&input, &self.history), (opts, plan), (&mut marks, None), |b| {
                b.frame.len() as f64
            })?
        };
        let kept =
            if plan.keep > 0 { Some((frame.keep(&out.cells.0)?, frame.keep(&out.cells.1)?)) } else { None };
        let in_frame_draw = match output {
            Output::DrawOnly(p, style) => Some((&mut **p, *style)),
            Output::ReadAndDraw(p, style) if plan.video => Some((&mut **p, *style)),
            _ => None,
        };
        if let Some(target) = in_frame_draw {
            self.draw(&mut frame, (&words, &out.ids.0, &out.ids.1), plan, target)?;
        }
        if let Output::DrawOnly(..) = output {
            frame.submit();
            if let Some(kept) = kept {
                self.history.remember(kept, plan.keep);
            }
            self.gpu.work_done().await?;
            return Ok(None);
        }
        let reads =
            [&out.ids.0, &out.ids.1, &out.cells.0, &out.cells.1, &out.threshold_class].map(|t| frame.read(t));
        let profile = if opts.profile
            && self.gpu.features().contains(wgpu::Features::TIMESTAMP_QUERY)
            && frame.len() <= 2048
        {
            Some(frame.submit_profiled()?)
        } else {
            frame.submit();
            None
        };
        let mut host = Vec::with_capacity(reads.len());
        for read in reads {
            host.push(read.into_u32(&self.gpu).await?);
        }
        self.gpu.check()?;
        let [ic, ii, cc, ci, tc]: [Vec<u32>; 5] =
            host.try_into().map_err(|_| Error::Invalid("read-back lost a map".into()))?;
        let maps = HostMaps { ids: (ic, ii), cells: (cc, ci), threshold_class: tc };
        let timings = match profile {
            Some(profile) => marks.gpu_timings(&profile.into_timings(&self.gpu).await?),
            None => Timings { source: "total-only", ..Default::default() },
        };
        if let Some(kept) = kept {
            self.history.remember(kept, plan.keep);
        }
        Ok(Some(Readback { maps, timings, image_words: Some(words) }))
    }

    /// A still image is drawn as post-processed: its maps go back up for the overlay.
    fn draw_still(
        &self,
        words: &Tensor,
        panoptic: &PanopticMap,
        plan: &FramePlan,
        target: (&mut Presenter, DrawStyle),
    ) -> Result<(), Error> {
        let mut frame = self.gpu.frame();
        let class = frame.upload_u32(&[plan.out.0, plan.out.1], &panoptic.class)?;
        let instance = frame.upload_u32(&[plan.out.0, plan.out.1], &panoptic.instance)?;
        self.draw(&mut frame, (words, &class, &instance), plan, target)?;
        frame.submit();
        self.gpu.check()?;
        Ok(())
    }
}

impl CpuEngine {
    /// One frame on the CPU, with wall-clock stage times; `on_step` hears each finished step.
    fn frame(
        &mut self,
        image: Pixels<'_>,
        opts: &SegmentOptions,
        plan: &FramePlan,
        on_step: Option<&mut dyn FnMut(usize, usize)>,
    ) -> Result<Readback, Error> {
        let cfg = &self.model.cfg;
        let mut marks = Marks::default();
        let t0 = now_ms();
        let Pixels::Rgba(image) = image else {
            return Err(Error::Invalid("the CPU engine takes RGBA bytes, not a GPU texture".into()));
        };
        let (alpha, beta) = (cfg.backbone.input_scale, cfg.backbone.input_offset);
        let input = CpuBackend.upload(
            &[1, cfg.image_size[0], cfg.image_size[1], 3],
            &ingest::cpu::ingest(image.rgba, &plan.lb, alpha, beta),
        )?;
        marks.ingest = now_ms();
        let out = run_model(
            &mut CpuBackend,
            &self.model,
            (&input, &self.history),
            (opts, plan),
            (&mut marks, on_step),
            |_| now_ms(),
        )?;
        let host = |(c, i): &(CpuTensor, CpuTensor)| -> Result<(Vec<u32>, Vec<u32>), Error> {
            Ok((c.u32()?.to_vec(), i.u32()?.to_vec()))
        };
        let maps = HostMaps {
            ids: host(&out.ids)?,
            cells: host(&out.cells)?,
            threshold_class: out.threshold_class.u32()?.to_vec(),
        };
        let timings = Timings {
            ingest: Some(marks.ingest - t0),
            encoder: Some(marks.encoder - marks.ingest),
            decoder_steps: marks.steps.windows(2).map(|w| w[1] - w[0]).collect(),
            readout: marks.steps.last().map(|&last| marks.readout - last),
            source: "wall-clock",
            ..Default::default()
        };
        if plan.keep > 0 {
            self.history.remember(out.cells, plan.keep);
        }
        Ok(Readback { maps, timings, image_words: None })
    }
}

impl Segmenter {
    /// Refuses options no backend can honour, before any work.
    fn check_request(&self, opts: &SegmentOptions, output: &Output<'_>) -> Result<(), Error> {
        SamplerOptions { steps: opts.steps, td: opts.td, seed: opts.seed }.validate()?;
        if let Output::ReadAndDraw(_, style) | Output::DrawOnly(_, style) = output {
            if !(0.0..=1.0).contains(&style.opacity) {
                return Err(Error::Invalid(format!("overlay opacity {} must be in [0, 1]", style.opacity)));
            }
            if matches!(self.engine, BackendState::Cpu(_)) {
                return Err(Error::Invalid("drawing into a canvas needs the GPU engine".into()));
            }
        }
        if opts.max_output_side == 0 {
            return Err(Error::Invalid("the output's longest side must be at least 1 pixel".into()));
        }
        Ok(())
    }

    /// One image or frame; `None` only for [`Output::DrawOnly`]. `on_step`: see
    /// [`Segmenter::segment_with_progress`].
    pub(super) async fn run(
        &mut self,
        image: Pixels<'_>,
        opts: &SegmentOptions,
        video: bool,
        mut output: Output<'_>,
        on_step: Option<&mut dyn FnMut(usize, usize)>,
    ) -> Result<Option<Segmentation>, Error> {
        self.check_request(opts, &output)?;
        let start = now_ms();
        let plan = FramePlan::new(&self.cfg, image.size(), opts, (video, self.history_len()))?;
        let read = match &mut self.engine {
            BackendState::Gpu(engine) => engine.frame(image, opts, &plan, &mut output).await?,
            BackendState::Cpu(engine) => Some(engine.frame(image, opts, &plan, on_step)?),
        };
        let Some(Readback { maps, mut timings, image_words }) = read else {
            return Ok(None);
        };
        let post_start = now_ms();
        let (hm, wm) = (self.cfg.mask_size[0], self.cfg.mask_size[1]);
        let threshold_mask = PanopticMap::new(hm, wm, maps.threshold_class, maps.cells.1.clone())?;
        let mask = PanopticMap::new(hm, wm, maps.cells.0, maps.cells.1)?;
        let raw = PanopticMap::new(plan.out.0, plan.out.1, maps.ids.0, maps.ids.1)?;
        let panoptic = panoptic::postprocess_ids(&raw, &self.isthing, opts.min_area, opts.postprocess);
        let (segment_ids, segments) = self.segment_infos(&panoptic);
        timings.postprocess = Some(now_ms() - post_start);
        if let (Output::ReadAndDraw(presenter, style), false, BackendState::Gpu(engine), Some(words)) =
            (output, video, &self.engine, &image_words)
        {
            engine.draw_still(words, &panoptic, &plan, (presenter, style))?;
        }
        timings.total = now_ms() - start;
        Ok(Some(Segmentation {
            mask,
            threshold_mask,
            raw,
            panoptic,
            segment_ids,
            segments,
            letterbox: plan.lb,
            timings,
            backend: self.backend(),
            conditioned_on: plan.conditioned_on,
        }))
    }
}
