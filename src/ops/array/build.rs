//! The `Graph` builders of the data movement ops.

use super::gpu::MAX_CONCAT_INPUTS;
use super::{Concat, Reshape, Transpose};
use crate::error::{invalid, Result};
use crate::graph::{Graph, Operand, Output};
use crate::ops::compute;

impl Graph {
    /// `tf.reshape(x, shape)` (`Reshape`): one entry of `shape` may be -1, inferred from the
    /// number of elements. A size mismatch known statically fails here; one found at run time
    /// fails the run, with TF's messages either way.
    pub fn reshape(&self, x: impl Into<Operand>, shape: &[i64]) -> Result<Output> {
        self.add_op1("Reshape", compute(Reshape { shape: shape.to_vec() }), vec![("tensor", x.into())])
    }

    /// `tf.transpose(x, perm)` (`Transpose`, named `transpose`): output dimension `i` is input
    /// dimension `perm[i]`; `None` reverses the dimensions.
    pub fn transpose(&self, x: impl Into<Operand>, perm: Option<&[usize]>) -> Result<Output> {
        self.add_op1("transpose", compute(Transpose { perm: perm.map(<[usize]>::to_vec) }), vec![("x", x.into())])
    }

    /// `tf.concat(values, axis)` (`ConcatV2`, named `concat`); a negative axis counts from the
    /// end. As in TF, a single value gives an `Identity` named `concat`. More values than one
    /// GPU kernel binds are joined in a tree of concats (`<name>/part_k`, then `<name>`).
    pub fn concat(&self, values: &[Output], axis: i64) -> Result<Output> {
        match values {
            [] => invalid!("List argument 'values' to 'ConcatV2' Op with length 0 shorter than minimum length 2."),
            [one] => self.named("concat").identity(one),
            many if many.len() > MAX_CONCAT_INPUTS => {
                let name = self.write().op_name("concat")?;
                let parts = many
                    .chunks(MAX_CONCAT_INPUTS)
                    .enumerate()
                    .map(|(k, chunk)| match chunk {
                        [one] => Ok(one.clone()),
                        _ => self.named(&format!("{name}/part_{k}/")).concat(chunk, axis),
                    })
                    .collect::<Result<Vec<_>>>()?;
                self.named(&format!("{name}/")).concat(&parts, axis)
            }
            _ => {
                let inputs = values.iter().map(|v| ("values", Operand::from(v))).collect();
                self.add_op1("concat", compute(Concat { axis, n: values.len() }), inputs)
            }
        }
    }
}
