//! The GPU runtime: one [`Gpu`] per device, holding everything that must be created once and
//! reused every frame.
//!
//! - [`Gpu::new`] requests only the limits and features the adapter offers (`shader-f16` and
//!   timestamp queries are probed, never required), so one build runs on a discrete GPU, lavapipe
//!   and a browser's WebGPU.
//! - Kernels are static descriptions ([`Kernel`]); their shader modules, bind group layouts and
//!   pipelines are created once ([`Gpu::preload`]) and cached by the kernel's address.
//! - Tensors live in pooled buffers ([`pool`]): a frame that allocates and frees in the same
//!   order as the previous one gets the same buffers back, so cached bind groups keep matching and
//!   no buffer is created after warm-up.
//! - A [`Frame`] records many dispatches, writes their uniforms into one ring buffer with one
//!   `write_buffer`, encodes them into one compute pass and submits once.
//! - Read-back is a future ([`readback`]) that works natively and in the browser, where nothing
//!   may block.

mod frame;
mod kernel;
pub mod pool;
pub mod present;
pub mod readback;
mod ring;
mod tensor;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::{Arc, Mutex};

pub use frame::{Frame, Profile};
pub use kernel::{Access, Kernel, Shader};
pub use present::Presenter;
pub use readback::Pending;
pub use ring::SLOT_BYTES;
pub use tensor::{DType, Tensor};

use kernel::KernelCache;
use pool::BufferPool;
use ring::UniformRing;

/// Everything that can go wrong on the GPU side, each naming what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error("no GPU adapter found ({0}); on Linux without a GPU install mesa-vulkan-drivers (lavapipe)")]
    NoAdapter(String),
    #[error("the GPU device could not be created: {0}")]
    RequestDevice(String),
    #[error("reading results back from the GPU failed: {0}")]
    ReadBack(String),
    #[error("{op}: {detail}")]
    Shape { op: &'static str, detail: String },
    #[error("{what} needs {needed} bytes but this GPU allows at most {limit} bytes")]
    TooLarge { what: String, needed: u64, limit: u64 },
    #[error("{op}: {detail}")]
    Unsupported { op: &'static str, detail: String },
    #[error("the GPU device was lost ({0}); create the segmenter again")]
    Lost(String),
    #[error("the GPU rejected a command: {0}")]
    Validation(String),
    #[error("drawing into the canvas failed: {0}")]
    Present(String),
}

impl GpuError {
    pub(crate) fn shape(op: &'static str, detail: impl Into<String>) -> Self {
        GpuError::Shape { op, detail: detail.into() }
    }
}

impl From<crate::geometry::LetterboxError> for GpuError {
    fn from(e: crate::geometry::LetterboxError) -> GpuError {
        GpuError::shape("letterbox", e.detail())
    }
}

/// What the adapter is, for `pix2seqd info` and the page.
#[derive(Clone, Debug)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
}

/// Counters of every object the runtime creates and every command it records; tests use them to
/// prove that a warmed-up frame creates nothing and submits once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub shader_modules: u64,
    pub layouts: u64,
    pub pipelines: u64,
    pub buffers: u64,
    pub buffer_bytes: u64,
    pub bind_groups: u64,
    pub textures: u64,
    pub uniform_ring_grows: u64,
    pub submits: u64,
    pub compute_passes: u64,
    pub dispatches: u64,
}

impl Stats {
    /// Objects created between `earlier` and `self` (commands are not objects).
    pub fn objects_created_since(&self, earlier: &Stats) -> u64 {
        (self.shader_modules - earlier.shader_modules)
            + (self.layouts - earlier.layouts)
            + (self.pipelines - earlier.pipelines)
            + (self.buffers - earlier.buffers)
            + (self.bind_groups - earlier.bind_groups)
            + (self.textures - earlier.textures)
            + (self.uniform_ring_grows - earlier.uniform_ring_grows)
    }
}

