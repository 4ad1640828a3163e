//! `GatherV2` with `batch_dims` 0 (`tf.gather(params, indices, axis)`): slices of `params`
//! along `axis` picked by int32 `indices`, a run-time input. TF takes the axis as an int
//! tensor; wgflow holds it as the op's attribute, normalised against the params' static rank
//! when the graph is built. An index out of range is TF's `InvalidArgument` on both devices:
//! the CPU names it as TF's CPU kernel does, the GPU kernel (shaders/gather.wgsl) raises the
//! error flag. The gradient is an `UnsortedSegmentSum` (`segment_sum.rs`).

use ndarray::{ArcArray, ArrayD, IxDyn};

use super::segment_sum::gather_grad;
use crate::error::{invalid, Error, Result};
use crate::gradients::GradContext;
use crate::graph::{Graph, Operand, Output};
use crate::ops::kernel::{kernel, with_prelude, word};
use crate::ops::{cached_wgsl, compute, shape_err, wgsl, Attr, GpuLowering, InferError, InferResult, Op};
use crate::runtime::gpu::flags::error_flag_wgsl;
use crate::tensor::{check_host_alloc, try_capacity, DType, HostElem, Shape, Tensor, TensorSpec};

/// `GatherV2` along `axis` (non-negative: normalised by [`Graph::gather`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Gather {
    pub(crate) axis: usize,
}

/// How a gather walks its params: `[outer, axis_dim, inner]`, and the output's dimensions.
pub(super) struct Plan {
    pub(super) outer: usize,
    pub(super) axis_dim: usize,
    pub(super) inner: usize,
    pub(super) out: Vec<usize>,
}

impl Gather {
    /// The walk for params of `params` dims and indices of `indices` dims (checked: the axis
    /// and the output's size).
    fn plan(&self, params: &[usize], indices: &[usize]) -> Result<Plan> {
        let (a, r) = (self.axis, params.len());
        if a >= r {
            invalid!("Expected axis in the range [-{r}, {r}), but got {a}");
        }
        let mut out = params[..a].to_vec();
        out.extend_from_slice(indices);
        out.extend_from_slice(&params[a + 1..]);
        if out.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).is_none() {
            invalid!("GatherV2: the output shape overflows");
        }
        Ok(Plan {
            outer: params[..a].iter().product(),
            axis_dim: params[a],
            inner: params[a + 1..].iter().product(),
            out,
        })
    }
}

/// TF's `SliceDebugString`: the coordinates of flat element `flat` of a tensor of `dims`,
/// as `[i,j]` (empty for a scalar).
pub(super) fn slice_debug(dims: &[usize], flat: usize) -> String {
    if dims.is_empty() {
        return String::new();
    }
    let mut coords = vec![0; dims.len()];
    let mut rem = flat;
    for (c, &d) in coords.iter_mut().zip(dims).rev() {
        *c = rem % d.max(1);
        rem /= d.max(1);
    }
    let coords: Vec<String> = coords.iter().map(usize::to_string).collect();
    format!("[{}]", coords.join(","))
}

/// The int32 indices of an index input, each checked against `[0, bound)`: `what` is the
/// input's name and `range` TF's words for the range in its message.
pub(super) fn checked_indices(t: &Tensor, bound: usize, what: &str, range: &str) -> Result<Vec<usize>> {
    let a = t.as_i32().map_err(|_| Error::invalid_argument(format!("{what} must be int32, not {}", t.dtype())))?;
    a.iter()
        .enumerate()
        .map(|(flat, &v)| match usize::try_from(v) {
            Ok(u) if u < bound => Ok(u),
            _ => invalid!("{what}{} = {v} is {range} [0, {bound})", slice_debug(t.shape(), flat)),
        })
        .collect()
}

/// The gather kernel (any 4-byte element type), prelude and error flag included.
pub(crate) fn gather_wgsl() -> String {
    format!("{}\n{}", with_prelude(wgsl::GATHER), error_flag_wgsl(3))
}

