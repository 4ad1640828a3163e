//! `StridedSlice` (`slice.rs`'s `Slice` is one with unit strides): TF's `begin`, `end` and
//! `strides` with its five masks, held as the op's attributes (an imported graph's `Const`
//! inputs are read at import). The run-time plan ([`StridedSlice::plan`]) follows TF's
//! `ValidateStridedSliceOp`: the sparse spec (with an ellipsis and new axes) is made dense
//! over the input's dimensions, each range canonicalised and clamped; the kernels then gather
//! `base + sum(c[d] * step[d])` on the CPU and in shaders/strided_gather.wgsl (which
//! `Transpose` shares).

use crate::error::{invalid, Result};
use crate::graph::{Graph, Operand, Output};
use crate::ops::kernel::MAX_RANK;
use crate::ops::{compute, GpuLowering, InferResult, Op};
use crate::tensor::{check_host_alloc, DType, Shape, Tensor, TensorSpec};

/// `tf.strided_slice`'s arguments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SliceSpec {
    /// First index per spec entry (negative counts from the end).
    pub begin: Vec<i64>,
    /// End index (exclusive) per spec entry.
    pub end: Vec<i64>,
    /// Step per spec entry (not zero; negative walks backwards).
    pub strides: Vec<i64>,
    /// Bit `i`: ignore `begin[i]` (start at the first element in the step's direction).
    pub begin_mask: i64,
    /// Bit `i`: ignore `end[i]` (go to the last element).
    pub end_mask: i64,
    /// Bit `i`: entry `i` stands for as many full dimensions as needed.
    pub ellipsis_mask: i64,
    /// Bit `i`: entry `i` inserts a dimension of size 1.
    pub new_axis_mask: i64,
    /// Bit `i`: entry `i` takes one index and removes the dimension.
    pub shrink_axis_mask: i64,
}

/// The op.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StridedSlice(pub(crate) SliceSpec);

/// What a slice reads: the gathered dimensions (input order) with their first index and step,
/// and the output's shape (new axes in, shrunk axes out; the same elements in the same order).
#[derive(Debug, PartialEq, Eq)]
struct Plan {
    lens: Vec<usize>,
    starts: Vec<i64>,
    steps: Vec<i64>,
    out_shape: Vec<usize>,
}

impl StridedSlice {
    fn plan(&self, dims: &[usize]) -> Result<Plan> {
        let s = &self.0;
        let n = s.begin.len();
        if s.end.len() != n || s.strides.len() != n {
            invalid!("Expected begin, end, and strides to be 1D equal size tensors, but got shapes [{}], [{}], and [{}] instead.", n, s.end.len(), s.strides.len());
        }
        let bit = |mask: i64, i: usize| i < 63 && (mask >> i) & 1 == 1;
        let real = (0..n).filter(|&i| !bit(s.new_axis_mask, i) && !bit(s.ellipsis_mask, i)).count();
        let mut plan = Plan { lens: Vec::new(), starts: Vec::new(), steps: Vec::new(), out_shape: Vec::new() };
        let mut d = 0usize;
        let mut seen_ellipsis = false;
        let full = |plan: &mut Plan, d: usize| {
            plan.lens.push(dims[d]);
            plan.starts.push(0);
            plan.steps.push(1);
            plan.out_shape.push(dims[d]);
        };
        for i in 0..n {
            if bit(s.ellipsis_mask, i) {
                if seen_ellipsis {
                    invalid!("Multiple ellipses in slice spec not allowed");
                }
                seen_ellipsis = true;
                let cover = dims.len().saturating_sub(real);
                for _ in 0..cover {
                    full(&mut plan, d);
                    d += 1;
                }
                continue;
            }
            if bit(s.new_axis_mask, i) {
                plan.out_shape.push(1);
                continue;
            }
            let Some(&size) = dims.get(d) else {
                invalid!("Index out of range using input dim {d}; input has only {} dims", dims.len());
            };
            let size = size as i64;
            let stride = s.strides[i];
            if stride == 0 {
                invalid!("strides[{i}] must be non-zero");
            }
            if bit(s.shrink_axis_mask, i) {
                let b = if s.begin[i] < 0 { s.begin[i] + size } else { s.begin[i] };
                if b < 0 || b >= size {
                    invalid!("slice index {} of dimension {d} out of bounds.", s.begin[i]);
                }
                plan.lens.push(1);
                plan.starts.push(b);
                plan.steps.push(1);
            } else {
                let (lo, hi) = if stride > 0 { (0, size) } else { (-1, size - 1) };
                let canon = |v: i64, masked: bool, first: bool| -> i64 {
                    if masked {
                        return if (stride > 0) == first { lo } else { hi };
                    }
                    let v = if v < 0 { v + size } else { v };
                    v.clamp(lo, hi)
                };
                let b = canon(s.begin[i], bit(s.begin_mask, i), true);
                let e = canon(s.end[i], bit(s.end_mask, i), false);
                let span = if stride > 0 { e - b } else { b - e };
                let len = if span <= 0 { 0 } else { (span + stride.abs() - 1) / stride.abs() };
                plan.lens.push(len as usize);
                plan.starts.push(if len > 0 { b } else { 0 });
                plan.steps.push(stride);
                plan.out_shape.push(len as usize);
            }
            d += 1;
        }
        while d < dims.len() {
            full(&mut plan, d);
            d += 1;
        }
        Ok(plan)
    }
}

