//! Nodes of a graph and the handles users hold: `Operation` and `Output`.

use std::fmt;

use super::Graph;
use crate::ops::OpKind;
use crate::tensor::{DType, Shape, TensorSpec};

/// Index of a node in its graph.
pub type NodeId = usize;

/// One output of one node, inside a graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Endpoint {
    pub(crate) node: NodeId,
    pub(crate) index: usize,
}

/// A node: a name, an op, data inputs, control inputs, a device request and its outputs' specs.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) op: OpKind,
    pub(crate) inputs: Vec<Endpoint>,
    pub(crate) control_inputs: Vec<NodeId>,
    pub(crate) device: String,
    pub(crate) outputs: Vec<TensorSpec>,
}

/// A handle on an operation (node) of a graph.
#[derive(Clone)]
pub struct Operation {
    pub(crate) graph: Graph,
    pub(crate) id: NodeId,
}

/// A handle on a tensor: output `index` of an operation, named `op:index`.
#[derive(Clone)]
pub struct Output {
    pub(crate) graph: Graph,
    pub(crate) ep: Endpoint,
}

impl Operation {
    /// The operation's unique name.
    pub fn name(&self) -> String {
        self.graph.read().nodes[self.id].name.clone()
    }
    /// TF's op type, e.g. `AddV2`, `Conv2D`, `VariableV2`.
    pub fn op_type(&self) -> String {
        self.graph.read().nodes[self.id].op.type_name().to_string()
    }
    /// The tensors this operation consumes.
    pub fn inputs(&self) -> Vec<Output> {
        let g = self.graph.read();
        g.nodes[self.id].inputs.iter().map(|&ep| Output { graph: self.graph.clone(), ep }).collect()
    }
    /// The operations that must run before this one without passing it data.
    pub fn control_inputs(&self) -> Vec<Operation> {
        let g = self.graph.read();
        g.nodes[self.id].control_inputs.iter().map(|&id| Operation { graph: self.graph.clone(), id }).collect()
    }
    /// The number of outputs.
    pub fn num_outputs(&self) -> usize {
        self.graph.read().nodes[self.id].outputs.len()
    }
    /// Output `index`, if the operation has it.
    pub fn output(&self, index: usize) -> Option<Output> {
        (index < self.num_outputs())
            .then(|| Output { graph: self.graph.clone(), ep: Endpoint { node: self.id, index } })
    }
    /// The device requested for this operation ("" when none was).
    pub fn device(&self) -> String {
        self.graph.read().nodes[self.id].device.clone()
    }
    /// The graph this operation belongs to.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }
}

impl Output {
    /// The tensor's name, `op:index`.
    pub fn name(&self) -> String {
        format!("{}:{}", self.graph.read().nodes[self.ep.node].name, self.ep.index)
    }
    /// The operation that produces this tensor.
    pub fn op(&self) -> Operation {
        Operation { graph: self.graph.clone(), id: self.ep.node }
    }
    /// The output index within its operation.
    pub fn index(&self) -> usize {
        self.ep.index
    }
    /// The static element type and shape.
    pub fn spec(&self) -> TensorSpec {
        self.graph.read().nodes[self.ep.node].outputs[self.ep.index].clone()
    }
    /// The element type.
    pub fn dtype(&self) -> DType {
        self.spec().dtype
    }
    /// The static (possibly partial) shape.
    pub fn shape(&self) -> Shape {
        self.spec().shape
    }
    /// The graph this tensor belongs to.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }
    /// TF's Python repr: `Tensor("Const:0", shape=(), dtype=float32)`.
    pub fn python_repr(&self) -> String {
        let spec = self.spec();
        format!("Tensor(\"{}\", shape={}, dtype={})", self.name(), spec.shape.python_string(), spec.dtype)
    }
}

/// An output is itself, so that a list of tensors may hold outputs, variables
/// (`AsRef<Output>` for [`Variable`](super::Variable)) or references to either.
impl AsRef<Output> for Output {
    fn as_ref(&self) -> &Output {
        self
    }
}

impl PartialEq for Output {
    fn eq(&self, other: &Self) -> bool {
        self.graph.same(&other.graph) && self.ep == other.ep
    }
}

impl PartialEq for Operation {
    fn eq(&self, other: &Self) -> bool {
        self.graph.same(&other.graph) && self.id == other.id
    }
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.python_repr())
    }
}

impl fmt::Debug for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Operation(\"{}\", type={})", self.name(), self.op_type())
    }
}
