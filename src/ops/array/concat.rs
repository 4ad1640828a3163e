//! `ConcatV2`: values joined along one axis, for every dtype.

use super::cpu::concat_arrays;
use super::gpu;
use crate::error::{invalid, Error, Result};
use crate::gradients::GradContext;
use crate::graph::Output;
use crate::ops::{shape_err, Attr, GpuLowering, InferError, InferResult, Op};
use crate::tensor::{dims_string, DType, Shape, Tensor, TensorSpec};

/// `ConcatV2` of `n` values along `axis` (negative counts from the end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Concat {
    /// The axis to join along.
    pub(crate) axis: i64,
    /// The number of values (TF's `N` attribute).
    pub(crate) n: usize,
}

impl Concat {
    /// The run-time checks of the kernel: equal ranks, dimensions and dtypes; the axis.
    fn check(&self, inputs: &[(DType, &[usize])]) -> Result<usize> {
        let (d0, s0) = *inputs.first().ok_or_else(|| Error::invalid_argument("ConcatV2 needs at least one value"))?;
        if s0.is_empty() {
            invalid!("ConcatOp : Can't concatenate scalars (use tf.stack instead)");
        }
        let axis = concat_axis(self.axis, s0.len())?;
        for (i, &(d, s)) in inputs.iter().enumerate().skip(1) {
            if s.len() != s0.len() {
                invalid!(
                    "ConcatOp : Ranks of all input tensors should match: shape[0] = {} vs. shape[{i}] = {}",
                    dims_string(s0),
                    dims_string(s)
                );
            }
            if let Some(j) = (0..s.len()).find(|&j| j != axis && s[j] != s0[j]) {
                invalid!(
                    "ConcatOp : Dimension {j} in both shapes must be equal: shape[0] = {} vs. shape[{i}] = {}",
                    dims_string(s0),
                    dims_string(s)
                );
            }
            if d != d0 {
                invalid!("ConcatOp : expected all inputs to be {d0}, got {d} at {i}");
            }
        }
        Ok(axis)
    }
}

fn concat_axis(axis: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    if axis < -r || axis >= r {
        invalid!("ConcatOp : Expected concatenating dimensions in the range [{}, {r}), but got {axis}", -r);
    }
    Ok((if axis < 0 { axis + r } else { axis }) as usize)
}

