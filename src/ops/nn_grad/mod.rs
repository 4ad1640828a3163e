//! The backward ops of the NN ops, as ordinary graph ops (NHWC): `Conv2DBackpropInput`,
//! `Conv2DBackpropFilter`, `MaxPoolGrad`, `AvgPoolGrad` and `BiasAddGrad`. The heavy kernels
//! live in `runtime::cpu::{conv_grad, pool_grad}` (called from `cpu.rs`), the GPU lowerings
//! in `gpu.rs`, the builders in `build.rs`.
//!
//! Unlike TF, where `input_sizes`, `filter_sizes` and `orig_input_shape` are int32 tensor
//! inputs, they are attributes here (shape-like arguments are attributes in wgflow).
//! Convolution gradients handle any number of groups (a depthwise convolution is one group per
//! input channel).

mod build;
mod cpu;
pub(crate) mod gpu;

pub(crate) use gpu::instantiations;

use super::nn::{bad_dtype, bad_dtype_run, ints, pool_attrs, with_rank, Padding, NUMBER_TYPES};
use super::{same_dtype, Attr, GpuLowering, InferError, InferResult, Op};
use crate::error::{invalid, Error, Result};
use crate::runtime::cpu::conv::{array, contiguous};
use crate::runtime::cpu::conv_grad::{self, conv_grad_geometry};
use crate::runtime::cpu::pool_grad::{check_out_shape, pool_grad_geometry};
use crate::tensor::{DType, Shape, Tensor, TensorSpec};
use cpu::{bias_add_grad, check_bias_grad_shape, pool_grad_typed};

/// The TF op types of this family (see `ops::registry`).
pub(crate) fn types() -> Vec<&'static str> {
    vec!["Conv2DBackpropInput", "Conv2DBackpropFilter", "MaxPoolGrad", "AvgPoolGrad", "BiasAddGrad"]
}

/// The dtypes TF's pool gradients accept (`realnumbertypes`).
pub(super) const REAL_TYPES: &str =
    "float32, float64, int32, uint8, int16, int8, int64, bfloat16, uint16, float16, uint32, uint64";
/// The dtypes TF's convolution gradients accept.
pub(super) const CONV_TYPES: &str = "float16, bfloat16, float32, float64, int32";

/// Runs a run-time shape check at graph-build time when every shape it needs is known: a
/// mismatch that is certain is reported by the builder, in the run-time words.
pub(super) fn check_static(
    specs: &[&Shape],
    check: impl FnOnce(&[Vec<usize>]) -> Result<()>,
) -> std::result::Result<(), InferError> {
    let known: Option<Vec<Vec<usize>>> = specs.iter().map(|s| s.to_vec()).collect();
    match known {
        Some(dims) => check(&dims).map_err(InferError::Other),
        None => Ok(()),
    }
}

/// The attributes TF prints for a convolution gradient, plus wgflow's size attribute.
pub(super) fn conv_attrs(
    sizes: (&'static str, &[usize; 4]),
    s: &[usize; 4],
    d: &[usize; 4],
    p: Padding,
) -> Vec<(&'static str, Attr)> {
    vec![
        ("data_format", Attr::Str("NHWC".into())),
        ("dilations", ints(d)),
        ("explicit_paddings", Attr::Ints(Vec::new())),
        (sizes.0, ints(sizes.1)),
        ("padding", Attr::Str(p.tf_name().into())),
        ("strides", ints(s)),
        ("use_cudnn_on_gpu", Attr::Bool(true)),
    ]
}

/// Which gradient of `Conv2D`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ConvGradKind {
    /// `Conv2DBackpropInput`: inputs (filter, out_backprop); `sizes` is the input's shape.
    Input,
    /// `Conv2DBackpropFilter`: inputs (input, out_backprop); `sizes` is the filter's shape.
    Filter,
}

impl ConvGradKind {
    /// The attr holding the shape of the gradient: `input_sizes` or `filter_sizes`.
    fn sizes_attr(self) -> &'static str {
        match self {
            ConvGradKind::Input => "input_sizes",
            ConvGradKind::Filter => "filter_sizes",
        }
    }
    /// The first input's name: the forward op's other operand, `filter` or `input`.
    fn first_input(self) -> &'static str {
        match self {
            ConvGradKind::Input => "filter",
            ConvGradKind::Filter => "input",
        }
    }
}

/// `Conv2DBackpropInput` / `Conv2DBackpropFilter`.
#[derive(Debug)]
pub(super) struct Conv2DGrad {
    kind: ConvGradKind,
    sizes: [usize; 4],
    strides: [usize; 4],
    dilations: [usize; 4],
    padding: Padding,
}

