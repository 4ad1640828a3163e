//! Adding nodes: naming, implicit constants, shape inference, control and device scopes.

use super::{Endpoint, Graph, GraphData, Node, Operation, Output};
use crate::error::{Error, Result};
use crate::ops::{InferError, OpKind};
use crate::tensor::{DType, Tensor, TensorSpec};

/// An input to a builder call: a tensor of the graph, or a value that becomes a constant
/// named after the op's argument (`add/y`, `Assign/value`, `Variable/initial_value`).
#[derive(Clone, Debug)]
pub enum Operand {
    /// A tensor already in the graph.
    Tensor(Output),
    /// A value to embed as a constant.
    Value(Tensor),
}

impl From<Output> for Operand {
    fn from(t: Output) -> Self {
        Operand::Tensor(t)
    }
}
impl From<&Output> for Operand {
    fn from(t: &Output) -> Self {
        Operand::Tensor(t.clone())
    }
}
impl<T: Into<Tensor>> From<T> for Operand {
    fn from(v: T) -> Self {
        Operand::Value(v.into())
    }
}

/// A TF1 ref variable: the `VariableV2` node, its `Assign` initializer and its `read` identity.
#[derive(Clone, Debug)]
pub struct Variable {
    pub(crate) var: Output,
    pub(crate) initializer: Operation,
    pub(crate) read: Output,
}

impl Variable {
    /// The variable's name, e.g. `foo`.
    pub fn name(&self) -> String {
        self.var.op().name()
    }
    /// The variable tensor itself (`foo:0`); fetching it reads the variable.
    pub fn tensor(&self) -> &Output {
        &self.var
    }
    /// The variable's initializer (`foo/Assign`).
    pub fn initializer(&self) -> &Operation {
        &self.initializer
    }
    /// The value other ops consume (`foo/read:0`).
    pub fn value(&self) -> &Output {
        &self.read
    }
}

impl From<&Variable> for Operand {
    fn from(v: &Variable) -> Self {
        Operand::Tensor(v.read.clone())
    }
}

/// A variable stands for its tensor (`foo:0`, [`Variable::tensor`]) where a list of tensors
/// names graph points rather than consumes values, as the `xs` of [`Graph::gradients`] do
/// (TF's optimizers differentiate with respect to the variable itself). A variable consumed
/// by an op goes through [`Operand`] instead, as its `read` identity.
///
/// ```
/// use wgflow::{Graph, Output};
///
/// let g = Graph::new();
/// let v = g.variable(1.0f32, "v")?;
/// let t: &Output = v.as_ref();
/// assert_eq!(t.name(), "v:0");
/// # Ok::<(), wgflow::Error>(())
/// ```
impl AsRef<Output> for Variable {
    fn as_ref(&self) -> &Output {
        &self.var
    }
}

impl Graph {
    /// Adds a node. `default_name` is used unless [`Graph::named`] set one; value operands
    /// become constants named `<op>/<arg>`; shape inference runs before the node is added.
    /// A node refused by shape inference keeps its name reserved, as in TF.
    pub(crate) fn add_op(&self, default_name: &str, op: OpKind, inputs: Vec<(&str, Operand)>) -> Result<Operation> {
        // The graph's lock is never held while a device function runs: it may call back in.
        let (name, hint) = {
            let mut g = self.write();
            let name = g.op_name(default_name)?;
            let hint = match inputs.iter().find_map(|(_, o)| match o {
                Operand::Tensor(t) => Some(t),
                Operand::Value(_) => None,
            }) {
                Some(t) => {
                    self.own(&t.graph)?;
                    Some(g.nodes[t.ep.node].outputs[t.ep.index].dtype)
                }
                None => None,
            };
            (name, hint)
        };
        let mut eps = Vec::with_capacity(inputs.len());
        for (arg, operand) in inputs {
            let ep = match operand {
                Operand::Tensor(t) => {
                    self.own(&t.graph).map_err(|_| {
                        Error::invalid_argument(format!(
                            "{} must be from the same graph as the other inputs of '{name}'.",
                            t.python_repr()
                        ))
                    })?;
                    t.ep
                }
                Operand::Value(v) => {
                    let v = match hint {
                        Some(dt) if dt != v.dtype() => cast_literal(&v, dt)?,
                        _ => v,
                    };
                    let cname = self.write().names.unique_full(&format!("{name}/{arg}"));
                    let device = self.device_for(&cname, "Const");
                    let spec = v.spec();
                    let id = self.write().push(cname, OpKind::Const(v), Vec::new(), vec![spec], device);
                    Endpoint { node: id, index: 0 }
                }
            };
            eps.push(ep);
        }
        let outputs = {
            let g = self.read();
            let specs: Vec<TensorSpec> = eps.iter().map(|ep| g.nodes[ep.node].outputs[ep.index].clone()).collect();
            match g.infer(&op, &specs) {
                Ok(o) => o,
                Err(InferError::Other(e)) => return Err(e),
                Err(InferError::Shape(msg)) => {
                    let inputs: Vec<String> = eps.iter().map(|ep| g.input_name(*ep)).collect();
                    let attrs: Vec<String> = op.attrs(&specs).iter().map(|(k, v)| format!("{k}={v}")).collect();
                    let shapes: Vec<String> = specs.iter().map(|s| s.shape.tf_string()).collect();
                    return Err(Error::invalid_argument(format!(
                        "{msg} for '{{{{node {name}}}}} = {}[{}]({})' with input shapes: {}.",
                        op.type_name(),
                        attrs.join(", "),
                        inputs.join(", "),
                        shapes.join(", ")
                    )));
                }
            }
        };
        let device = self.device_for(&name, op.type_name());
        let id = self.write().push(name, op, eps, outputs, device);
        Ok(Operation { graph: self.clone(), id })
    }