#[derive(Clone, Debug)]
pub struct GpuOptions {
    /// Use `shader-f16` kernels where the adapter has the feature.
    pub allow_f16: bool,
    /// Ask for a low-power adapter instead of a high-performance one.
    pub low_power: bool,
    /// Treat storage bindings above this many bytes as too large even where the adapter allows
    /// them (tests use it to exercise the row bands of large tensors on small ones).
    pub max_binding_bytes: Option<u64>,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions { allow_f16: true, low_power: false, max_binding_bytes: None }
    }
}

pub struct Gpu {
    /// Kept to create canvas surfaces on this device's instance and adapter.
    pub(crate) instance: wgpu::Instance,
    pub(crate) adapter_handle: wgpu::Adapter,
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    adapter: AdapterSummary,
    is_fallback_adapter: bool,
    limits: wgpu::Limits,
    /// The largest storage binding used: the adapter's, or less (`GpuOptions::max_binding_bytes`).
    binding_limit: u64,
    features: wgpu::Features,
    pub(crate) kernels: RefCell<KernelCache>,
    pub(crate) pool: Rc<RefCell<BufferPool>>,
    pub(crate) ring: RefCell<UniformRing>,
    pub(crate) stats: Rc<Cell<Stats>>,
    /// Set by the device-lost callback: the reason.
    lost: Arc<Mutex<Option<String>>>,
    /// Uncaptured validation or out-of-memory errors since the last check (instead of wgpu's
    /// default handler, which panics: in a browser that would end the module).
    errors: Arc<Mutex<Vec<String>>>,
}