impl Conv2DGrad {
    /// The forward (input, filter) shapes from the node's first input and the sizes attr.
    fn forward<'a>(&'a self, first: &'a [usize]) -> (&'a [usize], &'a [usize]) {
        match self.kind {
            ConvGradKind::Input => (&self.sizes, first),
            ConvGradKind::Filter => (first, &self.sizes),
        }
    }
    fn geometry(&self, first: &[usize], dy: &[usize]) -> Result<crate::runtime::cpu::conv::ConvGeom> {
        let (xs, fs) = self.forward(first);
        conv_grad_geometry(self.type_name(), xs, fs, dy, self.strides, self.dilations, self.padding)
    }
}

impl Op for Conv2DGrad {
    fn type_name(&self) -> &'static str {
        match self.kind {
            ConvGradKind::Input => "Conv2DBackpropInput",
            ConvGradKind::Filter => "Conv2DBackpropFilter",
        }
    }
    fn attrs(&self) -> Vec<(&'static str, Attr)> {
        conv_attrs((self.kind.sizes_attr(), &self.sizes), &self.strides, &self.dilations, self.padding)
    }
    fn infer(&self, inputs: &[TensorSpec]) -> InferResult {
        let (a, dy) = (&inputs[0], &inputs[1]);
        let first = self.kind.first_input();
        same_dtype(self.type_name(), (first, a.dtype), ("out_backprop", dy.dtype))?;
        if !matches!(a.dtype, DType::F32 | DType::F64 | DType::I32) {
            return Err(bad_dtype(first, a.dtype, CONV_TYPES));
        }
        with_rank(&a.shape, 4)?;
        with_rank(&dy.shape, 4)?;
        check_static(&[&a.shape, &dy.shape], |d| self.geometry(&d[0], &d[1]).map(|_| ()))?;
        Ok(vec![TensorSpec::new(a.dtype, Shape::known(&self.sizes))])
    }
    fn compute(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let (a, dy) = (inputs[0], inputs[1]);
        let g = self.geometry(a.shape(), dy.shape())?;
        let (Tensor::F32(aa), Tensor::F32(dya)) = (a, dy) else {
            return Err(bad_dtype_run(self.type_name(), a.dtype()));
        };
        let (aa, dya) = (contiguous(aa), contiguous(dya));
        // The sizes are an attribute: checked before allocating.
        let mut out = crate::tensor::try_zeros::<f32>(&self.sizes)?;
        match self.kind {
            ConvGradKind::Input => conv_grad::backprop_input(&dya, &aa, &g, &mut out)?,
            ConvGradKind::Filter => conv_grad::backprop_filter(&aa, &dya, &g, &mut out)?,
        }
        Ok(vec![array(&self.sizes, out)?.into()])
    }
    fn gpu(&self, inputs: &[(DType, &[usize])]) -> Option<Result<GpuLowering>> {
        let [(DType::F32, a), (DType::F32, dy)] = inputs else {
            return None;
        };
        let g = match self.geometry(a, dy) {
            Ok(g) => g,
            Err(e) => return Some(Err(e)),
        };
        match self.kind {
            ConvGradKind::Input => gpu::conv_backprop_input(&g),
            ConvGradKind::Filter => gpu::conv_backprop_filter(&g),
        }
        .transpose()
    }
    fn gpu_supports(&self, inputs: &[(DType, &[usize])]) -> bool {
        matches!(inputs, [(DType::F32, _), (DType::F32, _)])
    }
}

/// `MaxPoolGrad` (inputs orig_input, orig_output, grad) or `AvgPoolGrad` (input grad; the
/// forward input's shape is `orig_input_shape`).
#[derive(Debug)]
pub(super) struct PoolGrad {
    /// `Some(orig_input_shape)` for `AvgPoolGrad`, `None` for `MaxPoolGrad`.
    avg_shape: Option<[usize; 4]>,
    ksize: [usize; 4],
    strides: [usize; 4],
    padding: Padding,
}

impl PoolGrad {
    /// The run-time checks: the forward geometry from the forward input's shape `xs`, and
    /// every other input against the forward output's shape.
    fn geometry(&self, xs: &[usize], outs: &[(&str, &[usize])]) -> Result<crate::runtime::cpu::pool::PoolGeom> {
        for (what, s) in outs {
            if s.len() != 4 {
                invalid!("{what} must be 4-dimensional");
            }
        }
        let g = pool_grad_geometry(self.avg_shape.is_none(), xs, self.ksize, self.strides, self.padding)?;
        outs.iter().try_for_each(|(what, s)| check_out_shape(what, &g, s))?;
        Ok(g)
    }
    /// The geometry from the node's input shapes.
    fn geometry_of(&self, shapes: &[&[usize]]) -> Result<crate::runtime::cpu::pool::PoolGeom> {
        match (self.avg_shape, shapes) {
            (Some(xs), [grad]) => self.geometry(&xs, &[("grad", grad)]),
            (None, [xs, y, grad]) => self.geometry(xs, &[("orig_output", y), ("grad", grad)]),
            _ => Err(Error::internal(format!("{} got {} inputs", self.type_name(), shapes.len()))),
        }
    }
}

