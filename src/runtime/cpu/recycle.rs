//! Recycled host buffers for large float32 results. A fresh multi-megabyte allocation comes
//! from the OS page by page, and its page faults cost about as much as the kernel that fills
//! it; so the executors hand the buffers of the large tensors a run frees back here, and the
//! elementwise kernels take their outputs from here. Process-wide and bounded; each kept
//! buffer is tagged with the session (the owner) whose run gave it back, and a session that is
//! dropped or closed releases its own buffers only, not those of sessions still running. A
//! run's owner is set for its thread with [`OwnerScope`]; `take` may take any owner's buffer.

use std::cell::Cell;
use std::sync::Mutex;

use ndarray::{ArcArray, IxDyn};

use crate::error::Result;
use crate::tensor::{DType, Tensor};

/// Buffers below this many elements (1 MiB) are left to the allocator.
const MIN_ELEMS: usize = 1 << 18;
/// At most this many bytes are kept.
const MAX_BYTES: usize = 512 << 20;

/// Who gave a buffer back: a session's id (0: no session, e.g. a kernel called directly).
pub(crate) type Owner = u64;

thread_local! {
    /// The owner of the run on this thread.
    static OWNER: Cell<Owner> = const { Cell::new(0) };
}

/// Makes `owner` the owner of the buffers given back on this thread until dropped.
pub(crate) struct OwnerScope {
    previous: Owner,
}

impl OwnerScope {
    pub(crate) fn enter(owner: Owner) -> Self {
        OwnerScope { previous: OWNER.with(|o| o.replace(owner)) }
    }
}

impl Drop for OwnerScope {
    fn drop(&mut self) {
        OWNER.with(|o| o.set(self.previous));
    }
}

/// A bounded set of free buffers, each with its owner.
struct Recycler {
    free: Mutex<Vec<(Owner, Vec<f32>)>>,
}

static GLOBAL: Recycler = Recycler { free: Mutex::new(Vec::new()) };

impl Recycler {
    fn free(&self) -> std::sync::MutexGuard<'_, Vec<(Owner, Vec<f32>)>> {
        self.free.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn take(&self, shape: &[usize]) -> Result<(Vec<f32>, bool)> {
        let n = crate::tensor::check_host_alloc::<f32>(DType::F32, shape)?;
        match self.reuse(n) {
            Some(mut v) => {
                v.clear();
                Ok((v, true))
            }
            None => Ok((crate::tensor::try_vec::<f32>(DType::F32, shape)?, false)),
        }
    }

    /// A vector of exactly the elements of `shape`: a recycled one with its old values, else
    /// a new one of zeros.
    fn take_full(&self, shape: &[usize]) -> Result<Vec<f32>> {
        let n = crate::tensor::check_host_alloc::<f32>(DType::F32, shape)?;
        match self.reuse(n) {
            Some(v) => Ok(v),
            None => crate::tensor::try_zeros::<f32>(shape),
        }
    }

    /// A kept buffer of exactly `n` floats (all initialised), if there is one.
    fn reuse(&self, n: usize) -> Option<Vec<f32>> {
        if n < MIN_ELEMS {
            return None;
        }
        let mut free = self.free();
        let i = free.iter().position(|(_, v)| v.capacity() == n && v.len() == n)?;
        Some(free.swap_remove(i).1)
    }

    fn give(&self, owner: Owner, t: Tensor) {
        let Tensor::F32(a) = t else { return };
        if a.len() < MIN_ELEMS || !a.is_unique() || !a.is_standard_layout() {
            return;
        }
        let (v, offset): (Vec<f32>, _) = ArcArray::<f32, IxDyn>::into_owned(a).into_raw_vec_and_offset();
        if offset != Some(0) || v.capacity() != v.len() {
            return;
        }
        let mut free = self.free();
        let held: usize = free.iter().map(|(_, b)| b.capacity() * 4).sum();
        if held + v.capacity() * 4 <= MAX_BYTES {
            free.push((owner, v));
        }
    }

