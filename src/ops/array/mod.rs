//! Data movement and fills: `Reshape`, `Transpose`, `ConcatV2` here; `Pad`, `StridedSlice`, `Fill`, `Tile`, `GatherV2`,
//! `UnsortedSegmentSum` in files of their names. `cpu.rs` holds the CPU copies, `gpu.rs` the WGSL lowerings, `grad.rs`
//! the gradients, `build.rs` the `Graph` builders.

mod build;
mod cpu;
mod fill;
mod gather;
mod gpu;
mod grad;
mod pad;
mod segment_sum;
mod strided_slice;
mod tile;

pub(crate) use gpu::instantiations;
pub use strided_slice::SliceSpec;

use super::{shape_err, Attr, GpuLowering, InferError, InferResult, Op};
use crate::error::{invalid, Error, Result};
use cpu::{concat_arrays, reshape_arc};
use ndarray::IxDyn;

use crate::tensor::{dims_string, DType, Shape, Tensor, TensorSpec};

/// The TF op types of this family (see `ops::registry`).
pub(crate) fn types() -> Vec<&'static str> {
    vec!["Reshape", "Transpose", "ConcatV2", "Fill", "Pad", "StridedSlice", "Tile", "GatherV2", "UnsortedSegmentSum"]
}

/// Applies a generic expression to the array inside any tensor, keeping the variant.
macro_rules! each_dtype {
    ($t:expr, |$a:ident| $body:expr) => {
        match $t {
            Tensor::F32($a) => Tensor::from($body),
            Tensor::I32($a) => Tensor::from($body),
            Tensor::F64($a) => Tensor::from($body),
            Tensor::Bool($a) => Tensor::from($body),
            Tensor::Str($a) => Tensor::from($body),
        }
    };
}

/// `Reshape` to a fixed shape in which one entry may be -1 (inferred from the size).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reshape {
    /// The requested shape.
    pub(crate) shape: Vec<i64>,
}

impl Reshape {
    /// Checks the entries: at most one -1 and nothing else negative (TF's kernel messages).
    fn validate(&self) -> Result<Option<usize>> {
        let mut unknown = None;
        for (i, &d) in self.shape.iter().enumerate() {
            if d == -1 {
                if let Some(j) = unknown {
                    invalid!("Only one input size may be -1, not both {j} and {i}");
                }
                unknown = Some(i);
            } else if d < 0 {
                invalid!("Size {i} must be non-negative, not {d}");
            }
        }
        Ok(unknown)
    }

    /// The product of the given sizes (the -1 left out), or TF's kernel error when the
    /// non-zero ones overflow a 64-bit count (which no tensor can hold either).
    fn given_product(&self) -> Result<usize> {
        let mut product: usize = 1;
        let mut zero = false;
        for &d in self.shape.iter().filter(|&&d| d != -1) {
            match usize::try_from(d) {
                Ok(0) => zero = true,
                Ok(d) => match product.checked_mul(d).filter(|&p| i64::try_from(p).is_ok()) {
                    Some(p) => product = p,
                    None => {
                        let all: Vec<String> = self.shape.iter().map(i64::to_string).collect();
                        invalid!("Shape [{}] has too many elements", all.join(", "));
                    }
                },
                Err(_) => {}
            }
        }
        Ok(if zero { 0 } else { product })
    }

    /// The concrete output shape for an input of `n` elements.
    fn resolve(&self, n: usize) -> Result<Vec<usize>> {
        let unknown = self.validate()?;
        let mut dims: Vec<usize> = self.shape.iter().map(|&d| d.max(0) as usize).collect();
        let product = self.given_product()?;
        if let Some(u) = unknown {
            if product == 0 {
                if n != 0 {
                    invalid!("Reshape cannot infer the missing input size for an empty tensor unless all specified input sizes are non-zero");
                }
                dims[u] = 0;
            } else {
                if !n.is_multiple_of(product) {
                    invalid!("Input to reshape is a tensor with {n} values, but the requested shape requires a multiple of {product}");
                }
                dims[u] = n / product;
            }
        }
        let total = match unknown {
            Some(u) => product * dims[u],
            None => product,
        };
        if total != n {
            invalid!("Input to reshape is a tensor with {n} values, but the requested shape has {total}");
        }
        Ok(dims)
    }
}

