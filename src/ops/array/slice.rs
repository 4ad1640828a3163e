//! `Slice` (`tf.slice(x, begin, size)`): a strided slice with unit strides whose `begin` and
//! `size` must lie inside the input, checked as TF's `SliceOp` does (`Expected begin[i] in
//! [0, d], but got b`), at build time when the shape is known and at every run. The kernels
//! are `StridedSlice`'s. `begin` and `size` are attributes, written back as `Const` inputs.

use super::strided_slice::StridedSlice;
use crate::error::{invalid, Error, Result};
use crate::gradients::GradContext;
use crate::graph::{Graph, Operand, Output};
use crate::ops::{compute, Attr, GpuLowering, InferError, InferResult, Op};
use crate::tensor::{DType, Tensor, TensorSpec};

/// `Slice` by `begin` and `size` (`-1`: the rest of the dimension).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Slice {
    begin: Vec<i64>,
    size: Vec<i64>,
    /// The same slice as a strided one.
    strided: StridedSlice,
}

impl Slice {
    fn new(begin: &[i64], size: &[i64]) -> Result<Slice> {
        if begin.len() != size.len() {
            invalid!("Expected begin and size arguments to be 1-D tensors of the same size");
        }
        let mut spec = super::SliceSpec { begin: begin.to_vec(), strides: vec![1; begin.len()], ..Default::default() };
        for (i, (&b, &s)) in begin.iter().zip(size).enumerate() {
            if s == -1 {
                spec.end_mask |= 1 << i;
            }
            spec.end.push(b.saturating_add(s.max(0)));
        }
        Ok(Slice { begin: begin.to_vec(), size: size.to_vec(), strided: StridedSlice(spec) })
    }

    /// TF's checks of `begin` and `size` against the input's dimensions.
    fn check(&self, dims: &[usize]) -> Result<()> {
        if dims.len() != self.begin.len() {
            invalid!(
                "Expected begin and size arguments to be 1-D tensors of size {}, but got shapes [{}] and [{}] instead.",
                dims.len(),
                self.begin.len(),
                self.size.len()
            );
        }
        for (i, ((&b, &s), &d)) in self.begin.iter().zip(&self.size).zip(dims).enumerate() {
            let d = d as i64;
            if b < 0 || b > d {
                invalid!("Expected begin[{i}] in [0, {d}], but got {b}");
            }
            if s != -1 && (s < 0 || s > d - b) {
                invalid!("Expected size[{i}] in [0, {}], but got {s}", d - b);
            }
        }
        Ok(())
    }
}

impl Op for Slice {
    fn type_name(&self) -> &'static str {
        "Slice"
    }
    fn attrs(&self) -> Vec<(&'static str, Attr)> {
        vec![("Index", Attr::Type(DType::I32))]
    }
    fn const_inputs(&self, _inputs: &[TensorSpec]) -> Result<Vec<(usize, &'static str, Tensor)>> {
        let v = |x: &[i64]| crate::ops::i32_vector(x.iter().copied());
        Ok(vec![(1, "begin", v(&self.begin)?), (2, "size", v(&self.size)?)])
    }
    fn infer(&self, inputs: &[TensorSpec]) -> InferResult {
        if let Some(dims) = inputs[0].shape.to_vec() {
            self.check(&dims).map_err(InferError::Other)?;
        } else if let Some(rank) = inputs[0].shape.rank() {
            if rank != self.begin.len() {
                super::shape_err!("Shape must be rank {} but is rank {rank}", self.begin.len());
            }
        }
        self.strided.infer(inputs)
    }
    fn compute(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        self.check(inputs[0].shape())?;
        self.strided.compute(inputs)
    }
    fn gpu(&self, inputs: &[(DType, &[usize])]) -> Option<Result<GpuLowering>> {
        match self.check(inputs[0].1) {
            Ok(()) => self.strided.gpu(inputs),
            Err(e) => Some(Err(e)),
        }
    }
    fn gpu_supports(&self, inputs: &[(DType, &[usize])]) -> bool {
        self.strided.gpu_supports(inputs)
    }
    /// TF's `_SliceGrad`: `dy` padded with zeros back to the input's shape (static shapes
    /// needed: `Unimplemented` otherwise).
    fn gradient(&self, ctx: &GradContext) -> Result<Vec<Option<Output>>> {
        let dims = ctx.inputs[0]
            .shape()
            .to_vec()
            .ok_or_else(|| Error::unimplemented("the gradient of Slice needs the input's static shape"))?;
        self.check(&dims)?;
        let paddings: Vec<[usize; 2]> = dims
            .iter()
            .zip(self.begin.iter().zip(&self.size))
            .map(|(&d, (&b, &s))| {
                let (b, s) = (b as usize, if s == -1 { d - b as usize } else { s as usize });
                [b, d - b - s]
            })
            .collect();
        Ok(vec![Some(ctx.graph.pad(ctx.dy()?, &paddings)?)])
    }
}

impl Graph {
    /// `tf.slice(x, begin, size)` (`Slice`): `size[i] = -1` takes the rest of dimension `i`;
    /// `begin` and `size` must lie inside `x` (`InvalidArgument` otherwise).
    pub fn slice(&self, x: impl Into<Operand>, begin: &[i64], size: &[i64]) -> Result<Output> {
        self.add_op1("Slice", compute(Slice::new(begin, size)?), vec![("input", x.into())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_begin_and_size_as_tf() {
        let x = Tensor::from_i32(&[2, 3], (0..6).collect()).unwrap();
        let ok = Slice::new(&[1, 1], &[1, -1]).unwrap();
        assert_eq!(ok.compute(&[&x]).unwrap()[0], Tensor::from_i32(&[1, 2], vec![4, 5]).unwrap());
        let e = Slice::new(&[0, 2], &[2, 2]).unwrap().compute(&[&x]).unwrap_err();
        assert_eq!(e.message, "Expected size[1] in [0, 1], but got 2");
        let e = Slice::new(&[-1, 0], &[1, 1]).unwrap().compute(&[&x]).unwrap_err();
        assert_eq!(e.message, "Expected begin[0] in [0, 2], but got -1");
        assert!(Slice::new(&[0], &[1, 1]).is_err());
        assert!(Slice::new(&[0], &[1]).unwrap().compute(&[&x]).is_err(), "rank");
    }
}
