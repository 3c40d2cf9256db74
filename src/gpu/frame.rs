//! Recording a frame: dispatches are collected, then encoded into one compute pass and sent in
//! one submit, with the read-back copies riding the same submission.

use std::collections::HashSet;
use std::rc::Rc;

use super::kernel::Compiled;
use super::pool::{BufferPool, Usage};
use super::present::{PresentPass, Presenter};
use super::readback::Pending;
use super::ring::SLOT_BYTES;
use super::{Access, DType, Gpu, GpuError, Kernel, Tensor};

/// A buffer-to-buffer copy between dispatches (row bands of tensors larger than a binding).
struct BandCopy {
    /// Runs after this many dispatches.
    after: usize,
    src: wgpu::Buffer,
    src_offset: u64,
    dst: wgpu::Buffer,
    dst_offset: u64,
    bytes: u64,
}

struct Recorded {
    entry: &'static str,
    compiled: Rc<Compiled>,
    bind_group: Rc<wgpu::BindGroup>,
    uniform_offset: u32,
    workgroups: [u32; 3],
}

pub struct Frame<'g> {
    gpu: &'g Gpu,
    uniforms: Vec<u8>,
    dispatches: Vec<Recorded>,
    copies: Vec<(Tensor, Pending)>,
    /// Buffers bound by this frame's dispatches so far: an upload during the frame must not land
    /// in one of them, since queue writes run before the frame's commands.
    bound: HashSet<u64>,
    /// Drawn into a surface after the compute pass, in the same submit.
    present: Option<PresentPass>,
    /// Textures copied into tensors before the compute pass.
    texture_copies: Vec<(wgpu::Texture, Tensor)>,
    /// Tensors copied after the compute pass into buffers kept across frames ([`Frame::keep`]).
    keeps: Vec<(Tensor, Tensor)>,
    /// Copies between dispatches ([`Frame::copy_bytes`]); each one ends the current compute pass.
    band_copies: Vec<BandCopy>,
}

impl<'g> Frame<'g> {
    pub(crate) fn new(gpu: &'g Gpu) -> Self {
        gpu.pool.borrow_mut().canonicalize();
        Frame {
            gpu,
            uniforms: Vec::new(),
            dispatches: Vec::new(),
            copies: Vec::new(),
            bound: HashSet::new(),
            present: None,
            texture_copies: Vec::new(),
            keeps: Vec::new(),
            band_copies: Vec::new(),
        }
    }

