//! Gradients of the NN ops, with TF's formulas: the convolution and pool gradients are the
//! backward ops of `nn_grad`, `BiasAdd` sums over all but the channel axis, `Softmax`'s is
//! `(dy - sum(dy * y)) * y`.

use super::Softmax;
use crate::error::{Error, Result};
use crate::gradients::GradContext;
use crate::graph::Output;
use crate::ops::BinaryKind;

type Grads = Result<Vec<Option<Output>>>;

impl Softmax {
    pub(crate) fn grad(&self, ctx: &GradContext) -> Grads {
        let g = ctx.graph;
        let (y, dy) = (&ctx.outputs[0], ctx.dy()?);
        let dot = g.reduce_sum(g.binary(BinaryKind::Mul, &dy, y)?, Some(&[self.axis]), true)?;
        Ok(vec![Some(g.binary(BinaryKind::Mul, g.sub(&dy, &dot)?, y)?)])
    }
}

/// `BiasAdd`: the value gets the gradient, the bias its sum over all but the last axis.
pub(crate) fn bias_add(ctx: &GradContext) -> Grads {
    let dy = ctx.dy()?;
    let rank = dy.shape().rank().ok_or_else(|| Error::unimplemented("the gradient of BiasAdd needs a static rank"))?;
    let axes: Vec<i64> = (0..rank as i64 - 1).collect();
    Ok(vec![Some(dy.clone()), Some(ctx.graph.reduce_sum(&dy, Some(&axes), false)?)])
}

/// Static dims of `t`, all known, for the shape attrs of the backprop ops.
fn known_dims(t: &Output, what: &str) -> Result<Vec<usize>> {
    t.shape()
        .dims()
        .and_then(|d| d.iter().copied().collect())
        .ok_or_else(|| Error::unimplemented(format!("the gradient of {what} needs the input's full static shape")))
}

/// `Conv2D`: `Conv2DBackpropInput` for the input (when needed: its sizes must be static) and
/// `Conv2DBackpropFilter` for the filter.
pub(crate) fn conv2d(ctx: &GradContext, strides: &[usize], dilations: &[usize], padding: super::Padding) -> Grads {
    let g = ctx.graph;
    let (x, f, dy) = (&ctx.inputs[0], &ctx.inputs[1], ctx.dy()?);
    let gx = match ctx.needed.first() {
        Some(true) => {
            let sizes = known_dims(x, "Conv2D")?;
            Some(g.conv2d_backprop_input(&sizes, f, &dy, strides, padding, dilations)?)
        }
        _ => None,
    };
    let gf = match ctx.needed.get(1) {
        Some(true) => {
            let sizes = known_dims(f, "Conv2D")?;
            Some(g.conv2d_backprop_filter(x, &sizes, &dy, strides, padding, dilations)?)
        }
        _ => None,
    };
    Ok(vec![gx, gf])
}

/// `MaxPool` and `AvgPool`.
pub(crate) fn pool(ctx: &GradContext, max: bool, ksize: &[usize], strides: &[usize], padding: super::Padding) -> Grads {
    let g = ctx.graph;
    let (x, dy) = (&ctx.inputs[0], ctx.dy()?);
    let gx = if max {
        g.max_pool_grad(x, &ctx.outputs[0], &dy, ksize, strides, padding)?
    } else {
        g.avg_pool_grad(&known_dims(x, "AvgPool")?, &dy, ksize, strides, padding)?
    };
    Ok(vec![Some(gx)])
}
