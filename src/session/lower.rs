//! Stage 4 of a run's pipeline, lower: from the [`Grouped`] units to the [`Plan`], done once.
//! Every value a unit or a fetch reads gets a slot on the device of its producer (feeds arrive
//! on the host); variables and their `read` identities alias the variable's buffer instead;
//! a unit reading a value on the other device gets a transfer step before it (one per value
//! and device); last, each step learns which slots it frees.

use std::collections::{BTreeSet, HashMap};

use super::fuse::{Grouped, Unit};
use super::plan::{ref_of, transfer_name, Action, FetchFrom, Input, Plan, Step};
use super::prune::{Signature, Target};
use crate::graph::{Endpoint, GraphData};
use crate::ops::OpKind;
use crate::placement::DeviceId;

/// The plan being built.
struct Lowering<'a> {
    g: &'a GraphData,
    grouped: &'a Grouped,
    slot_of: HashMap<Endpoint, usize>,
    /// Where each slot's value lives.
    slot_device: Vec<DeviceId>,
    /// The slot holding a copy of a slot on another device.
    moved: HashMap<(usize, DeviceId), usize>,
    steps: Vec<Step>,
}

/// Lowers the units of `grouped` (the pipeline of `sig` on graph `g`) to a plan.
pub(crate) fn lower(g: &GraphData, sig: &Signature, grouped: &Grouped) -> Plan {
    let mut l = Lowering {
        g,
        grouped,
        slot_of: HashMap::new(),
        slot_device: Vec::new(),
        moved: HashMap::new(),
        steps: Vec::with_capacity(grouped.units.len()),
    };
    let mut feeds = Vec::new();
    for ep in &sig.feeds {
        feeds.push((l.slot_device.len(), g.nodes[ep.node].outputs[ep.index].clone()));
        l.new_slot(*ep, DeviceId::CPU);
    }
    // Slots for every endpoint some unit or fetch reads.
    let mut read: BTreeSet<Endpoint> = grouped.units.iter().flat_map(|u| u.inputs.iter().copied()).collect();
    read.extend(sig.fetches.iter().filter_map(|t| if let Target::Tensor(ep) = t { Some(*ep) } else { None }));
    for ep in read {
        if !l.slot_of.contains_key(&ep) && ref_of(g, &ep).is_none() {
            l.new_slot(ep, grouped.placed.device(ep.node));
        }
    }
    for unit in &grouped.units {
        l.unit(unit);
    }
    let fetches = sig.fetches.iter().map(|t| l.fetch(t)).collect();
    let vars = g
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| match &n.op {
            OpKind::Variable(spec) => Some((i, (n.name.clone(), spec.clone()))),
            _ => None,
        })
        .collect();
    let nodes_on_cpu = l
        .steps
        .iter()
        // (A constant placed on a GPU and also evaluated on the CPU for a CPU reader counts
        // where it was placed.)
        .filter(|s| s.device == DeviceId::CPU && matches!(s.action, Action::Node(_)))
        .filter(|s| grouped.placed.device(s.node) == DeviceId::CPU)
        .map(|s| 1 + s.fused.len() as u64)
        .sum();
    let mut plan = Plan { steps: l.steps, slot_device: l.slot_device, feeds, fetches, vars, nodes_on_cpu };
    plan.assign_frees();
    plan
}

