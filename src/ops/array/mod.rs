//! Data movement and fills: `Reshape`, `Transpose` here, `ConcatV2` (`concat.rs`); `Pad`, `StridedSlice`, `Fill`, `Tile`, `GatherV2`,
//! `UnsortedSegmentSum` in files of their names. `cpu.rs` holds the CPU copies, `gpu.rs` the WGSL lowerings, `grad.rs`
//! the gradients, `build.rs` the `Graph` builders.

mod build;
mod concat;
mod cpu;
mod fill;
mod gather;
mod gpu;
mod grad;
mod pad;
mod segment_sum;
mod slice;
mod strided_slice;
mod tile;

pub(crate) use gpu::instantiations;
pub use strided_slice::SliceSpec;

use super::{shape_err, Attr, GpuLowering, InferResult, Op};
use crate::error::{invalid, Result};
pub(crate) use concat::Concat;
use cpu::reshape_arc;
use ndarray::IxDyn;

use crate::tensor::{DType, Shape, Tensor, TensorSpec};

/// The TF op types of this family (see `ops::registry`).
pub(crate) fn types() -> Vec<&'static str> {
    vec![
        "Reshape",
        "Transpose",
        "ConcatV2",
        "Fill",
        "Pad",
        "StridedSlice",
        "Slice",
        "Tile",
        "GatherV2",
        "UnsortedSegmentSum",
    ]
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

#[cfg(test)]
mod tests;
