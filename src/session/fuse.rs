//! Stage 3 of a run's pipeline, fuse (TF's remapper, `ConfigProto::graph_options`): on the
//! placed node order, before any value slot exists, chains of float32 elementwise ops on one
//! device become one [`Unit`] running one kernel, and a chain that consumes a `Conv2D` or
//! `MatMul` becomes that kernel's epilogue. A producer joins its consumer only when the
//! consumer is the only reader of its value, no fetch reads it, both are on one device and no
//! assignment runs between them when the chain reads a variable. The placement log still lists
//! every node; step stats show a fused step under the name of its last node, with the nodes it
//! absorbed. [`Grouped`] holds the units in run order.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::place::Placed;
use super::plan::ref_of;
use super::prune::Target;
use crate::graph::{Endpoint, GraphData, NodeId};
use crate::ops::fused::wgsl::MAX_LEAVES;
use crate::ops::fused::{Epilogue, Expr, Fused};
use crate::ops::{Op, OpKind};
use crate::tensor::{DType, TensorSpec};

/// An input of a chain: a step input with its static spec, or the head's output.
#[derive(Clone, Debug)]
enum Leaf {
    Input(Endpoint, TensorSpec),
    Head,
}

/// A chain being built at the step of its last op.
#[derive(Clone, Debug)]
struct Group {
    expr: Expr,
    leaves: Vec<Leaf>,
    head: Option<(Arc<dyn Op>, Vec<Endpoint>, TensorSpec)>,
    /// The nodes absorbed, in execution order (the step's own node is not among them).
    names: Vec<String>,
    reads_vars: bool,
}

impl Group {
    /// The one-op chain of an elementwise float32 node.
    fn of(id: NodeId, g: &GraphData) -> Option<Group> {
        let node = &g.nodes[id];
        let OpKind::Compute(op) = &node.op else { return None };
        let kind = op.elementwise()?;
        let specs: Vec<TensorSpec> = node.inputs.iter().map(|ep| g.nodes[ep.node].outputs[ep.index].clone()).collect();
        let all_f32 = specs.iter().chain(&node.outputs).all(|s| s.dtype == DType::F32);
        if !all_f32 || node.outputs.len() != 1 {
            return None;
        }
        let args = (0..specs.len()).map(Expr::Leaf).collect();
        Some(Group {
            expr: Expr::Node { op: op.clone(), kind, args },
            leaves: node.inputs.iter().zip(specs).map(|(i, s)| Leaf::Input(*i, s)).collect(),
            head: None,
            names: Vec::new(),
            reads_vars: node.inputs.iter().any(|i| ref_of(g, i).is_some()),
        })
    }

    /// Replaces leaf `j` by the chain `sub`, then renumbers: the head's output (if any) is
    /// leaf 0, unused leaves are dropped.
    fn absorb(&mut self, j: usize, sub: Group) {
        let offset = self.leaves.len();
        self.expr = self.expr.substitute(j, &sub.expr.renumber(&|k| k + offset));
        self.leaves.extend(sub.leaves);
        self.names.splice(0..0, sub.names);
        self.head = self.head.take().or(sub.head);
        self.reads_vars |= sub.reads_vars;
        self.normalize();
    }

    fn normalize(&mut self) {
        let mut used = vec![false; self.leaves.len()];
        mark(&self.expr, &mut used);
        let mut order: Vec<usize> = (0..self.leaves.len()).filter(|&k| used[k]).collect();
        if let Some(h) = order.iter().position(|&k| matches!(self.leaves[k], Leaf::Head)) {
            let k = order.remove(h);
            order.insert(0, k);
        }
        let mut new_of = vec![0; self.leaves.len()];
        for (new, &old) in order.iter().enumerate() {
            new_of[old] = new;
        }
        self.expr = self.expr.renumber(&|k| new_of[k]);
        self.leaves = order.iter().map(|&k| self.leaves[k].clone()).collect();
    }

