//! Fallible host allocation: the element count checked against overflow, the host
//! allocation limit, and the vectors and arrays kernels allocate through, so that an
//! oversized output is TF's `ResourceExhausted` ("OOM when allocating tensor …") rather than
//! an abort.

use ndarray::{ArcArray, ArrayD, IxDyn};

use super::{dims_string, DType};
use crate::error::{invalid, Error, Result};

/// The element count of `shape`, or `InvalidArgument` in TF's words when it overflows (TF
/// counts in int64, so more than `i64::MAX` elements overflow too).
pub fn checked_elements(shape: &[usize]) -> Result<usize> {
    let mut n: usize = 1;
    for &d in shape {
        match n.checked_mul(d).filter(|&m| i64::try_from(m).is_ok()) {
            Some(m) => n = m,
            None => invalid!("Encountered overflow when multiplying {n} with {d}, result: -1"),
        }
    }
    Ok(n)
}

/// The limit set by [`set_host_allocation_limit`]; 0 means "the machine's memory".
static HOST_LIMIT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Caps the bytes one host tensor allocation of a kernel (or of
/// [`Tensor::try_filled`](super::Tensor::try_filled)) may take; larger ones fail with
/// `ResourceExhausted` before allocating. `None` restores the default: the machine's memory
/// (the smaller of its physical memory and its cgroup's limit), so that a 4 TiB output is
/// refused rather than left to the allocator or the OOM killer.
pub fn set_host_allocation_limit(bytes: Option<u64>) {
    HOST_LIMIT.store(bytes.unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
}

/// The bytes one host tensor allocation may take (see [`set_host_allocation_limit`]).
pub fn host_allocation_limit() -> u64 {
    match HOST_LIMIT.load(std::sync::atomic::Ordering::Relaxed) {
        0 => machine_memory(),
        n => n,
    }
}

/// The machine's memory in bytes, read once: physical memory, capped by a cgroup limit;
/// `u64::MAX` where neither can be read (the allocator's refusal is then the only bound).
fn machine_memory() -> u64 {
    static MEMORY: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *MEMORY.get_or_init(|| {
        let read = |path: &str| std::fs::read_to_string(path).ok();
        let total = read("/proc/meminfo").and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            kb.checked_mul(1024)
        });
        let cgroup = ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]
            .iter()
            .filter_map(|p| read(p)?.trim().parse::<u64>().ok())
            .min();
        [total, cgroup].into_iter().flatten().min().unwrap_or(u64::MAX)
    })
}

/// TF's out-of-memory error for a host tensor of `dtype` and `shape`.
fn host_oom(dtype: DType, shape: &[usize]) -> Error {
    Error::resource_exhausted(format!(
        "OOM when allocating tensor with shape{} and type {} on /job:localhost/replica:0/task:0/device:CPU:0 \
         by allocator cpu",
        dims_string(shape),
        dtype.tf_name()
    ))
}

/// The element count of a host tensor of `dtype` and `shape` with elements of type `T`, after
/// the checks of [`try_vec`] short of reserving: for kernels that allocate another way.
pub(crate) fn check_host_alloc<T>(dtype: DType, shape: &[usize]) -> Result<usize> {
    let n = checked_elements(shape)?;
    let bytes = n.checked_mul(std::mem::size_of::<T>().max(1));
    let over = bytes.is_none_or(|b| b > isize::MAX as usize || b as u64 > host_allocation_limit());
    if over {
        return Err(host_oom(dtype, shape));
    }
    Ok(n)
}

/// An empty vector with room for the elements of a host tensor of `dtype` and `shape`, or
/// `InvalidArgument` (element count overflow) / `ResourceExhausted` (over
/// [`host_allocation_limit`], over `isize::MAX` bytes, or refused by the allocator). Kernels
/// whose output size is computed from shapes allocate through here.
pub(crate) fn try_vec<T>(dtype: DType, shape: &[usize]) -> Result<Vec<T>> {
    let n = check_host_alloc::<T>(dtype, shape)?;
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| host_oom(dtype, shape))?;
    Ok(v)
}

