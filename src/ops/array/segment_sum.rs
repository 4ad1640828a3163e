//! `UnsortedSegmentSum` (`tf.math.unsorted_segment_sum(data, segment_ids, num_segments)`):
//! the rows of `data` added into `num_segments` rows by their int32 segment ids; and the
//! gradient of `GatherV2`, which is built from it. It lives with the array ops rather than
//! the reductions because it is the gather's transpose (a scatter-add by index): it shares the
//! gather's index checks and error flag, and the array family keeps importing no other family.
//!
//! TF takes `num_segments` as a tensor; wgflow holds it as the op's attribute. An id out of
//! range is TF's CPU `InvalidArgument`; the GPU kernel (shaders/segment_sum.wgsl, in gather
//! form: one thread per output element adding the matching rows in id order, so that both
//! devices add in the same order and agree exactly) raises the error flag. Ids past the loop
//! budget are summed in passes over slices of them.

use ndarray::{ArcArray, ArrayD, IxDyn};

use super::gather::checked_indices;
use crate::error::{invalid, Error, Result};
use crate::gradients::GradContext;
use crate::graph::{Graph, Operand, Output};
use crate::ops::gpu_passes::{MAX_LOOP_TRIPS, OVERHEAD_TRIPS};
use crate::ops::kernel::{code_of, with_prelude, word, WG};
use crate::ops::{cached_wgsl, compute, shape_err, wgsl, Attr, GpuLowering, InferError, InferResult, Op};
use crate::ops::{Pass, PassBuf, Passes};
use crate::runtime::gpu::flags::error_flag_wgsl;
use crate::runtime::gpu::shaders as gpu_shaders;
use crate::tensor::{dims_string, try_capacity, DType, HostElem, Shape, Tensor, TensorSpec};

/// The ids one pass of the GPU kernel walks (its one loop, within the budget).
const IDS_PER_PASS: usize = MAX_LOOP_TRIPS - OVERHEAD_TRIPS;

/// `UnsortedSegmentSum` into `num_segments` rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UnsortedSegmentSum {
    pub(crate) num_segments: usize,
}

impl UnsortedSegmentSum {
    /// The row length (elements per id) and the output's dimensions for data of `data` dims
    /// and ids of `ids` dims, checked as TF's kernel does.
    fn plan(&self, data: &[usize], ids: &[usize]) -> Result<(usize, Vec<usize>)> {
        if !data.starts_with(ids) {
            invalid!("data.shape = {} does not start with segment_ids.shape = {}", dims_string(data), dims_string(ids));
        }
        let mut out = vec![self.num_segments];
        out.extend_from_slice(&data[ids.len()..]);
        if out.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).is_none() {
            invalid!("UnsortedSegmentSum: the output shape overflows");
        }
        Ok((data[ids.len()..].iter().product(), out))
    }

    /// The GPU passes for data of `data` dims and ids of `ids` dims.
    fn lower(&self, dtype: DType, data: &[usize], ids: &[usize]) -> Result<GpuLowering> {
        let (inner, out) = self.plan(data, ids)?;
        let n: usize = ids.iter().product();
        let count = word(self.num_segments * inner)?;
        word(n * inner)?;
        if self.num_segments == 0 && n * inner > 0 {
            invalid!("segment_ids are all out of range [0, 0): num_segments is 0");
        }
        let wgsl = cached_wgsl(format!("segment_sum {dtype}"), || segment_sum_wgsl(dtype))?;
        let mut p = Passes::new(dtype, out.clone());
        let passes = n.div_ceil(IDS_PER_PASS).max(1);
        let temps: Vec<PassBuf> = (0..passes.min(3) - 1).map(|_| p.temp(dtype, out.clone())).collect();
        for k in 0..passes {
            let prev = if k == 0 { PassBuf::Input(0) } else { temps[(k - 1) % 2] };
            let (start, end) = (k * IDS_PER_PASS, ((k + 1) * IDS_PER_PASS).min(n));
            p.passes.push(Pass {
                wgsl: wgsl.into(),
                uniforms: vec![
                    word(inner)?,
                    word(self.num_segments)?,
                    u32::from(k == 0),
                    word(start)?,
                    word(end)?,
                    0,
                    0,
                ],
                invocations: u64::from(count),
                workgroup_size: WG,
                inputs: vec![PassBuf::Input(0), PassBuf::Input(1), prev],
                output: if k + 1 == passes { PassBuf::Out } else { temps[k % 2] },
            });
        }
        Ok(p.lowering())
    }
}

/// The segment-sum kernel for `dtype` (f32 or i32), prelude and error flag included.
pub(crate) fn segment_sum_wgsl(dtype: DType) -> Result<String> {
    let body = code_of(wgsl::SEGMENT_SUM).replace("ELEM", gpu_shaders::wgsl_scalar(dtype)?);
    Ok(format!("{}\n{}", with_prelude(&body), error_flag_wgsl(4)))
}

