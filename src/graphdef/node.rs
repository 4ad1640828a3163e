//! One imported node: its constant inputs (axes, shapes, perms) read at import (its attrs in
//! `attrs.rs`), and the builder call that adds it to the graph under its own name.

use super::import::Imported;
use super::proto::{attr_value::Value, NodeDef};
use crate::error::{Error, Result};
use crate::graph::{Graph, Operation, Output};
use crate::ops::{AssignMode, BinaryKind, OpKind, UnaryKind};
use crate::tensor::{Shape, Tensor};

/// A node of the file on its way into `graph`: its full name and its resolved inputs.
pub(crate) struct NodeIn<'a> {
    pub(crate) graph: &'a Graph,
    pub(crate) def: &'a NodeDef,
    pub(crate) name: String,
    pub(crate) inputs: Vec<Output>,
}

/// The static dims of `x` as reshape entries: unknown ones as -1, at most one of them.
fn static_dims(x: &Output, node: &str) -> Result<Vec<i64>> {
    let dims = x.shape().dims().map(<[Option<usize>]>::to_vec).ok_or_else(|| {
        Error::unimplemented(format!("Node '{node}': wgflow needs the input's rank to import this shape op"))
    })?;
    if dims.iter().filter(|d| d.is_none()).count() > 1 {
        return Err(Error::unimplemented(format!(
            "Node '{node}': wgflow imports this shape op for at most one unknown dimension"
        )));
    }
    Ok(dims.iter().map(|d| d.map_or(-1, |d| d as i64)).collect())
}

