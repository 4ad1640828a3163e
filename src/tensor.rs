//! Element types, static (possibly partial) shapes and host tensors.

use std::fmt;

use ndarray::{ArcArray, ArrayD, IxDyn};

use crate::error::{invalid, Error, Result};

/// The element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit float (`tf.float32`).
    F32,
    /// 32-bit signed integer (`tf.int32`).
    I32,
    /// 64-bit float (`tf.float64`), produced by `div` of int32 tensors.
    F64,
    /// Boolean (`tf.bool`).
    Bool,
    /// Strings (`tf.string`), used for variable names in reports.
    Str,
}

impl DType {
    /// TF's short name, as in "with dtype float".
    pub fn tf_name(self) -> &'static str {
        match self {
            DType::F32 => "float",
            DType::I32 => "int32",
            DType::F64 => "double",
            DType::Bool => "bool",
            DType::Str => "string",
        }
    }
    /// TF's enum name, as in "T=DT_FLOAT".
    pub fn tf_enum(self) -> &'static str {
        match self {
            DType::F32 => "DT_FLOAT",
            DType::I32 => "DT_INT32",
            DType::F64 => "DT_DOUBLE",
            DType::Bool => "DT_BOOL",
            DType::Str => "DT_STRING",
        }
    }
    /// numpy's name, as in "dtype=float32".
    pub fn numpy_name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::I32 => "int32",
            DType::F64 => "float64",
            DType::Bool => "bool",
            DType::Str => "string",
        }
    }
    /// Bytes per element (strings count as pointers).
    pub fn size(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::F64 | DType::Str => 8,
            DType::Bool => 1,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.numpy_name())
    }
}

/// A static shape: unknown rank, or a rank with some dimensions unknown.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Shape(Option<Vec<Option<usize>>>);

impl Shape {
    /// A shape whose rank is unknown.
    pub fn unknown() -> Self {
        Shape(None)
    }
    /// A fully known shape.
    pub fn known(dims: &[usize]) -> Self {
        Shape(Some(dims.iter().map(|&d| Some(d)).collect()))
    }
    /// A shape of known rank with `None` for unknown dimensions.
    pub fn partial(dims: &[Option<usize>]) -> Self {
        Shape(Some(dims.to_vec()))
    }
    /// A shape of known rank whose dimensions are all unknown.
    pub fn unknown_dims(rank: usize) -> Self {
        Shape(Some(vec![None; rank]))
    }
    /// The rank, if known.
    pub fn rank(&self) -> Option<usize> {
        self.0.as_ref().map(Vec::len)
    }
    /// The dimensions, if the rank is known.
    pub fn dims(&self) -> Option<&[Option<usize>]> {
        self.0.as_deref()
    }
    /// Dimension `i` (negative counts from the end), if known.
    pub fn dim(&self, i: isize) -> Option<usize> {
        let dims = self.0.as_ref()?;
        let i = if i < 0 { dims.len() as isize + i } else { i };
        dims.get(usize::try_from(i).ok()?).copied().flatten()
    }
    /// The dimensions when every one is known.
    pub fn to_vec(&self) -> Option<Vec<usize>> {
        self.0.as_ref()?.iter().copied().collect()
    }
    /// Whether a concrete shape fits this partial one.
    pub fn is_compatible_with(&self, dims: &[usize]) -> bool {
        match &self.0 {
            None => true,
            Some(d) => d.len() == dims.len() && d.iter().zip(dims).all(|(a, b)| a.is_none_or(|a| a == *b)),
        }
    }
    /// TF's C++ form used in op error messages: `[2,3]`, `[?,3]`, `?`.
    pub fn tf_string(&self) -> String {
        match &self.0 {
            None => "?".to_string(),
            Some(d) => {
                let parts: Vec<String> = d.iter().map(|x| x.map_or("?".to_string(), |v| v.to_string())).collect();
                format!("[{}]", parts.join(","))
            }
        }
    }
    /// Python's `TensorShape` form: `(2,)`, `(None, 3)`, `<unknown>`.
    pub fn python_string(&self) -> String {
        match &self.0 {
            None => "<unknown>".to_string(),
            Some(d) => python_tuple(d.iter().map(|x| x.map_or("None".to_string(), |v| v.to_string()))),
        }
    }
}

/// Formats items as a Python tuple: `()`, `(3,)`, `(2, 3)`.
pub(crate) fn python_tuple(items: impl Iterator<Item = String>) -> String {
    let v: Vec<String> = items.collect();
    match v.len() {
        1 => format!("({},)", v[0]),
        _ => format!("({})", v.join(", ")),
    }
}