impl Op for Reshape {
    fn gradient(&self, ctx: &crate::gradients::GradContext) -> Result<Vec<Option<crate::graph::Output>>> {
        self.grad(ctx)
    }
    fn type_name(&self) -> &'static str {
        "Reshape"
    }
    fn attrs(&self) -> Vec<(&'static str, Attr)> {
        vec![("Tshape", Attr::Type(DType::I32))]
    }
    fn const_inputs(&self, _inputs: &[TensorSpec]) -> Result<Vec<(usize, &'static str, Tensor)>> {
        Ok(vec![(1, "shape", super::i32_vector(self.shape.iter().copied())?)])
    }
    fn infer(&self, inputs: &[TensorSpec]) -> InferResult {
        let x = &inputs[0];
        let unknown = self.validate()?;
        let mut out: Vec<Option<usize>> = self.shape.iter().map(|&d| usize::try_from(d).ok()).collect();
        if let Some(dims) = x.shape.dims() {
            let known_out = self.given_product()?;
            let in_unknown: Vec<usize> = (0..dims.len()).filter(|&i| dims[i].is_none()).collect();
            let known_in: usize = dims.iter().flatten().product();
            let shape_str = Shape::partial(&out).tf_string();
            match (in_unknown.len(), unknown) {
                (0, None) if known_in != known_out => {
                    shape_err!(
                        "Cannot reshape a tensor with {known_in} elements to shape {shape_str} ({known_out} elements)"
                    )
                }
                (0, Some(u)) if known_out > 0 => {
                    if !known_in.is_multiple_of(known_out) {
                        shape_err!("Dimension size must be evenly divisible by {known_out} but is {known_in}");
                    }
                    out[u] = Some(known_in / known_out);
                }
                (1, None) if known_in != 0 && !known_out.is_multiple_of(known_in) => {
                    shape_err!("Dimension size must be evenly divisible by {known_in} but is {known_out}")
                }
                _ => {}
            }
        }
        Ok(vec![TensorSpec::new(x.dtype, Shape::partial(&out))])
    }
    fn compute(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let x = inputs[0];
        let dims = self.resolve(x.len())?;
        Ok(vec![each_dtype!(x, |a| reshape_arc(a, &dims)?)])
    }
    fn is_view(&self) -> bool {
        true
    }
    fn gpu(&self, inputs: &[(DType, &[usize])]) -> Option<Result<GpuLowering>> {
        Some(self.resolve(inputs[0].1.iter().product()).map(GpuLowering::View))
    }
    fn gpu_supports(&self, _inputs: &[(DType, &[usize])]) -> bool {
        true
    }
}

/// `Transpose` by a permutation (`None`: reverse the dimensions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Transpose {
    /// Output dimension `i` is input dimension `perm[i]`.
    pub(crate) perm: Option<Vec<usize>>,
}

impl Transpose {
    /// The permutation for a rank-`rank` input, checked.
    fn perm_for(&self, rank: usize) -> Result<Vec<usize>> {
        let Some(perm) = &self.perm else {
            return Ok((0..rank).rev().collect());
        };
        if perm.len() != rank {
            invalid!("transpose expects a vector of size {rank}. But input(1) is a vector of size {}", perm.len());
        }
        let mut seen = vec![false; rank];
        for &d in perm {
            if d >= rank {
                invalid!("{d} is out of range [0 .. {rank})");
            }
            seen[d] = true;
        }
        if let Some(i) = seen.iter().position(|s| !s) {
            let list: Vec<String> = perm.iter().map(usize::to_string).collect();
            invalid!("{i} is missing from {{{}}}.", list.join(","));
        }
        Ok(perm.clone())
    }
}

impl Op for Transpose {
    fn gradient(&self, ctx: &crate::gradients::GradContext) -> Result<Vec<Option<crate::graph::Output>>> {
        self.grad(ctx)
    }
    fn type_name(&self) -> &'static str {
        "Transpose"
    }
    fn attrs(&self) -> Vec<(&'static str, Attr)> {
        vec![("Tperm", Attr::Type(DType::I32))]
    }
    fn const_inputs(&self, inputs: &[TensorSpec]) -> Result<Vec<(usize, &'static str, Tensor)>> {
        let perm = self.perm_for(super::export_rank("Transpose", inputs.first())?)?;
        Ok(vec![(1, "perm", super::i32_vector(perm.iter().map(|&p| p as i64))?)])
    }
    fn infer(&self, inputs: &[TensorSpec]) -> InferResult {
        let x = &inputs[0];
        let shape = match (x.shape.dims(), &self.perm) {
            (Some(dims), _) => {
                if let Some(p) = self.perm.as_ref().filter(|p| p.len() != dims.len()) {
                    shape_err!("Dimension must be {} but is {}", dims.len(), p.len());
                }
                let perm = self.perm_for(dims.len())?;
                Shape::partial(&perm.iter().map(|&i| dims[i]).collect::<Vec<_>>())
            }
            (None, Some(p)) => {
                self.perm_for(p.len())?;
                Shape::unknown_dims(p.len())
            }
            (None, None) => Shape::unknown(),
        };
        Ok(vec![TensorSpec::new(x.dtype, shape)])
    }
    fn compute(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let x = inputs[0];
        let perm = self.perm_for(x.shape().len())?;
        if perm.iter().enumerate().all(|(i, &p)| i == p) {
            return Ok(vec![x.clone()]);
        }
        Ok(vec![each_dtype!(x, |a| crate::tensor::try_to_owned(a.view().permuted_axes(IxDyn(&perm)))?)])
    }
    fn gpu(&self, inputs: &[(DType, &[usize])]) -> Option<Result<GpuLowering>> {
        let (dtype, dims) = inputs[0];
        match self.perm_for(dims.len()) {
            Ok(perm) => gpu::transpose(dtype, dims, &perm),
            Err(e) => Some(Err(e)),
        }
    }
    fn gpu_supports(&self, inputs: &[(DType, &[usize])]) -> bool {
        let dims = inputs[0].1;
        self.perm_for(dims.len()).map_or(true, |perm| gpu::transpose_supported(dims, &perm))
    }
}

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
}

#[cfg(test)]
mod tests;
