//! Static kernel descriptions and the caches built from them.
//!
//! A [`Kernel`] is one entry point of one WGSL file plus the access of its storage buffers. Every
//! kernel has the same two bind groups: group 0 is a 256-byte window of the uniform ring (its
//! parameters, bound by dynamic offset), group 1 its storage buffers in declaration order
//! (`@binding(0)`, `@binding(1)`, ...). Shapes and strides travel in the uniforms, so one pipeline
//! serves every shape and the whole set can be created up front.

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;

use super::{Stats, Tensor};

/// How a kernel uses a storage buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    Read,
    ReadWrite,
}

/// One WGSL file of `shaders/`.
pub struct Shader {
    pub name: &'static str,
    pub source: &'static str,
}

/// Helpers every shader may use (index folding, activations, the shared RNG), prepended to each.
pub const PRELUDE: &str = include_str!("../../shaders/prelude.wgsl");

impl Shader {
    /// The full source handed to the compiler: the prelude, then the file.
    pub fn full_source(&self) -> String {
        format!("{PRELUDE}\n{}", self.source)
    }
}

/// One compute entry point.
pub struct Kernel {
    pub shader: &'static Shader,
    pub entry: &'static str,
    pub bindings: &'static [Access],
}

impl Kernel {
    fn key(&'static self) -> usize {
        self as *const Kernel as usize
    }
}

pub(crate) struct Compiled {
    pub pipeline: wgpu::ComputePipeline,
    pub storage_layout: Rc<wgpu::BindGroupLayout>,
    pub layout_key: usize,
}

/// Storage buffers one kernel may bind: WebGPU's default `maxStorageBuffersPerShaderStage`.
pub const MAX_STORAGE_BINDINGS: usize = 8;

/// Bind groups kept at most (a web-sized model at one input size uses a few hundred).
const MAX_CACHED_BIND_GROUPS: usize = 8192;

/// A bind group's identity: its layout and the pool ids of its buffers (unused slots `u64::MAX`).
/// A fixed array, so looking it up allocates nothing per dispatch.
type BindKey = (usize, [u64; MAX_STORAGE_BINDINGS]);

/// Shader modules, layouts, pipelines and bind groups, each created once.
#[derive(Default)]
pub(crate) struct KernelCache {
    modules: HashMap<usize, wgpu::ShaderModule>,
    layouts: HashMap<Vec<Access>, (Rc<wgpu::BindGroupLayout>, Rc<wgpu::PipelineLayout>)>,
    pipelines: HashMap<usize, Rc<Compiled>>,
    bind_groups: HashMap<BindKey, Rc<wgpu::BindGroup>>,
}

impl KernelCache {
    pub fn pipeline(
        &mut self,
        device: &wgpu::Device,
        uniform_layout: &wgpu::BindGroupLayout,
        kernel: &'static Kernel,
        stats: &Cell<Stats>,
    ) -> Rc<Compiled> {
        if let Some(p) = self.pipelines.get(&kernel.key()) {
            return p.clone();
        }
        assert!(
            kernel.bindings.len() <= MAX_STORAGE_BINDINGS,
            "{}: {} storage buffers exceed WebGPU's default {MAX_STORAGE_BINDINGS}",
            kernel.entry,
            kernel.bindings.len()
        );
        let bump = |f: &dyn Fn(&mut Stats)| {
            let mut s = stats.get();
            f(&mut s);
            stats.set(s);
        };
        let shader_key = kernel.shader as *const Shader as usize;
        let module = self.modules.entry(shader_key).or_insert_with(|| {
            bump(&|s| s.shader_modules += 1);
            device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(kernel.shader.name),
                source: wgpu::ShaderSource::Wgsl(kernel.shader.full_source().into()),
            })
        });
        let (storage_layout, pipeline_layout) = self
            .layouts
            .entry(kernel.bindings.to_vec())
            .or_insert_with(|| {
                bump(&|s| s.layouts += 1);
                let entries: Vec<wgpu::BindGroupLayoutEntry> = kernel
                    .bindings
                    .iter()
                    .enumerate()
                    .map(|(i, access)| wgpu::BindGroupLayoutEntry {
                        binding: i as u32,
                        visibility: wgpu::ShaderStages::COMPUTE,
                        ty: wgpu::BindingType::Buffer {
                            ty: wgpu::BufferBindingType::Storage { read_only: *access == Access::Read },
                            has_dynamic_offset: false,
                            min_binding_size: None,
                        },
                        count: None,
                    })
                    .collect();
                let storage = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                    label: Some("pix2seqd storage"),
                    entries: &entries,
                });
                let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                    label: Some("pix2seqd pipeline layout"),
                    bind_group_layouts: &[Some(uniform_layout), Some(&storage)],
                    immediate_size: 0,
                });
                (Rc::new(storage), Rc::new(pipeline_layout))
            })
            .clone();
        bump(&|s| s.pipelines += 1);
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(kernel.entry),
            layout: Some(&pipeline_layout),
            module,
            entry_point: Some(kernel.entry),
            compilation_options: Default::default(),
            cache: None,
        });
        let compiled =
            Rc::new(Compiled { pipeline, layout_key: Rc::as_ptr(&storage_layout) as usize, storage_layout });
        self.pipelines.insert(kernel.key(), compiled.clone());
        compiled
    }

    /// The bind group of these buffers for this layout, created on first use.
    pub fn bind_group(
        &mut self,
        device: &wgpu::Device,
        compiled: &Compiled,
        buffers: &[&Tensor],
        stats: &Cell<Stats>,
    ) -> Rc<wgpu::BindGroup> {
        let mut ids = [u64::MAX; MAX_STORAGE_BINDINGS];
        for (slot, t) in ids.iter_mut().zip(buffers) {
            *slot = t.buffer_id();
        }
        let key = (compiled.layout_key, ids);
        // Each new image size adds its own bind groups; a long session of photos of many sizes
        // must not keep them all. Dropping the cache only costs re-creating the live ones.
        if self.bind_groups.len() >= MAX_CACHED_BIND_GROUPS && !self.bind_groups.contains_key(&key) {
            self.bind_groups.clear();
        }
        self.bind_groups
            .entry(key)
            .or_insert_with(|| {
                let mut s = stats.get();
                s.bind_groups += 1;
                stats.set(s);
                let entries: Vec<wgpu::BindGroupEntry> = buffers
                    .iter()
                    .enumerate()
                    .map(|(i, t)| wgpu::BindGroupEntry {
                        binding: i as u32,
                        resource: t.buffer().as_entire_binding(),
                    })
                    .collect();
                Rc::new(device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: None,
                    layout: &compiled.storage_layout,
                    entries: &entries,
                }))
            })
            .clone()
    }
}
