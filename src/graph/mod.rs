//! The graph: nodes, names, scopes and lookup. A graph defines computation and holds no
//! run-time values; sessions hold those.

mod build;
mod dot;
mod naming;
mod node;

use std::collections::HashSet;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub use build::{Operand, Variable};
pub(crate) use node::{Endpoint, Node};
pub use node::{NodeId, Operation, Output};

use crate::error::{Error, Result};
pub(crate) use naming::check_op_name;
use naming::Names;

/// A TensorFlow-1-style graph. Cloning the handle shares the same graph.
///
/// Builder methods (`constant`, `add`, `conv2d`, …) append nodes; nodes never change once
/// added, except through [`Graph::add_control_input`]. A graph may grow while sessions run it.
#[derive(Clone, Default)]
pub struct Graph {
    inner: Arc<RwLock<GraphData>>,
}

/// The contents of a graph.
#[derive(Debug, Default)]
pub(crate) struct GraphData {
    pub(crate) nodes: Vec<Node>,
    by_name: std::collections::HashMap<String, NodeId>,
    names: Names,
    control_stack: Vec<Vec<NodeId>>,
    device_stack: Vec<DeviceRequest>,
    pending_name: Option<String>,
    /// Variables in creation order: (variable node, its initializer node).
    pub(crate) variables: Vec<(NodeId, NodeId)>,
    pub(crate) unfeedable: HashSet<Endpoint>,
    /// Tensor names (`"split:1"`) of imported nodes that wgflow built as several ops, each
    /// the output of another node (see `graphdef::node`).
    pub(crate) aliases: std::collections::HashMap<String, Endpoint>,
    /// Bumped whenever an existing node changes (not when nodes are added).
    pub(crate) version: u64,
}

/// TF's device function: the device an op requests, from its name and type.
pub(crate) type DeviceFn = Arc<dyn Fn(&str, &str) -> String + Send + Sync>;

/// A device scope: a device name, or a device function.
#[derive(Clone)]
pub(crate) enum DeviceRequest {
    Name(String),
    Func(DeviceFn),
}

impl std::fmt::Debug for DeviceRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceRequest::Name(n) => write!(f, "{n:?}"),
            DeviceRequest::Func(_) => f.write_str("<device function>"),
        }
    }
}

/// Restores a graph scope (name, control dependencies or device) when dropped.
#[must_use = "the scope ends when this guard is dropped"]
pub struct ScopeGuard {
    graph: Graph,
    restore: Restore,
}

