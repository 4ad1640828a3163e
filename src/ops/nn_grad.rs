//! The backward ops of the NN ops, as ordinary graph ops (NHWC): `Conv2DBackpropInput`,
//! `Conv2DBackpropFilter`, `MaxPoolGrad`, `AvgPoolGrad` and `BiasAddGrad`. The heavy kernels
//! live in `runtime::cpu::{conv_grad, pool_grad}`, the GPU lowerings in `gpu.rs` beside this.
//!
//! Unlike TF, where `input_sizes`, `filter_sizes` and `orig_input_shape` are int32 tensor
//! inputs, they are attributes here (shape-like arguments are attributes in wgflow).
//! Convolution gradients handle one group (the filter's input depth equals the input's).

use super::nn::{bad_dtype, bad_dtype_run, ints, nhwc_sequence, with_rank, Padding, NUMBER_TYPES};
use super::{compute, same_dtype, Attr, GpuLowering, InferError, InferResult, Op};
use crate::error::{invalid, Error, Result};
use crate::graph::{Graph, Operand, Output};
use crate::runtime::cpu::conv::{array, contiguous};
use crate::runtime::cpu::conv_grad::{self, conv_grad_geometry};
use crate::runtime::cpu::pool::PoolElem;
use crate::runtime::cpu::pool_grad::{self, check_out_shape, pool_grad_geometry};
use crate::tensor::{DType, Shape, Tensor, TensorSpec};

pub(crate) mod gpu;

/// The dtypes TF's pool gradients accept (`realnumbertypes`).
const REAL_TYPES: &str =
    "float32, float64, int32, uint8, int16, int8, int64, bfloat16, uint16, float16, uint32, uint64";
/// The dtypes TF's convolution gradients accept.
const CONV_TYPES: &str = "float16, bfloat16, float32, float64, int32";