    /// Whether the chain can run as its head's epilogue by the static shapes (all known), as
    /// the kernels will check them at run time (`Epilogue::fits`). The head is leaf 0.
    fn fits_head(&self) -> bool {
        let Some((_, _, spec)) = &self.head else { return true };
        let Some(out) = spec.shape.to_vec() else { return false };
        let others: Option<Vec<Vec<usize>>> = self
            .leaves
            .iter()
            .skip(1)
            .map(|leaf| match leaf {
                Leaf::Input(_, s) => s.shape.to_vec(),
                Leaf::Head => None,
            })
            .collect();
        let Some(others) = others else { return false };
        let refs: Vec<&[usize]> = others.iter().map(Vec::as_slice).collect();
        Epilogue::new(&self.expr, &refs).fits(&out)
    }

    fn fits(&self) -> bool {
        match self.head {
            Some(_) => self.fits_head(),
            None => self.leaves.len() <= MAX_LEAVES,
        }
    }

    /// The fused op and its inputs: the head's inputs, then the other leaves.
    fn into_op(self) -> (Fused, Vec<Endpoint>, Vec<String>) {
        let (head, mut inputs, head_inputs) = match self.head {
            Some((op, inputs, _)) => {
                let n = inputs.len();
                (Some(op), inputs, n)
            }
            None => (None, Vec::new(), 0),
        };
        inputs.extend(self.leaves.iter().filter_map(|l| match l {
            Leaf::Input(i, _) => Some(*i),
            Leaf::Head => None,
        }));
        (Fused { head, head_inputs, expr: self.expr }, inputs, self.names)
    }
}

fn mark(e: &Expr, used: &mut [bool]) {
    match e {
        Expr::Leaf(k) => used[*k] = true,
        Expr::Node { args, .. } => args.iter().for_each(|a| mark(a, used)),
    }
}

/// A step to be: one node, or a chain fused into its last node (`node`), with the inputs it
/// reads and the names of the nodes it absorbed (empty for a plain node).
#[derive(Debug)]
pub(crate) struct Unit {
    pub(crate) node: NodeId,
    pub(crate) op: OpKind,
    pub(crate) inputs: Vec<Endpoint>,
    pub(crate) fused: Vec<String>,
}

/// The placed nodes grouped into units, in run order.
#[derive(Debug)]
pub(crate) struct Grouped {
    pub(crate) placed: Placed,
    pub(crate) units: Vec<Unit>,
}

/// Groups the placed nodes: one unit per node, or (with `enabled`, TF's remapping) the fused
/// chains of the module docs. `fetches` are the run's fetches: a fetched value is never fused
/// away.
pub(crate) fn fuse(g: &GraphData, placed: Placed, fetches: &[Target], enabled: bool) -> Grouped {
    let order = &placed.pruned.order;
    let mut groups: Vec<Option<Group>> = vec![None; order.len()];
    let mut dead = vec![false; order.len()];
    if enabled {
        Chains::new(g, &placed, fetches).build(&mut groups, &mut dead);
    }
    let units = order
        .iter()
        .zip(groups)
        .zip(dead)
        .filter(|(_, dead)| !dead)
        .map(|((&id, group), _)| match group {
            Some(group) if !group.names.is_empty() => {
                let (op, inputs, names) = group.into_op();
                Unit { node: id, op: OpKind::Compute(Arc::new(op)), inputs, fused: names }
            }
            _ => Unit { node: id, op: g.nodes[id].op.clone(), inputs: g.nodes[id].inputs.clone(), fused: Vec::new() },
        })
        .collect();
    Grouped { placed, units }
}

/// What chain building needs to know of the placed order.
struct Chains<'a> {
    g: &'a GraphData,
    placed: &'a Placed,
    /// How many node inputs read each endpoint.
    readers: HashMap<Endpoint, usize>,
    fetched: HashSet<Endpoint>,
    /// The position of the node producing each endpoint that may be fused away: the only
    /// output of its node, not fed, not a variable's reference.
    producer: HashMap<Endpoint, usize>,
}

