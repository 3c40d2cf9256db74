//! Drawing a packed RGBA8 tensor into a canvas (or any wgpu surface) on the GPU, in the same
//! submit as the frame that computed it: the page's overlay never leaves the GPU.
//!
//! The surface is configured at the image's size, so the one render pipeline
//! (`shaders/present.wgsl`) maps each fragment to one pixel. Its bind groups are cached by the
//! pool buffer they read, like the kernels' ones: a steady webcam loop creates nothing.

use std::collections::HashMap;

use super::{DType, Gpu, GpuError, Shader, Tensor};

pub static PRESENT_SHADER: Shader =
    Shader { name: "present", source: include_str!("../../shaders/present.wgsl") };

/// Bind groups kept per presenter; the pool hands a steady loop the same buffer every frame.
const BIND_GROUP_CACHE: usize = 8;

/// A surface the engine draws results into.
pub struct Presenter {
    surface: wgpu::Surface<'static>,
    layout: wgpu::BindGroupLayout,
    pipeline_layout: wgpu::PipelineLayout,
    /// The pipeline for the surface's format (known once configured).
    pipeline: Option<(wgpu::TextureFormat, wgpu::RenderPipeline)>,
    size_uniform: wgpu::Buffer,
    config: Option<wgpu::SurfaceConfiguration>,
    bind_groups: HashMap<u64, wgpu::BindGroup>,
}

/// What a frame needs to draw into the surface after its compute pass.
pub(crate) struct PresentPass {
    pub texture: wgpu::SurfaceTexture,
    pub pipeline: wgpu::RenderPipeline,
    pub bind_group: wgpu::BindGroup,
}

impl Gpu {
    /// A presenter drawing into `target` (in the browser: `wgpu::SurfaceTarget::Canvas`).
    pub fn presenter(&self, target: wgpu::SurfaceTarget<'static>) -> Result<Presenter, GpuError> {
        let surface = self.instance.create_surface(target).map_err(|e| GpuError::Present(e.to_string()))?;
        let layout = self.device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("pix2seqd present"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
                wgpu::BindGroupLayoutEntry {
                    binding: 1,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: true },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
            ],
        });
        let pipeline_layout = self.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("pix2seqd present"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let size_uniform = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("pix2seqd present size"),
            size: 16,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.bump(|s| {
            s.layouts += 2;
            s.buffers += 1;
            s.buffer_bytes += 16;
        });
        Ok(Presenter {
            surface,
            layout,
            pipeline_layout,
            pipeline: None,
            size_uniform,
            config: None,
            bind_groups: HashMap::new(),
        })
    }
}

impl Presenter {
    /// Configures the surface for a `width × height` image (only when the size changes) and
    /// prepares the pass drawing `image` (u32 packed RGBA8 `[height, width]`) into it.
    pub(crate) fn prepare(&mut self, gpu: &Gpu, image: &Tensor) -> Result<PresentPass, GpuError> {
        let &[height, width] = image.shape() else {
            return Err(GpuError::shape(
                "present",
                format!("image must be [H, W] packed RGBA8, got {:?}", image.shape()),
            ));
        };
        if image.dtype() != DType::U32 {
            return Err(GpuError::shape("present", "image must be u32 packed RGBA8"));
        }
        let max = gpu.limits().max_texture_dimension_2d as usize;
        if width == 0 || height == 0 || width > max || height > max {
            return Err(GpuError::TooLarge {
                what: format!("a {width}x{height} canvas"),
                needed: width.max(height) as u64,
                limit: max as u64,
            });
        }
        let (width, height) = (width as u32, height as u32);
        let stale = self.config.as_ref().is_none_or(|c| c.width != width || c.height != height);
        if stale {
            let mut config = self
                .surface
                .get_default_config(&gpu.adapter_handle, width, height)
                .ok_or_else(|| GpuError::Present("this GPU cannot draw into the canvas".into()))?;
            config.usage = wgpu::TextureUsages::RENDER_ATTACHMENT;
            config.format = config.format.remove_srgb_suffix();
            config.view_formats.clear();
            self.surface.configure(&gpu.device, &config);
            gpu.queue.write_buffer(&self.size_uniform, 0, bytemuck::cast_slice(&[width, height, 0u32, 0u32]));
            self.config = Some(config);
        }
        let format = self
            .config
            .as_ref()
            .map(|c| c.format)
            .ok_or_else(|| GpuError::Present("surface not configured".into()))?;
        let pipeline = match &self.pipeline {
            Some((f, p)) if *f == format => p.clone(),
            _ => {
                let p = self.create_pipeline(gpu, format);
                self.pipeline = Some((format, p.clone()));
                p
            }
        };
        let texture = match self.surface.get_current_texture() {
            wgpu::CurrentSurfaceTexture::Success(t) | wgpu::CurrentSurfaceTexture::Suboptimal(t) => t,
            other => {
                return Err(GpuError::Present(format!(
                    "no canvas texture to draw into ({})",
                    surface_status(&other)
                )))
            }
        };
        if self.bind_groups.len() >= BIND_GROUP_CACHE && !self.bind_groups.contains_key(&image.buffer_id()) {
            self.bind_groups.clear();
        }
        let bind_group = self
            .bind_groups
            .entry(image.buffer_id())
            .or_insert_with(|| {
                gpu.bump(|s| s.bind_groups += 1);
                gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("pix2seqd present"),
                    layout: &self.layout,
                    entries: &[
                        wgpu::BindGroupEntry { binding: 0, resource: self.size_uniform.as_entire_binding() },
                        wgpu::BindGroupEntry { binding: 1, resource: image.buffer().as_entire_binding() },
                    ],
                })
            })
            .clone();
        Ok(PresentPass { texture, pipeline, bind_group })
    }

    fn create_pipeline(&self, gpu: &Gpu, format: wgpu::TextureFormat) -> wgpu::RenderPipeline {
        let module = gpu.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("pix2seqd present"),
            source: wgpu::ShaderSource::Wgsl(PRESENT_SHADER.full_source().into()),
        });
        gpu.bump(|s| {
            s.shader_modules += 1;
            s.pipelines += 1;
        });
        gpu.device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("pix2seqd present"),
            layout: Some(&self.pipeline_layout),
            vertex: wgpu::VertexState {
                module: &module,
                entry_point: Some("vs_main"),
                compilation_options: Default::default(),
                buffers: &[],
            },
            primitive: wgpu::PrimitiveState::default(),
            depth_stencil: None,
            multisample: wgpu::MultisampleState::default(),
            fragment: Some(wgpu::FragmentState {
                module: &module,
                entry_point: Some("fs_main"),
                compilation_options: Default::default(),
                targets: &[Some(wgpu::ColorTargetState {
                    format,
                    blend: None,
                    write_mask: wgpu::ColorWrites::ALL,
                })],
            }),
            multiview_mask: None,
            cache: None,
        })
    }
}

fn surface_status(s: &wgpu::CurrentSurfaceTexture) -> &'static str {
    match s {
        wgpu::CurrentSurfaceTexture::Success(_) | wgpu::CurrentSurfaceTexture::Suboptimal(_) => "ready",
        wgpu::CurrentSurfaceTexture::Timeout => "timed out",
        wgpu::CurrentSurfaceTexture::Occluded => "canvas hidden",
        wgpu::CurrentSurfaceTexture::Outdated => "canvas changed",
        wgpu::CurrentSurfaceTexture::Lost => "surface lost",
        _ => "surface error",
    }
}