impl Op for UnsortedSegmentSum {
    fn type_name(&self) -> &'static str {
        "UnsortedSegmentSum"
    }
    fn attrs(&self) -> Vec<(&'static str, Attr)> {
        vec![("Tindices", Attr::Type(DType::I32)), ("Tnumsegments", Attr::Type(DType::I32))]
    }
    fn const_inputs(&self, _inputs: &[TensorSpec]) -> Result<Vec<(usize, &'static str, Tensor)>> {
        let n = i32::try_from(self.num_segments)
            .map_err(|_| Error::invalid_argument("UnsortedSegmentSum: num_segments over int32"))?;
        Ok(vec![(2, "num_segments", Tensor::from(n))])
    }
    fn infer(&self, inputs: &[TensorSpec]) -> InferResult {
        let (data, ids) = (&inputs[0], &inputs[1]);
        if ids.dtype != DType::I32 {
            let msg = format!("UnsortedSegmentSum: segment_ids must be int32 in wgflow, not {}", ids.dtype);
            return Err(InferError::Other(Error::invalid_argument(msg)));
        }
        let (Some(d), Some(i)) = (data.shape.dims(), ids.shape.dims()) else {
            return Ok(vec![TensorSpec::new(data.dtype, Shape::unknown())]);
        };
        if d.len() < i.len() {
            shape_err!("Shape must be at least rank {} but is rank {}", i.len(), d.len());
        }
        for (&a, &b) in d.iter().zip(i) {
            if let (Some(a), Some(b)) = (a, b) {
                if a != b {
                    shape_err!("Dimensions must be equal, but are {a} and {b}");
                }
            }
        }
        let mut out = vec![Some(self.num_segments)];
        out.extend_from_slice(&d[i.len()..]);
        Ok(vec![TensorSpec::new(data.dtype, Shape::partial(&out))])
    }
    fn compute(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let (data, ids) = (inputs[0], inputs[1]);
        let (inner, out) = self.plan(data.shape(), ids.shape())?;
        // As TF's CPU kernel: empty data gives zeros, its ids unchecked.
        let ids = match data.is_empty() {
            true => Vec::new(),
            false => checked_indices(ids, self.num_segments, "segment_ids", "out of range")?,
        };
        let t = match data {
            Tensor::F32(a) => Tensor::from(segment_sum(a, &ids, inner, &out, |x, y| x + y)?),
            Tensor::F64(a) => Tensor::from(segment_sum(a, &ids, inner, &out, |x, y| x + y)?),
            Tensor::I32(a) => Tensor::from(segment_sum(a, &ids, inner, &out, i32::wrapping_add)?),
            other => invalid!("UnsortedSegmentSum has no kernel for {} data", other.dtype()),
        };
        Ok(vec![t])
    }
    fn gpu(&self, inputs: &[(DType, &[usize])]) -> Option<Result<GpuLowering>> {
        match inputs {
            [(dtype @ (DType::F32 | DType::I32), data), (DType::I32, ids)] => Some(self.lower(*dtype, data, ids)),
            _ => None,
        }
    }
    fn gpu_supports(&self, inputs: &[(DType, &[usize])]) -> bool {
        matches!(inputs, [(DType::F32 | DType::I32, _), (DType::I32, _)])
    }
    fn gradient(&self, ctx: &GradContext) -> Result<Vec<Option<Output>>> {
        // TF's `_UnsortedSegmentSumGrad`: each data row gets its segment's gradient.
        Ok(vec![Some(ctx.graph.gather(ctx.dy()?, &ctx.inputs[1], 0)?), None])
    }
}

/// `[num_segments, inner]` zeros with row `ids[j]` of them added data row `j`, in id order.
fn segment_sum<T: Copy + Default + HostElem>(
    data: &ArcArray<T, IxDyn>,
    ids: &[usize],
    inner: usize,
    out: &[usize],
    add: fn(T, T) -> T,
) -> Result<ArrayD<T>> {
    let data = data.as_standard_layout();
    let src = data.as_slice().ok_or_else(|| Error::internal("segment sum: data not contiguous"))?;
    let mut v = try_capacity::<T>(out)?;
    v.resize(out.iter().product(), T::default());
    if inner > 0 {
        for (row, &id) in src.chunks_exact(inner).zip(ids) {
            for (o, &x) in v[id * inner..(id + 1) * inner].iter_mut().zip(row) {
                *o = add(*o, x);
            }
        }
    }
    ArrayD::from_shape_vec(IxDyn(out), v).map_err(|e| Error::internal(format!("segment sum: {e}")))
}