    /// The device the current device scope requests for a new op. A device function is
    /// called with no lock on the graph held, so it may use the graph.
    pub(crate) fn device_for(&self, name: &str, op_type: &str) -> String {
        let request = self.read().device_stack.last().cloned();
        match request {
            Some(super::DeviceRequest::Name(d)) => d,
            Some(super::DeviceRequest::Func(f)) => f(name, op_type),
            None => String::new(),
        }
    }

    /// Adds a node and returns its first output.
    pub(crate) fn add_op1(&self, default_name: &str, op: OpKind, inputs: Vec<(&str, Operand)>) -> Result<Output> {
        let op = self.add_op(default_name, op, inputs)?;
        Ok(Output { graph: self.clone(), ep: Endpoint { node: op.id, index: 0 } })
    }
}

impl GraphData {
    /// The unique name of the next op: the pending explicit name or the default, or
    /// `InvalidArgument` when it (or its scope) breaks TF's naming rule.
    pub(crate) fn op_name(&mut self, default_name: &str) -> Result<String> {
        let name = match self.pending_name.take() {
            Some(n) if n.ends_with('/') => {
                let n = n.trim_end_matches('/').to_string();
                super::naming::check_op_name(&n)?;
                self.names.mark(&n);
                return Ok(n);
            }
            Some(n) => {
                super::naming::check_op_name(&n)?;
                n
            }
            None => default_name.to_string(),
        };
        let full = self.names.scoped(&name);
        super::naming::check_op_name(&full)?;
        Ok(self.names.unique_full(&full))
    }

    /// Marks a name as used without changing it.
    pub(crate) fn mark_name(&mut self, name: &str) {
        self.names.mark(name)
    }

    /// Appends a node with the current control scopes and the `device` it requests (see
    /// [`Graph::device_for`]).
    pub(crate) fn push(
        &mut self,
        name: String,
        op: OpKind,
        inputs: Vec<Endpoint>,
        outputs: Vec<TensorSpec>,
        device: String,
    ) -> usize {
        let mut control: Vec<usize> = Vec::new();
        for id in self.control_stack.iter().flatten() {
            if !control.contains(id) {
                control.push(*id);
            }
        }
        let id = self.nodes.len();
        self.by_name.insert(name.clone(), id);
        self.nodes.push(Node { name, op, inputs, control_inputs: control, device, outputs });
        id
    }

    /// Output specs of a node kind given its input specs.
    fn infer(&self, op: &OpKind, inputs: &[TensorSpec]) -> std::result::Result<Vec<TensorSpec>, InferError> {
        match op {
            OpKind::Const(t) => Ok(vec![t.spec()]),
            OpKind::Placeholder(s) | OpKind::Variable(s) => Ok(vec![s.clone()]),
            OpKind::Assign(mode) => crate::ops::infer_assign(*mode, inputs),
            OpKind::IsVariableInitialized => Ok(vec![TensorSpec::new(DType::Bool, crate::tensor::Shape::known(&[]))]),
            OpKind::ReportUninitialized => {
                Ok(vec![TensorSpec::new(DType::Str, crate::tensor::Shape::partial(&[None]))])
            }
            OpKind::NoOp => Ok(Vec::new()),
            OpKind::Compute(op) => op.infer(inputs),
        }
    }

    /// How TF names an input in a NodeDef: `op` for output 0, `op:i` otherwise.
    fn input_name(&self, ep: Endpoint) -> String {
        let n = &self.nodes[ep.node].name;
        if ep.index == 0 {
            n.clone()
        } else {
            format!("{n}:{}", ep.index)
        }
    }
}

/// Converts a literal to the dtype of the tensor it meets, as TF converts Python numbers.
fn cast_literal(v: &Tensor, dtype: DType) -> Result<Tensor> {
    match (v, dtype) {
        (Tensor::F32(a), DType::I32) if a.iter().all(|x| x.fract() == 0.0) => Ok(a.mapv(|x| x as i32).into()),
        (Tensor::I32(a), DType::F32) => Ok(a.mapv(|x| x as f32).into()),
        (Tensor::F32(a), DType::F64) => Ok(a.mapv(f64::from).into()),
        _ => {
            Err(Error::invalid_argument(format!("Cannot convert a {} value to a tensor of dtype {}", v.dtype(), dtype)))
        }
    }
}