impl NodeIn<'_> {
    /// Adds the node: `Unimplemented`, naming the op type and the node, for an op type
    /// wgflow has no kernel for.
    pub(crate) fn import(self) -> Result<Imported> {
        let op = self.def.op.as_str();
        let made = match op {
            "Split" | "SplitV" | "Unpack" => self.split(op),
            // Output k is input k: an Identity of input 0 carries the name.
            "IdentityN" => self.graph.named(&self.name).identity(self.input(0)?).map(|first| {
                let mut outputs = vec![first.clone()];
                outputs.extend(self.inputs.iter().skip(1).cloned());
                Imported { op: first.op(), outputs: Some(outputs) }
            }),
            // Inference mode: outputs 1 and 3 are the mean given, 2 and 4 the variance.
            "FusedBatchNorm" | "FusedBatchNormV2" | "FusedBatchNormV3" => self.batch_norm().map(|y| {
                let stats = [3, 4, 3, 4].into_iter().filter_map(|i| self.inputs.get(i).cloned());
                Imported { op: y.op(), outputs: Some(std::iter::once(y).chain(stats).collect()) }
            }),
            _ => self.build(op).map(|op| Imported { op, outputs: None }),
        };
        made.map_err(|e| if e.node.is_none() { e.at(&self.def.name) } else { e })
    }

    /// `Split`, `SplitV` and `Unpack` as one `StridedSlice` per output: output 0 carries the
    /// node's name, output `k` is `<name>/output_k` (wgflow's GPU kernels write one output).
    fn split(&self, op: &str) -> Result<Imported> {
        let (x, axis) = match op {
            "Split" => (self.input(1)?, self.const_ints(0)?.first().copied().unwrap_or(0)),
            "SplitV" => (self.input(0)?, self.const_ints(2)?.first().copied().unwrap_or(0)),
            _ => (self.input(0)?, self.attr_int("axis")?),
        };
        let dims =
            x.shape().dims().map(<[Option<usize>]>::to_vec).ok_or_else(|| {
                Error::unimplemented(format!("Node '{}': {op} needs its input's rank", self.def.name))
            })?;
        let rank = dims.len();
        let a = usize::try_from(if axis < 0 { axis + rank as i64 } else { axis })
            .ok()
            .filter(|&a| a < rank)
            .ok_or_else(|| Error::invalid_argument(format!("{op}: axis {axis} out of range for rank {rank}")))?;
        let size = dims[a].ok_or_else(|| {
            Error::unimplemented(format!("Node '{}': {op} along a dimension of unknown size", self.def.name))
        })? as i64;
        let mut ranges: Vec<(i64, i64)> = Vec::new();
        match op {
            "Split" => {
                let n = self.attr_int("num_split")?.max(1);
                if size % n != 0 {
                    return Err(Error::invalid_argument(format!("Number of ways to split should evenly divide the split dimension, but got split_dim {a} (size = {size}) and num_split {n}")));
                }
                ranges.extend((0..n).map(|k| (k * size / n, (k + 1) * size / n)));
            }
            "SplitV" => {
                let sizes = self.const_ints(1)?;
                let known: i64 = sizes.iter().filter(|&&s| s >= 0).sum();
                let mut start = 0;
                for s in sizes {
                    let len = if s < 0 { size - known } else { s };
                    ranges.push((start, start + len));
                    start += len;
                }
            }
            _ => ranges.extend((0..size).map(|k| (k, k + 1))),
        }
        let mut outputs = Vec::with_capacity(ranges.len());
        for (k, (b, e)) in ranges.into_iter().enumerate() {
            let all = ((1i64 << rank) - 1) & !(1 << a);
            let mut spec = crate::ops::SliceSpec {
                begin: vec![0; rank],
                end: vec![0; rank],
                strides: vec![1; rank],
                begin_mask: all,
                end_mask: all,
                ..Default::default()
            };
            spec.begin[a] = b;
            spec.end[a] = e;
            if op == "Unpack" {
                spec.shrink_axis_mask = 1 << a;
            }
            let name = if k == 0 { format!("{}/", self.name) } else { format!("{}/output_{k}/", self.name) };
            outputs.push(self.graph.named(&name).strided_slice(&x, spec)?);
        }
        let op =
            outputs.first().map(Output::op).ok_or_else(|| Error::invalid_argument(format!("{op} with no outputs")))?;
        Ok(Imported { op, outputs: Some(outputs) })
    }

    fn build(&self, op: &str) -> Result<Operation> {
        let g = self.graph.named(&self.name);
        if let Some(kind) =
            BinaryKind::ALL.iter().find(|k| k.tf_name() == op || (op == "Add" && **k == BinaryKind::Add))
        {
            return Ok(g.binary(*kind, self.input(0)?, self.input(1)?)?.op());
        }
        if let Some(kind) = UnaryKind::ALL.iter().find(|k| k.tf_name() == op) {
            return Ok(g.unary(*kind, self.input(0)?)?.op());
        }
        let out = match op {
            "Const" => g.constant(self.attr_tensor("value")?)?,
            "Placeholder" => {
                let shape = self.attr_shape("shape")?.unwrap_or_else(Shape::unknown);
                g.placeholder(self.attr_type("dtype")?, shape)?
            }
            "Identity" | "StopGradient" | "Snapshot" => g.identity(self.input(0)?)?,
            "NoOp" => return g.no_op(),
            "VariableV2" | "Variable" => {
                let shape = self.attr_shape("shape")?.unwrap_or_else(Shape::unknown);
                let spec = crate::tensor::TensorSpec::new(self.attr_type("dtype")?, shape);
                return g.add_op("VariableV2", OpKind::Variable(spec), Vec::new());
            }
            "Assign" | "AssignAdd" | "AssignSub" => {
                let mode = match op {
                    "Assign" => AssignMode::Set,
                    "AssignAdd" => AssignMode::Add,
                    _ => AssignMode::Sub,
                };
                let inputs = vec![("ref", self.input(0)?.into()), ("value", self.input(1)?.into())];
                return g.add_op(op, OpKind::Assign(mode), inputs);
            }
            "MatMul" => g.matmul(
                self.input(0)?,
                self.input(1)?,
                self.attr_bool("transpose_a")?,
                self.attr_bool("transpose_b")?,
            )?,
            "BatchMatMul" | "BatchMatMulV2" | "BatchMatMulV3" => {
                g.matmul(self.input(0)?, self.input(1)?, self.attr_bool("adj_x")?, self.attr_bool("adj_y")?)?
            }
            "Cast" => g.cast(self.input(0)?, self.attr_type("DstT")?)?,
            "Softmax" => g.softmax(self.input(0)?, -1)?,
            // Composite imports (the node's name goes to the last op; its parts are named
            // under it): deviations listed in the README.
            "LeakyRelu" => {
                let alpha = self.attr_float("alpha", 0.2)?;
                let x = self.input(0)?;
                let scaled = self.graph.named(&format!("{}/scaled", self.name)).mul(&x, alpha)?;
                let g = self.graph.named(&self.name);
                if alpha <= 1.0 {
                    g.maximum(&x, &scaled)?
                } else {
                    g.minimum(&x, &scaled)?
                }
            }
            "LogSoftmax" => {
                let x = self.input(0)?;
                let part = |p: &str| self.graph.named(&format!("{}/{p}", self.name));
                let max = part("max").reduce_max(&x, Some(&[-1]), true)?;
                let shifted = part("shifted").sub(&x, &max)?;
                let exp = part("exp").exp(&shifted)?;
                let sum = part("sum").reduce_sum(&exp, Some(&[-1]), true)?;
                let log_sum = part("log").log(&sum)?;
                self.graph.named(&self.name).sub(&shifted, &log_sum)?
            }
            "BiasAdd" | "BiasAddV1" => {
                self.nhwc()?;
                g.bias_add(self.input(0)?, self.input(1)?)?
            }
            "Conv2D" => {
                self.nhwc()?;
                let dilations = self.attr_usizes_or("dilations", &[1, 1, 1, 1])?;
                g.conv2d(self.input(0)?, self.input(1)?, &self.attr_usizes("strides")?, self.padding()?, &dilations)?
            }
            "DepthwiseConv2dNative" => {
                self.nhwc()?;
                let dilations = self.attr_usizes_or("dilations", &[1, 1, 1, 1])?;
                let strides = self.attr_usizes("strides")?;
                g.depthwise_conv2d(self.input(0)?, self.input(1)?, &strides, self.padding()?, &dilations)?
            }
            "MaxPool" | "AvgPool" => {
                self.nhwc()?;
                let (ksize, strides) = (self.attr_usizes("ksize")?, self.attr_usizes("strides")?);
                if op == "MaxPool" {
                    g.max_pool(self.input(0)?, &ksize, &strides, self.padding()?)?
                } else {
                    g.avg_pool(self.input(0)?, &ksize, &strides, self.padding()?)?
                }
            }
            "Sum" | "Mean" | "Max" => {
                let axes = self.const_ints(1)?;
                let keep = self.attr_bool("keep_dims")?;
                match op {
                    "Sum" => g.reduce_sum(self.input(0)?, Some(&axes), keep)?,
                    "Mean" => g.reduce_mean(self.input(0)?, Some(&axes), keep)?,
                    _ => g.reduce_max(self.input(0)?, Some(&axes), keep)?,
                }
            }
            "Reshape" => g.reshape(self.input(0)?, &self.const_ints(1)?)?,
            // A static shape is a constant (int32 whatever `out_type` asks).
            "Shape" => {
                let x = self.input(0)?;
                let dims = x.shape().to_vec().ok_or_else(|| {
                    Error::unimplemented(format!(
                        "Node '{}': wgflow imports Shape of a fully known shape only",
                        self.def.name
                    ))
                })?;
                let dims = dims.iter().map(|&d| i32::try_from(d)).collect::<std::result::Result<Vec<_>, _>>();
                let dims = dims.map_err(|_| Error::invalid_argument("Shape: a dimension over int32"))?;
                g.constant(Tensor::from(dims))?
            }
            "Fill" => {
                let dims =
                    self.const_ints(0)?.iter().map(|&d| usize::try_from(d)).collect::<std::result::Result<Vec<_>, _>>();
                let dims = dims.map_err(|_| Error::invalid_argument("Fill: a negative dimension"))?;
                g.fill(&dims, self.input(1)?)?
            }
            // int32 indices whatever `output_type` asks (wgflow's index type).
            "ArgMax" => g.argmax(self.input(0)?, self.const_ints(1)?.first().copied().unwrap_or(0))?,
            "StridedSlice" => {
                let mask = |k: &str| self.attr_int(k);
                let spec = crate::ops::SliceSpec {
                    begin: self.const_ints(1)?,
                    end: self.const_ints(2)?,
                    strides: self.const_ints(3)?,
                    begin_mask: mask("begin_mask")?,
                    end_mask: mask("end_mask")?,
                    ellipsis_mask: mask("ellipsis_mask")?,
                    new_axis_mask: mask("new_axis_mask")?,
                    shrink_axis_mask: mask("shrink_axis_mask")?,
                };
                g.strided_slice(self.input(0)?, spec)?
            }
            "Slice" => g.slice(self.input(0)?, &self.const_ints(1)?, &self.const_ints(2)?)?,
            "Tile" => self.tile()?,
            "GatherV2" | "Gather" => self.gather()?,
            "UnsortedSegmentSum" => self.segment_sum()?,
            // Shape-only ops become a Reshape to the static shape they give (named as the node).
            "ExpandDims" | "Squeeze" => {
                let x = self.input(0)?;
                let target = self.reshaped_dims(&x, op)?;
                g.reshape(&x, &target)?
            }
            "Pack" => {
                let axis = self.attr_int("axis")?;
                let mut parts = Vec::new();
                for (k, x) in self.inputs.iter().enumerate() {
                    let mut dims = static_dims(x, &self.def.name)?;
                    let a = if axis < 0 { axis + dims.len() as i64 + 1 } else { axis };
                    let a = usize::try_from(a)
                        .ok()
                        .filter(|&a| a <= dims.len())
                        .ok_or_else(|| Error::invalid_argument(format!("Pack: axis {axis} out of range")))?;
                    dims.insert(a, 1);
                    parts.push(self.graph.named(&format!("{}/expanded_{k}", self.name)).reshape(x, &dims)?);
                }
                let rank = parts.first().and_then(|p| p.shape().rank()).unwrap_or(1) as i64;
                let axis = if axis < 0 { axis + rank } else { axis };
                self.graph.named(&format!("{}/", self.name)).concat(&parts, axis)?
            }
            "Pad" => {
                let flat = self.const_ints(1)?;
                let pads = flat.chunks_exact(2).map(|p| Ok([usize::try_from(p[0])?, usize::try_from(p[1])?]));
                let pads: std::result::Result<Vec<[usize; 2]>, std::num::TryFromIntError> = pads.collect();
                let pads = pads.map_err(|_| Error::invalid_argument("Pad: paddings must be non-negative"))?;
                g.pad(self.input(0)?, &pads)?
            }
            "Transpose" => {
                let perm =
                    self.const_ints(1)?.iter().map(|&p| usize::try_from(p)).collect::<std::result::Result<Vec<_>, _>>();
                let perm = perm.map_err(|_| Error::invalid_argument("Transpose: a negative entry in perm"))?;
                g.transpose(self.input(0)?, Some(&perm))?
            }
            "ConcatV2" => {
                let n = self.inputs.len().saturating_sub(1);
                let axis = self.const_ints(n)?.first().copied().unwrap_or(0);
                g.concat(&self.inputs[..n], axis)?
            }
            _ => {
                return Err(Error::unimplemented(format!(
                    "Op type not registered '{op}' in wgflow: node '{}' cannot be imported",
                    self.def.name
                )))
            }
        };
        Ok(out.op())
    }

    /// `FusedBatchNorm` in inference mode: `x * inv + (offset - mean * inv)` with
    /// `inv = scale * rsqrt(variance + epsilon)`, its parts named under the node. Only output 0
    /// (`y`) exists in wgflow.
    fn batch_norm(&self) -> Result<Output> {
        if self.attr_bool_or("is_training", true)? {
            return Err(Error::unimplemented(format!(
                "Node '{}': FusedBatchNorm in training mode is not imported (freeze the graph for inference)",
                self.def.name
            )));
        }
        self.nhwc()?;
        let eps = self.attr_float("epsilon", 1e-4)?;
        let part = |p: &str| self.graph.named(&format!("{}/{p}", self.name));
        let (x, scale, offset, mean, var) =
            (self.input(0)?, self.input(1)?, self.input(2)?, self.input(3)?, self.input(4)?);
        let var_eps = part("add_epsilon").add(&var, eps)?;
        let root = part("rsqrt").rsqrt(&var_eps)?;
        let inv = part("inv").mul(&root, &scale)?;
        let mean_inv = part("mean_inv").mul(&mean, &inv)?;
        let shift = part("shift").sub(&offset, &mean_inv)?;
        let scaled = part("scaled").mul(&x, &inv)?;
        self.graph.named(&self.name).add(&scaled, &shift)
    }

    pub(super) fn input(&self, i: usize) -> Result<Output> {
        self.inputs.get(i).cloned().ok_or_else(|| {
            Error::invalid_argument(format!(
                "NodeDef expected at least {} inputs for op '{}', got {}",
                i + 1,
                self.def.op,
                self.inputs.len()
            ))
        })
    }

    /// The value of input `i` when it is a constant (wgflow holds axes, shapes and perms as
    /// attributes, so it reads them at import).
    fn const_value(&self, i: usize) -> Result<Tensor> {
        let t = self.input(i)?;
        let g = t.graph().read();
        match &g.nodes[t.op().id].op {
            OpKind::Const(v) => Ok(v.clone()),
            _ => Err(Error::unimplemented(format!(
                "{}: input {i} must be a constant in wgflow (it is computed by '{}')",
                self.def.op,
                g.nodes[t.op().id].name
            ))),
        }
    }

    pub(super) fn const_ints(&self, i: usize) -> Result<Vec<i64>> {
        match self.const_value(i)? {
            Tensor::I32(a) => Ok(a.iter().map(|&v| v as i64).collect()),
            other => Err(Error::invalid_argument(format!(
                "{}: input {i} must be int32 or int64, not {}",
                self.def.op,
                other.dtype().tf_enum()
            ))),
        }
    }

    /// The dims of `ExpandDims` (axis from input 1) or `Squeeze` (`squeeze_dims`) of `x`,
    /// for a reshape (one unknown dimension allowed, as -1).
    fn reshaped_dims(&self, x: &Output, op: &str) -> Result<Vec<i64>> {
        let dims = static_dims(x, &self.def.name)?;
        let rank = dims.len() as i64;
        let mut out = dims;
        if op == "ExpandDims" {
            let axis = self.const_ints(1)?.first().copied().unwrap_or(0);
            let a = if axis < 0 { axis + rank + 1 } else { axis };
            let a = usize::try_from(a).ok().filter(|&a| a as i64 <= rank);
            let a = a.ok_or_else(|| Error::invalid_argument(format!("ExpandDims: axis {axis} out of range")))?;
            out.insert(a, 1);
        } else {
            let squeeze: Vec<i64> = match self.attr("squeeze_dims") {
                Some(Value::List(l)) => l.i.iter().map(|&d| if d < 0 { d + rank } else { d }).collect(),
                _ => Vec::new(),
            };
            let keep =
                |(i, d): &(usize, &i64)| if squeeze.is_empty() { **d != 1 } else { !squeeze.contains(&(*i as i64)) };
            out = out.iter().enumerate().filter(keep).map(|(_, d)| *d).collect();
        }
        Ok(out)
    }
}