impl Op for Concat {
    fn type_name(&self) -> &'static str {
        "ConcatV2"
    }
    fn attrs(&self) -> Vec<(&'static str, Attr)> {
        vec![("N", Attr::Int(self.n as i64)), ("Tidx", Attr::Type(DType::I32))]
    }
    fn const_inputs(&self, _inputs: &[TensorSpec]) -> Result<Vec<(usize, &'static str, Tensor)>> {
        Ok(vec![(self.n, "axis", Tensor::from(i32::try_from(self.axis).unwrap_or(i32::MAX)))])
    }
    fn infer(&self, inputs: &[TensorSpec]) -> InferResult {
        let dtype = inputs[0].dtype;
        if inputs.iter().any(|s| s.dtype != dtype) {
            let types: Vec<&str> = inputs.iter().map(|s| s.dtype.numpy_name()).collect();
            return Err(Error::invalid_argument(format!(
                "Tensors in list passed to 'values' of 'ConcatV2' Op have types [{}] that don't all match.",
                types.join(", ")
            ))
            .into());
        }
        let min_rank = if self.axis < 0 { (-self.axis) as usize } else { self.axis as usize + 1 };
        let mut out: Option<Vec<Option<usize>>> = None;
        let mut first: Option<&Shape> = None;
        for s in inputs {
            let Some(dims) = s.shape.dims() else { continue };
            if dims.len() < min_rank {
                shape_err!("Shape must be at least rank {min_rank} but is rank {}", dims.len());
            }
            let Some(acc) = out.as_mut() else {
                out = Some(dims.to_vec());
                first = Some(&s.shape);
                continue;
            };
            if acc.len() != dims.len() {
                shape_err!("Shape must be rank {} but is rank {}", acc.len(), dims.len());
            }
            let axis = concat_axis(self.axis, dims.len()).map_err(InferError::Other)?;
            for (j, (a, &d)) in acc.iter_mut().zip(dims).enumerate() {
                if j == axis {
                    continue;
                }
                match (*a, d) {
                    (Some(x), Some(y)) if x != y => shape_err!(
                        "Dimension {j} in both shapes must be equal, but are {x} and {y}. Shapes are {} and {}",
                        first.map_or_else(|| "?".to_string(), Shape::tf_string),
                        s.shape
                    ),
                    (None, y) => *a = y,
                    _ => {}
                }
            }
        }
        let Some(mut dims) = out else {
            return Ok(vec![TensorSpec::new(dtype, Shape::unknown())]);
        };
        let axis = concat_axis(self.axis, dims.len()).map_err(InferError::Other)?;
        let all_known = inputs.iter().all(|s| s.shape.rank().is_some());
        dims[axis] = if all_known {
            inputs.iter().map(|s| s.shape.dims().and_then(|d| d[axis])).sum::<Option<usize>>()
        } else {
            None
        };
        Ok(vec![TensorSpec::new(dtype, Shape::partial(&dims))])
    }
    fn gpu(&self, inputs: &[(DType, &[usize])]) -> Option<Result<GpuLowering>> {
        let axis = match self.check(inputs) {
            Ok(a) => a,
            Err(e) => return Some(Err(e)),
        };
        let shapes: Vec<&[usize]> = inputs.iter().map(|s| s.1).collect();
        gpu::concat(inputs[0].0, &shapes, axis)
    }
    fn gpu_supports(&self, inputs: &[(DType, &[usize])]) -> bool {
        self.check(inputs).is_err() || gpu::concat_supported(inputs.len())
    }
    fn compute(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let first = inputs.first().ok_or_else(|| Error::invalid_argument("ConcatV2 needs at least one value"))?;
        let specs: Vec<(DType, &[usize])> = inputs.iter().map(|t| (t.dtype(), t.shape())).collect();
        let axis = self.check(&specs)?;
        let out = match first {
            Tensor::F32(_) => concat_arrays(inputs, axis, Tensor::as_f32)?.into(),
            Tensor::I32(_) => concat_arrays(inputs, axis, Tensor::as_i32)?.into(),
            Tensor::F64(_) => concat_arrays(inputs, axis, Tensor::as_f64)?.into(),
            Tensor::Bool(_) => concat_arrays(inputs, axis, Tensor::as_bool)?.into(),
            Tensor::Str(_) => concat_arrays(inputs, axis, Tensor::as_str)?.into(),
        };
        Ok(vec![out])
    }
    /// TF's `_ConcatGradHelper`: each value gets the slice of `dy` at its offset along the
    /// axis (static shapes needed: `Unimplemented` otherwise).
    fn gradient(&self, ctx: &GradContext) -> Result<Vec<Option<Output>>> {
        let dy = ctx.dy()?;
        let mut offset = 0i64;
        let mut grads = Vec::with_capacity(ctx.inputs.len());
        for (k, x) in ctx.inputs.iter().enumerate() {
            let dims: Vec<i64> = x
                .shape()
                .to_vec()
                .ok_or_else(|| Error::unimplemented("the gradient of ConcatV2 needs the values' static shapes"))?
                .iter()
                .map(|&d| d as i64)
                .collect();
            let axis = concat_axis(self.axis, dims.len())?;
            let mut begin = vec![0; dims.len()];
            begin[axis] = offset;
            offset += dims[axis];
            grads.push(match ctx.needed.get(k) {
                Some(true) => Some(ctx.graph.slice(&dy, &begin, &dims)?),
                _ => None,
            });
        }
        Ok(grads)
    }
}