impl Lowering<'_> {
    fn new_slot(&mut self, ep: Endpoint, device: DeviceId) -> usize {
        let s = self.push_slot(device);
        self.slot_of.insert(ep, s);
        s
    }

    fn push_slot(&mut self, device: DeviceId) -> usize {
        self.slot_device.push(device);
        self.slot_device.len() - 1
    }

    /// The step of `unit`, after the transfers its inputs need.
    fn unit(&mut self, unit: &Unit) {
        let g = self.g;
        let node = &g.nodes[unit.node];
        let device = self.grouped.placed.device(unit.node);
        // Initialization checks look at the variable, not at its value.
        let reads_values = !matches!(unit.op, OpKind::IsVariableInitialized | OpKind::ReportUninitialized);
        let mut inputs = Vec::with_capacity(unit.inputs.len());
        for (k, ep) in unit.inputs.iter().enumerate() {
            let input = match self.slot_of.get(ep).copied() {
                Some(s) if reads_values && self.slot_device[s] != device => {
                    Input::Slot(self.moved_slot(*ep, s, device))
                }
                Some(s) => Input::Slot(s),
                None => {
                    let var = ref_of(g, ep).unwrap_or(ep.node);
                    let home = self.grouped.placed.home(var).unwrap_or(device);
                    // The assigned variable itself is not read; other refs are read now.
                    let target = k == 0 && matches!(unit.op, OpKind::Assign(_));
                    if reads_values && !target && home != device {
                        let t = self.push_slot(device);
                        self.steps.push(transfer(g, *ep, (home, device), Input::Var(var), t));
                        Input::Slot(t)
                    } else {
                        Input::Var(var)
                    }
                }
            };
            inputs.push(input);
        }
        let fed = &self.grouped.placed.pruned.fed;
        let outputs = (0..node.outputs.len())
            .map(|index| Endpoint { node: unit.node, index })
            .map(|ep| if fed.contains(&ep) { None } else { self.slot_of.get(&ep).copied() })
            .collect();
        self.steps.push(Step {
            node: unit.node,
            device,
            name: node.name.clone(),
            action: Action::Node(unit.op.clone()),
            inputs,
            outputs,
            frees: Vec::new(),
            fused: unit.fused.clone(),
        });
    }

    /// The slot holding slot `s` (the value of `ep`) on `device`, adding its transfer step
    /// the first time. A constant (not fed) is not copied: it is evaluated on `device` too,
    /// where it stays resident, so that no run moves it again.
    fn moved_slot(&mut self, ep: Endpoint, s: usize, device: DeviceId) -> usize {
        if let Some(&t) = self.moved.get(&(s, device)) {
            return t;
        }
        let t = self.push_slot(device);
        self.moved.insert((s, device), t);
        let node = &self.g.nodes[ep.node];
        let step = match &node.op {
            OpKind::Const(_) if !self.grouped.placed.pruned.fed.contains(&ep) => Step {
                node: ep.node,
                device,
                name: node.name.clone(),
                action: Action::Node(node.op.clone()),
                inputs: Vec::new(),
                outputs: vec![Some(t)],
                frees: Vec::new(),
                fused: Vec::new(),
            },
            _ => transfer(self.g, ep, (self.slot_device[s], device), Input::Slot(s), t),
        };
        self.steps.push(step);
        t
    }

    fn fetch(&self, t: &Target) -> FetchFrom {
        match t {
            Target::Op(_) => FetchFrom::Nothing,
            Target::Tensor(ep) => match self.slot_of.get(ep) {
                Some(&s) => FetchFrom::Slot(s),
                None => {
                    let var = ref_of(self.g, ep).unwrap_or(ep.node);
                    FetchFrom::Var(var, self.g.nodes[var].name.clone())
                }
            },
        }
    }
}

