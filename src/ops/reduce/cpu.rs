//! CPU kernels of the reductions: blocked folds (summed pairwise for accuracy), over a
//! contiguous 3-D view of the input, parallel for large tensors.

use ndarray::{ArcArray, ArrayD, ArrayView, IxDyn};
use rayon::prelude::*;

use super::ReduceKind;
use crate::error::{Error, Result};
use crate::tensor::DType;

/// The error for a dtype an op has no kernel for.
pub(crate) fn no_kernel(op: &str, dtype: DType) -> Error {
    Error::invalid_argument(format!(
        "Value for attr 'T' of {} is not in the list of allowed values for {op}",
        dtype.tf_name()
    ))
}

/// The dtypes reductions and softmax accept.
pub(crate) fn check_dtype(op: &str, dtype: DType, int_ok: bool) -> Result<()> {
    match dtype {
        DType::F32 | DType::F64 => Ok(()),
        DType::I32 if int_ok => Ok(()),
        other => Err(no_kernel(op, other)),
    }
}

pub(crate) fn shaped<T>(shape: &[usize], data: Vec<T>) -> Result<ArrayD<T>> {
    ArrayD::from_shape_vec(IxDyn(shape), data).map_err(|e| Error::internal(e.to_string()))
}

/// An element type the reductions support.
pub(super) trait Elem: Copy + Send + Sync + 'static + crate::tensor::HostElem {
    const ZERO: Self;
    const LOWEST: Self;
    fn add(self, o: Self) -> Self;
    fn max_nan(self, o: Self) -> Self;
    fn mean(self, n: usize) -> Self;
}

macro_rules! float_elem {
    ($t:ty) => {
        impl Elem for $t {
            const ZERO: Self = 0.0;
            const LOWEST: Self = <$t>::NEG_INFINITY;
            fn add(self, o: Self) -> Self {
                self + o
            }
            fn max_nan(self, o: Self) -> Self {
                if self.is_nan() || o.is_nan() {
                    <$t>::NAN
                } else if o > self {
                    o
                } else {
                    self
                }
            }
            fn mean(self, n: usize) -> Self {
                self / n as $t
            }
        }
    };
}
float_elem!(f32);
float_elem!(f64);

impl Elem for i32 {
    const ZERO: Self = 0;
    const LOWEST: Self = i32::MIN;
    fn add(self, o: Self) -> Self {
        self.wrapping_add(o)
    }
    fn max_nan(self, o: Self) -> Self {
        self.max(o)
    }
    fn mean(self, n: usize) -> Self {
        if n == 0 {
            0
        } else {
            (i64::from(self) / n as i64) as i32
        }
    }
}

/// An associative, commutative combination with its identity.
pub(super) trait Reducer<T: Elem>: Send + Sync {
    const INIT: T;
    fn combine(a: T, b: T) -> T;
}
pub(super) struct SumR;
pub(super) struct MaxR;
impl<T: Elem> Reducer<T> for SumR {
    const INIT: T = T::ZERO;
    fn combine(a: T, b: T) -> T {
        a.add(b)
    }
}
impl<T: Elem> Reducer<T> for MaxR {
    const INIT: T = T::LOWEST;
    fn combine(a: T, b: T) -> T {
        a.max_nan(b)
    }
}

/// Elements above which reductions split the work across threads.
pub(crate) const PARALLEL_MIN: usize = 1 << 16;
/// Rows longer than this are folded block by block (pairwise-style, for accuracy).
pub(super) const BLOCK: usize = 4096;

pub(super) fn fold_block<T: Elem, R: Reducer<T>>(s: &[T]) -> T {
    let mut lanes = [R::INIT; 8];
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l = R::combine(*l, v);
        }
    }
    let tail = chunks.remainder().iter().fold(R::INIT, |a, &v| R::combine(a, v));
    lanes.into_iter().fold(tail, R::combine)
}

pub(super) fn fold<T: Elem, R: Reducer<T>>(s: &[T]) -> T {
    if s.len() >= PARALLEL_MIN {
        s.par_chunks(BLOCK).map(fold_block::<T, R>).reduce(|| R::INIT, R::combine)
    } else if s.len() > BLOCK {
        s.chunks(BLOCK).map(fold_block::<T, R>).fold(R::INIT, R::combine)
    } else {
        fold_block::<T, R>(s)
    }
}

