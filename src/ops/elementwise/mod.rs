//! Elementwise ops with numpy broadcasting (`AddV2`, `Mul`, `Relu`, ..., `Cast`): each
//! binary and unary op is one row of the table in `table.rs`. `cpu.rs` holds the CPU loops,
//! `gpu.rs` the WGSL lowering, `grad.rs` the gradients, `build.rs` the `Graph` builders.

mod build;
mod cast_gpu;
mod cpu;
mod gpu;
mod grad;
mod kind;
mod table;

pub(crate) use cpu::{broadcast_shapes, broadcast_static, check_bias_shapes};
pub(crate) use gpu::instantiations;
pub use kind::ElemKind;
pub use table::{BinaryKind, UnaryKind};

use super::{shape_err, GpuLowering, InferResult, Op};
use crate::error::{invalid, Error, Result};
use crate::graph::Output;
use crate::tensor::{DType, Tensor, TensorSpec};
use cpu::{check_dtype, map, no_kernel, zip_map};

/// The TF op types of this family (see `ops::registry`): the table's rows and `Cast`.
pub(crate) fn types() -> Vec<&'static str> {
    let binary = BinaryKind::ALL.iter().map(|k| k.tf_name());
    binary.chain(UnaryKind::ALL.iter().map(|k| k.tf_name())).chain(["Cast"]).collect()
}

/// Whether the elementwise templates have a kernel for operands of `dtype`: float32 always,
/// int32 where the kind has an int32 WGSL expression.
fn has_gpu_kernel(dtype: DType, has_i32: bool) -> bool {
    dtype == DType::F32 || (dtype == DType::I32 && has_i32)
}

/// A binary elementwise node.
#[derive(Debug)]
pub(crate) struct Binary(pub(crate) BinaryKind);

impl Op for Binary {
    fn elementwise(&self) -> Option<ElemKind> {
        Some(ElemKind::Binary(self.0))
    }
    fn gradient(&self, ctx: &crate::gradients::GradContext) -> Result<Vec<Option<Output>>> {
        self.grad(ctx)
    }
    fn type_name(&self) -> &'static str {
        self.0.tf_name()
    }
    fn infer(&self, inputs: &[TensorSpec]) -> InferResult {
        let (a, b) = (&inputs[0], &inputs[1]);
        super::same_dtype(self.0.tf_name(), ("x", a.dtype), ("y", b.dtype))?;
        check_dtype(self.0.tf_name(), a.dtype, self.0.i32().is_some())?;
        match broadcast_static(&a.shape, &b.shape) {
            Ok(shape) => Ok(vec![TensorSpec::new(a.dtype, shape)]),
            Err(msg) => shape_err!("{msg}"),
        }
    }
    fn compute(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let k = self.0;
        let out: Tensor = match (inputs[0], inputs[1]) {
            (Tensor::F32(a), Tensor::F32(b)) => k.zip_f32(a, b)?.into(),
            (Tensor::F64(a), Tensor::F64(b)) => k.zip_f64(a, b)?.into(),
            (Tensor::I32(a), Tensor::I32(b)) => {
                let f = k.i32().ok_or_else(|| no_kernel(k.tf_name(), DType::I32))?;
                if matches!(k, BinaryKind::FloorDiv | BinaryKind::TruncateDiv) && b.iter().any(|&v| v == 0) {
                    invalid!("Integer division by zero");
                }
                zip_map(a, b, f)?.into()
            }
            (a, b) => invalid!("{}: mismatched or unsupported dtypes {} and {}", k.tf_name(), a.dtype(), b.dtype()),
        };
        Ok(vec![out])
    }
    fn gpu(&self, inputs: &[(DType, &[usize])]) -> Option<Result<GpuLowering>> {
        self.gpu_supports(inputs).then(|| self.lower(inputs[0], inputs[1]))
    }
    fn gpu_supports(&self, inputs: &[(DType, &[usize])]) -> bool {
        has_gpu_kernel(inputs[0].0, self.0.wgsl_i32().is_some())
    }
}

/// A unary elementwise node.
#[derive(Debug)]
pub(crate) struct Unary(pub(crate) UnaryKind);

impl Op for Unary {
    fn elementwise(&self) -> Option<ElemKind> {
        Some(ElemKind::Unary(self.0))
    }
    fn gradient(&self, ctx: &crate::gradients::GradContext) -> Result<Vec<Option<Output>>> {
        self.grad(ctx)
    }
    fn type_name(&self) -> &'static str {
        self.0.tf_name()
    }
    fn infer(&self, inputs: &[TensorSpec]) -> InferResult {
        check_dtype(self.0.tf_name(), inputs[0].dtype, self.0.i32().is_some())?;
        Ok(vec![inputs[0].clone()])
    }
    fn compute(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let k = self.0;
        let out: Tensor = match inputs[0] {
            Tensor::F32(a) => k.map_f32(a)?.into(),
            Tensor::F64(a) => k.map_f64(a)?.into(),
            Tensor::I32(a) => map(a, k.i32().ok_or_else(|| no_kernel(k.tf_name(), DType::I32))?)?.into(),
            other => return Err(no_kernel(k.tf_name(), other.dtype())),
        };
        Ok(vec![out])
    }
    fn gpu(&self, inputs: &[(DType, &[usize])]) -> Option<Result<GpuLowering>> {
        self.lower(inputs[0])
    }
    fn gpu_supports(&self, inputs: &[(DType, &[usize])]) -> bool {
        has_gpu_kernel(inputs[0].0, self.0.wgsl_i32().is_some())
    }
}

/// `Cast` between numeric dtypes.
#[derive(Debug)]
pub(crate) struct Cast(pub(crate) DType);

impl Op for Cast {
    fn gradient(&self, ctx: &crate::gradients::GradContext) -> Result<Vec<Option<Output>>> {
        self.grad(ctx)
    }
    fn type_name(&self) -> &'static str {
        "Cast"
    }
    fn attrs(&self) -> Vec<(&'static str, super::Attr)> {
        vec![("DstT", super::Attr::Type(self.0))]
    }
    fn infer(&self, inputs: &[TensorSpec]) -> InferResult {
        Ok(vec![TensorSpec::new(self.0, inputs[0].shape.clone())])
    }
    fn compute(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let out: Tensor = match (inputs[0], self.0) {
            (t, d) if t.dtype() == d => t.clone(),
            (Tensor::I32(a), DType::F32) => map(a, |x| x as f32)?.into(),
            (Tensor::I32(a), DType::F64) => map(a, f64::from)?.into(),
            (Tensor::F32(a), DType::I32) => map(a, |x| x as i32)?.into(),
            (Tensor::F32(a), DType::F64) => map(a, f64::from)?.into(),
            (Tensor::F64(a), DType::F32) => map(a, |x| x as f32)?.into(),
            (Tensor::Bool(a), DType::F32) => map(a, |x| f32::from(u8::from(x)))?.into(),
            (t, d) => return Err(Error::unimplemented(format!("Cast from {} to {d} is not supported", t.dtype()))),
        };
        Ok(vec![out])
    }
    fn gpu(&self, inputs: &[(DType, &[usize])]) -> Option<Result<crate::ops::GpuLowering>> {
        let (from, dims) = inputs[0];
        cast_gpu::cast(from, self.0, dims)
    }
    fn gpu_supports(&self, inputs: &[(DType, &[usize])]) -> bool {
        cast_gpu::supported(inputs[0].0, self.0)
    }
}
