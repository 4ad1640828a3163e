//! Turning a run signature (fetches and feed keys) into a plan: prune to what the fetches
//! need, cut at fed tensors, order topologically, assign value slots. Built once per signature.

use std::collections::{BTreeSet, HashMap, VecDeque};

use crate::error::{Error, Result};
use crate::graph::{Endpoint, GraphData, NodeId};
use crate::ops::OpKind;
use crate::placement::{self, DeviceKind, Placer};
use crate::tensor::TensorSpec;

/// What a run asks for, resolved to graph ids.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Target {
    Tensor(Endpoint),
    Op(NodeId),
}

/// A run signature: its fetches, its sorted feed keys, and the graph's mutation version.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Signature {
    pub(crate) fetches: Vec<Target>,
    pub(crate) feeds: Vec<Endpoint>,
    pub(crate) version: u64,
}

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
    /// Copies its one input to the step's device (inserted by placement; TF's send/recv pair).
    Transfer,
}

/// One node to execute, or one transfer between devices.
#[derive(Debug)]
pub(crate) struct Step {
    /// The graph node (for a transfer, the node whose value moves).
    pub(crate) node: NodeId,
    /// Where the step runs (for a transfer, where the value goes).
    pub(crate) device: DeviceKind,
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
        match (&self.action, self.device) {
            (Action::Node(op), _) => op.type_name(),
            (Action::Transfer, DeviceKind::Gpu) => "MemcpyHtoD",
            (Action::Transfer, DeviceKind::Cpu) => "MemcpyDtoH",
        }
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
    pub(crate) slots: usize,
    /// Slot and static spec of each feed, in the signature's feed order.
    pub(crate) feeds: Vec<(usize, TensorSpec)>,
    pub(crate) fetches: Vec<FetchFrom>,
    /// The graph's variables by node: names for error messages, declared specs for the
    /// run-time checks of assignments.
    pub(crate) vars: HashMap<NodeId, (String, TensorSpec)>,
}

impl Plan {
    /// The name of variable `id` ("?" for a node that is not one).
    pub(crate) fn var_name(&self, id: NodeId) -> &str {
        self.vars.get(&id).map_or("?", |(name, _)| name.as_str())
    }

