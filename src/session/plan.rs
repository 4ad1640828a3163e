//! Turning a run signature (fetches and feed keys) into a plan: prune to what the fetches
//! need, cut at fed tensors, order topologically, assign value slots. Built once per signature.

use std::collections::{BTreeSet, HashMap, VecDeque};

use crate::error::{Error, Result};
use crate::graph::{Endpoint, GraphData, NodeId};
use crate::ops::OpKind;
use crate::placement::{self, DeviceKind};
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

/// One node to execute.
#[derive(Debug)]
pub(crate) struct Step {
    pub(crate) node: NodeId,
    /// Where the step runs.
    pub(crate) device: DeviceKind,
    pub(crate) name: String,
    pub(crate) op: OpKind,
    pub(crate) inputs: Vec<Input>,
    /// The slot of each output, `None` where nothing reads it (or it is fed).
    pub(crate) outputs: Vec<Option<usize>>,
    /// Slots whose last reader is this step.
    pub(crate) frees: Vec<usize>,
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
    /// The node of each feed, for error messages.
    pub(crate) feed_nodes: Vec<String>,
    pub(crate) fetches: Vec<FetchFrom>,
    /// Variable names by node, for error messages.
    pub(crate) var_names: HashMap<NodeId, String>,
}

impl Plan {
    /// Builds the plan of `sig` on graph `g`.
    /// Builds the plan of `sig` on graph `g`; `gpu` says whether the session has a GPU and
    /// `soft` whether soft placement is allowed.
    pub(crate) fn build(g: &GraphData, sig: &Signature, gpu: bool, soft: bool) -> Result<Plan> {
        let fed: BTreeSet<Endpoint> = sig.feeds.iter().copied().collect();
        let needed = prune(g, sig, &fed);
        let order = topo_order(g, &needed)?;

        let mut slot_of: HashMap<Endpoint, usize> = HashMap::new();
        let mut slots = 0;
        let mut feeds = Vec::new();
        for ep in &sig.feeds {
            slot_of.insert(*ep, slots);
            feeds.push((slots, g.nodes[ep.node].outputs[ep.index].clone()));
            slots += 1;
        }
        // A variable's tensor, and the identity that reads it (`foo/read`), alias the
        // variable's buffer as TF's ref variables do: a consumer sees the value current when
        // it runs (after an assign it depends on), not a snapshot.
        let ref_of = |ep: &Endpoint| -> Option<NodeId> {
            let node = &g.nodes[ep.node];
            match &node.op {
                OpKind::Variable(_) => Some(ep.node),
                OpKind::Compute(op) if op.type_name() == "Identity" => {
                    let src = node.inputs.first()?;
                    matches!(g.nodes[src.node].op, OpKind::Variable(_)).then_some(src.node)
                }
                _ => None,
            }
        };
        let is_var = |ep: &Endpoint| ref_of(ep).is_some();
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
            if !slot_of.contains_key(&ep) && !is_var(&ep) {
                slot_of.insert(ep, slots);
                slots += 1;
            }
        }
        let mut last_use: HashMap<usize, usize> = HashMap::new();
        let mut steps = Vec::with_capacity(order.len());
        for (pos, &id) in order.iter().enumerate() {
            let node = &g.nodes[id];
            let inputs: Vec<Input> = node
                .inputs
                .iter()
                .map(|ep| match slot_of.get(ep) {
                    Some(&s) => {
                        last_use.insert(s, pos);
                        Input::Slot(s)
                    }
                    None => Input::Var(ref_of(ep).unwrap_or(ep.node)),
                })
                .collect();
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
            let device = placement::place(&node.name, &node.op, &node.device, gpu, soft)?;
            steps.push(Step {
                node: id,
                device,
                name: node.name.clone(),
                op: node.op.clone(),
                inputs,
                outputs,
                frees: Vec::new(),
            });
        }
        let mut fetched: BTreeSet<usize> = BTreeSet::new();
        let fetches = sig
            .fetches
            .iter()
            .map(|t| match t {
                Target::Op(_) => FetchFrom::Nothing,
                Target::Tensor(ep) => match slot_of.get(ep) {
                    Some(&s) => {
                        fetched.insert(s);
                        FetchFrom::Slot(s)
                    }
                    None => {
                        let var = ref_of(ep).unwrap_or(ep.node);
                        FetchFrom::Var(var, g.nodes[var].name.clone())
                    }
                },
            })
            .collect();
        for (slot, pos) in last_use {
            if !fetched.contains(&slot) {
                steps[pos].frees.push(slot);
            }
        }
        let var_names = g
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| matches!(n.op, OpKind::Variable(_)))
            .map(|(i, n)| (i, n.name.clone()))
            .collect();
        let feed_nodes = sig.feeds.iter().map(|ep| g.nodes[ep.node].name.clone()).collect();
        Ok(Plan { steps, slots, feeds, feed_nodes, fetches, var_names })
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
