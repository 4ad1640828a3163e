//! Gradients of the reductions, with TF's formulas (a maximum's gradient split among ties).

use super::{Reduce, ReduceKind};
use crate::error::{Error, Result};
use crate::gradients::{reshape_dims, GradContext};
use crate::graph::Output;
use crate::ops::{BinaryKind, UnaryKind};

type Grads = Result<Vec<Option<Output>>>;

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