impl<'a> Chains<'a> {
    fn new(g: &'a GraphData, placed: &'a Placed, fetches: &[Target]) -> Self {
        let order = &placed.pruned.order;
        let mut readers: HashMap<Endpoint, usize> = HashMap::new();
        for ep in order.iter().flat_map(|&id| &g.nodes[id].inputs) {
            *readers.entry(*ep).or_default() += 1;
        }
        let fetched =
            fetches.iter().filter_map(|t| if let Target::Tensor(ep) = t { Some(*ep) } else { None }).collect();
        let mut producer = HashMap::new();
        for (p, &id) in order.iter().enumerate() {
            let ep = Endpoint { node: id, index: 0 };
            if g.nodes[id].outputs.len() == 1 && !placed.pruned.fed.contains(&ep) && ref_of(g, &ep).is_none() {
                producer.insert(ep, p);
            }
        }
        Chains { g, placed, readers, fetched, producer }
    }

    fn node(&self, pos: usize) -> NodeId {
        self.placed.pruned.order[pos]
    }

    /// Whether a node between positions `p` and `c` assigns a variable.
    fn assigns_between(&self, p: usize, c: usize) -> bool {
        (p + 1..c).any(|k| matches!(self.g.nodes[self.node(k)].op, OpKind::Assign(_)))
    }

    /// Whether the node at `p` may hand its only output `ep` to the node at `c`.
    fn single_use(&self, p: usize, c: usize, ep: &Endpoint) -> bool {
        self.placed.device(self.node(p)) == self.placed.device(self.node(c))
            && self.readers.get(ep) == Some(&1)
            && !self.fetched.contains(ep)
    }

    /// Builds the chains ending at each position, marking the absorbed positions dead.
    fn build(&self, groups: &mut [Option<Group>], dead: &mut [bool]) {
        for c in 0..groups.len() {
            let Some(mut group) = Group::of(self.node(c), self.g) else { continue };
            let mut j = 0;
            while j < group.leaves.len() {
                if let Some((merged, p)) = self.extend(&group, j, c, groups) {
                    groups[p] = None;
                    dead[p] = true;
                    group = merged;
                    j = 0;
                } else {
                    j += 1;
                }
            }
            groups[c] = Some(group);
        }
    }

    /// The chain `group` (ending at `c`) with its leaf `j` replaced by the chain or head
    /// producing it, if that is allowed and fits; with the producer's position.
    fn extend(&self, group: &Group, j: usize, c: usize, groups: &[Option<Group>]) -> Option<(Group, usize)> {
        let Leaf::Input(ep, _) = &group.leaves[j] else { return None };
        let &p = self.producer.get(ep)?;
        if !self.single_use(p, c, ep) {
            return None;
        }
        let name = &self.g.nodes[self.node(p)].name;
        // An elementwise producer's chain joins this one.
        if let Some(sub) = groups[p].as_ref() {
            if (sub.head.is_none() || group.head.is_none()) && !(sub.reads_vars && self.assigns_between(p, c)) {
                let mut merged = group.clone();
                let mut sub = sub.clone();
                sub.names.push(name.clone());
                merged.absorb(j, sub);
                if merged.fits() {
                    return Some((merged, p));
                }
            }
        }
        // A head producer: this chain becomes its epilogue.
        let (None, Some(head)) = (&group.head, head_of(self.node(p), self.g)) else { return None };
        let inputs = &self.g.nodes[self.node(p)].inputs;
        let reads_vars = inputs.iter().any(|i| ref_of(self.g, i).is_some());
        if reads_vars && self.assigns_between(p, c) {
            return None;
        }
        let mut merged = group.clone();
        merged.leaves[j] = Leaf::Head;
        merged.head = Some((head.0, inputs.clone(), head.1));
        merged.names.insert(0, name.clone());
        merged.reads_vars |= reads_vars;
        merged.normalize();
        merged.fits().then_some((merged, p))
    }
}

