//! Gradients of the data movement ops: a reshape back, the inverse transpose.

use super::{Reshape, Transpose};
use crate::error::{Error, Result};
use crate::gradients::{reshape_dims, GradContext};
use crate::graph::Output;

type Grads = Result<Vec<Option<Output>>>;

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