enum Restore {
    Name(String),
    Control,
    Device,
}

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        let mut g = self.graph.write();
        match &self.restore {
            Restore::Name(prev) => g.names.scope = prev.clone(),
            Restore::Control => {
                g.control_stack.pop();
            }
            Restore::Device => {
                g.device_stack.pop();
            }
        }
    }
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        let data = GraphData::default();
        Graph { inner: Arc::new(RwLock::new(data)) }
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, GraphData> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, GraphData> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether two handles refer to the same graph.
    pub fn same(&self, other: &Graph) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The number of operations in the graph.
    pub fn len(&self) -> usize {
        self.read().nodes.len()
    }

    /// Whether the graph has no operations.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every operation, in creation order.
    pub fn operations(&self) -> Vec<Operation> {
        (0..self.len()).map(|id| Operation { graph: self.clone(), id }).collect()
    }

    /// The operation called `name`, or `NotFound`.
    pub fn operation_by_name(&self, name: &str) -> Result<Operation> {
        match self.read().by_name.get(name) {
            Some(&id) => Ok(Operation { graph: self.clone(), id }),
            None => Err(Error::not_found(format!("The name '{name}' refers to an Operation not in the graph."))),
        }
    }

    /// The tensor called `op:index`, or `NotFound` with TF's message.
    pub fn tensor_by_name(&self, name: &str) -> Result<Output> {
        let Some((op, idx)) = name.rsplit_once(':') else {
            return Err(Error::invalid_argument(format!(
                "The name '{name}' looks like an (invalid) Operation name, not a Tensor. Tensor names must be of the form \"<op_name>:<output_index>\"."
            )));
        };
        let index: usize = idx
            .parse()
            .map_err(|_| Error::invalid_argument(format!("The name '{name}' is not a valid tensor name.")))?;
        let g = self.read();
        if let Some(&ep) = g.aliases.get(name) {
            return Ok(Output { graph: self.clone(), ep });
        }
        let Some(&node) = g.by_name.get(op) else {
            return Err(Error::not_found(format!(
                "The name '{name}' refers to a Tensor which does not exist. The operation, '{op}', does not exist in the graph."
            )));
        };
        let n = g.nodes[node].outputs.len();
        if index >= n {
            return Err(Error::not_found(format!(
                "The name '{name}' refers to a Tensor which does not exist. The operation, '{op}', exists but only has {n} outputs."
            )));
        }
        Ok(Output { graph: self.clone(), ep: Endpoint { node, index } })
    }

    /// Opens a name scope, as `tf.name_scope`: `"layer"` becomes `layer`, then `layer_1`;
    /// a name ending in `/` re-enters that exact scope; `""` returns to the top.
    pub fn name_scope(&self, name: &str) -> ScopeGuard {
        let mut g = self.write();
        let prev = g.names.scope.clone();
        g.names.scope = if name.is_empty() {
            String::new()
        } else if let Some(exact) = name.strip_suffix('/') {
            exact.to_string()
        } else {
            g.names.unique(name)
        };
        drop(g);
        ScopeGuard { graph: self.clone(), restore: Restore::Name(prev) }
    }

    /// The current name scope ("" at the top level).
    pub fn current_scope(&self) -> String {
        self.read().names.scope.clone()
    }

    /// Ops created while the guard lives get control inputs on `ops`.
    pub fn control_dependencies(&self, ops: &[&Operation]) -> Result<ScopeGuard> {
        let ids = ops.iter().map(|op| self.own(&op.graph).map(|_| op.id)).collect::<Result<Vec<_>>>()?;
        self.write().control_stack.push(ids);
        Ok(ScopeGuard { graph: self.clone(), restore: Restore::Control })
    }

    /// Ops created while the guard lives request `device` (`"/gpu:0"`, `"/device:CPU:0"`, …).
    pub fn device(&self, device: &str) -> ScopeGuard {
        self.write().device_stack.push(DeviceRequest::Name(device.to_string()));
        ScopeGuard { graph: self.clone(), restore: Restore::Device }
    }

    /// Ops created while the guard lives request the device `f(op_name, op_type)` returns
    /// (TF's `tf.device(device_function)`; `""` means no request).
    pub fn device_fn(&self, f: impl Fn(&str, &str) -> String + Send + Sync + 'static) -> ScopeGuard {
        self.write().device_stack.push(DeviceRequest::Func(Arc::new(f)));
        ScopeGuard { graph: self.clone(), restore: Restore::Device }
    }

    /// Names the next operation created on this graph (made unique as TF does).
    ///
    /// ```
    /// let g = wgflow::Graph::new();
    /// let c = g.named("answer").constant(42.0f32).unwrap();
    /// assert_eq!(c.name(), "answer:0");
    /// ```
    pub fn named(&self, name: &str) -> &Self {
        self.write().pending_name = Some(name.to_string());
        self
    }

    /// Adds a control input to an existing operation (TF's `op._add_control_input`).
    /// This can create a cycle; sessions report it when they run the graph.
    pub fn add_control_input(&self, op: &Operation, dep: &Operation) -> Result<()> {
        self.own(&op.graph)?;
        self.own(&dep.graph)?;
        let mut g = self.write();
        if !g.nodes[op.id].control_inputs.contains(&dep.id) {
            g.nodes[op.id].control_inputs.push(dep.id);
            g.version += 1;
        }
        Ok(())
    }

    /// Marks a tensor as not feedable (TF's `Graph.prevent_feeding`).
    pub fn prevent_feeding(&self, t: &Output) -> Result<()> {
        self.own(&t.graph)?;
        let mut g = self.write();
        g.unfeedable.insert(t.ep);
        g.version += 1;
        Ok(())
    }

    /// `Ok` when `other` is this graph, else `InvalidArgument`.
    pub(crate) fn own(&self, other: &Graph) -> Result<()> {
        if self.same(other) {
            Ok(())
        } else {
            Err(Error::invalid_argument("Tensor or operation is not an element of this graph."))
        }
    }
}
