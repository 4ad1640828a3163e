//! Gradients of the elementwise ops, with TF's formulas; a broadcast input gets its gradient
//! summed back to its shape.

use super::{Binary, BinaryKind, Cast, Unary, UnaryKind};
use crate::error::Result;
use crate::gradients::{sum_to, GradContext};
use crate::graph::Output;

impl Binary {
    /// The gradients of `x` and `y`.
    pub(crate) fn grad(&self, ctx: &GradContext) -> Result<Vec<Option<Output>>> {
        let g = ctx.graph;
        let (x, y) = (&ctx.inputs[0], &ctx.inputs[1]);
        let dy = ctx.dy()?;
        let (gx, gy) = match self.0 {
            BinaryKind::Add => (dy.clone(), dy),
            BinaryKind::Sub => (dy.clone(), g.neg(&dy)?),
            BinaryKind::Mul => (g.binary(BinaryKind::Mul, &dy, y)?, g.binary(BinaryKind::Mul, x, &dy)?),
            BinaryKind::Div => {
                let gx = g.binary(BinaryKind::Div, &dy, y)?;
                // -dy * x / y²
                let q = g.binary(BinaryKind::Div, g.binary(BinaryKind::Div, g.neg(x)?, y)?, y)?;
                (gx, g.binary(BinaryKind::Mul, &dy, &q)?)
            }
            BinaryKind::Maximum | BinaryKind::Minimum => {
                // TF: x gets the gradient where x >= y (x <= y for the minimum), ties included.
                let d = if self.0 == BinaryKind::Maximum { g.sub(y, x)? } else { g.sub(x, y)? };
                let gy = g.binary(BinaryKind::ReluGrad, &dy, &d)?;
                (g.sub(&dy, &gy)?, gy)
            }
            BinaryKind::SquaredDifference => {
                let two_d = g.binary(BinaryKind::Mul, 2.0f32, g.sub(x, y)?)?;
                let gx = g.binary(BinaryKind::Mul, &dy, &two_d)?;
                (gx.clone(), g.neg(&gx)?)
            }
            BinaryKind::Pow => {
                // dz/dx = y x^(y-1); dz/dy = z log(x) where x > 0, else 0.
                let z = &ctx.outputs[0];
                let gx = g.binary(BinaryKind::Mul, &dy, g.binary(BinaryKind::Mul, y, g.pow(x, g.sub(y, 1.0f32)?)?)?)?;
                let log_x = g.log(g.binary(BinaryKind::Maximum, x, 1e-30f32)?)?;
                let positive = g.binary(BinaryKind::ReluGrad, g.unary(UnaryKind::OnesLike, x)?, x)?;
                let gy = g.binary(
                    BinaryKind::Mul,
                    &dy,
                    g.binary(BinaryKind::Mul, z, g.binary(BinaryKind::Mul, log_x, positive)?)?,
                )?;
                (gx, gy)
            }
            // TF registers these as not differentiable: no gradient reaches either input.
            BinaryKind::FloorDiv | BinaryKind::TruncateDiv => return Ok(vec![None, None]),
            other => return Err(no_gradient(other.tf_name())),
        };
        Ok(vec![Some(sum_to(g, gx, x)?), Some(sum_to(g, gy, y)?)])
    }
}

impl Unary {
    /// The gradient of `x`.
    pub(crate) fn grad(&self, ctx: &GradContext) -> Result<Vec<Option<Output>>> {
        let g = ctx.graph;
        let (x, y) = (&ctx.inputs[0], &ctx.outputs[0]);
        let dy = ctx.dy()?;
        let gx = match self.0 {
            UnaryKind::Neg => g.neg(&dy)?,
            UnaryKind::Abs => {
                // dy * sign(x), sign(0) = 0.
                let up = g.binary(BinaryKind::ReluGrad, &dy, x)?;
                let down = g.binary(BinaryKind::ReluGrad, &dy, g.neg(x)?)?;
                g.sub(&up, &down)?
            }
            UnaryKind::Exp => g.binary(BinaryKind::Mul, &dy, y)?,
            UnaryKind::Log => g.binary(BinaryKind::Div, &dy, x)?,
            UnaryKind::Sqrt => g.binary(BinaryKind::SqrtGrad, y, &dy)?,
            UnaryKind::Rsqrt => g.binary(BinaryKind::RsqrtGrad, y, &dy)?,
            UnaryKind::Tanh => g.binary(BinaryKind::TanhGrad, y, &dy)?,
            UnaryKind::Sigmoid => g.binary(BinaryKind::SigmoidGrad, y, &dy)?,
            UnaryKind::Relu => g.binary(BinaryKind::ReluGrad, &dy, x)?,
            UnaryKind::Relu6 => g.binary(BinaryKind::Relu6Grad, &dy, x)?,
            UnaryKind::Elu => g.binary(BinaryKind::EluGrad, &dy, y)?,
            UnaryKind::Square => g.binary(BinaryKind::Mul, &dy, g.binary(BinaryKind::Mul, 2.0f32, x)?)?,
            UnaryKind::OnesLike | UnaryKind::ZerosLike => return Ok(vec![None]),
        };
        Ok(vec![Some(gx)])
    }
}

impl Cast {
    /// The gradient cast back to the input's dtype (none for integer inputs).
    pub(crate) fn grad(&self, ctx: &GradContext) -> Result<Vec<Option<Output>>> {
        let x = &ctx.inputs[0];
        if !is_float(x.dtype()) || !is_float(self.0) {
            return Ok(vec![None]);
        }
        Ok(vec![Some(ctx.graph.cast(ctx.dy()?, x.dtype())?)])
    }
}

fn is_float(d: crate::tensor::DType) -> bool {
    matches!(d, crate::tensor::DType::F32 | crate::tensor::DType::F64)
}

fn no_gradient(op: &str) -> crate::error::Error {
    crate::error::Error::unimplemented(format!("No gradient defined for operation of type {op}"))
}