/// Formats a concrete shape TF's C++ way: `[2,3]`.
pub(crate) fn dims_string(dims: &[usize]) -> String {
    Shape::known(dims).tf_string()
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.tf_string())
    }
}

impl From<&[usize]> for Shape {
    fn from(d: &[usize]) -> Self {
        Shape::known(d)
    }
}

/// The static description of a tensor: its dtype and (possibly partial) shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorSpec {
    /// Element type.
    pub dtype: DType,
    /// Static shape.
    pub shape: Shape,
}

impl TensorSpec {
    /// A spec from a dtype and shape.
    pub fn new(dtype: DType, shape: Shape) -> Self {
        TensorSpec { dtype, shape }
    }
}

/// A host tensor: an n-dimensional array of one of the supported element types.
///
/// Storage is reference counted (`ArcArray`), so cloning a tensor is cheap and
/// copies happen only on write.
#[derive(Clone, Debug, PartialEq)]
pub enum Tensor {
    /// float32 data.
    F32(ArcArray<f32, IxDyn>),
    /// int32 data.
    I32(ArcArray<i32, IxDyn>),
    /// float64 data.
    F64(ArcArray<f64, IxDyn>),
    /// bool data.
    Bool(ArcArray<bool, IxDyn>),
    /// string data.
    Str(ArcArray<String, IxDyn>),
}

/// Implements the conversions between a Rust element type and a `Tensor` variant.
macro_rules! element {
    ($t:ty, $variant:ident, $as:ident, $dtype:ident) => {
        impl From<ArrayD<$t>> for Tensor {
            fn from(a: ArrayD<$t>) -> Self {
                Tensor::$variant(a.into_shared())
            }
        }
        impl From<ArcArray<$t, IxDyn>> for Tensor {
            fn from(a: ArcArray<$t, IxDyn>) -> Self {
                Tensor::$variant(a)
            }
        }
        impl From<$t> for Tensor {
            fn from(v: $t) -> Self {
                Tensor::$variant(ArrayD::from_elem(IxDyn(&[]), v).into_shared())
            }
        }
        impl From<Vec<$t>> for Tensor {
            fn from(v: Vec<$t>) -> Self {
                let n = v.len();
                Tensor::$variant(ArrayD::from_shape_vec(IxDyn(&[n]), v).unwrap_or_default().into_shared())
            }
        }
        impl<const N: usize> From<[$t; N]> for Tensor {
            fn from(v: [$t; N]) -> Self {
                Tensor::from(v.to_vec())
            }
        }
        impl Tensor {
            /// The data as an array of this element type, or `InvalidArgument` on a dtype mismatch.
            pub fn $as(&self) -> Result<&ArcArray<$t, IxDyn>> {
                match self {
                    Tensor::$variant(a) => Ok(a),
                    other => invalid!("expected a {} tensor, got {}", DType::$dtype, other.dtype()),
                }
            }
        }
    };
}

element!(f32, F32, as_f32, F32);
element!(i32, I32, as_i32, I32);
element!(f64, F64, as_f64, F64);
element!(bool, Bool, as_bool, Bool);
element!(String, Str, as_str, Str);

impl From<&str> for Tensor {
    fn from(v: &str) -> Self {
        Tensor::from(v.to_string())
    }
}

