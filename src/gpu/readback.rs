//! Asynchronous read-back that works natively and in the browser.
//!
//! In the browser nothing may block: `map_async`'s callback fills a one-shot slot (a Mutex, because natively the callback must be Send) and wakes the
//! awaiting future. Natively, `device.poll(wait)` drives the callback before the first poll of the
//! future, so the same code path serves both.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use super::pool::PooledBuffer;
use super::{Gpu, GpuError};

#[derive(Default)]
struct Slot {
    result: Option<Result<(), String>>,
    waker: Option<Waker>,
}

/// A copy to host memory scheduled by [`super::Frame::read`].
#[derive(Clone)]
pub struct Pending {
    staging: Rc<PooledBuffer>,
    bytes: u64,
}

struct MapFuture(Arc<Mutex<Slot>>);

impl Future for MapFuture {
    type Output = Result<(), String>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match slot.result.take() {
            Some(r) => Poll::Ready(r),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Pending {
    pub(crate) fn new(staging: Rc<PooledBuffer>, bytes: u64) -> Self {
        Pending { staging, bytes }
    }

    pub(crate) fn staging(&self) -> &wgpu::Buffer {
        self.staging.buffer()
    }

    /// Waits for the copy and returns the raw bytes.
    pub async fn into_bytes(self, gpu: &Gpu) -> Result<Vec<u8>, GpuError> {
        let slot = Arc::new(Mutex::new(Slot::default()));
        let callback_slot = slot.clone();
        let buffer = self.staging.buffer();
        let len = self.bytes.next_multiple_of(4);
        buffer.slice(0..len).map_async(wgpu::MapMode::Read, move |r| {
            let mut s = callback_slot.lock().unwrap_or_else(|p| p.into_inner());
            s.result = Some(r.map_err(|e| e.to_string()));
            if let Some(w) = s.waker.take() {
                w.wake();
            }
        });
        #[cfg(not(target_arch = "wasm32"))]
        gpu.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError::ReadBack(e.to_string()))?;
        #[cfg(target_arch = "wasm32")]
        let _ = gpu;
        MapFuture(slot).await.map_err(GpuError::ReadBack)?;
        let bytes = {
            let view = buffer.slice(0..len).get_mapped_range().map_err(|e| GpuError::ReadBack(e.to_string()))?;
            view[..self.bytes as usize].to_vec()
        };
        buffer.unmap();
        Ok(bytes)
    }

    pub async fn into_f32(self, gpu: &Gpu) -> Result<Vec<f32>, GpuError> {
        Ok(bytemuck::pod_collect_to_vec(&self.into_bytes(gpu).await?))
    }

    pub async fn into_u32(self, gpu: &Gpu) -> Result<Vec<u32>, GpuError> {
        Ok(bytemuck::pod_collect_to_vec(&self.into_bytes(gpu).await?))
    }
}
