//! The plan of a run signature, the product of the pipeline's last stage (`lower`): steps with
//! their devices and value slots, the transfers between devices, and which step frees what.
//! Built once per signature and cached by the session.

use std::collections::{BTreeSet, HashMap};

use crate::graph::{Endpoint, GraphData, NodeId};
use crate::ops::OpKind;
use crate::placement::DeviceId;
use crate::tensor::TensorSpec;

/// Where a step's input comes from.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Input {
    /// A value slot of this run.
    Slot(usize),
    /// A variable held by the session (a ref edge).
    Var(NodeId),
}

/// What a step does.
#[derive(Debug)]
pub(crate) enum Action {
    /// Runs a graph node.
    Node(OpKind),
    /// Copies its one input from device `from` to the step's device (inserted by placement;
    /// TF's send/recv pair). Between two GPUs the value goes through the host: wgpu has no
    /// copies between devices.
    Transfer {
        /// Where the value is.
        from: DeviceId,
    },
}

/// One node to execute, or one transfer between devices.
#[derive(Debug)]
pub(crate) struct Step {
    /// The graph node (for a transfer, the node whose value moves).
    pub(crate) node: NodeId,
    /// Where the step runs (for a transfer, where the value goes).
    pub(crate) device: DeviceId,
    pub(crate) name: String,
    pub(crate) action: Action,
    pub(crate) inputs: Vec<Input>,
    /// The slot of each output, `None` where nothing reads it (or it is fed).
    pub(crate) outputs: Vec<Option<usize>>,
    /// Slots whose last reader is this step.
    pub(crate) frees: Vec<usize>,
    /// The nodes fused into this step (see `fuse`), in execution order; empty for most.
    pub(crate) fused: Vec<String>,
}

impl Step {
    /// The op type shown in logs and step stats; transfers show as TF's timeline shows them.
    pub(crate) fn type_name(&self) -> &'static str {
        match &self.action {
            Action::Node(op) => op.type_name(),
            Action::Transfer { from } => transfer_name(*from, self.device),
        }
    }
}

/// TF's name of a copy from `from` to `to`: `MemcpyHtoD`, `MemcpyDtoH` or, between two
/// GPUs, `MemcpyDtoD`.
pub(crate) fn transfer_name(from: DeviceId, to: DeviceId) -> &'static str {
    match (from.is_gpu(), to.is_gpu()) {
        (false, _) => "MemcpyHtoD",
        (true, false) => "MemcpyDtoH",
        (true, true) => "MemcpyDtoD",
    }
}

/// Where each fetched value comes from.
#[derive(Clone, Debug)]
pub(crate) enum FetchFrom {
    Slot(usize),
    Var(NodeId, String),
    Nothing,
}

/// A compiled run signature.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) steps: Vec<Step>,
    /// The device of each value slot.
    pub(crate) slot_device: Vec<DeviceId>,
    /// Slot and static spec of each feed, in the signature's feed order.
    pub(crate) feeds: Vec<(usize, TensorSpec)>,
    pub(crate) fetches: Vec<FetchFrom>,
    /// The graph's variables by node: names for error messages, declared specs for the
    /// run-time checks of assignments.
    pub(crate) vars: HashMap<NodeId, (String, TensorSpec)>,
    /// The graph nodes its steps run on the CPU (fused nodes counted one by one, transfers
    /// not), for `SessionStats::nodes_on_cpu`.
    pub(crate) nodes_on_cpu: u64,
}

impl Plan {
    /// The name of variable `id` ("?" for a node that is not one).
    pub(crate) fn var_name(&self, id: NodeId) -> &str {
        self.vars.get(&id).map_or("?", |(name, _)| name.as_str())
    }

    /// Whether a step assigns a variable (`Assign`, `AssignAdd`, `ApplyGradientDescent`...):
    /// such a run must hold the session's values alone.
    pub(crate) fn writes_variables(&self) -> bool {
        self.steps.iter().any(|s| matches!(s.action, Action::Node(OpKind::Assign(_))))
    }

    /// The slots that fetches read.
    pub(crate) fn fetched_slots(&self) -> BTreeSet<usize> {
        self.fetches.iter().filter_map(|f| if let FetchFrom::Slot(s) = f { Some(*s) } else { None }).collect()
    }

    /// Sets each step's `frees`: the slots it reads last, other than fetched ones.
    pub(crate) fn assign_frees(&mut self) {
        let fetched = self.fetched_slots();
        let mut last_use: HashMap<usize, usize> = HashMap::new();
        for (pos, step) in self.steps.iter_mut().enumerate() {
            step.frees.clear();
            for input in &step.inputs {
                if let Input::Slot(s) = input {
                    last_use.insert(*s, pos);
                }
            }
        }
        let mut frees: Vec<(usize, usize)> = last_use.into_iter().filter(|(s, _)| !fetched.contains(s)).collect();
        frees.sort_unstable();
        for (slot, pos) in frees {
            self.steps[pos].frees.push(slot);
        }
    }
}

/// The variable whose buffer endpoint `ep` aliases, as TF's ref variables do: a variable's
/// tensor, and the identity that reads it (`foo/read`). A consumer of either sees the value
/// current when it runs (after an assign it depends on), not a snapshot.
pub(crate) fn ref_of(g: &GraphData, ep: &Endpoint) -> Option<NodeId> {
    let node = &g.nodes[ep.node];
    match &node.op {
        OpKind::Variable(_) => Some(ep.node),
        OpKind::Compute(op) if op.is_identity() => {
            let src = node.inputs.first()?;
            matches!(g.nodes[src.node].op, OpKind::Variable(_)).then_some(src.node)
        }
        _ => None,
    }
}