/// Runs a run-time shape check at graph-build time when every shape it needs is known: a
/// mismatch that is certain is reported by the builder, in the run-time words.
fn check_static(
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
fn conv_attrs(
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
enum ConvGradKind {
    /// `Conv2DBackpropInput`: inputs (filter, out_backprop); `sizes` is the input's shape.
    Input,
    /// `Conv2DBackpropFilter`: inputs (input, out_backprop); `sizes` is the filter's shape.
    Filter,
}

/// `Conv2DBackpropInput` / `Conv2DBackpropFilter`.
#[derive(Debug)]
struct Conv2DGrad {
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
        let name = match self.kind {
            ConvGradKind::Input => "input_sizes",
            ConvGradKind::Filter => "filter_sizes",
        };
        conv_attrs((name, &self.sizes), &self.strides, &self.dilations, self.padding)
    }
    fn infer(&self, inputs: &[TensorSpec]) -> InferResult {
        let (a, dy) = (&inputs[0], &inputs[1]);
        let first = match self.kind {
            ConvGradKind::Input => "filter",
            ConvGradKind::Filter => "input",
        };
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
}

/// `MaxPoolGrad` (inputs orig_input, orig_output, grad) or `AvgPoolGrad` (input grad; the
/// forward input's shape is `orig_input_shape`).
#[derive(Debug)]
struct PoolGrad {
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

/// Runs a pool gradient kernel on float tensors of one dtype.
fn pool_grad_typed<T: PoolElem>(
    op: &PoolGrad,
    g: &crate::runtime::cpu::pool::PoolGeom,
    arrays: &[&ndarray::ArcArray<T, ndarray::IxDyn>],
) -> Result<Tensor>
where
    ndarray::ArrayD<T>: Into<Tensor>,
{
    let xs = [g.batch, g.in_h, g.in_w, g.chan];
    let mut dx = crate::tensor::try_full(&xs, T::ZERO)?;
    match (op.avg_shape, arrays) {
        (Some(_), [dy]) => pool_grad::avg_pool_grad(&contiguous(dy), g, &mut dx)?,
        (None, [x, _, dy]) => pool_grad::max_pool_grad(&contiguous(x), &contiguous(dy), g, &mut dx)?,
        _ => return Err(Error::internal("pool gradient: wrong inputs")),
    }
    Ok(array(&xs, dx)?.into())
}

impl Op for PoolGrad {
    fn type_name(&self) -> &'static str {
        match self.avg_shape {
            Some(_) => "AvgPoolGrad",
            None => "MaxPoolGrad",
        }
    }
    fn attrs(&self) -> Vec<(&'static str, Attr)> {
        let mut a = vec![
            ("data_format", Attr::Str("NHWC".into())),
            ("ksize", ints(&self.ksize)),
            ("padding", Attr::Str(self.padding.tf_name().into())),
            ("strides", ints(&self.strides)),
        ];
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
}

/// `BiasAddGrad`: the sum of `out_backprop` over every axis but the last.
#[derive(Debug)]
struct BiasAddGrad;

/// TF's run-time check of `BiasAddGrad`'s input.
fn check_bias_grad_shape(s: &[usize]) -> Result<()> {
    if s.len() < 2 {
        invalid!("Input tensor must be at least 2D: {}", crate::tensor::dims_string(s));
    }
    Ok(())
}

/// Channel sums, rows added in order (the GPU kernel's order, so both agree exactly).
fn bias_add_grad<T: crate::tensor::ZeroBits + std::ops::Add<Output = T>>(dy: &[T], channels: usize) -> Result<Vec<T>> {
    let mut acc = crate::tensor::try_zeros::<T>(&[channels])?;
    if channels > 0 {
        for row in dy.chunks_exact(channels) {
            acc.iter_mut().zip(row).for_each(|(a, &v)| *a = *a + v);
        }
    }
    Ok(acc)
}

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
}

/// A shape attribute of exactly 4 values (NHWC).
fn shape4(name: &str, v: &[usize]) -> Result<[usize; 4]> {
    <[usize; 4]>::try_from(v).map_err(|_| {
        Error::invalid_argument(format!("{name} must have 4 elements (NHWC), got {}", crate::tensor::dims_string(v)))
    })
}

impl Graph {
    /// `tf.nn.conv2d_backprop_input(input_sizes, filter, out_backprop, strides, padding,
    /// dilations=dilations)` in NHWC: `Conv2DBackpropInput`, the gradient of
    /// [`Graph::conv2d`] with respect to its input (of shape `input_sizes`, 4 values).
    /// `strides` and `dilations` have 1, 2 or 4 values, as in TF's Python.
    pub fn conv2d_backprop_input(
        &self,
        input_sizes: &[usize],
        filter: impl Into<Operand>,
        out_backprop: impl Into<Operand>,
        strides: &[usize],
        padding: Padding,
        dilations: &[usize],
    ) -> Result<Output> {
        let op = Conv2DGrad {
            kind: ConvGradKind::Input,
            sizes: shape4("input_sizes", input_sizes)?,
            strides: nhwc_sequence("strides", strides)?,
            dilations: nhwc_sequence("dilations", dilations)?,
            padding,
        };
        let inputs = vec![("filter", filter.into()), ("out_backprop", out_backprop.into())];
        self.add_op1("Conv2DBackpropInput", compute(op), inputs)
    }
    /// `tf.nn.conv2d_backprop_filter(input, filter_sizes, out_backprop, strides, padding,
    /// dilations=dilations)` in NHWC: `Conv2DBackpropFilter`, the gradient of
    /// [`Graph::conv2d`] with respect to its filter (of shape `filter_sizes`, 4 values).
    pub fn conv2d_backprop_filter(
        &self,
        input: impl Into<Operand>,
        filter_sizes: &[usize],
        out_backprop: impl Into<Operand>,
        strides: &[usize],
        padding: Padding,
        dilations: &[usize],
    ) -> Result<Output> {
        let op = Conv2DGrad {
            kind: ConvGradKind::Filter,
            sizes: shape4("filter_sizes", filter_sizes)?,
            strides: nhwc_sequence("strides", strides)?,
            dilations: nhwc_sequence("dilations", dilations)?,
            padding,
        };
        let inputs = vec![("input", input.into()), ("out_backprop", out_backprop.into())];
        self.add_op1("Conv2DBackpropFilter", compute(op), inputs)
    }
    /// `MaxPoolGrad`: the gradient of [`Graph::max_pool`] with respect to its input. Each
    /// window's gradient goes to its max (the first on ties, the first NaN if any); the
    /// gradients of overlapping windows add up. `orig_output` is checked for its shape only.
    pub fn max_pool_grad(
        &self,
        orig_input: impl Into<Operand>,
        orig_output: impl Into<Operand>,
        grad: impl Into<Operand>,
        ksize: &[usize],
        strides: &[usize],
        padding: Padding,
    ) -> Result<Output> {
        let op = PoolGrad {
            avg_shape: None,
            ksize: nhwc_sequence("ksize", ksize)?,
            strides: nhwc_sequence("strides", strides)?,
            padding,
        };
        let inputs =
            vec![("orig_input", orig_input.into()), ("orig_output", orig_output.into()), ("grad", grad.into())];
        self.add_op1("MaxPoolGrad", compute(op), inputs)
    }
    /// `AvgPoolGrad`: the gradient of [`Graph::avg_pool`] with respect to its input, of shape
    /// `orig_input_shape` (4 values). Each window's gradient is shared equally by its valid
    /// (unpadded) cells.
    pub fn avg_pool_grad(
        &self,
        orig_input_shape: &[usize],
        grad: impl Into<Operand>,
        ksize: &[usize],
        strides: &[usize],
        padding: Padding,
    ) -> Result<Output> {
        let op = PoolGrad {
            avg_shape: Some(shape4("orig_input_shape", orig_input_shape)?),
            ksize: nhwc_sequence("ksize", ksize)?,
            strides: nhwc_sequence("strides", strides)?,
            padding,
        };
        self.add_op1("AvgPoolGrad", compute(op), vec![("grad", grad.into())])
    }
    /// `BiasAddGrad` (NHWC): the gradient of [`Graph::bias_add`] with respect to its bias,
    /// the sum of `out_backprop` over every axis but the last.
    pub fn bias_add_grad(&self, out_backprop: impl Into<Operand>) -> Result<Output> {
        self.add_op1("BiasAddGrad", compute(BiasAddGrad), vec![("out_backprop", out_backprop.into())])
    }
}