impl Op for PoolGrad {
    fn type_name(&self) -> &'static str {
        match self.avg_shape {
            Some(_) => "AvgPoolGrad",
            None => "MaxPoolGrad",
        }
    }
    fn attrs(&self) -> Vec<(&'static str, Attr)> {
        let mut a = pool_attrs(&self.ksize, &self.strides, self.padding);
        match &self.avg_shape {
            Some(s) => a.push(("orig_input_shape", ints(s))),
            None => a.push(("explicit_paddings", Attr::Ints(Vec::new()))),
        }
        a
    }
    fn infer(&self, inputs: &[TensorSpec]) -> InferResult {
        let names = match self.avg_shape {
            Some(_) => &["grad"][..],
            None => &["orig_input", "orig_output", "grad"][..],
        };
        for (name, s) in names.iter().zip(inputs) {
            same_dtype(self.type_name(), (names[0], inputs[0].dtype), (name, s.dtype))?;
            with_rank(&s.shape, 4)?;
        }
        let dtype = inputs[0].dtype;
        if !matches!(dtype, DType::F32 | DType::F64) {
            return Err(bad_dtype(names[0], dtype, REAL_TYPES));
        }
        let shapes: Vec<&Shape> = inputs.iter().map(|s| &s.shape).collect();
        check_static(&shapes, |d| {
            let refs: Vec<&[usize]> = d.iter().map(Vec::as_slice).collect();
            self.geometry_of(&refs).map(|_| ())
        })?;
        let shape = match self.avg_shape {
            Some(s) => Shape::known(&s),
            None => inputs[0].shape.clone(),
        };
        Ok(vec![TensorSpec::new(dtype, shape)])
    }
    fn compute(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape()).collect();
        let g = self.geometry_of(&shapes)?;
        let out = if let Ok(a) = inputs.iter().map(|t| t.as_f32()).collect::<Result<Vec<_>>>() {
            pool_grad_typed(self, &g, &a)?
        } else if let Ok(a) = inputs.iter().map(|t| t.as_f64()).collect::<Result<Vec<_>>>() {
            pool_grad_typed(self, &g, &a)?
        } else {
            return Err(bad_dtype_run(self.type_name(), inputs[0].dtype()));
        };
        Ok(vec![out])
    }
    fn gpu(&self, inputs: &[(DType, &[usize])]) -> Option<Result<GpuLowering>> {
        if inputs.iter().any(|(d, _)| *d != DType::F32) {
            return None;
        }
        let shapes: Vec<&[usize]> = inputs.iter().map(|(_, s)| *s).collect();
        self.geometry_of(&shapes).and_then(|g| gpu::pool_grad(&g, self.avg_shape.is_none())).transpose()
    }
    fn gpu_supports(&self, inputs: &[(DType, &[usize])]) -> bool {
        inputs.iter().all(|(d, _)| *d == DType::F32)
    }
}

/// `BiasAddGrad`: the sum of `out_backprop` over every axis but the last.
#[derive(Debug)]
pub(super) struct BiasAddGrad;

impl Op for BiasAddGrad {
    fn type_name(&self) -> &'static str {
        "BiasAddGrad"
    }
    fn attrs(&self) -> Vec<(&'static str, Attr)> {
        vec![("data_format", Attr::Str("NHWC".into()))]
    }
    fn infer(&self, inputs: &[TensorSpec]) -> InferResult {
        let dy = &inputs[0];
        if !matches!(dy.dtype, DType::F32 | DType::F64 | DType::I32) {
            return Err(bad_dtype("out_backprop", dy.dtype, NUMBER_TYPES));
        }
        if let Some(r) = dy.shape.rank().filter(|&r| r < 2) {
            super::shape_err!("Shape must be at least rank 2 but is rank {r}");
        }
        Ok(vec![TensorSpec::new(dy.dtype, Shape::partial(&[dy.shape.dim(-1)]))])
    }
    fn compute(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let dy = inputs[0];
        check_bias_grad_shape(dy.shape())?;
        let c = dy.shape()[dy.shape().len() - 1];
        let out: Tensor = match dy {
            Tensor::F32(a) => array(&[c], bias_add_grad(&contiguous(a), c)?)?.into(),
            Tensor::F64(a) => array(&[c], bias_add_grad(&contiguous(a), c)?)?.into(),
            Tensor::I32(a) => array(&[c], bias_add_grad(&contiguous(a), c)?)?.into(),
            other => return Err(bad_dtype_run("BiasAddGrad", other.dtype())),
        };
        Ok(vec![out])
    }
    fn gpu(&self, inputs: &[(DType, &[usize])]) -> Option<Result<GpuLowering>> {
        let [(DType::F32, s)] = inputs else {
            return None;
        };
        Some(check_bias_grad_shape(s).and_then(|()| gpu::bias_add_grad(s)))
    }
    fn gpu_supports(&self, inputs: &[(DType, &[usize])]) -> bool {
        matches!(inputs, [(DType::F32, _)])
    }
}
