//! Reductions (`Sum`, `Mean`, `Max`) over some or all axes, with TF's axis checks, and `ArgMax`
//! (`argmax.rs`): their shape rule and builders. `cpu.rs` holds the blocked (parallel) CPU folds, `gpu.rs` the
//! WGSL lowering (one kernel, or tree passes from `gpu_passes`), `grad.rs` the gradients.

mod argmax;
pub(crate) mod combine;
mod cpu;
mod gpu;
mod grad;
pub(crate) mod passes;

use cpu::run;
pub(crate) use cpu::{check_dtype, no_kernel, shaped, PARALLEL_MIN};
pub(crate) use gpu::{instantiations, reduce as lower_reduce};

use super::{compute, shape_err, Attr, GpuLowering, InferResult, Op};
use crate::error::{Error, Result};
use crate::graph::{Graph, Operand, Output};
use crate::tensor::{DType, Shape, Tensor, TensorSpec};

/// The TF op types of this family (see `ops::registry`).
pub(crate) fn types() -> Vec<&'static str> {
    vec!["Sum", "Mean", "Max", "ArgMax"]
}

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
    fn const_inputs(&self, inputs: &[TensorSpec]) -> Result<Vec<(usize, &'static str, Tensor)>> {
        let axes = match &self.axes {
            Some(a) => a.clone(),
            None => (0..super::export_rank(self.kind.tf_name(), inputs.first())? as i64).collect(),
        };
        Ok(vec![(1, "reduction_indices", super::i32_vector(axes)?)])
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
            Ok(mask) => gpu::reduce(self.kind, dtype, dims, &mask, self.out_dims(dims, &mask, 1)),
            Err(e) => Some(Err(e.error(dims.len()))),
        }
    }
    fn gpu_supports(&self, inputs: &[(DType, &[usize])]) -> bool {
        let (dtype, dims) = inputs[0];
        self.mask(dims.len()).map_or(true, |mask| gpu::reduce_supported(self.kind, dtype, dims, &mask))
    }
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
        let sess = Session::new(&g, ConfigProto::cpu_only()).unwrap();
        let got = sess.eval(&s).unwrap();
        assert_eq!(got.shape(), &[1, 3, 1]);
        assert_eq!(got.to_f32_vec().unwrap(), vec![60.0, 92.0, 124.0]);
        let got = sess.eval(&m).unwrap().to_f32_vec().unwrap();
        assert!(got[0].is_nan() && got[1] == 3.0);
    }
}
