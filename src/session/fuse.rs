//! Fusion, a plan rewrite after placement (TF's remapper, `ConfigProto::graph_options`):
//! chains of float32 elementwise ops on one device become one step running one kernel, and a
//! chain that consumes a `Conv2D` or `MatMul` becomes that kernel's epilogue. A producer joins
//! its consumer only when the consumer is the only reader of its value and no fetch reads it.
//! The placement log still lists every node; step stats show a fused step under the name of
//! its last node, with the nodes it absorbed.

use std::collections::HashMap;
use std::sync::Arc;

use super::plan::{Action, Input, Plan, Step};
use crate::graph::GraphData;
use crate::ops::fused::wgsl::MAX_LEAVES;
use crate::ops::fused::{Epilogue, Expr, Fused};
use crate::ops::{Op, OpKind};
use crate::tensor::{DType, TensorSpec};

/// An input of a chain: a step input with its static spec, or the head's output.
#[derive(Clone, Debug)]
enum Leaf {
    Input(Input, TensorSpec),
    Head,
}

/// A chain being built at the step of its last op.
#[derive(Clone, Debug)]
struct Group {
    expr: Expr,
    leaves: Vec<Leaf>,
    head: Option<(Arc<dyn Op>, Vec<Input>, TensorSpec)>,
    /// The nodes absorbed, in execution order (the step's own node is not among them).
    names: Vec<String>,
    reads_vars: bool,
}

impl Group {
    /// The one-op chain of an elementwise float32 step.
    fn of(step: &Step, g: &GraphData) -> Option<Group> {
        let Action::Node(OpKind::Compute(op)) = &step.action else { return None };
        let kind = op.elementwise()?;
        let node = &g.nodes[step.node];
        let specs: Vec<TensorSpec> = node.inputs.iter().map(|ep| g.nodes[ep.node].outputs[ep.index].clone()).collect();
        let all_f32 = specs.iter().chain(&node.outputs).all(|s| s.dtype == DType::F32);
        if !all_f32 || specs.len() != step.inputs.len() || node.outputs.len() != 1 {
            return None;
        }
        let args = (0..specs.len()).map(Expr::Leaf).collect();
        Some(Group {
            expr: Expr::Node { op: op.clone(), kind, args },
            leaves: step.inputs.iter().zip(specs).map(|(i, s)| Leaf::Input(*i, s)).collect(),
            head: None,
            names: Vec::new(),
            reads_vars: step.inputs.iter().any(|i| matches!(i, Input::Var(_))),
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

    /// The fused op and its step inputs: the head's inputs, then the other leaves.
    fn into_op(self) -> (Fused, Vec<Input>, Vec<String>) {
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

/// Fuses the plan's chains (see the module docs), then recomputes which step frees what.
pub(crate) fn fuse(plan: &mut Plan, g: &GraphData) {
    let steps = &plan.steps;
    let mut readers: HashMap<usize, usize> = HashMap::new();
    for i in steps.iter().flat_map(|s| &s.inputs) {
        if let Input::Slot(s) = i {
            *readers.entry(*s).or_default() += 1;
        }
    }
    let fetched = plan.fetched_slots();
    let mut producer: HashMap<usize, usize> = HashMap::new();
    for (p, step) in steps.iter().enumerate() {
        if matches!(step.action, Action::Node(_)) && step.outputs.len() == 1 {
            if let Some(s) = step.outputs[0] {
                producer.insert(s, p);
            }
        }
    }
    let assigns_between =
        |p: usize, c: usize| steps[p + 1..c].iter().any(|s| matches!(s.action, Action::Node(OpKind::Assign(_))));
    // Step `p` may hand its only output `s` to step `c`.
    let single_use = |p: usize, c: usize, s: usize| {
        steps[p].device == steps[c].device && readers.get(&s) == Some(&1) && !fetched.contains(&s)
    };
    let mut groups: Vec<Option<Group>> = vec![None; steps.len()];
    let mut dead = vec![false; steps.len()];
    for c in 0..steps.len() {
        let Some(mut group) = Group::of(&steps[c], g) else { continue };
        let mut j = 0;
        while j < group.leaves.len() {
            let slot = match &group.leaves[j] {
                Leaf::Input(Input::Slot(s), _) => *s,
                _ => {
                    j += 1;
                    continue;
                }
            };
            let Some(&p) = producer.get(&slot) else {
                j += 1;
                continue;
            };
            if !single_use(p, c, slot) {
                j += 1;
                continue;
            }
            // An elementwise producer's chain joins this one.
            if let Some(sub) = groups[p].as_ref() {
                if (sub.head.is_none() || group.head.is_none()) && !(sub.reads_vars && assigns_between(p, c)) {
                    let mut merged = group.clone();
                    let mut sub = sub.clone();
                    sub.names.push(steps[p].name.clone());
                    merged.absorb(j, sub);
                    if merged.fits() {
                        group = merged;
                        groups[p] = None;
                        dead[p] = true;
                        j = 0;
                        continue;
                    }
                }
            }
            // A head producer: this chain becomes its epilogue.
            if let (None, Some(head)) = (&group.head, head_of(&steps[p], g)) {
                let reads_vars = steps[p].inputs.iter().any(|i| matches!(i, Input::Var(_)));
                if !(reads_vars && assigns_between(p, c)) {
                    let mut merged = group.clone();
                    merged.leaves[j] = Leaf::Head;
                    merged.head = Some((head.0, steps[p].inputs.clone(), head.1));
                    merged.names.insert(0, steps[p].name.clone());
                    merged.reads_vars |= reads_vars;
                    merged.normalize();
                    if merged.fits() {
                        group = merged;
                        dead[p] = true;
                        j = 0;
                        continue;
                    }
                }
            }
            j += 1;
        }
        groups[c] = Some(group);
    }
    for (step, group) in plan.steps.iter_mut().zip(groups) {
        match group {
            Some(group) if !group.names.is_empty() => {
                let (op, inputs, names) = group.into_op();
                step.action = Action::Node(OpKind::Compute(Arc::new(op)));
                step.inputs = inputs;
                step.fused = names;
            }
            _ => {}
        }
    }
    let mut k = 0;
    plan.steps.retain(|_| {
        k += 1;
        !dead[k - 1]
    });
    plan.assign_frees();
}

/// The op and static output spec of a float32 step whose kernels take an epilogue.
fn head_of(step: &Step, g: &GraphData) -> Option<(Arc<dyn Op>, TensorSpec)> {
    let Action::Node(OpKind::Compute(op)) = &step.action else { return None };
    let out = g.nodes[step.node].outputs.first()?;
    (op.takes_epilogue() && out.dtype == DType::F32 && step.outputs.len() == 1).then(|| (op.clone(), out.clone()))
}
