//! Gradients of the matrix products, with TF's formulas.

use super::{BatchMatMul, MatMul};
use crate::error::{Error, Result};
use crate::gradients::GradContext;
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
