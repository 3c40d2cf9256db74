//! Asynchronous read-back that works natively and in the browser.
//!
//! In the browser nothing may block: `map_async`'s callback fires a one-shot [`Signal`] that
//! wakes the awaiting future. Natively, `device.poll(wait)` drives the callback before the first poll of the
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

/// A one-shot signal fired by a wgpu callback (`map_async`, `on_submitted_work_done`) and
/// awaited by the caller: a Mutex, because natively the callback must be Send.
#[derive(Clone, Default)]
pub(crate) struct Signal(Arc<Mutex<Slot>>);

impl Signal {
    pub(crate) fn fire(&self, result: Result<(), String>) {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        s.result = Some(result);
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    }
}

impl Future for Signal {
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

/// A copy to host memory scheduled by [`super::Frame::read`].
#[derive(Clone)]
pub struct Pending {
    staging: Rc<PooledBuffer>,
    bytes: u64,
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
        let signal = Signal::default();
        let mapped = signal.clone();
        let buffer = self.staging.buffer();
        let len = self.bytes.next_multiple_of(4);
        buffer
            .slice(0..len)
            .map_async(wgpu::MapMode::Read, move |r| mapped.fire(r.map_err(|e| e.to_string())));
        #[cfg(not(target_arch = "wasm32"))]
        gpu.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::ReadBack(e.to_string()))?;
        if let Err(e) = signal.await {
            // A failed map is usually the echo of an earlier rejected command, whose error event
            // can arrive after the map's: wait for the queue, then report that one.
            gpu.work_done().await?;
            return Err(GpuError::ReadBack(e));
        }
        let bytes = {
            let view =
                buffer.slice(0..len).get_mapped_range().map_err(|e| GpuError::ReadBack(e.to_string()))?;
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