/// The gradient of `GatherV2` along `axis` for its params: the rows of dy summed into the
/// rows the indices picked (repeated indices add up). Along axis 0 that is an
/// `UnsortedSegmentSum` of dy seen as `[n_indices, inner...]`; along a later axis dy is first
/// transposed so that the indices' dimensions lead, and the sum transposed back.
pub(super) fn gather_grad(ctx: &GradContext, axis: usize) -> Result<Output> {
    let g = ctx.graph;
    let (params, indices) = (&ctx.inputs[0], &ctx.inputs[1]);
    let p = params
        .shape()
        .to_vec()
        .ok_or_else(|| Error::unimplemented("the gradient of GatherV2 needs the params' static shape"))?;
    let index_rank = indices
        .shape()
        .rank()
        .ok_or_else(|| Error::unimplemented("the gradient of GatherV2 needs the indices' static rank"))?;
    // The number of indices, -1 (inferred) when not static.
    let n = indices.shape().to_vec().map_or(-1, |d| d.iter().product::<usize>() as i64);
    let ids = g.reshape(indices, &[n])?;
    let mut dy = ctx.dy()?;
    if axis > 0 {
        let rank = p.len() - 1 + index_rank;
        let perm: Vec<usize> = (axis..axis + index_rank).chain(0..axis).chain(axis + index_rank..rank).collect();
        dy = g.transpose(&dy, Some(&perm))?;
    }
    let mut rows = vec![n];
    rows.extend(p[..axis].iter().chain(&p[axis + 1..]).map(|&d| d as i64));
    let summed = g.unsorted_segment_sum(g.reshape(&dy, &rows)?, &ids, p[axis])?;
    if axis == 0 {
        return Ok(summed);
    }
    let back: Vec<usize> = (0..p.len())
        .map(|j| {
            if j < axis {
                j + 1
            } else if j == axis {
                0
            } else {
                j
            }
        })
        .collect();
    g.transpose(&summed, Some(&back))
}

impl Graph {
    /// `tf.math.unsorted_segment_sum(data, segment_ids, num_segments)`
    /// (`UnsortedSegmentSum`): output row `s` is the sum of the rows of `data` (its dimensions
    /// after those of `segment_ids`) whose int32 id is `s`, zeros where none is; the output is
    /// `[num_segments] + data.shape[segment_ids.rank:]`. An id outside `[0, num_segments)`
    /// fails the run with `InvalidArgument`.
    pub fn unsorted_segment_sum(
        &self,
        data: impl Into<Operand>,
        segment_ids: impl Into<Operand>,
        num_segments: usize,
    ) -> Result<Output> {
        let (data, ids) = (self.own_dtype(data.into())?, self.own_dtype(segment_ids.into())?);
        let inputs = vec![("data", data.into()), ("segment_ids", ids.into())];
        self.add_op1("UnsortedSegmentSum", compute(UnsortedSegmentSum { num_segments }), inputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_rows_by_id_in_order_and_checks_the_ids() {
        let op = UnsortedSegmentSum { num_segments: 3 };
        let data = Tensor::from_f32(&[4, 2], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]).unwrap();
        let ids = Tensor::from(vec![2i32, 0, 2, 2]);
        let out = op.compute(&[&data, &ids]).unwrap();
        assert_eq!(out[0], Tensor::from_f32(&[3, 2], vec![3.0, 4.0, 0.0, 0.0, 13.0, 16.0]).unwrap());
        let ints = Tensor::from_i32(&[2, 2], vec![i32::MAX, 1, 1, 1]).unwrap();
        let out = op.compute(&[&ints, &Tensor::from_i32(&[2, 2], vec![0, 0, 1, 1]).unwrap()]).unwrap();
        assert_eq!(out[0], Tensor::from(vec![i32::MIN, 2, 0]));
        let e = op.compute(&[&data, &Tensor::from(vec![0i32, 1, 3, 0])]).unwrap_err();
        assert_eq!(e.code, crate::error::Code::InvalidArgument);
        assert_eq!(e.message, "segment_ids[2] = 3 is out of range [0, 3)");
        let e = op.compute(&[&data, &Tensor::from(vec![0i32, 1])]).unwrap_err();
        assert_eq!(e.message, "data.shape = [4,2] does not start with segment_ids.shape = [2]");
        assert!(op.compute(&[&Tensor::from(vec![true]), &Tensor::from(vec![0i32])]).is_err());
        let empty = Tensor::from_f32(&[2, 0], vec![]).unwrap();
        let out = op.compute(&[&empty, &Tensor::from(vec![-1i32, 9])]).unwrap();
        assert_eq!(out[0].shape(), &[3, 0]);
    }

    #[test]
    fn long_id_lists_run_in_passes_that_chain() {
        let op = UnsortedSegmentSum { num_segments: 5 };
        let n = 2 * IDS_PER_PASS + 7;
        let Some(Ok(GpuLowering::Passes(p))) = op.gpu(&[(DType::F32, &[n, 3]), (DType::I32, &[n])]) else {
            panic!("a multi-pass lowering");
        };
        assert_eq!(p.passes.len(), 3);
        assert_eq!(p.passes[0].inputs[2], PassBuf::Input(0));
        assert_eq!(p.passes[1].inputs[2], p.passes[0].output);
        assert_eq!(p.passes[2].inputs[2], p.passes[1].output);
        assert_eq!(p.passes[2].output, PassBuf::Out);
        assert_eq!(p.passes[2].uniforms[3..5], [word(2 * IDS_PER_PASS).unwrap(), word(n).unwrap()]);
    }
}
