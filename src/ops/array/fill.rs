//! `Fill`: a tensor of a static shape whose every element is a scalar input, made at run time
//! (`tf.fill`). `tf.zeros` and `tf.ones` of 1,000 elements or more build one, as TF does
//! (`_constant_if_small`), so that a large constant costs nothing until it runs and a shape
//! too large to hold fails with a typed error instead of an abort.
//!
//! TF's `Fill` takes its shape as an int32/int64 tensor; wgflow has no int64 and its shape
//! inference sees no constant values, so the shape is the op's attribute and the value its one
//! input (named `<name>/Const` for `zeros`/`ones`, as TF names it).

use super::gpu::fill_wgsl;
use crate::error::{invalid, Result};
use crate::graph::{Graph, Operand, Output};
use crate::ops::{cached_wgsl, compute, shape_err, GpuLowering, InferResult, Op, OpKind};
use crate::runtime::gpu::shaders as gpu_shaders;
use crate::tensor::{checked_elements, dims_string, try_filled_array, DType, Shape, Tensor, TensorSpec};

/// `ones`/`zeros` of fewer elements are constants (TF's `_constant_if_small`).
const SMALL: usize = 1000;

/// `Fill` of a static shape.
#[derive(Debug)]
pub(crate) struct Fill {
    pub(crate) shape: Vec<usize>,
}

impl Op for Fill {
    fn type_name(&self) -> &'static str {
        "Fill"
    }
    fn const_inputs(&self, _inputs: &[TensorSpec]) -> Result<Vec<(usize, &'static str, Tensor)>> {
        Ok(vec![(0, "dims", crate::ops::i32_vector(self.shape.iter().map(|&d| d as i64))?)])
    }
    fn infer(&self, inputs: &[TensorSpec]) -> InferResult {
        let value = &inputs[0];
        if let Some(rank) = value.shape.rank().filter(|&r| r != 0) {
            shape_err!("Shape must be rank 0 but is rank {rank}");
        }
        if let Err(e) = checked_elements(&self.shape) {
            shape_err!("{}", e.message);
        }
        Ok(vec![TensorSpec::new(value.dtype, Shape::known(&self.shape))])
    }
    fn compute(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let value = inputs[0];
        if !value.shape().is_empty() {
            invalid!("value must be a scalar, got shape {}", dims_string(value.shape()));
        }
        let out = match value {
            Tensor::F32(a) => Tensor::F32(try_filled_array(&self.shape, scalar(a)?)?),
            Tensor::I32(a) => Tensor::I32(try_filled_array(&self.shape, scalar(a)?)?),
            Tensor::F64(a) => Tensor::F64(try_filled_array(&self.shape, scalar(a)?)?),
            Tensor::Bool(a) => Tensor::Bool(try_filled_array(&self.shape, scalar(a)?)?),
            Tensor::Str(a) => Tensor::Str(try_filled_array(&self.shape, scalar(a)?)?),
        };
        Ok(vec![out])
    }
    fn gpu(&self, inputs: &[(DType, &[usize])]) -> Option<Result<GpuLowering>> {
        let (dtype, shape) = inputs[0];
        if !matches!(dtype, DType::F32 | DType::I32) {
            return None;
        }
        Some(self.lower(dtype, shape))
    }
    fn gpu_supports(&self, inputs: &[(DType, &[usize])]) -> bool {
        matches!(inputs[0].0, DType::F32 | DType::I32)
    }
    fn gradient(&self, ctx: &crate::gradients::GradContext) -> Result<Vec<Option<Output>>> {
        // TF's `_FillGrad`: the value's gradient is the sum of the output's.
        Ok(vec![Some(ctx.graph.reduce_sum(ctx.dy()?, None, false)?)])
    }
}

impl Fill {
    fn lower(&self, dtype: DType, value_shape: &[usize]) -> Result<GpuLowering> {
        if !value_shape.is_empty() {
            invalid!("value must be a scalar, got shape {}", dims_string(value_shape));
        }
        let n = checked_elements(&self.shape)?;
        let wgsl = cached_wgsl(format!("fill {dtype}"), || fill_wgsl(dtype))?;
        Ok(GpuLowering::Kernel {
            wgsl: wgsl.into(),
            uniforms: Vec::new(),
            invocations: n as u64,
            workgroup_size: gpu_shaders::ELEMENTWISE_WORKGROUP_SIZE,
            out: (dtype, self.shape.clone()),
        })
    }
}

/// The one element of a scalar `value`.
fn scalar<T: Clone>(value: &ndarray::ArcArray<T, ndarray::IxDyn>) -> Result<T> {
    match value.iter().next() {
        Some(v) => Ok(v.clone()),
        None => invalid!("value must be a scalar"),
    }
}

impl Graph {
    /// `tf.fill(shape, value)`: a tensor of `shape` whose every element is the scalar `value`,
    /// filled when the graph runs.
    pub fn fill(&self, shape: &[usize], value: impl Into<Operand>) -> Result<Output> {
        self.add_op1("Fill", compute(Fill { shape: shape.to_vec() }), vec![("value", value.into())])
    }

    /// `tf.ones(shape)` / `tf.zeros(shape)` of float32: a constant below 1,000 elements, else
    /// `Fill` of the scalar constant `<name>/Const`.
    fn constant_fill(&self, name: &str, shape: &[usize], value: f32) -> Result<Output> {
        match checked_elements(shape) {
            Ok(n) if n < SMALL => {
                self.add_op1(name, OpKind::Const(Tensor::try_filled(DType::F32, shape, f64::from(value))?), Vec::new())
            }
            _ => self.add_op1(name, compute(Fill { shape: shape.to_vec() }), vec![("Const", value.into())]),
        }
    }

    /// `tf.ones(shape)`: float32 ones named `ones` (a `Const`, or a `Fill` from 1,000 elements).
    pub fn ones(&self, shape: &[usize]) -> Result<Output> {
        self.constant_fill("ones", shape, 1.0)
    }

    /// `tf.zeros(shape)`: float32 zeros named `zeros` (a `Const`, or a `Fill` from 1,000
    /// elements).
    pub fn zeros(&self, shape: &[usize]) -> Result<Output> {
        self.constant_fill("zeros", shape, 0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_kernels_validate() {
        for dtype in [DType::F32, DType::I32] {
            let src = fill_wgsl(dtype).unwrap();
            let module = naga::front::wgsl::parse_str(&src).unwrap();
            naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all())
                .validate(&module)
                .unwrap();
        }
    }

    #[test]
    fn cpu_fill_checks_sizes_before_allocating() {
        let f = Fill { shape: vec![1 << 40, 1 << 40] };
        assert!(f.infer(&[TensorSpec::new(DType::F32, Shape::known(&[]))]).is_err());
        let f = Fill { shape: vec![2, 3] };
        let out = f.compute(&[&Tensor::from(7i32)]).unwrap();
        assert_eq!(out[0], Tensor::from_i32(&[2, 3], vec![7; 6]).unwrap());
        assert!(f.compute(&[&Tensor::from(vec![1.0f32, 2.0])]).is_err());
    }
}