/// Row-major strides of `dims`, signed.
fn strides(dims: &[usize]) -> Vec<i64> {
    let mut st = vec![1i64; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        st[i] = st[i + 1] * dims[i + 1] as i64;
    }
    st
}

impl Plan {
    /// The first element's offset and each gathered dimension's step, in elements.
    fn offsets(&self, dims: &[usize]) -> (i64, Vec<i64>) {
        let st = strides(dims);
        let base = self.starts.iter().zip(&st).map(|(b, s)| b * s).sum();
        (base, self.steps.iter().zip(&st).map(|(k, s)| k * s).collect())
    }
}

fn gather<T: Clone>(a: &ndarray::ArcArray<T, ndarray::IxDyn>, plan: &Plan) -> Result<ndarray::ArrayD<T>> {
    let data = a.as_standard_layout();
    let data = data.as_slice().unwrap_or(&[]);
    let (base, steps) = plan.offsets(a.shape());
    let count: usize = plan.lens.iter().product();
    let mut out = Vec::with_capacity(count);
    let mut coord = vec![0usize; plan.lens.len()];
    for _ in 0..count {
        let off = base + coord.iter().zip(&steps).map(|(&c, s)| c as i64 * s).sum::<i64>();
        match data.get(off as usize) {
            Some(v) => out.push(v.clone()),
            None => invalid!("StridedSlice: index {off} outside the input"),
        }
        for d in (0..coord.len()).rev() {
            coord[d] += 1;
            if coord[d] < plan.lens[d] {
                break;
            }
            coord[d] = 0;
        }
    }
    ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&plan.out_shape), out)
        .map_err(|e| crate::error::Error::internal(e.to_string()))
}

