//! The buffer pool. Buffers are grouped in size classes (quarter steps between powers of two, so
//! at most 25% is wasted) and handed out last-in first-out. A frame that takes and returns buffers
//! in the same order as the previous frame therefore gets the very same buffers ("positional"
//! reuse, as in tract), which keeps the bind-group cache hitting and creates nothing after warm-up.
//! Each frame starts from free lists sorted by id ([`BufferPool::canonicalize`]), so the order in
//! which the previous frame returned its buffers does not matter.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use super::Stats;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Usage {
    /// Storage buffers for tensors (also copy source and destination).
    Storage,
    /// Host-mappable buffers that receive read-back copies.
    Staging,
    /// Storage buffers for state kept across frames (the video history), in a free list of
    /// their own: they come back at a different point of each frame than the frame's own
    /// tensors, and sharing one list would shuffle the order the frame's tensors are handed out
    /// in, defeating positional reuse (new bind groups every frame).
    Kept,
}

impl Usage {
    fn wgpu(self) -> wgpu::BufferUsages {
        match self {
            Usage::Storage | Usage::Kept => {
                wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST
            }
            Usage::Staging => wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        }
    }
}

/// Rounds a byte size up to its class: 256 B minimum, then 1, 1.25, 1.5, 1.75 × 2^k.
pub fn size_class(bytes: u64) -> u64 {
    let bytes = bytes.max(256);
    let pow = 63 - bytes.leading_zeros() as u64; // floor(log2)
    let base = 1u64 << pow;
    if base == bytes {
        return bytes;
    }
    let quarter = (base / 4).max(1);
    bytes.div_ceil(quarter) * quarter
}

#[derive(Default)]
pub struct BufferPool {
    free: HashMap<(Usage, u64), Vec<(u64, wgpu::Buffer)>>,
    next_id: u64,
}

pub struct PooledBuffer {
    buffer: Option<wgpu::Buffer>,
    pub(crate) id: u64,
    usage: Usage,
    class: u64,
    pool: Weak<RefCell<BufferPool>>,
}

impl PooledBuffer {
    pub(crate) fn buffer(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("a pooled buffer is only emptied on drop")
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        if let (Some(pool), Some(buffer)) = (self.pool.upgrade(), self.buffer.take()) {
            pool.borrow_mut().free.entry((self.usage, self.class)).or_default().push((self.id, buffer));
        }
    }
}

impl BufferPool {
    pub(crate) fn take(
        pool: &Rc<RefCell<BufferPool>>,
        device: &wgpu::Device,
        bytes: u64,
        stats: &Cell<Stats>,
    ) -> Rc<PooledBuffer> {
        Self::take_usage(pool, device, bytes, Usage::Storage, stats)
    }

    pub(crate) fn take_usage(
        pool: &Rc<RefCell<BufferPool>>,
        device: &wgpu::Device,
        bytes: u64,
        usage: Usage,
        stats: &Cell<Stats>,
    ) -> Rc<PooledBuffer> {
        let class = size_class(bytes);
        let mut inner = pool.borrow_mut();
        let (id, buffer) = match inner.free.get_mut(&(usage, class)).and_then(Vec::pop) {
            Some(found) => found,
            None => {
                let id = inner.next_id;
                inner.next_id += 1;
                let buffer = device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("pix2seqd pooled"),
                    size: class,
                    usage: usage.wgpu(),
                    mapped_at_creation: false,
                });
                let mut s = stats.get();
                s.buffers += 1;
                s.buffer_bytes += class;
                stats.set(s);
                (id, buffer)
            }
        };
        Rc::new(PooledBuffer { buffer: Some(buffer), id, usage, class, pool: Rc::downgrade(pool) })
    }

    /// Puts every free list in one fixed order (by id, lowest on top). Called at the start of
    /// each frame: a frame rarely returns its buffers in the reverse of the order it took them,
    /// so without this the free lists would be permuted from frame to frame, the same tensor
    /// would land in another buffer each time, and every frame would miss the bind-group cache.
    pub(crate) fn canonicalize(&mut self) {
        for list in self.free.values_mut() {
            list.sort_unstable_by_key(|&(id, _)| std::cmp::Reverse(id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::size_class;

    #[test]
    fn size_classes_waste_at_most_a_quarter() {
        assert_eq!(size_class(1), 256);
        assert_eq!(size_class(256), 256);
        assert_eq!(size_class(257), 320);
        assert_eq!(size_class(1024), 1024);
        assert_eq!(size_class(1025), 1280);
        for bytes in (1..200_000u64).step_by(997) {
            let c = size_class(bytes);
            assert!(c >= bytes && (c <= 256 || c as f64 <= bytes as f64 * 1.25 + 1.0), "{bytes} -> {c}");
        }
    }
}