impl Op for Gather {
    fn type_name(&self) -> &'static str {
        "GatherV2"
    }
    fn attrs(&self) -> Vec<(&'static str, Attr)> {
        vec![("Taxis", Attr::Type(DType::I32)), ("Tindices", Attr::Type(DType::I32)), ("batch_dims", Attr::Int(0))]
    }
    fn const_inputs(&self, _inputs: &[TensorSpec]) -> Result<Vec<(usize, &'static str, Tensor)>> {
        let axis = i32::try_from(self.axis).map_err(|_| Error::invalid_argument("GatherV2: an axis over int32"))?;
        Ok(vec![(2, "axis", Tensor::from(axis))])
    }
    fn infer(&self, inputs: &[TensorSpec]) -> InferResult {
        let (params, indices) = (&inputs[0], &inputs[1]);
        if indices.dtype != DType::I32 {
            let msg = format!("GatherV2: indices must be int32 in wgflow, not {}", indices.dtype);
            return Err(InferError::Other(Error::invalid_argument(msg)));
        }
        let shape = match (params.shape.dims(), indices.shape.dims()) {
            (Some(p), _) if p.len() <= self.axis => {
                shape_err!("Shape must be at least rank {} but is rank {}", self.axis + 1, p.len())
            }
            (Some(p), Some(i)) => {
                let mut out = p[..self.axis].to_vec();
                out.extend_from_slice(i);
                out.extend_from_slice(&p[self.axis + 1..]);
                Shape::partial(&out)
            }
            _ => Shape::unknown(),
        };
        Ok(vec![TensorSpec::new(params.dtype, shape)])
    }
    fn compute(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let (params, indices) = (inputs[0], inputs[1]);
        let plan = self.plan(params.shape(), indices.shape())?;
        let idx = checked_indices(indices, plan.axis_dim, "indices", "not in")?;
        check_host_alloc::<f64>(params.dtype(), &plan.out)?;
        let t = match params {
            Tensor::F32(a) => Tensor::from(gather_array(a, &idx, &plan)?),
            Tensor::I32(a) => Tensor::from(gather_array(a, &idx, &plan)?),
            Tensor::F64(a) => Tensor::from(gather_array(a, &idx, &plan)?),
            Tensor::Bool(a) => Tensor::from(gather_array(a, &idx, &plan)?),
            Tensor::Str(a) => Tensor::from(gather_array(a, &idx, &plan)?),
        };
        Ok(vec![t])
    }
    fn gpu(&self, inputs: &[(DType, &[usize])]) -> Option<Result<GpuLowering>> {
        if !self.gpu_supports(inputs) {
            return None;
        }
        let [(dtype, params), (_, indices)] = inputs else { return None };
        Some((|| {
            let plan = self.plan(params, indices)?;
            let count: usize = plan.out.iter().product();
            word(count)?;
            word(params.iter().product())?;
            let wgsl = cached_wgsl("gather".into(), || Ok(gather_wgsl()))?;
            let n: usize = indices.iter().product();
            let uniforms = vec![word(plan.inner)?, word(n)?, word(plan.axis_dim)?];
            Ok(kernel(wgsl, uniforms, count, *dtype, plan.out))
        })())
    }
    fn gpu_supports(&self, inputs: &[(DType, &[usize])]) -> bool {
        matches!(inputs, [(DType::F32 | DType::I32, _), (DType::I32, _)])
    }
    fn gradient(&self, ctx: &GradContext) -> Result<Vec<Option<Output>>> {
        Ok(vec![Some(gather_grad(ctx, self.axis)?), None])
    }
}

/// The rows of `a` (seen as `[outer, axis_dim, inner]`) at `idx` (checked), for each outer
/// index in turn.
fn gather_array<T: Clone + HostElem>(a: &ArcArray<T, IxDyn>, idx: &[usize], plan: &Plan) -> Result<ArrayD<T>> {
    let a = a.as_standard_layout();
    let src = a.as_slice().ok_or_else(|| Error::internal("gather: params not contiguous"))?;
    let mut v = try_capacity::<T>(&plan.out)?;
    for o in 0..plan.outer {
        for &j in idx {
            let start = (o * plan.axis_dim + j) * plan.inner;
            v.extend_from_slice(&src[start..start + plan.inner]);
        }
    }
    ArrayD::from_shape_vec(IxDyn(&plan.out), v).map_err(|e| Error::internal(format!("gather: {e}")))
}

