//! `Softmax` along any axis, computed stably as `exp(x - max) / sum(exp(x - max))`: the op,
//! its CPU kernel and builder (its GPU lowering is in `gpu.rs`, its gradient in `grad.rs`).

use ndarray::{ArcArray, ArrayD, IxDyn, NdFloat};
use rayon::prelude::*;

use crate::error::{invalid, Error, Result};
use crate::graph::{Graph, Operand, Output};
use crate::ops::reduce::{check_dtype, no_kernel, shaped, PARALLEL_MIN};
use crate::ops::{compute, shape_err, Attr, GpuLowering, InferError, InferResult, Op};
use crate::tensor::{try_to_owned, try_zeros, DType, Tensor, TensorSpec, ZeroBits};

/// `Softmax` along `axis` (TF's op works on the last axis; -1 is the usual value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Softmax {
    /// The axis normalized over, negative counting from the end.
    pub(crate) axis: i64,
}

fn axis_error(axis: i64, rank: usize) -> Error {
    Error::invalid_argument(format!(
        "`dim` must be in the range [-{rank}, {rank}) where {rank} is the number of dimensions in the input. Received: dim={axis}"
    ))
}

impl Softmax {
    fn axis_for(&self, rank: usize) -> Result<usize> {
        let r = rank as i64;
        if self.axis < -r || self.axis >= r {
            return Err(axis_error(self.axis, rank));
        }
        Ok((if self.axis < 0 { self.axis + r } else { self.axis }) as usize)
    }
}

impl Op for Softmax {
    fn gradient(&self, ctx: &crate::gradients::GradContext) -> Result<Vec<Option<crate::graph::Output>>> {
        self.grad(ctx)
    }
    fn type_name(&self) -> &'static str {
        "Softmax"
    }
    fn attrs(&self) -> Vec<(&'static str, Attr)> {
        if self.axis == -1 {
            Vec::new()
        } else {
            vec![("axis", Attr::Int(self.axis))]
        }
    }
    fn infer(&self, inputs: &[TensorSpec]) -> InferResult {
        let x = &inputs[0];
        check_dtype("Softmax", x.dtype, false)?;
        if let Some(rank) = x.shape.rank() {
            if rank == 0 {
                shape_err!("Shape must be at least rank 1 but is rank 0");
            }
            self.axis_for(rank).map_err(InferError::Other)?;
        }
        Ok(vec![x.clone()])
    }
    fn compute(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let x = inputs[0];
        if x.shape().is_empty() {
            invalid!("logits must have >= 1 dimension, got []");
        }
        let axis = self.axis_for(x.shape().len())?;
        let out: Tensor = match x {
            Tensor::F32(a) => softmax(a, axis)?.into(),
            Tensor::F64(a) => softmax(a, axis)?.into(),
            other => return Err(no_kernel("Softmax", other.dtype())),
        };
        Ok(vec![out])
    }
    fn gpu(&self, inputs: &[(DType, &[usize])]) -> Option<Result<GpuLowering>> {
        let (dtype, dims) = inputs[0];
        if dtype != DType::F32 {
            return None;
        }
        if dims.is_empty() {
            return Some(Err(Error::invalid_argument("logits must have >= 1 dimension, got []")));
        }
        Some(self.axis_for(dims.len()).and_then(|axis| super::softmax_gpu::softmax(dims, axis)))
    }
    fn gpu_supports(&self, inputs: &[(DType, &[usize])]) -> bool {
        inputs[0].0 == DType::F32
    }
}

/// Softmax of one row: `exp(x - max) / sum(exp(x - max))`.
fn softmax_row<T: NdFloat>(x: &[T], y: &mut [T]) {
    let max = x.iter().fold(T::neg_infinity(), |m, &v| if v > m { v } else { m });
    let mut sum = T::zero();
    for (o, &v) in y.iter_mut().zip(x) {
        *o = (v - max).exp();
        sum += *o;
    }
    y.iter_mut().for_each(|o| *o /= sum);
}

fn softmax<T: NdFloat + ZeroBits>(x: &ArcArray<T, IxDyn>, axis: usize) -> Result<ArrayD<T>> {
    let shape = x.shape().to_vec();
    let n = shape[axis];
    if x.is_empty() {
        return Ok(x.to_owned());
    }
    // Move the axis last (a no-op when it already is), softmax rows, move it back.
    let mut perm: Vec<usize> = (0..shape.len()).filter(|&i| i != axis).collect();
    perm.push(axis);
    let moved = x.view().permuted_axes(IxDyn(&perm));
    // Moving the axis last copies the input (fallibly) unless it is last already.
    let owned;
    let data = match moved.as_slice() {
        Some(s) => s,
        None => {
            owned = try_to_owned(moved)?;
            owned.as_slice().ok_or_else(|| Error::internal("softmax: input not contiguous"))?
        }
    };
    let moved_shape: Vec<usize> = perm.iter().map(|&i| shape[i]).collect();
    let mut out = try_zeros::<T>(&moved_shape)?;
    if data.len() >= PARALLEL_MIN {
        out.par_chunks_mut(n).zip(data.par_chunks(n)).for_each(|(y, x)| softmax_row(x, y));
    } else {
        out.chunks_mut(n).zip(data.chunks(n)).for_each(|(y, x)| softmax_row(x, y));
    }
    let result = shaped(&moved_shape, out)?;
    if axis + 1 == shape.len() {
        return Ok(result);
    }
    let mut inverse = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inverse[p] = i;
    }
    try_to_owned(result.view().permuted_axes(IxDyn(&inverse)))
}

impl Graph {
    /// `tf.nn.softmax(x, axis)` (`Softmax`), computed stably as `exp(x - max) / sum`.
    ///
    /// Unlike TF, which wraps a `Softmax` on the last axis in two transposes for another
    /// axis, this is always one `Softmax` node that normalizes along `axis`.
    pub fn softmax(&self, x: impl Into<Operand>, axis: i64) -> Result<Output> {
        self.add_op1("Softmax", compute(Softmax { axis }), vec![("logits", x.into())])
    }
}