impl Gpu {
    /// Opens the best adapter of this machine (or browser) and a device with the limits it offers.
    pub async fn new(options: GpuOptions) -> Result<Gpu, GpuError> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let power_preference = if options.low_power {
            wgpu::PowerPreference::LowPower
        } else {
            wgpu::PowerPreference::HighPerformance
        };
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions { power_preference, ..Default::default() })
            .await
            .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
        let info = adapter.get_info();
        let offered = adapter.features();
        let mut features = wgpu::Features::empty();
        if options.allow_f16 && offered.contains(wgpu::Features::SHADER_F16) {
            features |= wgpu::Features::SHADER_F16;
        }
        if offered.contains(wgpu::Features::TIMESTAMP_QUERY) {
            features |= wgpu::Features::TIMESTAMP_QUERY;
        }
        // Ask for what the adapter has: bigger buffers matter for 512² masks. Kernels themselves
        // stay within the WebGPU defaults (256 invocations, 16 KiB workgroup memory, 8 storage
        // buffers), so they run on every adapter.
        let limits = adapter.limits();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("pix2seqd"),
                required_features: features,
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| GpuError::RequestDevice(e.to_string()))?;
        let stats = Rc::new(Cell::new(Stats::default()));
        let ring = UniformRing::new(&device, &limits, &stats);
        let lost = Arc::new(Mutex::new(None));
        let lost_slot = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            if reason != wgpu::DeviceLostReason::Destroyed {
                *lost_slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("{reason:?}: {message}"));
            }
        });
        let errors = Arc::new(Mutex::new(Vec::new()));
        let error_slot = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            error_slot.lock().unwrap_or_else(|p| p.into_inner()).push(e.to_string());
        }));
        Ok(Gpu {
            instance,
            adapter_handle: adapter,
            lost,
            errors,
            adapter: AdapterSummary {
                name: info.name.clone(),
                backend: format!("{:?}", info.backend),
                device_type: format!("{:?}", info.device_type),
                driver: info.driver.clone(),
                driver_info: info.driver_info.clone(),
            },
            is_fallback_adapter: info.device_type == wgpu::DeviceType::Cpu,
            binding_limit: options
                .max_binding_bytes
                .unwrap_or(u64::MAX)
                .min(limits.max_storage_buffer_binding_size)
                .min(limits.max_buffer_size),
            limits,
            features,
            kernels: RefCell::new(KernelCache::default()),
            pool: Rc::new(RefCell::new(BufferPool::default())),
            ring: RefCell::new(ring),
            stats,
            device,
            queue,
        })
    }

    /// Native convenience: [`Gpu::new`] without an async runtime.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_blocking(options: GpuOptions) -> Result<Gpu, GpuError> {
        pollster::block_on(Gpu::new(options))
    }

    pub fn adapter(&self) -> &AdapterSummary {
        &self.adapter
    }

    /// A software adapter (lavapipe, SwiftShader): correct but far slower than the CPU path.
    pub fn is_fallback_adapter(&self) -> bool {
        self.is_fallback_adapter
    }

    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    pub fn features(&self) -> wgpu::Features {
        self.features
    }

    pub fn has_f16(&self) -> bool {
        self.features.contains(wgpu::Features::SHADER_F16)
    }

    pub fn stats(&self) -> Stats {
        self.stats.get()
    }

    /// The wgpu device, for embedders that create their own resources on it (textures to copy
    /// frames into, see [`Gpu::rgba_texture`]).
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    /// An `Rgba8Unorm` texture that frames can be copied into (`write_texture`, or
    /// `copy_external_image_to_texture` in the browser) and [`Frame::copy_texture_in`] reads.
    pub fn rgba_texture(&self, width: u32, height: u32) -> wgpu::Texture {
        self.bump(|s| s.textures += 1);
        self.device.create_texture(&wgpu::TextureDescriptor {
            label: Some("pix2seqd frame"),
            size: wgpu::Extent3d { width, height, depth_or_array_layers: 1 },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba8Unorm,
            usage: wgpu::TextureUsages::COPY_DST
                | wgpu::TextureUsages::COPY_SRC
                | wgpu::TextureUsages::RENDER_ATTACHMENT,
            view_formats: &[],
        })
    }

    /// Destroys the device as a lost one: what a driver reset or a GPU process crash does, for
    /// testing recovery (`Engine.loseDevice()` in the browser). Every later call fails with
    /// [`GpuError::Lost`] naming `why`.
    pub fn lose(&self, why: &str) {
        *self.lost.lock().unwrap_or_else(|p| p.into_inner()) = Some(why.to_string());
        self.device.destroy();
    }

    /// The largest tensor a kernel may bind, in bytes; larger ones are processed in row bands.
    pub fn binding_limit(&self) -> u64 {
        self.binding_limit
    }

    /// Records an error for the next [`Gpu::check`] (a command that could not be recorded).
    pub(crate) fn report(&self, message: String) {
        self.errors.lock().unwrap_or_else(|p| p.into_inner()).push(message);
    }

    /// Why the device was lost, once it has been; a lost device never comes back.
    pub fn lost(&self) -> Option<String> {
        self.lost.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Fails when the device was lost or rejected a command since the last check.
    pub fn check(&self) -> Result<(), GpuError> {
        if let Some(reason) = self.lost() {
            return Err(GpuError::Lost(reason));
        }
        let first = self.errors.lock().unwrap_or_else(|p| p.into_inner()).drain(..).next();
        match first {
            Some(first) => Err(GpuError::Validation(first)),
            None => Ok(()),
        }
    }

    /// Resolves when every submitted command has finished: the back-pressure of a frame loop
    /// that reads nothing back.
    pub async fn work_done(&self) -> Result<(), GpuError> {
        let signal = readback::Signal::default();
        let done = signal.clone();
        self.queue.on_submitted_work_done(move || done.fire(Ok(())));
        #[cfg(not(target_arch = "wasm32"))]
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::ReadBack(e.to_string()))?;
        signal.await.map_err(GpuError::ReadBack)?;
        self.check()
    }

    pub(crate) fn bump(&self, f: impl FnOnce(&mut Stats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    /// Creates the pipelines of `kernels` now, so the first frame does not stall on compiles.
    pub fn preload(&self, kernels: &[&'static Kernel]) {
        for k in kernels {
            let ring = self.ring.borrow();
            self.kernels.borrow_mut().pipeline(&self.device, &ring.layout, k, &self.stats);
        }
    }

    /// Starts recording a frame: dispatches are recorded, not run, until [`Frame::submit`].
    pub fn frame(&self) -> Frame<'_> {
        Frame::new(self)
    }

    /// A tensor with uninitialised contents, from the pool.
    pub fn tensor(&self, shape: &[usize], dtype: DType) -> Result<Tensor, GpuError> {
        let bytes = tensor::byte_size(shape, dtype);
        self.check_buffer_size("tensor", bytes)?;
        let buffer = BufferPool::take(&self.pool, &self.device, bytes, &self.stats);
        Ok(Tensor::new(buffer, shape.to_vec(), dtype))
    }

    /// A tensor holding `data` (f32), uploaded with one queue write.
    pub fn upload(&self, shape: &[usize], data: &[f32]) -> Result<Tensor, GpuError> {
        self.upload_bytes(shape, DType::F32, bytemuck::cast_slice(data), data.len())
    }

    /// A tensor holding `data` (u32 words).
    pub fn upload_u32(&self, shape: &[usize], data: &[u32]) -> Result<Tensor, GpuError> {
        self.upload_bytes(shape, DType::U32, bytemuck::cast_slice(data), data.len())
    }

    fn upload_bytes(
        &self,
        shape: &[usize],
        dtype: DType,
        bytes: &[u8],
        len: usize,
    ) -> Result<Tensor, GpuError> {
        let elements: usize = shape.iter().product();
        if elements != len {
            return Err(GpuError::shape(
                "upload",
                format!("shape {shape:?} holds {elements} elements, data has {len}"),
            ));
        }
        let t = self.tensor(shape, dtype)?;
        if !bytes.is_empty() {
            self.queue.write_buffer(t.buffer(), 0, bytes);
        }
        Ok(t)
    }

    /// Tensors may be larger than a binding (they are then bound in row bands), not than a buffer.
    fn check_buffer_size(&self, what: &str, bytes: u64) -> Result<(), GpuError> {
        let limit = self.limits.max_buffer_size;
        if bytes > limit {
            return Err(GpuError::TooLarge { what: what.to_string(), needed: bytes, limit });
        }
        Ok(())
    }

    /// Reads a tensor back (one frame with one copy). Prefer [`Frame::read`] to ride along with
    /// the frame that produced it.
    pub async fn read(&self, t: &Tensor) -> Result<Vec<f32>, GpuError> {
        let mut frame = self.frame();
        let pending = frame.read(t);
        frame.submit();
        pending.into_f32(self).await
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_blocking(&self, t: &Tensor) -> Result<Vec<f32>, GpuError> {
        pollster::block_on(self.read(t))
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_u32_blocking(&self, t: &Tensor) -> Result<Vec<u32>, GpuError> {
        let mut frame = self.frame();
        let pending = frame.read(t);
        frame.submit();
        pollster::block_on(pending.into_u32(self))
    }

    /// Waits until all submitted work is done (native only; the browser cannot block).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn wait_idle(&self) {
        let _ = self.device.poll(wgpu::PollType::wait_indefinitely());
    }

    /// Workgroup counts for `groups` workgroups, folding past 65535 into y as WebGPU requires.
    /// Kernels recover the flat index as `wg.x + wg.y * num_workgroups.x` and ignore the excess.
    pub fn fold_workgroups(&self, groups: u32) -> [u32; 3] {
        fold_workgroups(groups, self.limits.max_compute_workgroups_per_dimension)
    }
}

pub(crate) fn fold_workgroups(groups: u32, max_per_dim: u32) -> [u32; 3] {
    let groups = groups.max(1);
    if groups <= max_per_dim {
        [groups, 1, 1]
    } else {
        let y = groups.div_ceil(max_per_dim);
        let x = groups.div_ceil(y);
        [x, y, 1]
    }
}

#[cfg(test)]
mod tests {
    use super::fold_workgroups;

    #[test]
    fn folding_covers_every_group_within_limits() {
        for groups in [1u32, 65535, 65536, 70000, 1 << 20, 4_194_241] {
            let [x, y, z] = fold_workgroups(groups, 65535);
            assert!(x <= 65535 && y <= 65535 && z == 1);
            assert!(x as u64 * y as u64 >= groups as u64, "{groups}: {x}x{y}");
        }
    }
}