/// A host element type and its dtype, for the out-of-memory messages of kernels generic over
/// the element.
pub(crate) trait HostElem: Sized {
    /// The dtype of tensors of this element.
    const DTYPE: DType;
}
impl HostElem for f32 {
    const DTYPE: DType = DType::F32;
}
impl HostElem for f64 {
    const DTYPE: DType = DType::F64;
}
impl HostElem for i32 {
    const DTYPE: DType = DType::I32;
}
impl HostElem for bool {
    const DTYPE: DType = DType::Bool;
}
impl HostElem for String {
    const DTYPE: DType = DType::Str;
}

/// Element types whose all-zero bit pattern is the value zero, so a zeroed allocation holds
/// zeros.
///
/// # Safety
/// Implementors must be plain data for which every byte being 0 is a valid value.
pub(crate) unsafe trait ZeroBits: HostElem + Copy {}
// SAFETY: 0.0, 0.0 and 0 are all-zero bit patterns.
unsafe impl ZeroBits for f32 {}
// SAFETY: as above.
unsafe impl ZeroBits for f64 {}
// SAFETY: as above.
unsafe impl ZeroBits for i32 {}

/// An empty vector with room for a host tensor of `shape` (see [`try_vec`]).
pub(crate) fn try_capacity<T: HostElem>(shape: &[usize]) -> Result<Vec<T>> {
    try_vec::<T>(T::DTYPE, shape)
}

/// The zeros of a host tensor of `shape`, from a zeroed allocation (as fast as `vec![0; n]`:
/// the OS hands out zero pages), after the checks of [`try_vec`]; a refusal of the
/// allocator is `ResourceExhausted` too.
pub(crate) fn try_zeros<T: ZeroBits>(shape: &[usize]) -> Result<Vec<T>> {
    let n = check_host_alloc::<T>(T::DTYPE, shape)?;
    if n == 0 || std::mem::size_of::<T>() == 0 {
        return Ok(Vec::new());
    }
    let layout = std::alloc::Layout::array::<T>(n).map_err(|_| host_oom(T::DTYPE, shape))?;
    // SAFETY: the layout has a non-zero size (n > 0, T not zero-sized).
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<T>();
    if ptr.is_null() {
        return Err(host_oom(T::DTYPE, shape));
    }
    // SAFETY: `ptr` comes from the global allocator with the layout of `n` elements of `T`,
    // which are initialised: all-zero bytes are valid zeros of a `ZeroBits` type.
    Ok(unsafe { Vec::from_raw_parts(ptr, n, n) })
}

/// A host tensor's data of `shape` with every element `value`, after the checks of
/// [`try_vec`].
pub(crate) fn try_full<T: HostElem + Clone>(shape: &[usize], value: T) -> Result<Vec<T>> {
    let mut v = try_capacity::<T>(shape)?;
    v.resize(checked_elements(shape)?, value);
    Ok(v)
}

/// An owned standard-layout copy of `view`, allocated after the checks of [`try_vec`] (for
/// transposes and other copies whose layout differs from their source's).
pub(crate) fn try_to_owned<T: HostElem + Clone>(view: ndarray::ArrayViewD<'_, T>) -> Result<ArrayD<T>> {
    let shape = view.shape().to_vec();
    let mut v = try_capacity::<T>(&shape)?;
    match view.as_slice() {
        Some(s) => v.extend_from_slice(s),
        None => {
            let n = view.len();
            if v.capacity() < n {
                return Err(Error::internal("copying a tensor: buffer too small"));
            }
            // As ndarray's own copy does: the element iterator's `fold` (fast over strided
            // views) writing through a pointer into the reserved room.
            let mut ptr = v.as_mut_ptr();
            view.iter().fold((), |(), x| {
                // SAFETY: the view has `n` elements and `v` room for `n`; each write advances
                // by one.
                unsafe {
                    ptr.write(x.clone());
                    ptr = ptr.add(1);
                }
            });
            // SAFETY: the fold wrote all `n` elements.
            unsafe { v.set_len(n) };
        }
    }
    ArrayD::from_shape_vec(IxDyn(&shape), v).map_err(|e| Error::internal(format!("copying a tensor: {e}")))
}

/// A shared array of `shape` filled with `value`, allocated through [`try_vec`].
pub(crate) fn try_filled_array<T: HostElem + Clone>(shape: &[usize], value: T) -> Result<ArcArray<T, IxDyn>> {
    ArrayD::from_shape_vec(IxDyn(shape), try_full(shape, value)?)
        .map(ArrayD::into_shared)
        .map_err(|e| Error::internal(format!("filling a tensor: {e}")))
}
