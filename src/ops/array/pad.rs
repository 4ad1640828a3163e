//! `Pad`: zeros before and after each dimension (`tf.pad`, mode `CONSTANT` with 0). TF takes
//! the paddings as an `[rank, 2]` int tensor; wgflow holds them as the op's attribute (an
//! imported graph's `Const` paddings are read at import). The GPU kernel is shaders/pad.wgsl.

use ndarray::{ArrayD, IxDyn, Slice};
use rayon::prelude::*;

use crate::error::{invalid, Result};
use crate::graph::{Graph, Operand, Output};
use crate::ops::kernel::{kernel, slots, with_prelude, word, MAX_RANK};
use crate::ops::{cached_wgsl, compute, shape_err, wgsl, GpuLowering, InferResult, Op};
use crate::tensor::{check_host_alloc, dims_string, DType, Shape, Tensor, TensorSpec};

/// `Pad` by `(before, after)` per dimension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pad {
    pub(crate) paddings: Vec<[usize; 2]>,
}

impl Pad {
    /// The output's dimensions for an input of `dims` (checked: rank and size).
    fn out_dims(&self, dims: &[usize]) -> Result<Vec<usize>> {
        if dims.len() != self.paddings.len() {
            invalid!(
                "The first dimension of paddings must be the rank of inputs[{},2] {}",
                self.paddings.len(),
                dims_string(dims)
            );
        }
        let out: Option<Vec<usize>> =
            dims.iter().zip(&self.paddings).map(|(&d, p)| d.checked_add(p[0])?.checked_add(p[1])).collect();
        match out {
            Some(out) => Ok(out),
            None => invalid!("Pad: the padded shape overflows"),
        }
    }
}

/// The pad kernel (any 4-byte element type), prelude included.
pub(crate) fn pad_wgsl() -> String {
    with_prelude(wgsl::PAD)
}

impl Op for Pad {
    fn type_name(&self) -> &'static str {
        "Pad"
    }
    fn attrs(&self) -> Vec<(&'static str, crate::ops::Attr)> {
        vec![("Tpaddings", crate::ops::Attr::Type(DType::I32))]
    }
    fn const_inputs(&self, _inputs: &[TensorSpec]) -> Result<Vec<(usize, &'static str, Tensor)>> {
        let flat: std::result::Result<Vec<i32>, _> =
            self.paddings.iter().flat_map(|p| [p[0], p[1]]).map(i32::try_from).collect();
        let flat = flat.map_err(|_| crate::error::Error::invalid_argument("Pad: a padding over int32"))?;
        Ok(vec![(1, "paddings", Tensor::from_i32(&[self.paddings.len(), 2], flat)?)])
    }
    fn infer(&self, inputs: &[TensorSpec]) -> InferResult {
        let x = &inputs[0];
        let shape = match x.shape.dims() {
            Some(dims) => {
                if dims.len() != self.paddings.len() {
                    shape_err!("Shape must be rank {} but is rank {}", self.paddings.len(), dims.len());
                }
                let out: Vec<Option<usize>> =
                    dims.iter().zip(&self.paddings).map(|(d, p)| d.map(|d| d + p[0] + p[1])).collect();
                Shape::partial(&out)
            }
            None => Shape::unknown_dims(self.paddings.len()),
        };
        Ok(vec![TensorSpec::new(x.dtype, shape)])
    }
    fn compute(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let x = inputs[0];
        let out = self.out_dims(x.shape())?;
        check_host_alloc::<f64>(x.dtype(), &out)?;
        let t = match x {
            Tensor::F32(a) => Tensor::from(self.place(a, &out, 0.0)),
            Tensor::I32(a) => Tensor::from(self.place(a, &out, 0)),
            Tensor::F64(a) => Tensor::from(self.place(a, &out, 0.0)),
            Tensor::Bool(a) => Tensor::from(self.place(a, &out, false)),
            Tensor::Str(a) => Tensor::from(self.place(a, &out, String::new())),
        };
        Ok(vec![t])
    }
    fn gpu(&self, inputs: &[(DType, &[usize])]) -> Option<Result<GpuLowering>> {
        let (dtype, dims) = inputs[0];
        if !self.gpu_supports(inputs) {
            return None;
        }
        Some((|| {
            let out = self.out_dims(dims)?;
            let count: usize = out.iter().product();
            word(count)?;
            let wgsl = cached_wgsl("pad".into(), || Ok(pad_wgsl()))?;
            let before: Vec<usize> = self.paddings.iter().map(|p| p[0]).collect();
            let mut uniforms = vec![word(dims.len())?, 0, 0];
            uniforms.extend(slots(&out, 1)?);
            uniforms.extend(slots(dims, 1)?);
            uniforms.extend(slots(&before, 0)?);
            Ok(kernel(wgsl, uniforms, count, dtype, out))
        })())
    }
    fn gpu_supports(&self, inputs: &[(DType, &[usize])]) -> bool {
        let (dtype, dims) = inputs[0];
        matches!(dtype, DType::F32 | DType::I32) && dims.len() <= MAX_RANK
    }
}

