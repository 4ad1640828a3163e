//! `ArgMax` along one axis: the index (int32, wgflow's index type) of the first largest value,
//! a NaN counting as the largest, as TF's CPU kernel. The axis is the op's attribute (an
//! imported graph's `Const` dimension is read at import); shaders/argmax.wgsl is the GPU
//! kernel for float32.

use ndarray::{ArrayD, Axis, IxDyn};

use crate::error::{invalid, Error, Result};
use crate::graph::{Graph, Operand, Output};
use crate::ops::kernel::{kernel, with_prelude, word};
use crate::ops::{cached_wgsl, compute, wgsl, GpuLowering, InferResult, Op};
use crate::tensor::{DType, Shape, Tensor, TensorSpec};

/// `ArgMax` along `axis` (negative counts from the end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ArgMax {
    pub(crate) axis: i64,
}

impl ArgMax {
    fn axis_for(&self, rank: usize) -> Result<usize> {
        let a = if self.axis < 0 { self.axis + rank as i64 } else { self.axis };
        match usize::try_from(a) {
            Ok(a) if a < rank => Ok(a),
            _ => invalid!("Expected dimension in the range [{}, {rank}), but got {}", -(rank as i64), self.axis),
        }
    }
}

/// The argmax kernel, prelude included.
pub(crate) fn argmax_wgsl() -> String {
    with_prelude(wgsl::ARGMAX)
}

fn first_max<T: Copy + PartialOrd>(lane: ndarray::ArrayView1<'_, T>, is_nan: impl Fn(T) -> bool) -> i32 {
    let mut at = 0;
    for (k, &v) in lane.iter().enumerate().skip(1) {
        let best = lane[at];
        if !is_nan(best) && (v > best || is_nan(v)) {
            at = k;
        }
    }
    at as i32
}

fn argmax_of<T: Copy + PartialOrd>(
    a: &ndarray::ArcArray<T, IxDyn>,
    axis: usize,
    is_nan: impl Fn(T) -> bool + Copy,
) -> Result<Tensor> {
    if a.shape()[axis] == 0 {
        invalid!("Reduction axis {axis} is empty in shape {:?}", a.shape());
    }
    let out: ArrayD<i32> = a.map_axis(Axis(axis), |lane| first_max(lane, is_nan));
    Ok(Tensor::from(out))
}

impl Op for ArgMax {
    fn type_name(&self) -> &'static str {
        "ArgMax"
    }
    fn attrs(&self) -> Vec<(&'static str, crate::ops::Attr)> {
        vec![("Tidx", crate::ops::Attr::Type(DType::I32)), ("output_type", crate::ops::Attr::Type(DType::I32))]
    }
    fn const_inputs(&self, _inputs: &[TensorSpec]) -> Result<Vec<(usize, &'static str, Tensor)>> {
        Ok(vec![(1, "dimension", Tensor::from(i32::try_from(self.axis).unwrap_or(i32::MAX)))])
    }
    fn infer(&self, inputs: &[TensorSpec]) -> InferResult {
        let shape = match inputs[0].shape.dims() {
            Some(dims) => {
                let a = self.axis_for(dims.len())?;
                Shape::partial(&dims.iter().enumerate().filter(|(i, _)| *i != a).map(|(_, d)| *d).collect::<Vec<_>>())
            }
            None => Shape::unknown(),
        };
        Ok(vec![TensorSpec::new(DType::I32, shape)])
    }
    fn compute(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let x = inputs[0];
        let axis = self.axis_for(x.shape().len())?;
        Ok(vec![match x {
            Tensor::F32(a) => argmax_of(a, axis, f32::is_nan)?,
            Tensor::F64(a) => argmax_of(a, axis, f64::is_nan)?,
            Tensor::I32(a) => argmax_of(a, axis, |_| false)?,
            other => return Err(Error::unimplemented(format!("wgflow has no ArgMax kernel for {}", other.dtype()))),
        }])
    }
    fn gpu(&self, inputs: &[(DType, &[usize])]) -> Option<Result<GpuLowering>> {
        let (dtype, dims) = inputs[0];
        if dtype != DType::F32 {
            return None;
        }
        Some((|| {
            let axis = self.axis_for(dims.len())?;
            if dims[axis] == 0 {
                invalid!("Reduction axis {axis} is empty in shape {dims:?}");
            }
            let inner: usize = dims[axis + 1..].iter().product();
            let out: Vec<usize> = dims.iter().enumerate().filter(|(i, _)| *i != axis).map(|(_, d)| *d).collect();
            let count: usize = out.iter().product();
            let wgsl = cached_wgsl("argmax".into(), || Ok(argmax_wgsl()))?;
            let uniforms = vec![word(dims[axis])?, word(inner.max(1))?, 0];
            Ok(kernel(wgsl, uniforms, word(count)? as usize, DType::I32, out))
        })())
    }
    fn gpu_supports(&self, inputs: &[(DType, &[usize])]) -> bool {
        inputs[0].0 == DType::F32
    }
}

impl Graph {
    /// `tf.argmax(x, axis)` (`ArgMax`), with int32 indices.
    pub fn argmax(&self, x: impl Into<Operand>, axis: i64) -> Result<Output> {
        self.add_op1("ArgMax", compute(ArgMax { axis }), vec![("input", x.into())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_largest_or_the_first_nan_wins() {
        let x = Tensor::from_f32(&[2, 4], vec![1.0, 3.0, 3.0, 2.0, 0.0, f32::NAN, 5.0, f32::NAN]).unwrap();
        let got = ArgMax { axis: 1 }.compute(&[&x]).unwrap().remove(0);
        assert_eq!(got, Tensor::from_i32(&[2], vec![1, 1]).unwrap());
        let got = ArgMax { axis: -2 }.compute(&[&x]).unwrap().remove(0);
        assert_eq!(got, Tensor::from_i32(&[4], vec![0, 1, 1, 1]).unwrap());
        assert!(ArgMax { axis: 2 }.compute(&[&x]).is_err());
    }
}
