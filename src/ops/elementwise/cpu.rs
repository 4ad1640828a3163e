//! CPU kernels of the elementwise ops: numpy broadcasting of shapes, and the (parallel)
//! map and zip loops that fill fallibly allocated outputs.

use std::mem::MaybeUninit;

use ndarray::{ArcArray, ArrayD, IxDyn, Zip};
use rayon::prelude::*;

use crate::error::{invalid, Error, Result};
use crate::runtime::cpu::stream;
use crate::tensor::{dims_string, DType, Shape};

/// TF's `google_floor_div` for integers, with the wrapping arithmetic of its C++ (so
/// `i32::MIN / -1` is `i32::MIN`). The kernel rejects a zero divisor before this runs.
pub(super) fn floor_div(x: i32, y: i32) -> i32 {
    if y == 0 {
        return 0;
    }
    let q = x.wrapping_div(y);
    if q.wrapping_mul(y) != x && ((x < 0) != (y < 0)) {
        q.wrapping_sub(1)
    } else {
        q
    }
}

/// C++'s truncating `/`, wrapping on `i32::MIN / -1`; a zero divisor is rejected before.
pub(super) fn truncate_div(x: i32, y: i32) -> i32 {
    if y == 0 {
        0
    } else {
        x.wrapping_div(y)
    }
}

/// Broadcasts two static shapes with numpy's rules; `Err` holds TF's shape message.
pub(crate) fn broadcast_static(a: &Shape, b: &Shape) -> std::result::Result<Shape, String> {
    let (Some(da), Some(db)) = (a.dims(), b.dims()) else {
        return Ok(Shape::unknown());
    };
    let n = da.len().max(db.len());
    let mut out = vec![None; n];
    for i in 0..n {
        let x = if i + da.len() >= n { da[i + da.len() - n] } else { Some(1) };
        let y = if i + db.len() >= n { db[i + db.len() - n] } else { Some(1) };
        out[i] = match (x, y) {
            (Some(1), y) => y,
            (x, Some(1)) => x,
            (Some(x), Some(y)) if x == y => Some(x),
            (Some(x), Some(y)) => return Err(format!("Dimensions must be equal, but are {x} and {y}")),
            (Some(x), None) | (None, Some(x)) => Some(x),
            (None, None) => None,
        };
    }
    Ok(Shape::partial(&out))
}

/// Broadcasts two concrete shapes; the error is TF's run-time message.
pub(crate) fn broadcast_shapes(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for (i, o) in out.iter_mut().enumerate() {
        let x = if i + a.len() >= n { a[i + a.len() - n] } else { 1 };
        let y = if i + b.len() >= n { b[i + b.len() - n] } else { 1 };
        *o = match (x, y) {
            (1, y) => y,
            (x, 1) => x,
            (x, y) if x == y => x,
            _ => invalid!("Incompatible shapes: {} vs. {}", dims_string(a), dims_string(b)),
        };
    }
    Ok(out)
}

/// Elements above which CPU elementwise kernels split the work across threads.
const PARALLEL_MIN: usize = 1 << 16;

/// Fills `out` with `f` of each element of `x`, in chunks across threads for large tensors.
pub(super) fn fill<T, U, F>(out: &mut [std::mem::MaybeUninit<U>], x: &[T], f: F)
where
    T: Copy + Send + Sync,
    U: Send,
    F: Fn(T) -> U + Sync,
{
    let run = |o: &mut [std::mem::MaybeUninit<U>], x: &[T]| {
        o.iter_mut().zip(x).for_each(|(o, &x)| {
            o.write(f(x));
        })
    };
    if out.len() >= PARALLEL_MIN {
        out.par_chunks_mut(PARALLEL_MIN).zip(x.par_chunks(PARALLEL_MIN)).for_each(|(o, x)| run(o, x));
    } else {
        run(out, x);
    }
}

/// Where a kernel's output vector comes from: float32 outputs reuse freed buffers
/// (`runtime::cpu::recycle`), other types are allocated; either way fallibly, with TF's
/// out-of-memory error. The flag says the buffer was recycled.
pub(super) trait OutputBuf: Sized + Copy + crate::tensor::HostElem {
    fn with_capacity(shape: &[usize]) -> Result<(Vec<Self>, bool)> {
        Ok((crate::tensor::try_capacity(shape)?, false))
    }
    /// Writes `f(x[i], y[i])` into `o[i]`; `huge` says the whole output is
    /// `runtime::cpu::stream`'s size in a recycled buffer, where float32 results stream out
    /// of L1 blocks.
    fn write_pairs<T: Copy>(o: &mut [MaybeUninit<Self>], x: &[T], y: &[T], f: impl Fn(T, T) -> Self, huge: bool) {
        let _ = huge;
        write_pairs(o, x, y, f);
    }
}
impl OutputBuf for f32 {
    fn with_capacity(shape: &[usize]) -> Result<(Vec<f32>, bool)> {
        crate::runtime::cpu::recycle::take(shape)
    }
    fn write_pairs<T: Copy>(o: &mut [MaybeUninit<f32>], x: &[T], y: &[T], f: impl Fn(T, T) -> f32, huge: bool) {
        if !huge {
            return write_pairs(o, x, y, f);
        }
        let mut block = [0.0f32; STREAM_BLOCK];
        for (o, (x, y)) in o.chunks_mut(STREAM_BLOCK).zip(x.chunks(STREAM_BLOCK).zip(y.chunks(STREAM_BLOCK))) {
            let block = &mut block[..o.len()];
            block.iter_mut().zip(x.iter().zip(y)).for_each(|(b, (&x, &y))| *b = f(x, y));
            stream::copy(o, block);
        }
        stream::fence();
    }
}