/// The op and static output spec of a float32 node whose kernels take an epilogue.
fn head_of(id: NodeId, g: &GraphData) -> Option<(Arc<dyn Op>, TensorSpec)> {
    let node = &g.nodes[id];
    let OpKind::Compute(op) = &node.op else { return None };
    let out = node.outputs.first()?;
    (op.fused_name().is_some() && out.dtype == DType::F32 && node.outputs.len() == 1).then(|| (op.clone(), out.clone()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::place::{place, tests::test_gpu};
    use super::super::prune::{prune, tests::sig, Signature};
    use super::*;
    use crate::graph::Graph;
    use crate::placement::{GpuTarget, PlacementPolicy, Placer};
    use crate::tensor::Shape;

    /// The units of `sig` on `g`, placed with a GPU when `gpu`, fused when `remap`.
    pub(crate) fn grouped(g: &Graph, sig: &Signature, gpu: bool, remap: bool) -> Grouped {
        grouped_on(g, sig, usize::from(gpu), remap)
    }

    /// The units of `sig` on `g`, placed with `gpus` GPUs, fused when `remap`.
    pub(crate) fn grouped_on(g: &Graph, sig: &Signature, gpus: usize, remap: bool) -> Grouped {
        let targets: Vec<GpuTarget> = (0..gpus).map(|_| test_gpu()).collect();
        let mut pinned = HashMap::new();
        let mut placer = Placer { gpus: &targets, soft: true, policy: PlacementPolicy::default(), pinned: &mut pinned };
        let data = g.read();
        let placed = place(&data, prune(&data, sig).unwrap(), &mut placer).unwrap();
        fuse(&data, placed, &sig.fetches, remap)
    }

    fn fused_of(gr: &Grouped, g: &Graph, name: &str) -> Option<Vec<String>> {
        gr.units.iter().find(|u| g.read().nodes[u.node].name == name).map(|u| u.fused.clone())
    }

    #[test]
    fn an_elementwise_chain_becomes_one_unit_named_after_its_last_node() {
        let g = Graph::new();
        let x = g.named("x").placeholder(DType::F32, Shape::known(&[4])).unwrap();
        let a = g.named("a").mul(&x, 2.0f32).unwrap();
        let b = g.named("b").add(&a, 1.0f32).unwrap();
        let c = g.named("c").relu(&b).unwrap();
        let s = sig(&g, &[&c], &[&x]);
        let plain = grouped(&g, &s, false, false);
        assert!(plain.units.iter().all(|u| u.fused.is_empty()));
        let fused = grouped(&g, &s, false, true);
        assert_eq!(fused_of(&fused, &g, "c"), Some(vec!["a".to_string(), "b".to_string()]));
        assert_eq!(fused_of(&fused, &g, "a"), None, "an absorbed node has no unit of its own");
        assert_eq!(fused.units.len(), plain.units.len() - 2);
    }

    #[test]
    fn a_fetched_or_shared_value_is_not_fused_away() {
        let g = Graph::new();
        let x = g.named("x").placeholder(DType::F32, Shape::known(&[4])).unwrap();
        let a = g.named("a").mul(&x, 2.0f32).unwrap();
        let b = g.named("b").add(&a, 1.0f32).unwrap();
        let c = g.named("c").relu(&b).unwrap();
        let d = g.named("d").neg(&a).unwrap();
        // `b` is fetched: `c` stands alone; `a` has two readers: it stays.
        let fused = grouped(&g, &sig(&g, &[&c, &b, &d], &[&x]), false, true);
        assert_eq!(fused_of(&fused, &g, "c"), Some(vec![]));
        assert_eq!(fused_of(&fused, &g, "b"), Some(vec![]));
        assert_eq!(fused_of(&fused, &g, "a"), Some(vec![]));
    }

    #[test]
    fn nodes_on_two_devices_are_not_fused() {
        let g = Graph::new();
        let x = g.named("x").placeholder(DType::F32, Shape::known(&[4])).unwrap();
        let a = g.named("a").mul(&x, 2.0f32).unwrap();
        let b = {
            let _cpu = g.device("/cpu:0");
            g.named("b").add(&a, 1.0f32).unwrap()
        };
        let fused = grouped(&g, &sig(&g, &[&b], &[&x]), true, true);
        assert_eq!(fused_of(&fused, &g, "b"), Some(vec![]));
        assert_eq!(fused_of(&fused, &g, "a"), Some(vec![]));
    }
}