    /// Builds the plan of `sig` on graph `g`, placing its nodes with `placer`.
    pub(crate) fn build(g: &GraphData, sig: &Signature, placer: &mut Placer<'_>) -> Result<Plan> {
        let fed: BTreeSet<Endpoint> = sig.feeds.iter().copied().collect();
        let needed = prune(g, sig, &fed);
        let order = topo_order(g, &needed)?;
        let devices = placement::place(g, &order, placer)?;
        let device_of = |id: NodeId| devices.get(&id).copied().unwrap_or(DeviceKind::Cpu);

        let mut slot_of: HashMap<Endpoint, usize> = HashMap::new();
        // Where each slot's value lives. Feeds arrive on the host.
        let mut slot_device: Vec<DeviceKind> = Vec::new();
        let mut feeds = Vec::new();
        for ep in &sig.feeds {
            slot_of.insert(*ep, slot_device.len());
            feeds.push((slot_device.len(), g.nodes[ep.node].outputs[ep.index].clone()));
            slot_device.push(DeviceKind::Cpu);
        }
        // A variable's tensor, and the identity that reads it (`foo/read`), alias the
        // variable's buffer as TF's ref variables do: a consumer sees the value current when
        // it runs (after an assign it depends on), not a snapshot.
        let ref_of = |ep: &Endpoint| -> Option<NodeId> {
            let node = &g.nodes[ep.node];
            match &node.op {
                OpKind::Variable(_) => Some(ep.node),
                OpKind::Compute(op) if op.is_identity() => {
                    let src = node.inputs.first()?;
                    matches!(g.nodes[src.node].op, OpKind::Variable(_)).then_some(src.node)
                }
                _ => None,
            }
        };
        // Slots for every endpoint some needed step or fetch reads.
        let mut read: BTreeSet<Endpoint> = BTreeSet::new();
        for &id in &order {
            read.extend(g.nodes[id].inputs.iter().copied());
        }
        for t in &sig.fetches {
            if let Target::Tensor(ep) = t {
                read.insert(*ep);
            }
        }
        for ep in read {
            if !slot_of.contains_key(&ep) && ref_of(&ep).is_none() {
                slot_of.insert(ep, slot_device.len());
                slot_device.push(device_of(ep.node));
            }
        }
        let mut moved: HashMap<(usize, DeviceKind), usize> = HashMap::new();
        let mut steps: Vec<Step> = Vec::with_capacity(order.len());
        for &id in &order {
            let node = &g.nodes[id];
            let device = device_of(id);
            // Initialization checks look at the variable, not at its value.
            let reads_values = !matches!(node.op, OpKind::IsVariableInitialized | OpKind::ReportUninitialized);
            let mut inputs = Vec::with_capacity(node.inputs.len());
            for (k, ep) in node.inputs.iter().enumerate() {
                let input = match slot_of.get(ep) {
                    Some(&s) if reads_values && slot_device[s] != device => {
                        let t = match moved.get(&(s, device)) {
                            Some(&t) => t,
                            None => {
                                let t = slot_device.len();
                                slot_device.push(device);
                                moved.insert((s, device), t);
                                steps.push(transfer(g, *ep, device, Input::Slot(s), t));
                                t
                            }
                        };
                        Input::Slot(t)
                    }
                    Some(&s) => Input::Slot(s),
                    None => {
                        let var = ref_of(ep).unwrap_or(ep.node);
                        let home = placer.pinned.get(&var).copied().unwrap_or(device);
                        // The assigned variable itself is not read; other refs are read now.
                        let target = k == 0 && matches!(node.op, OpKind::Assign(_));
                        if reads_values && !target && home != device {
                            let t = slot_device.len();
                            slot_device.push(device);
                            steps.push(transfer(g, *ep, device, Input::Var(var), t));
                            Input::Slot(t)
                        } else {
                            Input::Var(var)
                        }
                    }
                };
                inputs.push(input);
            }
            let outputs = (0..node.outputs.len())
                .map(|index| {
                    let ep = Endpoint { node: id, index };
                    if fed.contains(&ep) {
                        None
                    } else {
                        slot_of.get(&ep).copied()
                    }
                })
                .collect();
            steps.push(Step {
                node: id,
                device,
                name: node.name.clone(),
                action: Action::Node(node.op.clone()),
                inputs,
                outputs,
                frees: Vec::new(),
                fused: Vec::new(),
            });
        }
        let fetches = sig
            .fetches
            .iter()
            .map(|t| match t {
                Target::Op(_) => FetchFrom::Nothing,
                Target::Tensor(ep) => match slot_of.get(ep) {
                    Some(&s) => FetchFrom::Slot(s),
                    None => {
                        let var = ref_of(ep).unwrap_or(ep.node);
                        FetchFrom::Var(var, g.nodes[var].name.clone())
                    }
                },
            })
            .collect();
        let vars = g
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| match &n.op {
                OpKind::Variable(spec) => Some((i, (n.name.clone(), spec.clone()))),
                _ => None,
            })
            .collect();
        let mut plan = Plan { steps, slots: slot_device.len(), feeds, fetches, vars };
        plan.assign_frees();
        Ok(plan)
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

/// A step copying the value of `ep` (read as `from`) to `device`, into slot `to`. It is named
/// after the tensor and the copy's direction, e.g. `conv/MemcpyDtoH` or `mul:1/MemcpyHtoD`.
fn transfer(g: &GraphData, ep: Endpoint, device: DeviceKind, from: Input, to: usize) -> Step {
    let node = &g.nodes[ep.node].name;
    let tensor = if ep.index == 0 { node.clone() } else { format!("{node}:{}", ep.index) };
    let direction = if device == DeviceKind::Gpu { "MemcpyHtoD" } else { "MemcpyDtoH" };
    Step {
        node: ep.node,
        device,
        name: format!("{tensor}/{direction}"),
        action: Action::Transfer,
        inputs: vec![from],
        outputs: vec![Some(to)],
        frees: Vec::new(),
        fused: Vec::new(),
    }
}

/// The nodes that must run: ancestors of the fetches through data and control edges,
/// stopping at fed tensors and at variables (which hold state and need no step).
fn prune(g: &GraphData, sig: &Signature, fed: &BTreeSet<Endpoint>) -> Vec<bool> {
    let mut needed = vec![false; g.nodes.len()];
    let mut stack: Vec<NodeId> = Vec::new();
    let visit = |id: NodeId, needed: &mut Vec<bool>, stack: &mut Vec<NodeId>| {
        if !needed[id] && !matches!(g.nodes[id].op, OpKind::Variable(_)) {
            needed[id] = true;
            stack.push(id);
        }
    };
    for t in &sig.fetches {
        match t {
            Target::Tensor(ep) if !fed.contains(ep) => visit(ep.node, &mut needed, &mut stack),
            Target::Tensor(_) => {}
            Target::Op(id) => visit(*id, &mut needed, &mut stack),
        }
    }
    while let Some(id) = stack.pop() {
        let node = &g.nodes[id];
        for ep in &node.inputs {
            if !fed.contains(ep) {
                visit(ep.node, &mut needed, &mut stack);
            }
        }
        for &c in &node.control_inputs {
            visit(c, &mut needed, &mut stack);
        }
    }
    needed
}

/// Kahn's algorithm over the needed nodes. Among ready nodes, reads run before variable
/// updates, so a value fetched with a train op is the one from before the update, as in TF.
fn topo_order(g: &GraphData, needed: &[bool]) -> Result<Vec<NodeId>> {
    let mut indegree: HashMap<NodeId, usize> = HashMap::new();
    let mut consumers: HashMap<NodeId, Vec<NodeId>> = HashMap::new();
    for (id, node) in g.nodes.iter().enumerate().filter(|(id, _)| needed[*id]) {
        let deps: BTreeSet<NodeId> = node
            .inputs
            .iter()
            .map(|ep| ep.node)
            .chain(node.control_inputs.iter().copied())
            .filter(|d| needed[*d])
            .collect();
        indegree.insert(id, deps.len());
        for d in deps {
            consumers.entry(d).or_default().push(id);
        }
    }
    let writes = |id: NodeId| matches!(g.nodes[id].op, OpKind::Assign(_));
    let mut ready: VecDeque<NodeId> = VecDeque::new();
    let mut ready_writes: VecDeque<NodeId> = VecDeque::new();
    let mut ids: Vec<NodeId> = indegree.iter().filter(|(_, &d)| d == 0).map(|(&id, _)| id).collect();
    ids.sort_unstable();
    for id in ids {
        if writes(id) {
            ready_writes.push_back(id)
        } else {
            ready.push_back(id)
        }
    }
    let mut order = Vec::with_capacity(indegree.len());
    while let Some(id) = ready.pop_front().or_else(|| ready_writes.pop_front()) {
        order.push(id);
        for &c in consumers.get(&id).map(Vec::as_slice).unwrap_or(&[]) {
            if let Some(d) = indegree.get_mut(&c) {
                *d -= 1;
                if *d == 0 {
                    if writes(c) {
                        ready_writes.push_back(c)
                    } else {
                        ready.push_back(c)
                    }
                }
            }
        }
    }
    if order.len() < indegree.len() {
        let mut stuck: Vec<NodeId> = indegree.iter().filter(|(_, &d)| d > 0).map(|(&id, _)| id).collect();
        stuck.sort_unstable();
        let names: Vec<&str> = stuck.iter().take(3).map(|&id| g.nodes[id].name.as_str()).collect();
        return Err(Error::invalid_argument(format!(
            "Graph is invalid, contains a cycle with {} nodes, including: {}",
            stuck.len(),
            names.join(", ")
        )));
    }
    Ok(order)
}
