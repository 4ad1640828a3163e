//! Gradients of the cross-entropy losses, with TF's formulas.

use crate::error::Result;
use crate::gradients::GradContext;
use crate::graph::Output;
use crate::ops::BinaryKind;

type Grads = Result<Vec<Option<Output>>>;

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
