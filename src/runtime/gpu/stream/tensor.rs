//! Device tensors: [`GpuTensor`], a tensor in a pooled device buffer, with the byte size rule
//! of the tensors the GPU holds and the row-major bytes of a host array.

use std::borrow::Cow;
use std::num::NonZeroU64;
use std::sync::Arc;

use ndarray::{ArcArray, IxDyn};

use crate::error::{Error, Result};
use crate::tensor::{dims_string, DType};

/// A tensor in a pooled device buffer (which may be larger than the tensor).
#[derive(Clone, Debug)]
pub struct GpuTensor {
    /// The buffer; its first `byte_len()` bytes hold the elements in row-major order.
    pub buffer: Arc<wgpu::Buffer>,
    /// Element type (F32 or I32).
    pub dtype: DType,
    /// Concrete shape.
    pub shape: Vec<usize>,
}

impl GpuTensor {
    /// The number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    /// Whether the tensor has no elements.
    #[cfg(feature = "test-hooks")]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The size of the elements in bytes.
    pub fn byte_len(&self) -> u64 {
        self.len() as u64 * self.dtype.size() as u64
    }
    /// The binding of the tensor's bytes (at least 4, as bindings cannot be empty).
    pub(super) fn binding(&self) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &self.buffer,
            offset: 0,
            size: NonZeroU64::new(self.byte_len().max(4)),
        })
    }
}

/// The byte size of a tensor the GPU can hold: float32 and int32 only.
pub(super) fn gpu_bytes(dtype: DType, shape: &[usize]) -> Result<u64> {
    if !matches!(dtype, DType::F32 | DType::I32) {
        return Err(Error::unimplemented(format!(
            "{dtype} tensors cannot be placed on the GPU (float32 and int32 only)"
        )));
    }
    shape
        .iter()
        .try_fold(dtype.size() as u64, |acc, &d| acc.checked_mul(d as u64))
        .ok_or_else(|| Error::resource_exhausted(format!("a tensor of shape {} is too large", dims_string(shape))))
}

/// The row-major bytes of an array, borrowed when it is contiguous.
pub(super) fn host_bytes<T: bytemuck::Pod>(a: &ArcArray<T, IxDyn>) -> Cow<'_, [u8]> {
    match a.as_slice() {
        Some(s) => Cow::Borrowed(bytemuck::cast_slice(s)),
        None => Cow::Owned(bytemuck::cast_slice(&a.iter().copied().collect::<Vec<T>>()).to_vec()),
    }
}