/// Floats computed in L1 before they stream out.
const STREAM_BLOCK: usize = 512;

fn write_pairs<T: Copy, U>(o: &mut [MaybeUninit<U>], x: &[T], y: &[T], f: impl Fn(T, T) -> U) {
    o.iter_mut().zip(x.iter().zip(y)).for_each(|(o, (&x, &y))| {
        o.write(f(x, y));
    });
}
impl OutputBuf for f64 {}
impl OutputBuf for i32 {}

/// A new vector for a tensor of `shape` (`n` elements, counted by the caller), each element
/// written by `write` (which must write every one; it is told whether the buffer was
/// recycled).
pub(super) fn collect_into<U: OutputBuf>(
    shape: &[usize],
    n: usize,
    write: impl FnOnce(&mut [std::mem::MaybeUninit<U>], bool),
) -> Result<Vec<U>> {
    let (mut out, recycled) = U::with_capacity(shape)?;
    let spare = out.spare_capacity_mut();
    if spare.len() < n {
        return Err(Error::internal("elementwise: output buffer too small"));
    }
    write(&mut spare[..n], recycled);
    // SAFETY: `fill` and the binary loop below write every element of the slice they get.
    unsafe { out.set_len(n) };
    Ok(out)
}

/// Applies `f` elementwise with broadcasting; same-shape contiguous operands take a single
/// pass (parallel for large tensors) into an output that is never zero-filled first.
pub(super) fn zip_map<T, U, F>(a: &ArcArray<T, IxDyn>, b: &ArcArray<T, IxDyn>, f: F) -> Result<ArrayD<U>>
where
    T: Copy + Send + Sync,
    U: Copy + Send + Sync + OutputBuf,
    F: Fn(T, T) -> U + Sync,
{
    let shape = broadcast_shapes(a.shape(), b.shape())?;
    if let (Some(sa), Some(sb)) = (a.as_slice(), b.as_slice()) {
        if a.shape() == b.shape() {
            let out = collect_into(&shape, sa.len(), |out, recycled| {
                let huge = recycled && out.len() >= stream::MIN_ELEMS;
                let run = |o: &mut [MaybeUninit<U>], x: &[T], y: &[T]| U::write_pairs(o, x, y, &f, huge);
                if out.len() >= PARALLEL_MIN {
                    out.par_chunks_mut(PARALLEL_MIN)
                        .zip(sa.par_chunks(PARALLEL_MIN).zip(sb.par_chunks(PARALLEL_MIN)))
                        .for_each(|(o, (x, y))| run(o, x, y));
                } else {
                    run(out, sa, sb);
                }
            })?;
            return ArrayD::from_shape_vec(IxDyn(&shape), out).map_err(|e| Error::internal(e.to_string()));
        }
    }
    let d = IxDyn(&shape);
    let (va, vb) = match (a.broadcast(d.clone()), b.broadcast(d.clone())) {
        (Some(x), Some(y)) => (x, y),
        _ => invalid!("Incompatible shapes: {} vs. {}", dims_string(a.shape()), dims_string(b.shape())),
    };
    // The output of a broadcast can be far larger than either input: allocate it fallibly.
    let mut buf = crate::tensor::try_vec::<std::mem::MaybeUninit<U>>(U::DTYPE, &shape)?;
    buf.resize(va.len(), std::mem::MaybeUninit::uninit());
    let mut out = ArrayD::from_shape_vec(d, buf).map_err(|e| Error::internal(e.to_string()))?;
    Zip::from(&mut out).and(&va).and(&vb).for_each(|o, &x, &y| {
        o.write(f(x, y));
    });
    // SAFETY: the zip above wrote every element of `out`.
    Ok(unsafe { out.assume_init() })
}

/// Applies `f` to every element, in parallel for large tensors, into a fallibly allocated
/// output.
pub(super) fn map<T, U, F>(a: &ArcArray<T, IxDyn>, f: F) -> Result<ArrayD<U>>
where
    T: Copy + Send + Sync,
    U: Copy + Send + Sync + OutputBuf,
    F: Fn(T) -> U + Sync,
{
    let out = match a.as_slice() {
        Some(s) => collect_into(a.shape(), s.len(), |out, _| fill(out, s, &f))?,
        None => {
            let (mut out, _) = U::with_capacity(a.shape())?;
            out.extend(a.iter().map(|&x| f(x)));
            out
        }
    };
    ArrayD::from_shape_vec(IxDyn(a.shape()), out).map_err(|e| Error::internal(e.to_string()))
}

pub(super) fn no_kernel(op: &str, dtype: DType) -> Error {
    Error::invalid_argument(format!(
        "Value for attr 'T' of {} is not in the list of allowed values for {op}",
        dtype.tf_enum()
    ))
}

pub(super) fn check_dtype(op: &str, dtype: DType, int_ok: bool) -> Result<()> {
    match dtype {
        DType::F32 | DType::F64 => Ok(()),
        DType::I32 if int_ok => Ok(()),
        other => Err(no_kernel(op, other)),
    }
}

/// `BiasAdd`'s run-time shape checks, in TF's order and words: a bias vector along the
/// last dimension (the broadcast of `BiasAdd` and of the fused chains that hold it).
pub(crate) fn check_bias_shapes(xs: &[usize], bs: &[usize]) -> Result<()> {
    if xs.len() < 2 {
        invalid!("Input tensor must be at least 2D: {}", dims_string(xs));
    }
    if bs.len() != 1 {
        invalid!("Biases must be 1D: {}", dims_string(bs));
    }
    if bs[0] != xs[xs.len() - 1] {
        invalid!(
            "Must provide as many biases as the last dimension of the input tensor: {} vs. {}",
            dims_string(bs),
            dims_string(xs)
        );
    }
    Ok(())
}