impl Op for StridedSlice {
    fn type_name(&self) -> &'static str {
        "StridedSlice"
    }
    fn attrs(&self) -> Vec<(&'static str, crate::ops::Attr)> {
        use crate::ops::Attr;
        let s = &self.0;
        vec![
            ("Index", Attr::Type(DType::I32)),
            ("begin_mask", Attr::Int(s.begin_mask)),
            ("end_mask", Attr::Int(s.end_mask)),
            ("ellipsis_mask", Attr::Int(s.ellipsis_mask)),
            ("new_axis_mask", Attr::Int(s.new_axis_mask)),
            ("shrink_axis_mask", Attr::Int(s.shrink_axis_mask)),
        ]
    }
    fn const_inputs(&self, _inputs: &[TensorSpec]) -> Result<Vec<(usize, &'static str, Tensor)>> {
        let v = |x: &[i64]| crate::ops::i32_vector(x.iter().copied());
        Ok(vec![(1, "begin", v(&self.0.begin)?), (2, "end", v(&self.0.end)?), (3, "strides", v(&self.0.strides)?)])
    }
    fn infer(&self, inputs: &[TensorSpec]) -> InferResult {
        let x = &inputs[0];
        let shape = match x.shape.to_vec() {
            Some(dims) => Shape::known(&self.plan(&dims)?.out_shape),
            None => Shape::unknown(),
        };
        Ok(vec![TensorSpec::new(x.dtype, shape)])
    }
    fn compute(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let x = inputs[0];
        let plan = self.plan(x.shape())?;
        check_host_alloc::<f64>(x.dtype(), &plan.out_shape)?;
        Ok(vec![match x {
            Tensor::F32(a) => Tensor::from(gather(a, &plan)?),
            Tensor::I32(a) => Tensor::from(gather(a, &plan)?),
            Tensor::F64(a) => Tensor::from(gather(a, &plan)?),
            Tensor::Bool(a) => Tensor::from(gather(a, &plan)?),
            Tensor::Str(a) => Tensor::from(gather(a, &plan)?),
        }])
    }
    fn gpu(&self, inputs: &[(DType, &[usize])]) -> Option<Result<GpuLowering>> {
        let (dtype, dims) = inputs[0];
        if !matches!(dtype, DType::F32 | DType::I32) {
            return None;
        }
        Some(self.plan(dims).and_then(|plan| {
            let (base, steps) = plan.offsets(dims);
            super::gpu::strided_gather(dtype, &plan.lens, plan.out_shape, base, &steps)
        }))
    }
    fn gpu_supports(&self, inputs: &[(DType, &[usize])]) -> bool {
        let (dtype, dims) = inputs[0];
        matches!(dtype, DType::F32 | DType::I32) && dims.len() <= MAX_RANK
    }
}

impl Graph {
    /// `tf.strided_slice(x, begin, end, strides, masks...)` (`StridedSlice`).
    pub fn strided_slice(&self, x: impl Into<Operand>, spec: SliceSpec) -> Result<Output> {
        self.add_op1("StridedSlice", compute(StridedSlice(spec)), vec![("input", x.into())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(spec: SliceSpec, dims: &[usize]) -> Tensor {
        let n: usize = dims.iter().product();
        let x = Tensor::from_i32(dims, (0..n as i32).collect()).unwrap();
        StridedSlice(spec).compute(&[&x]).unwrap().remove(0)
    }

    #[test]
    fn follows_tf_on_masks_negative_steps_and_new_axes() {
        // x[1:, ::-2] of a 3x4 matrix of 0..12.
        let s = SliceSpec {
            begin: vec![1, 0],
            end: vec![0, 0],
            strides: vec![1, -2],
            end_mask: 0b11,
            begin_mask: 0b10,
            ..Default::default()
        };
        assert_eq!(run(s, &[3, 4]), Tensor::from_i32(&[2, 2], vec![7, 5, 11, 9]).unwrap());
        // x[..., 1] (ellipsis, shrink) and x[tf.newaxis, 2] of the same matrix.
        let s = SliceSpec {
            begin: vec![0, 1],
            end: vec![0, 2],
            strides: vec![1, 1],
            ellipsis_mask: 1,
            shrink_axis_mask: 2,
            ..Default::default()
        };
        assert_eq!(run(s, &[3, 4]), Tensor::from_i32(&[3], vec![1, 5, 9]).unwrap());
        let s = SliceSpec {
            begin: vec![0, 2],
            end: vec![0, 3],
            strides: vec![1, 1],
            new_axis_mask: 1,
            shrink_axis_mask: 2,
            ..Default::default()
        };
        assert_eq!(run(s, &[3, 4]), Tensor::from_i32(&[1, 4], vec![8, 9, 10, 11]).unwrap());
        // Out-of-range ends clamp; an empty range gives zero elements.
        let s = SliceSpec { begin: vec![-2], end: vec![100], strides: vec![1], ..Default::default() };
        assert_eq!(run(s, &[5]), Tensor::from_i32(&[2], vec![3, 4]).unwrap());
        let s = SliceSpec { begin: vec![3], end: vec![1], strides: vec![1], ..Default::default() };
        assert_eq!(run(s, &[5]).shape(), &[0]);
        let s = SliceSpec { begin: vec![7], end: vec![8], strides: vec![1], shrink_axis_mask: 1, ..Default::default() };
        assert!(StridedSlice(s).compute(&[&Tensor::from_i32(&[5], vec![0; 5]).unwrap()]).is_err());
    }
}