impl Graph {
    /// `tf.gather(params, indices, axis)` (`GatherV2`, `batch_dims` 0): the slices of `params`
    /// along `axis` at the int32 `indices`, giving `params.shape[:axis] + indices.shape +
    /// params.shape[axis + 1:]`. A negative axis counts from the end of the params' static
    /// rank. An index outside `[0, params.shape[axis])` fails the run with `InvalidArgument`.
    pub fn gather(&self, params: impl Into<Operand>, indices: impl Into<Operand>, axis: i64) -> Result<Output> {
        // Values become constants of their own dtype (not cast to the other input's).
        let (params, indices) = (self.own_dtype(params.into())?, self.own_dtype(indices.into())?);
        let rank = params.shape().rank();
        let axis = match (axis, rank) {
            (a, Some(r)) if a < -(r as i64) || a >= r as i64 => {
                invalid!("Expected axis in the range [-{r}, {r}), but got {a}")
            }
            (a, Some(r)) if a < 0 => (a + r as i64) as usize,
            (a, _) if a >= 0 => a as usize,
            (a, _) => {
                return Err(Error::unimplemented(format!("GatherV2: a negative axis ({a}) needs the params' rank")))
            }
        };
        let inputs = vec![("params", params.into()), ("indices", indices.into())];
        self.add_op1("GatherV2", compute(Gather { axis }), inputs)
    }

    /// `operand` as a tensor of the graph: a value becomes a constant of its own dtype.
    pub(super) fn own_dtype(&self, operand: Operand) -> Result<Output> {
        match operand {
            Operand::Tensor(t) => Ok(t),
            Operand::Value(v) => self.constant(v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gathers_along_any_axis_and_names_a_bad_index() {
        let x = Tensor::from_i32(&[3, 2], vec![1, 2, 3, 4, 5, 6]).unwrap();
        let rows = Gather { axis: 0 }.compute(&[&x, &Tensor::from_i32(&[2, 2], vec![2, 0, 2, 2]).unwrap()]).unwrap();
        assert_eq!(rows[0], Tensor::from_i32(&[2, 2, 2], vec![5, 6, 1, 2, 5, 6, 5, 6]).unwrap());
        let cols = Gather { axis: 1 }.compute(&[&x, &Tensor::from(vec![1i32, 1, 0])]).unwrap();
        assert_eq!(cols[0], Tensor::from_i32(&[3, 3], vec![2, 2, 1, 4, 4, 3, 6, 6, 5]).unwrap());
        let one = Gather { axis: 1 }.compute(&[&x, &Tensor::from(0i32)]).unwrap();
        assert_eq!(one[0], Tensor::from(vec![1i32, 3, 5]));
        let bad = Tensor::from_i32(&[2, 2], vec![0, 1, 1, 3]).unwrap();
        let e = Gather { axis: 0 }.compute(&[&x, &bad]).unwrap_err();
        assert_eq!(e.code, crate::error::Code::InvalidArgument);
        assert_eq!(e.message, "indices[1,1] = 3 is not in [0, 3)");
        let e = Gather { axis: 1 }.compute(&[&x, &Tensor::from(-1i32)]).unwrap_err();
        assert_eq!(e.message, "indices = -1 is not in [0, 2)");
        let e = Gather { axis: 2 }.compute(&[&x, &Tensor::from(0i32)]).unwrap_err();
        assert_eq!(e.message, "Expected axis in the range [-2, 2), but got 2");
    }

    #[test]
    fn the_builder_normalises_the_axis_and_infers_the_shape() {
        let g = Graph::new();
        let p = g.placeholder(DType::F32, Shape::partial(&[Some(4), None, Some(5)])).unwrap();
        let i = g.placeholder(DType::I32, Shape::known(&[2, 3])).unwrap();
        let y = g.gather(&p, &i, -1).unwrap();
        assert_eq!(y.shape(), Shape::partial(&[Some(4), None, Some(2), Some(3)]));
        assert!(g.gather(&p, &i, 3).is_err());
        assert!(g.gather(&p, &i, -4).is_err());
        let f = g.placeholder(DType::F32, Shape::known(&[2])).unwrap();
        assert!(g.gather(&p, &f, 0).is_err(), "float indices");
        let consts = Gather { axis: 2 }.const_inputs(&[]).unwrap();
        assert_eq!(consts, vec![(2, "axis", Tensor::from(2i32))]);
    }
}