impl Tensor {
    /// A float32 tensor of `shape` from row-major `data`.
    pub fn from_f32(shape: &[usize], data: Vec<f32>) -> Result<Self> {
        from_vec(shape, data).map(Tensor::F32)
    }
    /// An int32 tensor of `shape` from row-major `data`.
    pub fn from_i32(shape: &[usize], data: Vec<i32>) -> Result<Self> {
        from_vec(shape, data).map(Tensor::I32)
    }
    /// A tensor of `shape` filled with `value`, or `InvalidArgument` when the element count
    /// overflows and `ResourceExhausted` (TF's "OOM when allocating tensor …") when the host
    /// cannot or may not hold it (see [`set_host_allocation_limit`]). Nothing is allocated
    /// before those checks.
    pub fn try_filled(dtype: DType, shape: &[usize], value: f64) -> Result<Self> {
        Ok(match dtype {
            DType::F32 => Tensor::F32(try_filled_array(shape, value as f32)?),
            DType::I32 => Tensor::I32(try_filled_array(shape, value as i32)?),
            DType::F64 => Tensor::F64(try_filled_array(shape, value)?),
            DType::Bool => Tensor::Bool(try_filled_array(shape, value != 0.0)?),
            DType::Str => Tensor::Str(try_filled_array(shape, String::new())?),
        })
    }
    /// A tensor of `shape` filled with `value`, for small shapes the caller knows to be
    /// reasonable.
    ///
    /// # Panics
    /// When the shape's element count overflows or the allocation fails; use
    /// [`Tensor::try_filled`] for shapes that come from input.
    pub fn filled(dtype: DType, shape: &[usize], value: f64) -> Self {
        let d = IxDyn(shape);
        match dtype {
            DType::F32 => Tensor::F32(ArrayD::from_elem(d, value as f32).into_shared()),
            DType::I32 => Tensor::I32(ArrayD::from_elem(d, value as i32).into_shared()),
            DType::F64 => Tensor::F64(ArrayD::from_elem(d, value).into_shared()),
            DType::Bool => Tensor::Bool(ArrayD::from_elem(d, value != 0.0).into_shared()),
            DType::Str => Tensor::Str(ArrayD::from_elem(d, String::new()).into_shared()),
        }
    }
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            Tensor::F32(_) => DType::F32,
            Tensor::I32(_) => DType::I32,
            Tensor::F64(_) => DType::F64,
            Tensor::Bool(_) => DType::Bool,
            Tensor::Str(_) => DType::Str,
        }
    }
    /// The concrete shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            Tensor::F32(a) => a.shape(),
            Tensor::I32(a) => a.shape(),
            Tensor::F64(a) => a.shape(),
            Tensor::Bool(a) => a.shape(),
            Tensor::Str(a) => a.shape(),
        }
    }
    /// The number of elements.
    pub fn len(&self) -> usize {
        self.shape().iter().product()
    }
    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The size of the data in bytes.
    pub fn byte_len(&self) -> usize {
        self.len() * self.dtype().size()
    }
    /// The static spec of this tensor.
    pub fn spec(&self) -> TensorSpec {
        TensorSpec::new(self.dtype(), Shape::known(self.shape()))
    }
    /// The float32 elements in row-major order.
    pub fn to_f32_vec(&self) -> Result<Vec<f32>> {
        Ok(self.as_f32()?.iter().copied().collect())
    }
    /// The single float32 value of a one-element tensor.
    pub fn scalar_f32(&self) -> Result<f32> {
        let a = self.as_f32()?;
        match a.len() {
            1 => Ok(a.iter().copied().next().unwrap_or_default()),
            n => invalid!("expected one element, got {n}"),
        }
    }
    /// A view of the same data with a new shape of the same size.
    pub fn reshaped(&self, shape: &[usize]) -> Result<Tensor> {
        let n = checked_elements(shape)?;
        if n != self.len() {
            invalid!("Input to reshape is a tensor with {} values, but the requested shape has {}", self.len(), n);
        }
        let d = IxDyn(shape);
        let r = match self {
            Tensor::F32(a) => a.to_shape(d).map(|v| Tensor::F32(v.to_owned().into_shared())),
            Tensor::I32(a) => a.to_shape(d).map(|v| Tensor::I32(v.to_owned().into_shared())),
            Tensor::F64(a) => a.to_shape(d).map(|v| Tensor::F64(v.to_owned().into_shared())),
            Tensor::Bool(a) => a.to_shape(d).map(|v| Tensor::Bool(v.to_owned().into_shared())),
            Tensor::Str(a) => a.to_shape(d).map(|v| Tensor::Str(v.to_owned().into_shared())),
        };
        r.map_err(|e| Error::internal(format!("reshape: {e}")))
    }
}

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

/// Caps the bytes one host tensor allocation of a kernel (or [`Tensor::try_filled`]) may take;
/// larger ones fail with `ResourceExhausted` before allocating. `None` restores the default:
/// the machine's memory (the smaller of its physical memory and its cgroup's limit), so that
/// a 4 TiB output is refused rather than left to the allocator or the OOM killer.
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

/// Builds a shared array from a shape and row-major data, checking the size.
pub(crate) fn from_vec<T: Clone>(shape: &[usize], data: Vec<T>) -> Result<ArcArray<T, IxDyn>> {
    let n = checked_elements(shape)?;
    if n != data.len() {
        invalid!("shape {} needs {} values, got {}", dims_string(shape), n, data.len());
    }
    ArrayD::from_shape_vec(IxDyn(shape), data)
        .map(ArrayD::into_shared)
        .map_err(|e| Error::invalid_argument(e.to_string()))
}
