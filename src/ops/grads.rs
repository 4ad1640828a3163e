//! Gradients of the linear-algebra, reduction, softmax, shape and bias ops, with TF's
//! formulas. Each op's `gradient` delegates here, so its backward graph stays beside the
//! others of its kind.

use super::array::{Reshape, Transpose};
use super::linalg::{BatchMatMul, MatMul};
use super::reduce::{Reduce, ReduceKind};
use super::softmax::Softmax;
use super::{BinaryKind, UnaryKind};
use crate::error::{Error, Result};
use crate::gradients::{reshape_dims, GradContext};
use crate::graph::{Graph, Output};

type Grads = Result<Vec<Option<Output>>>;

/// The gradients of `a` and `b` of `matmul(a, b, ta, tb)`.
fn matmul_grads(g: &Graph, a: &Output, b: &Output, dy: &Output, ta: bool, tb: bool) -> Grads {
    let (ga, gb) = match (ta, tb) {
        (false, false) => (g.matmul(dy, b, false, true)?, g.matmul(a, dy, true, false)?),
        (false, true) => (g.matmul(dy, b, false, false)?, g.matmul(dy, a, true, false)?),
        (true, false) => (g.matmul(b, dy, false, true)?, g.matmul(a, dy, false, false)?),
        (true, true) => (g.matmul(b, dy, true, true)?, g.matmul(dy, a, true, true)?),
    };
    Ok(vec![Some(ga), Some(gb)])
}

impl MatMul {
    pub(crate) fn grad(&self, ctx: &GradContext) -> Grads {
        matmul_grads(ctx.graph, &ctx.inputs[0], &ctx.inputs[1], &ctx.dy()?, self.transpose_a, self.transpose_b)
    }
}

impl BatchMatMul {
    pub(crate) fn grad(&self, ctx: &GradContext) -> Grads {
        let (a, b) = (&ctx.inputs[0], &ctx.inputs[1]);
        if a.shape().rank() != b.shape().rank() {
            return Err(Error::unimplemented("the gradient of a broadcasting BatchMatMul"));
        }
        matmul_grads(ctx.graph, a, b, &ctx.dy()?, self.adj_x, self.adj_y)
    }
}

impl Reduce {
    /// The reduced axes (non-negative) and the input's static dims.
    fn reduced(&self, x: &Output) -> Result<(Vec<usize>, Vec<Option<usize>>)> {
        let shape = x.shape();
        let dims =
            shape.dims().ok_or_else(|| Error::unimplemented("the gradient of a reduction needs a static rank"))?;
        let rank = dims.len() as i64;
        let axes = match &self.axes {
            None => (0..dims.len()).collect(),
            Some(a) => a.iter().map(|&i| (if i < 0 { i + rank } else { i }) as usize).collect(),
        };
        Ok((axes, dims.to_vec()))
    }

    pub(crate) fn grad(&self, ctx: &GradContext) -> Grads {
        let g = ctx.graph;
        let (x, y) = (&ctx.inputs[0], &ctx.outputs[0]);
        let (axes, dims) = self.reduced(x)?;
        let kept: Vec<Option<usize>> =
            dims.iter().enumerate().map(|(i, d)| if axes.contains(&i) { Some(1) } else { *d }).collect();
        let keep = |t: &Output| -> Result<Output> {
            if self.keep_dims || t.shape().dims() == Some(kept.as_slice()) {
                Ok(t.clone())
            } else {
                g.reshape(t, &reshape_dims(&kept)?)
            }
        };
        let dy = keep(&ctx.dy()?)?;
        let axes_i: Vec<i64> = axes.iter().map(|&a| a as i64).collect();
        let gx = match self.kind {
            ReduceKind::Sum => g.binary(BinaryKind::Mul, &dy, g.unary(UnaryKind::OnesLike, x)?)?,
            ReduceKind::Mean => {
                let spread = g.binary(BinaryKind::Mul, &dy, g.unary(UnaryKind::OnesLike, x)?)?;
                let known: Option<usize> = axes.iter().map(|&a| dims[a]).product();
                match known {
                    Some(n) => g.binary(BinaryKind::Div, &spread, n as f32)?,
                    None => {
                        let n = g.reduce_sum(g.unary(UnaryKind::OnesLike, x)?, Some(&axes_i), true)?;
                        g.binary(BinaryKind::Div, &spread, &n)?
                    }
                }
            }
            ReduceKind::Max => {
                // Split among the maxima, as TF does.
                let mask = g.binary(BinaryKind::EqualMask, x, keep(y)?)?;
                let count = g.reduce_sum(&mask, Some(&axes_i), true)?;
                g.binary(BinaryKind::Mul, g.binary(BinaryKind::Div, &mask, &count)?, &dy)?
            }
        };
        Ok(vec![Some(gx)])
    }
}

impl Softmax {
    pub(crate) fn grad(&self, ctx: &GradContext) -> Grads {
        let g = ctx.graph;
        let (y, dy) = (&ctx.outputs[0], ctx.dy()?);
        let dot = g.reduce_sum(g.binary(BinaryKind::Mul, &dy, y)?, Some(&[self.axis]), true)?;
        Ok(vec![Some(g.binary(BinaryKind::Mul, g.sub(&dy, &dot)?, y)?)])
    }
}

impl Reshape {
    pub(crate) fn grad(&self, ctx: &GradContext) -> Grads {
        let x = &ctx.inputs[0];
        let shape = x.shape();
        let dims = shape.dims().ok_or_else(|| Error::unimplemented("the gradient of a reshape needs a static rank"))?;
        Ok(vec![Some(ctx.graph.reshape(ctx.dy()?, &reshape_dims(dims)?)?)])
    }
}

impl Transpose {
    pub(crate) fn grad(&self, ctx: &GradContext) -> Grads {
        let inverse = self.perm.as_ref().map(|p| {
            let mut inv = vec![0; p.len()];
            for (i, &d) in p.iter().enumerate() {
                inv[d] = i;
            }
            inv
        });
        Ok(vec![Some(ctx.graph.transpose(ctx.dy()?, inverse.as_deref())?)])
    }
}

/// `Identity` passes its gradient through.
pub(crate) fn identity(ctx: &GradContext) -> Grads {
    Ok(vec![Some(ctx.dy()?)])
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

/// The cross-entropy losses: the logits get `backprop * dy[:, None]`; dense labels get
/// `-log_softmax(logits) * dy[:, None]`, sparse labels none.
pub(crate) fn xent(ctx: &GradContext, sparse: bool) -> Grads {
    let g = ctx.graph;
    let (logits, labels, dy) = (&ctx.inputs[0], &ctx.inputs[1], ctx.dy()?);
    let backprop = if sparse {
        g.sparse_softmax_cross_entropy_with_logits_grad(labels, logits)?
    } else {
        g.softmax_cross_entropy_with_logits_grad(labels, logits)?
    };
    let column = g.reshape(&dy, &[-1, 1])?;
    // Dense labels: d/dlabels = -log_softmax(logits), as TF's gradient gives.
    let glabels = match ctx.needed.get(1) {
        Some(true) if !sparse => {
            let log_softmax = g.log(g.softmax(logits, -1)?)?;
            Some(g.binary(BinaryKind::Mul, g.neg(&log_softmax)?, &column)?)
        }
        _ => None,
    };
    Ok(vec![Some(g.binary(BinaryKind::Mul, &backprop, &column)?), glabels])
}
