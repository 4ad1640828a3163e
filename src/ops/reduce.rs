//! Reductions over any set of axes (`Sum`, `Mean`, `Max`); `Softmax` is in `softmax.rs`.
//!
//! The CPU kernels bring every reduction to the form `[outer, reduced, inner]` over contiguous
//! data (merging adjacent axes, and transposing once when the reduced axes are not adjacent),
//! then fold rows with several accumulators (vectorizable, and more accurate for long sums),
//! in parallel for large inputs.

use ndarray::{ArcArray, ArrayD, ArrayView, IxDyn};
use rayon::prelude::*;

use super::{compute, gpu_util, shape_err, Attr, GpuLowering, InferResult, Op};
use crate::error::{Error, Result};
use crate::graph::{Graph, Operand, Output};
use crate::tensor::{DType, Shape, Tensor, TensorSpec};

/// Which reduction a [`Reduce`] node computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ReduceKind {
    /// `Sum`.
    Sum,
    /// `Mean` (the sum divided by the number of reduced elements).
    Mean,
    /// `Max` (NaN propagates).
    Max,
}

impl ReduceKind {
    /// TF's op type, also the default node name.
    pub(crate) fn tf_name(self) -> &'static str {
        match self {
            ReduceKind::Sum => "Sum",
            ReduceKind::Mean => "Mean",
            ReduceKind::Max => "Max",
        }
    }
}

/// A reduction over `axes` (`None`: every axis; empty: none, the identity).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reduce {
    /// What to compute.
    pub(crate) kind: ReduceKind,
    /// The axes to reduce, negative counting from the end; `None` for all.
    pub(crate) axes: Option<Vec<i64>>,
    /// Keep reduced axes as size 1.
    pub(crate) keep_dims: bool,
}

/// What is wrong with a reduction's axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AxisError {
    /// An axis outside `[-rank, rank)`.
    OutOfRange(i64),
    /// An axis given twice (after wrapping negative axes).
    Duplicate(usize),
}

impl AxisError {
    /// TF's error: shape inference's message at build time (`build`), the kernel's at run time.
    pub(crate) fn message(self, rank: usize, build: bool) -> String {
        match self {
            AxisError::OutOfRange(a) if build => {
                format!("Invalid reduction dimension {a} for input with {rank} dimensions.")
            }
            AxisError::OutOfRange(a) => format!("Invalid reduction dimension ({a} for input with {rank} dimension(s)"),
            AxisError::Duplicate(a) => format!("Invalid reduction arguments: Axes contains duplicate dimension: {a}"),
        }
    }

    /// The run-time error.
    pub(crate) fn error(self, rank: usize) -> Error {
        Error::invalid_argument(self.message(rank, false))
    }
}

impl Reduce {
    /// Which axes of a rank-`rank` input are reduced; `Err` holds the first bad axis, in
    /// the order of TF's kernel (each axis checked in turn).
    pub(crate) fn mask(&self, rank: usize) -> std::result::Result<Vec<bool>, AxisError> {
        let Some(axes) = &self.axes else {
            return Ok(vec![true; rank]);
        };
        let mut mask = vec![false; rank];
        let r = rank as i64;
        for &a in axes {
            if a < -r || a >= r {
                return Err(AxisError::OutOfRange(a));
            }
            let i = (if a < 0 { a + r } else { a }) as usize;
            if mask[i] {
                return Err(AxisError::Duplicate(i));
            }
            mask[i] = true;
        }
        Ok(mask)
    }

    /// The output dimensions: kept ones as they are, reduced ones dropped or set to `one`.
    fn out_dims<D: Copy>(&self, dims: &[D], mask: &[bool], one: D) -> Vec<D> {
        let keep = self.keep_dims;
        dims.iter().zip(mask).filter(|(_, &m)| keep || !m).map(|(&d, &m)| if m { one } else { d }).collect()
    }
}

