//! The `Graph` builders of the NN backward ops.

use super::{BiasAddGrad, Conv2DGrad, ConvGradKind, PoolGrad};
use crate::error::{Error, Result};
use crate::graph::{Graph, Operand, Output};
use crate::ops::nn::{nhwc_sequence, Padding};
use crate::ops::{compute, Op};

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
        let op = Conv2DGrad::new(ConvGradKind::Input, input_sizes, strides, padding, dilations)?;
        self.add_conv_grad(op, filter.into(), out_backprop.into())
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
        let op = Conv2DGrad::new(ConvGradKind::Filter, filter_sizes, strides, padding, dilations)?;
        self.add_conv_grad(op, input.into(), out_backprop.into())
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
    /// Adds `op` on its first input (`filter` or `input`, by its kind) and `out_backprop`.
    fn add_conv_grad(&self, op: Conv2DGrad, first: Operand, out_backprop: Operand) -> Result<Output> {
        let (type_name, first_name) = (op.type_name(), op.kind.first_input());
        self.add_op1(type_name, compute(op), vec![(first_name, first), ("out_backprop", out_backprop)])
    }
}

impl Conv2DGrad {
    /// The op of `kind` from the builders' arguments, checked in TF's order: the sizes
    /// (4 values), then strides and dilations (1, 2 or 4 values).
    fn new(
        kind: ConvGradKind,
        sizes: &[usize],
        strides: &[usize],
        padding: Padding,
        dilations: &[usize],
    ) -> Result<Self> {
        Ok(Conv2DGrad {
            kind,
            sizes: shape4(kind.sizes_attr(), sizes)?,
            strides: nhwc_sequence("strides", strides)?,
            dilations: nhwc_sequence("dilations", dilations)?,
            padding,
        })
    }
}
