//! Recycled host buffers for large float32 results. A fresh multi-megabyte allocation comes
//! from the OS page by page, and its page faults cost about as much as the kernel that fills
//! it; so the executors hand the buffers of the large tensors a run frees back here, and the
//! elementwise kernels take their outputs from here. Process-wide, bounded, and emptied when a
//! session is dropped or closed.

use std::sync::Mutex;

use ndarray::{ArcArray, IxDyn};

use crate::error::Result;
use crate::tensor::{DType, Tensor};

/// Buffers below this many elements (4 MiB) are left to the allocator.
const MIN_ELEMS: usize = 1 << 20;
/// At most this many bytes are kept.
const MAX_BYTES: usize = 512 << 20;

/// A bounded set of free buffers.
struct Recycler {
    free: Mutex<Vec<Vec<f32>>>,
}

static GLOBAL: Recycler = Recycler { free: Mutex::new(Vec::new()) };

impl Recycler {
    fn free(&self) -> std::sync::MutexGuard<'_, Vec<Vec<f32>>> {
        self.free.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn take(&self, shape: &[usize]) -> Result<Vec<f32>> {
        let n = crate::tensor::check_host_alloc::<f32>(DType::F32, shape)?;
        if n >= MIN_ELEMS {
            let mut free = self.free();
            if let Some(i) = free.iter().position(|v| v.capacity() == n) {
                let mut v = free.swap_remove(i);
                v.clear();
                return Ok(v);
            }
        }
        crate::tensor::try_vec::<f32>(DType::F32, shape)
    }

    fn give(&self, t: Tensor) {
        let Tensor::F32(a) = t else { return };
        if a.len() < MIN_ELEMS || !a.is_unique() || !a.is_standard_layout() {
            return;
        }
        let (v, offset): (Vec<f32>, _) = ArcArray::<f32, IxDyn>::into_owned(a).into_raw_vec_and_offset();
        if offset != Some(0) || v.capacity() != v.len() {
            return;
        }
        let mut free = self.free();
        let held: usize = free.iter().map(|b| b.capacity() * 4).sum();
        if held + v.capacity() * 4 <= MAX_BYTES {
            free.push(v);
        }
    }
}

/// An empty vector with room for exactly the elements of a float32 tensor of `shape`: a
/// recycled one when there is one, else a fallible allocation (`InvalidArgument` when the
/// element count overflows, `ResourceExhausted` with TF's OOM message when the host cannot or
/// may not hold it).
pub(crate) fn take(shape: &[usize]) -> Result<Vec<f32>> {
    GLOBAL.take(shape)
}

/// Keeps the buffer of `t` for reuse when `t` is a large float32 tensor that nothing else
/// shares; otherwise drops it.
pub(crate) fn give(t: Tensor) {
    GLOBAL.give(t);
}

/// Returns every kept buffer to the allocator.
pub(crate) fn clear() {
    GLOBAL.free().clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freed_large_buffer_is_reused_and_a_shared_one_is_not() {
        let n = MIN_ELEMS + 3;
        let r = Recycler { free: Mutex::new(Vec::new()) };
        let t = Tensor::from_f32(&[n], vec![1.0; n]).unwrap();
        let shared = t.clone();
        r.give(t);
        assert!(r.free().is_empty(), "a shared tensor is not recycled");
        let ptr = match &shared {
            Tensor::F32(a) => a.as_ptr(),
            _ => unreachable!(),
        };
        r.give(shared);
        let v = r.take(&[n]).unwrap();
        assert_eq!((v.as_ptr(), v.len(), v.capacity()), (ptr, 0, n));
        r.give(Tensor::from_f32(&[4], vec![0.0; 4]).unwrap());
        assert!(r.free().is_empty(), "small buffers are left to the allocator");
    }

    #[test]
    fn a_buffer_too_large_to_count_or_hold_is_an_error() {
        let r = Recycler { free: Mutex::new(Vec::new()) };
        let e = r.take(&[usize::MAX, 2]).unwrap_err();
        assert_eq!(e.code, crate::error::Code::InvalidArgument, "{e}");
        let e = r.take(&[1 << 62]).unwrap_err();
        assert_eq!(e.code, crate::error::Code::ResourceExhausted, "{e}");
        assert!(
            e.message.starts_with("OOM when allocating tensor with shape[4611686018427387904] and type float"),
            "{e}"
        );
    }
}