/// The error for a dtype an op has no kernel for.
pub(super) fn no_kernel(op: &str, dtype: DType) -> Error {
    Error::invalid_argument(format!(
        "Value for attr 'T' of {} is not in the list of allowed values for {op}",
        dtype.tf_name()
    ))
}

/// The dtypes reductions and softmax accept.
pub(super) fn check_dtype(op: &str, dtype: DType, int_ok: bool) -> Result<()> {
    match dtype {
        DType::F32 | DType::F64 => Ok(()),
        DType::I32 if int_ok => Ok(()),
        other => Err(no_kernel(op, other)),
    }
}

impl Op for Reduce {
    fn gradient(&self, ctx: &crate::gradients::GradContext) -> Result<Vec<Option<crate::graph::Output>>> {
        self.grad(ctx)
    }
    fn type_name(&self) -> &'static str {
        self.kind.tf_name()
    }
    fn attrs(&self) -> Vec<(&'static str, Attr)> {
        vec![("keep_dims", Attr::Bool(self.keep_dims)), ("Tidx", Attr::Type(DType::I32))]
    }
    fn infer(&self, inputs: &[TensorSpec]) -> InferResult {
        let x = &inputs[0];
        check_dtype(self.kind.tf_name(), x.dtype, true)?;
        let shape = match x.shape.dims() {
            None if self.axes.as_ref().is_some_and(Vec::is_empty) => x.shape.clone(),
            None if self.axes.is_none() && !self.keep_dims => Shape::known(&[]),
            None => Shape::unknown(),
            Some(dims) => {
                let mask = match self.mask(dims.len()) {
                    Ok(m) => m,
                    Err(e) => shape_err!("{}", e.message(dims.len(), true)),
                };
                Shape::partial(&self.out_dims(dims, &mask, Some(1)))
            }
        };
        Ok(vec![TensorSpec::new(x.dtype, shape)])
    }
    fn compute(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let x = inputs[0];
        let dims = x.shape();
        let mask = self.mask(dims.len()).map_err(|e| e.error(dims.len()))?;
        let count: usize = dims.iter().zip(&mask).filter(|(_, &m)| m).map(|(&d, _)| d).product();
        let out_shape = self.out_dims(dims, &mask, 1);
        let out: Tensor = match x {
            Tensor::F32(a) => shaped(&out_shape, run(self.kind, a, &mask, count, &out_shape)?)?.into(),
            Tensor::F64(a) => shaped(&out_shape, run(self.kind, a, &mask, count, &out_shape)?)?.into(),
            Tensor::I32(a) => shaped(&out_shape, run(self.kind, a, &mask, count, &out_shape)?)?.into(),
            other => return Err(no_kernel(self.kind.tf_name(), other.dtype())),
        };
        Ok(vec![out])
    }
    fn gpu(&self, inputs: &[(DType, &[usize])]) -> Option<Result<GpuLowering>> {
        let (dtype, dims) = inputs[0];
        match self.mask(dims.len()) {
            Ok(mask) => gpu_util::reduce(self.kind, dtype, dims, &mask, self.out_dims(dims, &mask, 1)),
            Err(e) => Some(Err(e.error(dims.len()))),
        }
    }
}

pub(super) fn shaped<T>(shape: &[usize], data: Vec<T>) -> Result<ArrayD<T>> {
    ArrayD::from_shape_vec(IxDyn(shape), data).map_err(|e| Error::internal(e.to_string()))
}

/// An element type the reductions support.
trait Elem: Copy + Send + Sync + 'static + crate::tensor::HostElem {
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
trait Reducer<T: Elem>: Send + Sync {
    const INIT: T;
    fn combine(a: T, b: T) -> T;
}
struct SumR;
struct MaxR;
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
pub(super) const PARALLEL_MIN: usize = 1 << 16;
/// Rows longer than this are folded block by block (pairwise-style, for accuracy).
const BLOCK: usize = 4096;

