//! `DepthwiseConv2dNative` as a grouped `Conv2D`: with a filter of `[KH, KW, C, M]`, output
//! channel `c * M + m` convolves input channel `c` with `filter[.., .., c, m]`, which is a
//! convolution with one group per input channel whose filter is the same data read as
//! `[KH, KW, 1, C * M]`. So the CPU kernel, the WGSL kernel and the shape checks are
//! `Conv2D`'s; the graph holds a `Conv2D` named as the depthwise op.

use crate::error::{Error, Result};
use crate::graph::{Graph, Operand, Output};
use crate::ops::{OpKind, Padding};
use crate::tensor::Tensor;

impl Graph {
    /// `tf.nn.depthwise_conv2d_native(input, filter, strides, padding, dilations)` in NHWC
    /// (named `depthwise`): `filter` is `[KH, KW, C, M]`, the output has `C * M` channels.
    /// Built as a `Conv2D` with `C` groups; the filter's static shape must be known.
    pub fn depthwise_conv2d(
        &self,
        input: impl Into<Operand>,
        filter: impl Into<Operand>,
        strides: &[usize],
        padding: Padding,
        dilations: &[usize],
    ) -> Result<Output> {
        let name = self.write().op_name("depthwise")?;
        let grouped = match filter.into() {
            Operand::Value(t) => Operand::Value(regroup(&t)?),
            Operand::Tensor(f) => {
                let constant = match &self.read().nodes[f.op().id].op {
                    OpKind::Const(t) => Some(regroup(t)?),
                    _ => None,
                };
                match constant {
                    Some(t) => Operand::Value(t),
                    None => {
                        let dims = f.shape().to_vec().filter(|d| d.len() == 4).ok_or_else(|| {
                            Error::unimplemented(format!("{name}: a depthwise filter needs a known static shape"))
                        })?;
                        let shape = [dims[0] as i64, dims[1] as i64, 1, (dims[2] * dims[3]) as i64];
                        Operand::Tensor(self.named(&format!("{name}/grouped_filter")).reshape(&f, &shape)?)
                    }
                }
            }
        };
        self.named(&format!("{name}/")).conv2d(input, grouped, strides, padding, dilations)
    }
}

/// A `[KH, KW, C, M]` filter value as `[KH, KW, 1, C * M]` (the same data).
fn regroup(t: &Tensor) -> Result<Tensor> {
    let s = t.shape();
    if s.len() != 4 {
        return Err(Error::invalid_argument(format!("filter must be 4-dimensional: {s:?}")));
    }
    let f = t.to_f32_vec()?;
    Tensor::from_f32(&[s[0], s[1], 1, s[2] * s[3]], f)
}