/// A step copying the value of `ep` (read as `input`) between two devices, into slot `to`. It
/// is named after the tensor and the copy's direction, e.g. `conv/MemcpyDtoH`,
/// `mul:1/MemcpyHtoD` or, from one GPU to another, `conv/MemcpyDtoD`.
fn transfer(g: &GraphData, ep: Endpoint, (from, device): (DeviceId, DeviceId), input: Input, to: usize) -> Step {
    let node = &g.nodes[ep.node].name;
    let tensor = if ep.index == 0 { node.clone() } else { format!("{node}:{}", ep.index) };
    Step {
        node: ep.node,
        device,
        name: format!("{tensor}/{}", transfer_name(from, device)),
        action: Action::Transfer { from },
        inputs: vec![input],
        outputs: vec![Some(to)],
        frees: Vec::new(),
        fused: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fuse::tests::grouped;
    use super::super::prune::tests::sig;
    use super::*;
    use crate::graph::Graph;
    use crate::tensor::{DType, Shape};

    fn lowered(g: &Graph, sig: &Signature, gpu: bool, remap: bool) -> Plan {
        lower(&g.read(), sig, &grouped(g, sig, gpu, remap))
    }

    #[test]
    fn a_cpu_plan_reads_feeds_from_slots_and_frees_each_value_after_its_last_reader() {
        let g = Graph::new();
        let x = g.named("x").placeholder(DType::F32, Shape::known(&[2])).unwrap();
        let a = g.named("a").mul(&x, 2.0f32).unwrap();
        let b = g.named("b").add(&a, &x).unwrap();
        let s = sig(&g, &[&b], &[&x]);
        let plan = lowered(&g, &s, false, false);
        assert_eq!(plan.feeds.len(), 1);
        let feed = plan.feeds[0].0;
        let names: Vec<&str> = plan.steps.iter().map(|st| st.name.as_str()).collect();
        assert!(!names.contains(&"x"), "a fed placeholder does not run: {names:?}");
        let step_b = plan.steps.iter().find(|st| st.name == "b").unwrap();
        assert!(matches!(step_b.inputs[1], Input::Slot(s) if s == feed));
        // The feed's last reader is `b`, which frees it; the fetched value is never freed.
        assert!(step_b.frees.contains(&feed));
        let fetched = plan.fetched_slots();
        assert!(plan.steps.iter().all(|st| st.frees.iter().all(|s| !fetched.contains(s))));
    }

    #[test]
    fn a_value_crossing_devices_gets_one_transfer_per_device() {
        let g = Graph::new();
        let x = g.named("x").placeholder(DType::F32, Shape::known(&[2])).unwrap();
        let a = g.named("a").mul(&x, 2.0f32).unwrap();
        let (b, c) = {
            let _cpu = g.device("/cpu:0");
            (g.named("b").neg(&a).unwrap(), g.named("c").exp(&a).unwrap())
        };
        let plan = lowered(&g, &sig(&g, &[&b, &c], &[&x]), true, false);
        let names: Vec<&str> = plan.steps.iter().map(|st| st.name.as_str()).collect();
        assert_eq!(names.iter().filter(|n| **n == "a/MemcpyDtoH").count(), 1, "{names:?}");
        assert_eq!(names.iter().filter(|n| **n == "x/MemcpyHtoD").count(), 1, "{names:?}");
        let t = plan.steps.iter().find(|st| st.name == "a/MemcpyDtoH").unwrap();
        assert_eq!((t.device, t.type_name()), (DeviceId::CPU, "MemcpyDtoH"));
    }

    #[test]
    fn a_value_crossing_gpus_gets_a_device_to_device_copy_from_its_gpu() {
        let g = Graph::new();
        let x = g.named("x").placeholder(DType::F32, Shape::known(&[2])).unwrap();
        let a = g.named("a").mul(&x, 2.0f32).unwrap();
        let b = {
            let _gpu1 = g.device("/gpu:1");
            g.named("b").neg(&a).unwrap()
        };
        let s = sig(&g, &[&b], &[&x]);
        let plan = lower(&g.read(), &s, &super::super::fuse::tests::grouped_on(&g, &s, 2, false));
        let t = plan.steps.iter().find(|st| st.name == "a/MemcpyDtoD").expect("a copy between the GPUs");
        assert_eq!((t.device, t.type_name()), (DeviceId::gpu(1), "MemcpyDtoD"));
        assert!(matches!(t.action, Action::Transfer { from } if from == DeviceId::gpu(0)));
        let Input::Slot(src) = t.inputs[0] else { panic!("a copy reads a slot") };
        assert_eq!(plan.slot_device[src], DeviceId::gpu(0));
        assert_eq!(plan.slot_device[t.outputs[0].unwrap()], DeviceId::gpu(1));
    }

    #[test]
    fn a_constant_read_on_other_devices_is_evaluated_there_unless_fed() {
        let g = Graph::new();
        let c = g.named("c").constant(vec![1.0f32, 2.0]).unwrap();
        let a = g.named("a").neg(&c).unwrap();
        let b = {
            let _gpu1 = g.device("/gpu:1");
            g.named("b").exp(&c).unwrap()
        };
        let d = {
            let _cpu = g.device("/cpu:0");
            g.named("d").abs(&c).unwrap()
        };
        let s = sig(&g, &[&a, &b, &d], &[]);
        let plan = lower(&g.read(), &s, &super::super::fuse::tests::grouped_on(&g, &s, 2, false));
        let consts: Vec<DeviceId> = plan.steps.iter().filter(|st| st.name == "c").map(|st| st.device).collect();
        assert_eq!(consts, [DeviceId::gpu(0), DeviceId::gpu(1), DeviceId::CPU], "{:?}", plan.steps);
        assert!(plan.steps.iter().all(|st| matches!(st.action, Action::Node(_))), "no transfer: {:?}", plan.steps);
        assert_eq!(plan.nodes_on_cpu, 1, "`d`; `c` counts on its GPU");
        // Fed, the constant's value comes from the feed, and moves.
        let s = sig(&g, &[&b], &[&c]);
        let plan = lower(&g.read(), &s, &super::super::fuse::tests::grouped_on(&g, &s, 2, false));
        assert!(plan.steps.iter().any(|st| st.name == "c/MemcpyHtoD"), "{:?}", plan.steps);
    }

    #[test]
    fn a_variable_and_its_read_alias_the_variable() {
        let g = Graph::new();
        let v = g.variable(1.0f32, "v").unwrap();
        let y = g.named("y").mul(v.value(), 2.0f32).unwrap();
        let plan = lowered(&g, &sig(&g, &[&y, v.tensor()], &[]), false, false);
        let var = v.tensor().ep.node;
        let step_y = plan.steps.iter().find(|st| st.name == "y").unwrap();
        assert!(matches!(step_y.inputs[0], Input::Var(id) if id == var));
        assert!(matches!(&plan.fetches[1], FetchFrom::Var(id, name) if *id == var && name == "v"));
        assert_eq!(plan.var_name(var), "v");
    }

    #[test]
    fn a_fused_chain_is_one_step_and_its_inner_values_get_no_slot() {
        let g = Graph::new();
        let x = g.named("x").placeholder(DType::F32, Shape::known(&[4])).unwrap();
        let a = g.named("a").mul(&x, 2.0f32).unwrap();
        let b = g.named("b").relu(&a).unwrap();
        let s = sig(&g, &[&b], &[&x]);
        let (plain, fused) = (lowered(&g, &s, false, false), lowered(&g, &s, false, true));
        let step_b = fused.steps.iter().find(|st| st.name == "b").unwrap();
        assert_eq!(step_b.fused, vec!["a".to_string()]);
        assert!(fused.steps.iter().all(|st| st.name != "a"));
        assert!(fused.slot_device.len() < plain.slot_device.len());
    }
}
