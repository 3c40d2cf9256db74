//! The engine in the browser: the wasm-bindgen API the page, its Web Worker and the custom element
//! use (`docs/web-api.md`). Everything here converts between JavaScript values and the
//! [`Segmenter`] API; errors become one-sentence `Error`s, never panics.

use js_sys::{Reflect, Uint32Array, Uint8ClampedArray};
use serde::Deserialize;
use serde_json::json;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::gpu::Presenter;
use crate::model::config::Postprocess;
use crate::ops::render;
use crate::segmenter::{
    BackendKind, DrawStyle, Image, Pixels, SegmentOptions, Segmentation, Segmenter, MAX_IMAGE_SIDE,
};

#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// The crate version.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Runs the fast CPU kernels against their plain twins in this build (the browser tests call it, so
/// the wasm SIMD build is checked where it runs): `{cases, cpuPath}`, or an error naming the first
/// kernel that differs.
#[wasm_bindgen(js_name = cpuSelfCheck)]
pub fn cpu_self_check() -> Result<JsValue, JsError> {
    let cases = crate::backend::cpu::check::self_check().map_err(|e| JsError::new(&e))?;
    to_js(&json!({"cases": cases, "cpuPath": crate::backend::CpuPath::detect().to_string()}))
}

/// `segment`'s options object (all optional; unknown keys are an error, so a typo is not ignored).
#[derive(Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
struct Options {
    steps: Option<usize>,
    td: Option<f64>,
    seed: u32,
    min_area: u64,
    /// "majority_vote" or "thing_vote"; the model card's by default.
    postprocess: Option<Postprocess>,
    /// The output maps' longest side ([`SegmentOptions::max_output_side`]): the image's own size
    /// up to this; 4096 by default.
    max_output_side: Option<usize>,
    video: bool,
    draw: bool,
    opacity: f32,
    outline: bool,
    readback: bool,
    overlay: bool,
    profile: bool,
}

impl Default for Options {
    fn default() -> Self {
        let style = DrawStyle::default();
        Options {
            steps: None,
            td: None,
            seed: 0,
            min_area: 40,
            postprocess: None,
            max_output_side: None,
            video: false,
            draw: false,
            opacity: style.opacity,
            outline: style.outline,
            readback: true,
            overlay: true,
            profile: false,
        }
    }
}

impl Options {
    fn from_js(value: &JsValue) -> Result<Options, JsError> {
        if value.is_undefined() || value.is_null() {
            return Ok(Options::default());
        }
        let text = js_sys::JSON::stringify(value)
            .ok()
            .and_then(|s| s.as_string())
            .ok_or_else(|| JsError::new("segment options must be a plain object"))?;
        serde_json::from_str(&text).map_err(|e| JsError::new(&format!("segment options: {e}")))
    }
}

/// What the model card says about the weights.
struct Card {
    trained: bool,
    purpose: String,
}

impl Card {
    fn parse(json: &str) -> Card {
        let purpose = serde_json::from_str::<serde_json::Value>(json)
            .ok()
            .and_then(|v| v.get("metadata")?.get("purpose")?.as_str().map(str::to_string))
            .unwrap_or_default();
        Card { trained: !purpose.contains("not trained"), purpose }
    }
}

/// A loaded model on WebGPU or on the CPU (`docs/web-api.md`).
#[wasm_bindgen]
pub struct Engine {
    segmenter: Segmenter,
    presenter: Option<Presenter>,
    card: Card,
    /// Where `segmentSource` copies frames (recreated when the size changes).
    frame_texture: Option<wgpu::Texture>,
}