/// Reduces contiguous `[outer, r, inner]` data over the middle axis into an output of
/// `out_shape` (`outer * inner` elements), allocated fallibly.
pub(super) fn reduce_3d<T: Elem, R: Reducer<T>>(
    data: &[T],
    (outer, r, inner): (usize, usize, usize),
    out_shape: &[usize],
) -> Result<Vec<T>> {
    let mut out = crate::tensor::try_full(out_shape, R::INIT)?;
    if out.len() != outer * inner {
        return Err(Error::internal("reduction: output size mismatch"));
    }
    if data.is_empty() || out.is_empty() {
        return Ok(out);
    }
    let par = data.len() >= PARALLEL_MIN && outer > 1;
    if inner == 1 {
        let row = |(o, x): (&mut T, &[T])| *o = fold::<T, R>(x);
        if par {
            out.par_iter_mut().zip(data.par_chunks(r)).for_each(row);
        } else {
            out.iter_mut().zip(data.chunks(r)).for_each(row);
        }
    } else {
        let block = |(o, x): (&mut [T], &[T])| {
            for row in x.chunks_exact(inner) {
                for (a, &v) in o.iter_mut().zip(row) {
                    *a = R::combine(*a, v);
                }
            }
        };
        if par {
            out.par_chunks_mut(inner).zip(data.par_chunks(r * inner)).for_each(block);
        } else {
            out.chunks_mut(inner).zip(data.chunks(r * inner)).for_each(block);
        }
    }
    Ok(out)
}

/// Reduces `x` over the axes in `mask`; the result is in row-major order of the kept axes.
pub(super) fn reduce_array<T: Elem, R: Reducer<T>>(
    x: &ArcArray<T, IxDyn>,
    mask: &[bool],
    out_shape: &[usize],
) -> Result<Vec<T>> {
    // Merge adjacent axes of the same kind; size-1 axes do not matter.
    let mut groups: Vec<(usize, bool)> = Vec::new();
    for (&d, &m) in x.shape().iter().zip(mask) {
        match groups.last_mut() {
            _ if d == 1 => {}
            Some((size, kind)) if *kind == m => *size *= d,
            _ => groups.push((d, m)),
        }
    }
    let data = x.as_standard_layout();
    let Some(slice) = data.as_slice() else {
        return Ok(Vec::new());
    };
    let reduced_groups = groups.iter().filter(|g| g.1).count();
    if reduced_groups <= 1 {
        let pos = groups.iter().position(|g| g.1).unwrap_or(groups.len());
        let outer: usize = groups[..pos].iter().map(|g| g.0).product();
        let r = groups.get(pos).map_or(1, |g| g.0);
        let inner: usize = groups.iter().skip(pos + 1).map(|g| g.0).product();
        return reduce_3d::<T, R>(slice, (outer, r, inner), out_shape);
    }
    // Several separate reduced blocks: move the reduced axes last, then reduce rows.
    let sizes: Vec<usize> = groups.iter().map(|g| g.0).collect();
    let perm: Vec<usize> =
        (0..groups.len()).filter(|&i| !groups[i].1).chain((0..groups.len()).filter(|&i| groups[i].1)).collect();
    let Ok(view) = ArrayView::from_shape(IxDyn(&sizes), slice) else {
        return Ok(Vec::new());
    };
    // A scratch copy the size of the input, with the reduced axes last: allocated fallibly.
    let moved = crate::tensor::try_to_owned(view.permuted_axes(IxDyn(&perm)))?;
    let Some(moved) = moved.as_slice() else {
        return Ok(Vec::new());
    };
    let r: usize = groups.iter().filter(|g| g.1).map(|g| g.0).product();
    let outer = moved.len().checked_div(r).unwrap_or(0);
    reduce_3d::<T, R>(moved, (outer, r, 1), out_shape)
}

pub(super) fn run<T: Elem>(
    kind: ReduceKind,
    x: &ArcArray<T, IxDyn>,
    mask: &[bool],
    count: usize,
    out_shape: &[usize],
) -> Result<Vec<T>> {
    let out_len: usize = x.shape().iter().zip(mask).filter(|(_, &m)| !m).map(|(&d, _)| d).product();
    let mut v = match kind {
        ReduceKind::Max => reduce_array::<T, MaxR>(x, mask, out_shape)?,
        ReduceKind::Sum | ReduceKind::Mean => reduce_array::<T, SumR>(x, mask, out_shape)?,
    };
    // An empty input reduces to the identity everywhere.
    if v.len() != out_len {
        let init = if kind == ReduceKind::Max { T::LOWEST } else { T::ZERO };
        v = crate::tensor::try_full(out_shape, init)?;
    }
    if kind == ReduceKind::Mean {
        v.iter_mut().for_each(|s| *s = s.mean(count));
    }
    Ok(v)
}
