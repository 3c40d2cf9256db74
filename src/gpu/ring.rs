//! The uniform ring: every dispatch of a frame gets one 256-byte slot (the default
//! `minUniformBufferOffsetAlignment`) in one buffer, written with a single `write_buffer` per frame
//! and bound by dynamic offset, so a frame of hundreds of dispatches costs one upload.

use std::cell::Cell;

use super::Stats;

/// Bytes of one dispatch's parameters at most.
pub const SLOT_BYTES: u64 = 256;

pub(crate) struct UniformRing {
    pub layout: wgpu::BindGroupLayout,
    pub buffer: wgpu::Buffer,
    pub bind_group: wgpu::BindGroup,
    pub capacity: u64,
    pub stride: u64,
}

impl UniformRing {
    pub fn new(device: &wgpu::Device, limits: &wgpu::Limits, stats: &Cell<Stats>) -> Self {
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("pix2seqd uniforms"),
            entries: &[wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: true,
                    min_binding_size: wgpu::BufferSize::new(SLOT_BYTES),
                },
                count: None,
            }],
        });
        let stride = SLOT_BYTES.max(limits.min_uniform_buffer_offset_alignment as u64);
        let capacity = 256 * stride;
        let (buffer, bind_group) = Self::allocate(device, &layout, capacity);
        let mut s = stats.get();
        s.layouts += 1;
        s.buffers += 1;
        s.buffer_bytes += capacity;
        s.bind_groups += 1;
        stats.set(s);
        UniformRing { layout, buffer, bind_group, capacity, stride }
    }

    fn allocate(
        device: &wgpu::Device,
        layout: &wgpu::BindGroupLayout,
        capacity: u64,
    ) -> (wgpu::Buffer, wgpu::BindGroup) {
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("pix2seqd uniform ring"),
            size: capacity,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("pix2seqd uniforms"),
            layout,
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &buffer,
                    offset: 0,
                    size: wgpu::BufferSize::new(SLOT_BYTES),
                }),
            }],
        });
        (buffer, bind_group)
    }

    /// Grows (doubling) so `bytes` fit; only happens while a new, larger frame warms up.
    pub fn reserve(&mut self, device: &wgpu::Device, bytes: u64, stats: &Cell<Stats>) {
        if bytes <= self.capacity {
            return;
        }
        let mut capacity = self.capacity;
        while capacity < bytes {
            capacity *= 2;
        }
        let (buffer, bind_group) = Self::allocate(device, &self.layout, capacity);
        self.buffer = buffer;
        self.bind_group = bind_group;
        self.capacity = capacity;
        let mut s = stats.get();
        s.uniform_ring_grows += 1;
        s.buffer_bytes += capacity;
        stats.set(s);
    }
}