impl Pad {
    /// `a` placed in a new array of `out` dimensions filled with `zero`: one task per row of
    /// the last dimension, in parallel, each copying its input row between the row's pads.
    fn place<T: Clone + Send + Sync>(&self, a: &ndarray::ArcArray<T, IxDyn>, out: &[usize], zero: T) -> ArrayD<T> {
        let (Some(&last), Some(a)) = (out.last(), a.as_slice_memory_order().filter(|_| a.is_standard_layout())) else {
            return self.place_view(a, out, zero);
        };
        let dims = &out[..out.len() - 1];
        let in_dims: Vec<usize> = out.iter().zip(&self.paddings).map(|(o, p)| o - p[0] - p[1]).collect();
        let in_last = in_dims[in_dims.len() - 1];
        let [before, _] = self.paddings[out.len() - 1];
        let mut o = ArrayD::from_elem(IxDyn(out), zero.clone());
        let Some(flat) = o.as_slice_mut() else { return o };
        if last == 0 {
            return o;
        }
        flat.par_chunks_mut(last).enumerate().for_each(|(row, dst)| {
            // The input row this output row reads, if every leading coordinate is inside.
            let (mut rem, mut src, mut stride) = (row, 0usize, in_last);
            for (d, &n) in dims.iter().enumerate().rev() {
                let c = rem % n;
                rem /= n;
                let b = self.paddings[d][0];
                if c < b || c - b >= in_dims[d] {
                    return;
                }
                src += (c - b) * stride;
                stride *= in_dims[d];
            }
            dst[before..before + in_last].clone_from_slice(&a[src..src + in_last]);
        });
        o
    }

    /// [`Pad::place`] for a non-contiguous input: a view's assign.
    fn place_view<T: Clone>(&self, a: &ndarray::ArcArray<T, IxDyn>, out: &[usize], zero: T) -> ArrayD<T> {
        let mut o = ArrayD::from_elem(IxDyn(out), zero);
        let mut view = o.view_mut();
        for (axis, (p, &d)) in self.paddings.iter().zip(a.shape()).enumerate() {
            view.slice_axis_inplace(ndarray::Axis(axis), Slice::from(p[0]..p[0] + d));
        }
        view.assign(a);
        o
    }
}

impl Graph {
    /// `tf.pad(x, paddings)` (`Pad`): `paddings[i] = [before, after]` zeros around dimension
    /// `i`.
    pub fn pad(&self, x: impl Into<Operand>, paddings: &[[usize; 2]]) -> Result<Output> {
        self.add_op1("Pad", compute(Pad { paddings: paddings.to_vec() }), vec![("input", x.into())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_with_zeros_and_checks_the_rank() {
        let p = Pad { paddings: vec![[1, 0], [0, 2]] };
        let x = Tensor::from_i32(&[2, 2], vec![1, 2, 3, 4]).unwrap();
        let out = p.compute(&[&x]).unwrap();
        assert_eq!(out[0], Tensor::from_i32(&[3, 4], vec![0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0]).unwrap());
        assert!(p.compute(&[&Tensor::from(vec![1.0f32])]).is_err());
        // Rank 3, pads on every side, against the view path (a transposed, strided input).
        let p = Pad { paddings: vec![[1, 2], [0, 1], [2, 1]] };
        let x =
            ndarray::Array::from_shape_fn(IxDyn(&[3, 2, 4]), |i| (i[0] * 100 + i[1] * 10 + i[2]) as f32).into_shared();
        let out = p.compute(&[&Tensor::from(x.clone())]).unwrap();
        let transposed = x.clone().reversed_axes().reversed_axes();
        let view = p.place_view(&transposed, &[6, 3, 7], 0.0);
        assert_eq!(out[0], Tensor::from(view.clone()));
        assert_eq!(view[[1, 0, 2]], 0.0);
        assert_eq!(view[[3, 1, 5]], 213.0);
        assert_eq!(view[[0, 0, 2]] + view[[5, 2, 6]], 0.0);
        let huge = Pad { paddings: vec![[usize::MAX, 1]] };
        assert!(huge.compute(&[&Tensor::from(vec![1.0f32])]).is_err());
    }
}