fn fold_block<T: Elem, R: Reducer<T>>(s: &[T]) -> T {
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

fn fold<T: Elem, R: Reducer<T>>(s: &[T]) -> T {
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
fn reduce_3d<T: Elem, R: Reducer<T>>(
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
fn reduce_array<T: Elem, R: Reducer<T>>(x: &ArcArray<T, IxDyn>, mask: &[bool], out_shape: &[usize]) -> Result<Vec<T>> {
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

fn run<T: Elem>(
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

impl Graph {
    fn reduce(&self, kind: ReduceKind, x: impl Into<Operand>, axes: Option<&[i64]>, keepdims: bool) -> Result<Output> {
        let op = Reduce { kind, axes: axes.map(<[i64]>::to_vec), keep_dims: keepdims };
        self.add_op1(kind.tf_name(), compute(op), vec![("input", x.into())])
    }

    /// `tf.reduce_sum(x, axis, keepdims)` (`Sum`): `None` sums every axis, `Some(&[])` is
    /// the identity; negative axes count from the end. An axis out of range or given twice
    /// is an `InvalidArgument` error (here when the rank is static, else at run time).
    /// float32, float64 and int32.
    pub fn reduce_sum(&self, x: impl Into<Operand>, axes: Option<&[i64]>, keepdims: bool) -> Result<Output> {
        self.reduce(ReduceKind::Sum, x, axes, keepdims)
    }

    /// `tf.reduce_mean(x, axis, keepdims)` (`Mean`), with the axes of [`Graph::reduce_sum`].
    /// The mean of no elements is NaN (0 for int32, which divides with truncation).
    pub fn reduce_mean(&self, x: impl Into<Operand>, axes: Option<&[i64]>, keepdims: bool) -> Result<Output> {
        self.reduce(ReduceKind::Mean, x, axes, keepdims)
    }

    /// `tf.reduce_max(x, axis, keepdims)` (`Max`), with the axes of [`Graph::reduce_sum`].
    /// A NaN in a reduced slice makes its result NaN; the max of no elements is `-inf`.
    pub fn reduce_max(&self, x: impl Into<Operand>, axes: Option<&[i64]>, keepdims: bool) -> Result<Output> {
        self.reduce(ReduceKind::Max, x, axes, keepdims)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Code, ConfigProto, Graph, Session, Tensor};

    #[test]
    fn bad_axis_fails_at_build_time() {
        let g = Graph::new();
        let x = g.ones(&[2, 3]).unwrap();
        let err = g.reduce_sum(&x, Some(&[2]), false).unwrap_err();
        assert_eq!(err.code, Code::InvalidArgument);
        assert!(
            err.message.starts_with("Invalid reduction dimension 2 for input with 2 dimensions."),
            "{}",
            err.message
        );
        assert!(g.softmax(&x, -3).is_err());
    }

    #[test]
    fn separate_axes_and_nan() {
        let g = Graph::new();
        let data: Vec<f32> = (0..24).map(|i| i as f32).collect();
        let x = g.constant(Tensor::from_f32(&[2, 3, 4], data).unwrap()).unwrap();
        let s = g.reduce_sum(&x, Some(&[0, -1]), true).unwrap();
        let m =
            g.reduce_max(Tensor::from_f32(&[2, 2], vec![1.0, f32::NAN, 3.0, 2.0]).unwrap(), Some(&[1]), false).unwrap();
        let mut sess = Session::new(&g, ConfigProto::cpu_only()).unwrap();
        let got = sess.eval(&s).unwrap();
        assert_eq!(got.shape(), &[1, 3, 1]);
        assert_eq!(got.to_f32_vec().unwrap(), vec![60.0, 92.0, 124.0]);
        let got = sess.eval(&m).unwrap().to_f32_vec().unwrap();
        assert!(got[0].is_nan() && got[1] == 3.0);
    }
}
