//! Stage 1 of a run's pipeline, prune: from a run signature (fetches and fed tensors) to the
//! nodes the run needs, in the order they run. A [`Pruned`] holds that order and the fed
//! endpoints; it knows nothing of devices or value slots yet.

use std::collections::{BTreeSet, HashMap, VecDeque};

use crate::error::{Error, Result};
use crate::graph::{Endpoint, GraphData, NodeId};
use crate::ops::OpKind;

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

/// The nodes a run needs, in topological order, and the endpoints it feeds.
#[derive(Debug)]
pub(crate) struct Pruned {
    pub(crate) order: Vec<NodeId>,
    pub(crate) fed: BTreeSet<Endpoint>,
}

/// Prunes graph `g` to what `sig` needs and orders it; fails on a cycle among those nodes.
pub(crate) fn prune(g: &GraphData, sig: &Signature) -> Result<Pruned> {
    let fed: BTreeSet<Endpoint> = sig.feeds.iter().copied().collect();
    let needed = needed(g, sig, &fed);
    let order = topo_order(g, &needed)?;
    Ok(Pruned { order, fed })
}

/// The nodes that must run: ancestors of the fetches through data and control edges,
/// stopping at fed tensors and at variables (which hold state and need no step).
fn needed(g: &GraphData, sig: &Signature, fed: &BTreeSet<Endpoint>) -> Vec<bool> {
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
    let push = |id: NodeId, ready: &mut VecDeque<NodeId>, ready_writes: &mut VecDeque<NodeId>| {
        if writes(id) {
            ready_writes.push_back(id)
        } else {
            ready.push_back(id)
        }
    };
    let mut ids: Vec<NodeId> = indegree.iter().filter(|(_, &d)| d == 0).map(|(&id, _)| id).collect();
    ids.sort_unstable();
    for id in ids {
        push(id, &mut ready, &mut ready_writes);
    }
    let mut order = Vec::with_capacity(indegree.len());
    while let Some(id) = ready.pop_front().or_else(|| ready_writes.pop_front()) {
        order.push(id);
        for &c in consumers.get(&id).map(Vec::as_slice).unwrap_or(&[]) {
            if let Some(d) = indegree.get_mut(&c) {
                *d -= 1;
                if *d == 0 {
                    push(c, &mut ready, &mut ready_writes);
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::graph::{Graph, Output};
    use crate::tensor::{DType, Shape};

    /// The signature fetching `fetches` and feeding `feeds` on graph `g`.
    pub(crate) fn sig(g: &Graph, fetches: &[&Output], feeds: &[&Output]) -> Signature {
        let mut feeds: Vec<Endpoint> = feeds.iter().map(|t| t.ep).collect();
        feeds.sort();
        Signature { fetches: fetches.iter().map(|t| Target::Tensor(t.ep)).collect(), feeds, version: g.read().version }
    }

    fn names(g: &Graph, order: &[NodeId]) -> Vec<String> {
        order.iter().map(|&id| g.read().nodes[id].name.clone()).collect()
    }

    #[test]
    fn only_the_ancestors_of_the_fetches_run_and_a_feed_cuts_the_graph() {
        let g = Graph::new();
        let a = g.named("a").constant(1.0f32).unwrap();
        let b = g.named("b").add(&a, 1.0f32).unwrap();
        let _unused = g.named("unused").mul(&a, 3.0f32).unwrap();
        let c = g.named("c").mul(&b, 2.0f32).unwrap();
        let p = prune(&g.read(), &sig(&g, &[&c], &[])).unwrap();
        let got = names(&g, &p.order);
        assert!(!got.contains(&"unused".to_string()), "{got:?}");
        let pos = |n: &str| got.iter().position(|x| x == n).unwrap();
        assert!(pos("a") < pos("b") && pos("b") < pos("c"), "{got:?}");
        // Feeding `b` cuts off `a` and `b` itself.
        let p = prune(&g.read(), &sig(&g, &[&c], &[&b])).unwrap();
        let got = names(&g, &p.order);
        assert!(!got.contains(&"a".to_string()) && !got.contains(&"b".to_string()), "{got:?}");
        assert!(p.fed.contains(&b.ep));
    }

    #[test]
    fn reads_run_before_updates_and_variables_need_no_step() {
        let g = Graph::new();
        let v = g.variable(1.0f32, "v").unwrap();
        let read = g.named("read").identity(v.tensor()).unwrap();
        let up = g.named("up").assign(&v, 2.0f32).unwrap();
        let p = prune(&g.read(), &sig(&g, &[&up, &read], &[])).unwrap();
        let got = names(&g, &p.order);
        assert!(!got.contains(&"v".to_string()), "{got:?}");
        let pos = |n: &str| got.iter().position(|x| x == n).unwrap();
        assert!(pos("read") < pos("up"), "{got:?}");
    }

    #[test]
    fn a_cycle_is_an_error_naming_its_nodes() {
        let g = Graph::new();
        let x = g.placeholder(DType::F32, Shape::known(&[1])).unwrap();
        let b = g.named("b").add(&x, 1.0f32).unwrap();
        let c = g.named("c").mul(&b, 2.0f32).unwrap();
        g.add_control_input(&b.op(), &c.op()).unwrap();
        let e = prune(&g.read(), &sig(&g, &[&c], &[])).unwrap_err();
        assert_eq!(e.message, "Graph is invalid, contains a cycle with 2 nodes, including: b, c");
    }
}