    pub fn gpu(&self) -> &'g Gpu {
        self.gpu
    }

    /// Records one dispatch of `kernel` with `params` in its uniform slot and `buffers` bound in
    /// order. Panics on a programming error (wrong buffer count, oversized params): callers are the
    /// op dispatchers, which validate user-visible shapes themselves.
    pub fn dispatch<P: bytemuck::Pod>(
        &mut self,
        kernel: &'static Kernel,
        params: &P,
        buffers: &[&Tensor],
        workgroups: [u32; 3],
    ) {
        assert_eq!(
            buffers.len(),
            kernel.bindings.len(),
            "{}: {} buffers bound, {} declared",
            kernel.entry,
            buffers.len(),
            kernel.bindings.len()
        );
        let bytes = bytemuck::bytes_of(params);
        assert!(
            bytes.len() as u64 <= SLOT_BYTES,
            "{}: parameters of {} bytes exceed a uniform slot",
            kernel.entry,
            bytes.len()
        );
        // WebGPU rejects a buffer bound both read-only and writable in one dispatch.
        for (i, a) in buffers.iter().enumerate() {
            for (j, b) in buffers.iter().enumerate().skip(i + 1) {
                let writes =
                    kernel.bindings[i] == Access::ReadWrite || kernel.bindings[j] == Access::ReadWrite;
                assert!(
                    !(writes && a.same_storage(b)),
                    "{}: one buffer bound as input and output ({a:?}, {b:?})",
                    kernel.entry
                );
            }
        }
        let gpu = self.gpu;
        // A binding larger than the adapter allows would fail validation; report it by name
        // (callers split such tensors into row bands first, see `backend::bands`).
        if let Some(big) = buffers.iter().find(|t| t.byte_size() > gpu.binding_limit()) {
            gpu.report(format!(
                "{} would bind {} bytes ({:?}), more than this adapter's storage-binding limit of {} bytes",
                kernel.entry,
                big.byte_size(),
                big.shape(),
                gpu.binding_limit()
            ));
            return;
        }
        self.bound.extend(buffers.iter().map(|t| t.buffer_id()));
        let stride = gpu.ring.borrow().stride as usize;
        let uniform_offset = self.uniforms.len();
        self.uniforms.extend_from_slice(bytes);
        self.uniforms.resize(uniform_offset + stride, 0);

        let ring = gpu.ring.borrow();
        let mut kernels = gpu.kernels.borrow_mut();
        let compiled = kernels.pipeline(&gpu.device, &ring.layout, kernel, &gpu.stats);
        let bind_group = kernels.bind_group(&gpu.device, &compiled, buffers, &gpu.stats);
        self.dispatches.push(Recorded {
            entry: kernel.entry,
            compiled,
            bind_group,
            uniform_offset: uniform_offset as u32,
            workgroups,
        });
    }

    /// A tensor holding `data`, safe to create mid-frame: its buffer is none of those this frame
    /// has bound so far. ([`Gpu::upload`] writes at once, before any recorded dispatch runs, so a
    /// pooled buffer released earlier in the frame would receive the data too early.)
    pub fn upload(&mut self, shape: &[usize], data: &[f32]) -> Result<Tensor, GpuError> {
        self.upload_bytes(shape, DType::F32, bytemuck::cast_slice(data), data.len())
    }

    /// [`Frame::upload`] for u32 words.
    pub fn upload_u32(&mut self, shape: &[usize], data: &[u32]) -> Result<Tensor, GpuError> {
        self.upload_bytes(shape, DType::U32, bytemuck::cast_slice(data), data.len())
    }

    fn upload_bytes(
        &mut self,
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
        // Rejected buffers stay held until a fresh one comes out of the pool, then go back.
        let mut rejected = Vec::new();
        let t = loop {
            let t = self.gpu.tensor(shape, dtype)?;
            if !self.bound.contains(&t.buffer_id()) {
                break t;
            }
            rejected.push(t);
        };
        if !bytes.is_empty() {
            self.gpu.queue.write_buffer(t.buffer(), 0, bytes);
        }
        Ok(t)
    }

    /// A u32 `[H, W]` tensor of packed RGBA8 filled from `texture` (`Rgba8Unorm`, `COPY_SRC`) on
    /// the GPU before this frame's compute pass. Row copies are 256-byte aligned, so the width
    /// must be a multiple of 64.
    pub fn copy_texture_in(&mut self, texture: &wgpu::Texture) -> Result<Tensor, GpuError> {
        const OP: &str = "copy_texture_in";
        let (width, height) = (texture.width() as usize, texture.height() as usize);
        if texture.format() != wgpu::TextureFormat::Rgba8Unorm
            || !texture.usage().contains(wgpu::TextureUsages::COPY_SRC)
        {
            return Err(GpuError::shape(
                OP,
                format!(
                    "need an Rgba8Unorm texture with COPY_SRC, got {:?} {:?}",
                    texture.format(),
                    texture.usage()
                ),
            ));
        }
        if width == 0 || height == 0 || width % 64 != 0 {
            return Err(GpuError::Unsupported {
                op: OP,
                detail: format!("the width must be a positive multiple of 64, got {width}x{height}"),
            });
        }
        let t = self.gpu.tensor(&[height, width], DType::U32)?;
        self.bound.insert(t.buffer_id());
        self.texture_copies.push((texture.clone(), t.clone()));
        Ok(t)
    }

    /// Copies `bytes` from `src` at `src_offset` to `dst` at `dst_offset` between the dispatches
    /// recorded so far and the next ones (the compute pass is split there). Offsets and sizes are
    /// in bytes, multiples of 4, within both tensors.
    pub fn copy_bytes(
        &mut self,
        src: &Tensor,
        src_offset: u64,
        dst: &Tensor,
        dst_offset: u64,
        bytes: u64,
    ) -> Result<(), GpuError> {
        const OP: &str = "copy_bytes";
        if src.same_storage(dst) {
            return Err(GpuError::shape(OP, "source and destination share a buffer"));
        }
        if (src_offset | dst_offset | bytes) % wgpu::COPY_BUFFER_ALIGNMENT != 0 {
            return Err(GpuError::shape(
                OP,
                format!("offsets {src_offset}, {dst_offset} and size {bytes} must be multiples of 4"),
            ));
        }
        if src_offset + bytes > src.byte_size() || dst_offset + bytes > dst.byte_size() {
            return Err(GpuError::shape(
                OP,
                format!(
                    "{bytes} bytes at {src_offset} / {dst_offset} overrun {} / {} bytes",
                    src.byte_size(),
                    dst.byte_size()
                ),
            ));
        }
        if bytes == 0 {
            return Ok(());
        }
        self.bound.insert(src.buffer_id());
        self.bound.insert(dst.buffer_id());
        self.band_copies.push(BandCopy {
            after: self.dispatches.len(),
            src: src.buffer().clone(),
            src_offset,
            dst: dst.buffer().clone(),
            dst_offset,
            bytes,
        });
        Ok(())
    }

    /// Number of dispatches recorded so far.
    pub fn len(&self) -> usize {
        self.dispatches.len()
    }

    pub fn is_empty(&self) -> bool {
        self.dispatches.is_empty()
    }

    /// A copy of `t`, made after the frame's compute pass, in a buffer meant to outlive the frame
    /// (state such as the video history). Keeping `t` itself would hold one of the frame's pooled
    /// buffers past the frame and change the order later frames get theirs in.
    pub fn keep(&mut self, t: &Tensor) -> Result<Tensor, GpuError> {
        let gpu = self.gpu;
        gpu.check_buffer_size("keep", t.byte_size())?;
        let buffer = BufferPool::take_usage(&gpu.pool, &gpu.device, t.byte_size(), Usage::Kept, &gpu.stats);
        let kept = Tensor::new(buffer, t.shape().to_vec(), t.dtype());
        self.bound.insert(kept.buffer_id());
        self.keeps.push((t.clone(), kept.clone()));
        Ok(kept)
    }

    /// Schedules a copy of `t` to host memory after the frame's compute pass; await the returned
    /// [`Pending`] after [`Frame::submit`].
    pub fn read(&mut self, t: &Tensor) -> Pending {
        let gpu = self.gpu;
        let staging =
            BufferPool::take_usage(&gpu.pool, &gpu.device, t.byte_size(), Usage::Staging, &gpu.stats);
        let pending = Pending::new(staging, t.byte_size());
        self.copies.push((t.clone(), pending.clone()));
        pending
    }

    /// Draws `image` (u32 packed RGBA8 `[H, W]`) into `presenter`'s surface after the compute
    /// pass, in this frame's submit, and presents it.
    pub fn present(&mut self, presenter: &mut Presenter, image: &Tensor) -> Result<(), GpuError> {
        self.bound.insert(image.buffer_id());
        self.present = Some(presenter.prepare(self.gpu, image)?);
        Ok(())
    }

    /// Writes the frame's uniforms (one write), encodes every dispatch into one compute pass,
    /// appends the read-back copies and submits once.
    pub fn submit(self) {
        self.encode_and_submit(None);
    }

    /// Submits like [`Frame::submit`], but gives every dispatch its own compute pass with
    /// timestamps at its start and end, and returns their GPU durations. For measuring only: the
    /// extra passes and the query objects cost what a normal frame does not.
    pub fn submit_profiled(self) -> Result<Profile, GpuError> {
        let gpu = self.gpu;
        if !gpu.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
            return Err(GpuError::Unsupported {
                op: "profile",
                detail: "this adapter has no timestamp queries".into(),
            });
        }
        let queries = 2 * self.dispatches.len() as u32;
        if queries == 0 || queries > wgpu::QUERY_SET_MAX_QUERIES {
            return Err(GpuError::Unsupported {
                op: "profile",
                detail: format!(
                    "a profiled frame holds 1 to {} dispatches, this one {}",
                    wgpu::QUERY_SET_MAX_QUERIES / 2,
                    queries / 2
                ),
            });
        }
        let query_set = gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("pix2seqd profile"),
            ty: wgpu::QueryType::Timestamp,
            count: queries,
        });
        let bytes = queries as u64 * wgpu::QUERY_SIZE as u64;
        let resolved = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("pix2seqd profile"),
            size: bytes,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let staging = BufferPool::take_usage(&gpu.pool, &gpu.device, bytes, Usage::Staging, &gpu.stats);
        let pending = Pending::new(staging, bytes);
        let entries = self.dispatches.iter().map(|d| d.entry).collect();
        self.encode_and_submit(Some((&query_set, &resolved, &pending)));
        Ok(Profile { entries, pending, tick_ns: gpu.queue.get_timestamp_period() as f64 })
    }

    fn encode_and_submit(mut self, profile: Option<(&wgpu::QuerySet, &wgpu::Buffer, &Pending)>) {
        let gpu = self.gpu;
        let mut ring = gpu.ring.borrow_mut();
        ring.reserve(&gpu.device, self.uniforms.len() as u64, &gpu.stats);
        if !self.uniforms.is_empty() {
            gpu.queue.write_buffer(&ring.buffer, 0, &self.uniforms);
        }
        let mut encoder = gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("pix2seqd frame") });
        for (texture, t) in &self.texture_copies {
            let layout = wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(4 * texture.width()),
                rows_per_image: None,
            };
            encoder.copy_texture_to_buffer(
                texture.as_image_copy(),
                wgpu::TexelCopyBufferInfo { buffer: t.buffer(), layout },
                texture.size(),
            );
        }
        let mut passes = 0;
        // One pass for the frame, or one per dispatch when profiling (timestamps bracket passes);
        // band copies split passes where they were recorded.
        let mut copies = self.band_copies.iter().peekable();
        let mut start = 0;
        while start < self.dispatches.len() || copies.peek().is_some() {
            while let Some(c) = copies.next_if(|c| c.after <= start) {
                encoder.copy_buffer_to_buffer(&c.src, c.src_offset, &c.dst, c.dst_offset, c.bytes);
            }
            if start >= self.dispatches.len() {
                continue;
            }
            let next_copy = copies.peek().map_or(self.dispatches.len(), |c| c.after);
            let end = if profile.is_some() { start + 1 } else { next_copy.min(self.dispatches.len()) };
            let timestamp_writes = profile.map(|(query_set, _, _)| wgpu::ComputePassTimestampWrites {
                query_set,
                beginning_of_pass_write_index: Some(2 * start as u32),
                end_of_pass_write_index: Some(2 * start as u32 + 1),
            });
            passes += 1;
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("pix2seqd"),
                timestamp_writes,
            });
            let mut current: Option<*const Compiled> = None;
            for d in &self.dispatches[start..end] {
                let this = Rc::as_ptr(&d.compiled);
                if current != Some(this) {
                    pass.set_pipeline(&d.compiled.pipeline);
                    current = Some(this);
                }
                pass.set_bind_group(0, &ring.bind_group, &[d.uniform_offset]);
                pass.set_bind_group(1, &*d.bind_group, &[]);
                let [x, y, z] = d.workgroups;
                pass.dispatch_workgroups(x, y, z);
            }
            start = end;
        }
        if let Some((query_set, resolved, pending)) = profile {
            let queries = 2 * self.dispatches.len() as u32;
            encoder.resolve_query_set(query_set, 0..queries, resolved, 0);
            encoder.copy_buffer_to_buffer(
                resolved,
                0,
                pending.staging(),
                0,
                queries as u64 * wgpu::QUERY_SIZE as u64,
            );
        }
        for (from, to) in &self.keeps {
            encoder.copy_buffer_to_buffer(
                from.buffer(),
                0,
                to.buffer(),
                0,
                from.byte_size().next_multiple_of(4),
            );
        }
        for (t, pending) in &self.copies {
            encoder.copy_buffer_to_buffer(
                t.buffer(),
                0,
                pending.staging(),
                0,
                t.byte_size().next_multiple_of(4),
            );
        }
        let present = self.present.take();
        if let Some(p) = &present {
            let view = p.texture.texture.create_view(&wgpu::TextureViewDescriptor::default());
            let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("pix2seqd present"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view: &view,
                    depth_slice: None,
                    resolve_target: None,
                    ops: wgpu::Operations {
                        load: wgpu::LoadOp::Clear(wgpu::Color::BLACK),
                        store: wgpu::StoreOp::Store,
                    },
                })],
                depth_stencil_attachment: None,
                timestamp_writes: None,
                occlusion_query_set: None,
                multiview_mask: None,
            });
            pass.set_pipeline(&p.pipeline);
            pass.set_bind_group(0, &p.bind_group, &[]);
            pass.draw(0..3, 0..1);
        }
        gpu.queue.submit(Some(encoder.finish()));
        if let Some(p) = present {
            gpu.queue.present(p.texture);
        }
        drop(ring);
        let dispatches = self.dispatches.len() as u64;
        gpu.bump(|s| {
            s.submits += 1;
            s.compute_passes += passes;
            s.dispatches += dispatches;
        });
    }
}

/// GPU timestamps of a profiled frame; await [`Profile::into_timings`].
pub struct Profile {
    entries: Vec<&'static str>,
    pending: Pending,
    tick_ns: f64,
}

impl Profile {
    /// `(kernel entry point, milliseconds)` per dispatch, in recording order.
    pub async fn into_timings(self, gpu: &Gpu) -> Result<Vec<(&'static str, f64)>, GpuError> {
        let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&self.pending.into_bytes(gpu).await?);
        Ok(self
            .entries
            .into_iter()
            .zip(ticks.chunks_exact(2))
            .map(|(entry, t)| (entry, t[1].saturating_sub(t[0]) as f64 * self.tick_ns * 1e-6))
            .collect())
    }
}