fn js_error(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// `serde_json` → a JavaScript value (plain objects and arrays).
fn to_js(value: &serde_json::Value) -> Result<JsValue, JsError> {
    js_sys::JSON::parse(&value.to_string()).map_err(|_| JsError::new("internal: result is not JSON"))
}

fn set(target: &JsValue, key: &str, value: &JsValue) -> Result<(), JsError> {
    Reflect::set(target, &JsValue::from_str(key), value)
        .map(|_| ())
        .map_err(|_| JsError::new("internal: cannot build the result object"))
}

#[wasm_bindgen]
impl Engine {
    /// Loads a model: `model_json` is the card (or bare config), `weights` the safetensors bytes,
    /// `backend` "webgpu" or "cpu".
    pub async fn create(model_json: String, weights: Vec<u8>, backend: String) -> Result<Engine, JsError> {
        let kind = match backend.as_str() {
            "webgpu" | "gpu" => BackendKind::Gpu,
            "cpu" => BackendKind::Cpu,
            other => {
                return Err(JsError::new(&format!("unknown backend \"{other}\": use \"webgpu\" or \"cpu\"")))
            }
        };
        let segmenter = Segmenter::new(&model_json, weights, kind).await.map_err(js_error)?;
        Ok(Engine { segmenter, presenter: None, card: Card::parse(&model_json), frame_texture: None })
    }

    /// The canvas results are drawn into (WebGPU engine only).
    #[wasm_bindgen(js_name = attachCanvas)]
    pub fn attach_canvas(&mut self, canvas: web_sys::HtmlCanvasElement) -> Result<(), JsError> {
        let gpu = self
            .segmenter
            .gpu()
            .ok_or_else(|| JsError::new("the CPU engine cannot draw into a canvas: use result.overlay"))?;
        self.presenter = Some(gpu.presenter(wgpu::SurfaceTarget::Canvas(canvas)).map_err(js_error)?);
        Ok(())
    }

    /// Backend, adapter and model description.
    pub fn info(&self) -> Result<JsValue, JsError> {
        let cfg = self.segmenter.config();
        let palette = cfg.palette();
        let isthing = cfg.isthing();
        let classes: Vec<serde_json::Value> = (0..cfg.num_classes)
            .map(|c| json!({"id": c, "name": cfg.class_name(c), "isThing": isthing[c], "color": palette[c]}))
            .collect();
        let adapter = self.segmenter.gpu().map(|gpu| {
            let a = gpu.adapter();
            json!({
                "name": a.name, "backend": a.backend, "deviceType": a.device_type, "driver": a.driver,
                "isFallbackAdapter": gpu.is_fallback_adapter(), "shaderF16": gpu.has_f16(),
                "maxStorageBufferBindingSize": gpu.limits().max_storage_buffer_binding_size,
            })
        });
        to_js(&json!({
            "backend": self.segmenter.backend().name(),
            "adapter": adapter,
            // Where the CPU path runs (the page shows it on the Engine card): SIMD and threads.
            "cpuPath": (self.segmenter.backend() == BackendKind::Cpu)
                .then(|| crate::backend::CpuPath::detect().to_string()),
            "model": {
                "name": cfg.name,
                "imageSize": cfg.image_size,
                "maskSize": cfg.mask_size,
                "videoPrevMasks": cfg.video_prev_masks,
                "steps": cfg.sampler.steps,
                "td": cfg.sampler.td,
                "trained": self.card.trained,
                "purpose": self.card.purpose,
                "classes": classes,
            },
        }))
    }

    /// Segments one RGBA8 image (see `docs/web-api.md` for the options and the result).
    pub async fn segment(
        &mut self,
        rgba: Vec<u8>,
        width: u32,
        height: u32,
        options: JsValue,
    ) -> Result<JsValue, JsError> {
        let o = Options::from_js(&options)?;
        // A function is not JSON, so `Options` never sees it: read it on its own.
        let on_step = Reflect::get(&options, &JsValue::from_str("onStep"))
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
        let image = Image::new(width as usize, height as usize, &rgba).map_err(js_error)?;
        self.run(Pixels::Rgba(image), &o, on_step).await
    }

    /// Segments a video element, image bitmap, video frame, canvas or image element without
    /// copying its pixels to wasm memory: `copy_external_image_to_texture` puts it in a GPU
    /// texture. WebGPU engine only; the width must be a multiple of 64. Browsers that cannot copy
    /// the source (headless Chromium with software compositing) throw inside that call, which
    /// would end the module: probe with `canCopyExternalImage` in JavaScript first.
    #[wasm_bindgen(js_name = segmentSource)]
    pub async fn segment_source(&mut self, source: JsValue, options: JsValue) -> Result<JsValue, JsError> {
        let o = Options::from_js(&options)?;
        let gpu = self.segmenter.gpu().ok_or_else(|| {
            JsError::new("segmentSource needs the WebGPU engine: pass RGBA bytes to segment()")
        })?;
        let source = external_source(source)?;
        let (width, height) = (source.width(), source.height());
        if width == 0
            || height == 0
            || width % 64 != 0
            || width as usize > MAX_IMAGE_SIDE
            || height as usize > MAX_IMAGE_SIDE
        {
            return Err(JsError::new(&format!(
                "segmentSource takes sources whose width is a multiple of 64 (up to {MAX_IMAGE_SIDE}), got {width}x{height}: use segment() with RGBA bytes"
            )));
        }
        let texture = match &self.frame_texture {
            Some(t) if (t.width(), t.height()) == (width, height) => t.clone(),
            _ => {
                let t = gpu.rgba_texture(width, height);
                self.frame_texture = Some(t.clone());
                t
            }
        };
        gpu.queue().copy_external_image_to_texture(
            &wgpu::CopyExternalImageSourceInfo { source, origin: wgpu::Origin2d::ZERO, flip_y: false },
            wgpu::CopyExternalImageDestInfo {
                texture: &texture,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
                color_space: wgpu::PredefinedColorSpace::Srgb,
                premultiplied_alpha: false,
            },
            texture.size(),
        );
        self.run(Pixels::Texture(&texture), &o, None).await
    }

    /// Forgets the video history (a new clip).
    pub fn reset(&mut self) {
        self.segmenter.reset();
    }

    /// GPU object counters since creation (zeros on the CPU engine).
    pub fn stats(&self) -> Result<JsValue, JsError> {
        let s = self.segmenter.gpu().map(|g| g.stats()).unwrap_or_default();
        to_js(&json!({
            "buffers": s.buffers, "bufferBytes": s.buffer_bytes, "bindGroups": s.bind_groups, "pipelines": s.pipelines,
            "shaderModules": s.shader_modules, "submits": s.submits, "dispatches": s.dispatches,
        }))
    }

    /// Destroys the GPU device as if it had been lost (a driver reset, a GPU process crash), so
    /// a page can test its recovery. No-op on the CPU engine.
    #[wasm_bindgen(js_name = loseDevice)]
    pub fn lose_device(&self) {
        if let Some(gpu) = self.segmenter.gpu() {
            gpu.lose("destroyed on request by loseDevice()");
        }
    }

    /// Why the GPU device was lost, once it has been (then create a new engine).
    pub fn lost(&self) -> Option<String> {
        self.segmenter.gpu().and_then(|g| g.lost())
    }
}

/// The kinds of source `copy_external_image_to_texture` takes.
fn external_source(source: JsValue) -> Result<wgpu::ExternalImageSource, JsError> {
    let source = match source.dyn_into::<web_sys::HtmlVideoElement>() {
        Ok(v) => return Ok(wgpu::ExternalImageSource::HTMLVideoElement(v)),
        Err(s) => s,
    };
    let source = match source.dyn_into::<web_sys::ImageBitmap>() {
        Ok(v) => return Ok(wgpu::ExternalImageSource::ImageBitmap(v)),
        Err(s) => s,
    };
    let source = match source.dyn_into::<web_sys::VideoFrame>() {
        Ok(v) => return Ok(wgpu::ExternalImageSource::VideoFrame(v)),
        Err(s) => s,
    };
    let source = match source.dyn_into::<web_sys::HtmlCanvasElement>() {
        Ok(v) => return Ok(wgpu::ExternalImageSource::HTMLCanvasElement(v)),
        Err(s) => s,
    };
    match source.dyn_into::<web_sys::HtmlImageElement>() {
        Ok(v) => Ok(wgpu::ExternalImageSource::HTMLImageElement(v)),
        Err(_) => Err(JsError::new(
            "segmentSource takes a <video>, <canvas> or <img> element, an ImageBitmap or a VideoFrame",
        )),
    }
}

impl Engine {
    /// `segment` and `segmentSource` after their pixels are in place; `on_step(done, steps)` as
    /// sampling steps finish (the CPU engine only, see `Segmenter::segment_with_progress`).
    async fn run(
        &mut self,
        pixels: Pixels<'_>,
        o: &Options,
        on_step: Option<js_sys::Function>,
    ) -> Result<JsValue, JsError> {
        let (height, width) = pixels.size();
        let defaults = self.segmenter.default_options();
        let opts = SegmentOptions {
            steps: o.steps.unwrap_or(defaults.steps),
            td: o.td.unwrap_or(defaults.td),
            seed: o.seed,
            min_area: o.min_area,
            postprocess: o.postprocess.unwrap_or(defaults.postprocess),
            max_output_side: o.max_output_side.unwrap_or(defaults.max_output_side),
            profile: o.profile,
        };
        let style = DrawStyle { opacity: o.opacity, outline: o.outline };
        let backend = self.segmenter.backend().name();
        if o.draw {
            let presenter = self
                .presenter
                .as_mut()
                .ok_or_else(|| JsError::new("draw: true needs a canvas: call attachCanvas(canvas) first"))?;
            if !o.readback {
                if !o.video {
                    return Err(JsError::new("readback: false is the video fast path: pass video: true too"));
                }
                let drawn =
                    self.segmenter.draw_frame(pixels, &opts, presenter, style).await.map_err(js_error)?;
                return to_js(&json!({
                    "backend": backend, "width": width, "height": height,
                    "ms": {"total": drawn.total_ms, "source": "total-only"},
                    "segments": [], "drawn": true, "conditionedOn": drawn.conditioned_on,
                }));
            }
            let seg = self
                .segmenter
                .segment_and_draw(pixels, &opts, o.video, presenter, style)
                .await
                .map_err(js_error)?;
            return self.result(&seg, None, true);
        }
        let seg = if let Some(f) = on_step {
            // A throwing callback must not fail the segmentation: its error is dropped.
            let mut report = |done: usize, steps: usize| {
                let _ = f.call2(&JsValue::NULL, &JsValue::from(done as u32), &JsValue::from(steps as u32));
            };
            self.segmenter.segment_with_progress(pixels, &opts, o.video, &mut report).await
        } else if o.video {
            self.segmenter.segment_frame(pixels, &opts).await
        } else {
            self.segmenter.segment(pixels, &opts).await
        }
        .map_err(js_error)?;
        let overlay = match (o.overlay, pixels) {
            (true, Pixels::Rgba(image)) => {
                Some(self.segmenter.overlay_rgba(image, &seg, style).map_err(js_error)?)
            }
            _ => None,
        };
        self.result(&seg, overlay, false)
    }

    fn result(&self, seg: &Segmentation, overlay: Option<Vec<u8>>, drawn: bool) -> Result<JsValue, JsError> {
        let palette = self.segmenter.config().palette();
        let segments: Vec<serde_json::Value> = seg
            .segments
            .iter()
            .map(|s| {
                // The colour the overlay drew the segment in (class-tinted per instance).
                let class_color = palette.get(s.class as usize).copied().unwrap_or([255, 255, 255]);
                let color = render::segment_color(class_color, s.is_thing, s.instance);
                json!({
                    "id": s.id, "class": s.class, "label": s.label, "isThing": s.is_thing, "instance": s.instance,
                    "area": s.area, "bbox": s.bbox, "color": color,
                })
            })
            .collect();
        let t = &seg.timings;
        let decoder = (!t.decoder_steps.is_empty()).then(|| t.decoder_steps.iter().sum::<f64>());
        let result = to_js(&json!({
            "backend": seg.backend.name(),
            "width": seg.panoptic.width,
            "height": seg.panoptic.height,
            "ms": {
                "ingest": t.ingest, "encoder": t.encoder, "decoder": decoder, "decoderPerStep": t.decoder_steps,
                "readout": t.readout, "postprocess": t.postprocess, "total": t.total, "source": t.source,
            },
            "segments": segments,
            "drawn": drawn,
            "conditionedOn": seg.conditioned_on,
        }))?;
        set(&result, "segmentIds", &Uint32Array::from(&seg.segment_ids[..]))?;
        if let Some(bytes) = overlay {
            set(&result, "overlay", &Uint8ClampedArray::from(&bytes[..]))?;
        }
        Ok(result)
    }
}
