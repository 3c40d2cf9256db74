//! A tensor is a pooled buffer plus a shape. Cloning shares the buffer; dropping the last clone
//! returns the buffer to the pool.

use std::rc::Rc;

use super::pool::PooledBuffer;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    U32,
}

impl DType {
    pub fn size(self) -> u64 {
        4
    }
}

pub(crate) fn byte_size(shape: &[usize], dtype: DType) -> u64 {
    shape.iter().product::<usize>() as u64 * dtype.size()
}

#[derive(Clone)]
pub struct Tensor {
    buffer: Rc<PooledBuffer>,
    shape: Vec<usize>,
    dtype: DType,
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor({:?} {:?}, buffer #{})", self.shape, self.dtype, self.buffer.id)
    }
}

impl Tensor {
    pub(crate) fn new(buffer: Rc<PooledBuffer>, shape: Vec<usize>, dtype: DType) -> Self {
        Tensor { buffer, shape, dtype }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn byte_size(&self) -> u64 {
        byte_size(&self.shape, self.dtype)
    }

    /// The same storage seen with another shape of the same element count.
    pub fn reshape(&self, shape: &[usize]) -> Tensor {
        assert_eq!(
            shape.iter().product::<usize>(),
            self.len(),
            "reshape {:?} -> {:?} changes the element count",
            self.shape,
            shape
        );
        Tensor { buffer: self.buffer.clone(), shape: shape.to_vec(), dtype: self.dtype }
    }

    pub(crate) fn buffer(&self) -> &wgpu::Buffer {
        self.buffer.buffer()
    }

    pub(crate) fn buffer_id(&self) -> u64 {
        self.buffer.id
    }

    /// Whether two tensors share storage (a dispatch must not bind one buffer twice with
    /// read-only and read-write access: WebGPU rejects it).
    pub fn same_storage(&self, other: &Tensor) -> bool {
        self.buffer.id == other.buffer.id
    }
}
