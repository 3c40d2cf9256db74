//! The CPU backend's tensor: a shape and shared f32 or u32 storage, and the shape checks the
//! backend's ops share.

use std::sync::Arc;

use crate::gpu::GpuError;

#[derive(Clone, Debug)]
pub(super) enum Data {
    F32(Arc<Vec<f32>>),
    U32(Arc<Vec<u32>>),
}

/// A host tensor: shape + shared f32 or u32 storage.
#[derive(Clone, Debug)]
pub struct CpuTensor {
    pub(super) shape: Vec<usize>,
    pub(super) data: Data,
}

impl CpuTensor {
    pub fn new(shape: &[usize], data: Vec<f32>) -> Result<CpuTensor, GpuError> {
        check_len("cpu tensor", shape, data.len())?;
        Ok(CpuTensor { shape: shape.to_vec(), data: Data::F32(Arc::new(data)) })
    }

    pub fn new_u32(shape: &[usize], data: Vec<u32>) -> Result<CpuTensor, GpuError> {
        check_len("cpu tensor", shape, data.len())?;
        Ok(CpuTensor { shape: shape.to_vec(), data: Data::U32(Arc::new(data)) })
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The f32 values (an error for a u32 tensor).
    pub fn f32(&self) -> Result<&[f32], GpuError> {
        match &self.data {
            Data::F32(v) => Ok(v),
            Data::U32(_) => Err(GpuError::shape("cpu", "expected an f32 tensor, got u32")),
        }
    }

    pub fn u32(&self) -> Result<&[u32], GpuError> {
        match &self.data {
            Data::U32(v) => Ok(v),
            Data::F32(_) => Err(GpuError::shape("cpu", "expected a u32 tensor, got f32")),
        }
    }
}

pub(super) fn check_len(op: &'static str, shape: &[usize], len: usize) -> Result<(), GpuError> {
    if shape.iter().product::<usize>() != len {
        return Err(GpuError::shape(op, format!("{len} values do not fill the shape {shape:?}")));
    }
    Ok(())
}

pub(super) fn nhwc(op: &'static str, t: &CpuTensor) -> Result<[usize; 4], GpuError> {
    match *t.shape() {
        [n, h, w, c] => Ok([n, h, w, c]),
        _ => Err(GpuError::shape(op, format!("expected [N, H, W, C], got {:?}", t.shape()))),
    }
}

pub(super) fn last(t: &CpuTensor) -> usize {
    t.shape().last().copied().unwrap_or(0)
}

pub(super) fn vector<'t>(
    op: &'static str,
    t: Option<&'t CpuTensor>,
    len: usize,
) -> Result<Option<&'t [f32]>, GpuError> {
    match t {
        None => Ok(None),
        Some(t) if t.shape() == [len] => Ok(Some(t.f32()?)),
        Some(t) => Err(GpuError::shape(op, format!("expected [{len}], got {:?}", t.shape()))),
    }
}

pub(super) fn same_shape<'t>(
    op: &'static str,
    a: &CpuTensor,
    b: Option<&'t CpuTensor>,
) -> Result<Option<&'t [f32]>, GpuError> {
    match b {
        None => Ok(None),
        Some(b) if b.shape() == a.shape() => Ok(Some(b.f32()?)),
        Some(b) => Err(GpuError::shape(op, format!("{:?} and {:?} differ", a.shape(), b.shape()))),
    }
}