    fn release(&self, owner: Owner) {
        self.free().retain(|(o, _)| *o != owner);
    }
}

/// An empty vector with room for exactly the elements of a float32 tensor of `shape`: a
/// recycled one when there is one, else a fallible allocation (`InvalidArgument` when the
/// element count overflows, `ResourceExhausted` with TF's OOM message when the host cannot or
/// may not hold it). The flag says it was recycled: its pages are mapped and likely out of
/// the cache, where a new one's first touch faults each page in (zeroed, so in the cache),
/// which is what decides whether streaming stores pay ([`super::stream`]).
pub(crate) fn take(shape: &[usize]) -> Result<(Vec<f32>, bool)> {
    GLOBAL.take(shape)
}

/// A vector of exactly the elements of a float32 tensor of `shape`, for a kernel that writes
/// every element: a recycled one still holding the values of its last use when there is one
/// (no page faults, no zeroing pass), else a new one of zeros; fallibly, as [`take`].
pub(crate) fn take_full(shape: &[usize]) -> Result<Vec<f32>> {
    GLOBAL.take_full(shape)
}

/// Keeps the buffer of `t` for reuse when `t` is a large float32 tensor that nothing else
/// shares (tagged with this thread's [`OwnerScope`]); otherwise drops it.
pub(crate) fn give(t: Tensor) {
    GLOBAL.give(OWNER.with(Cell::get), t);
}

/// Returns the buffers `owner` gave back to the allocator; other owners keep theirs.
pub(crate) fn release(owner: Owner) {
    GLOBAL.release(owner);
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
        r.give(1, t);
        assert!(r.free().is_empty(), "a shared tensor is not recycled");
        let ptr = match &shared {
            Tensor::F32(a) => a.as_ptr(),
            _ => unreachable!(),
        };
        r.give(1, shared);
        let v = r.take_full(&[n]).unwrap();
        assert_eq!((v.as_ptr(), v.len(), v.capacity()), (ptr, n, n));
        assert!(v.iter().all(|&x| x == 1.0), "take_full keeps the old values");
        r.give(1, Tensor::from_f32(&[n], v).unwrap());
        let (v, recycled) = r.take(&[n]).unwrap();
        assert_eq!((v.as_ptr(), v.len(), v.capacity(), recycled), (ptr, 0, n, true));
        assert!(!r.take(&[n]).unwrap().1, "the pool is empty again");
        assert_eq!(r.take_full(&[n]).unwrap(), vec![0.0; n], "a new buffer is zeros");
        r.give(1, Tensor::from_f32(&[4], vec![0.0; 4]).unwrap());
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

    #[test]
    fn releasing_one_owner_keeps_the_buffers_of_the_others() {
        let n = MIN_ELEMS;
        let r = Recycler { free: Mutex::new(Vec::new()) };
        r.give(1, Tensor::from_f32(&[n], vec![1.0; n]).unwrap());
        r.give(2, Tensor::from_f32(&[n], vec![2.0; n]).unwrap());
        r.give(2, Tensor::from_f32(&[n], vec![3.0; n]).unwrap());
        r.release(2);
        let owners: Vec<Owner> = r.free().iter().map(|(o, _)| *o).collect();
        assert_eq!(owners, vec![1]);
        r.release(1);
        assert!(r.free().is_empty());
    }

    #[test]
    fn a_scope_sets_the_owner_of_this_thread_and_restores_the_previous_one() {
        assert_eq!(OWNER.with(Cell::get), 0);
        {
            let _outer = OwnerScope::enter(7);
            {
                let _inner = OwnerScope::enter(9);
                assert_eq!(OWNER.with(Cell::get), 9);
            }
            assert_eq!(OWNER.with(Cell::get), 7);
        }
        assert_eq!(OWNER.with(Cell::get), 0);
    }
}
