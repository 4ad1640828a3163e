//! Stage 2 of a run's pipeline, place: a device for every node of a [`Pruned`] order. This is
//! the only place a node's device is decided (by `crate::placement`'s rules and cost model);
//! the later stages and the executor run each node where its [`Placed`] says.

use std::collections::HashMap;

use super::prune::Pruned;
use crate::error::Result;
use crate::graph::{GraphData, NodeId};
use crate::placement::{self, DeviceId, Placer};

/// The pruned order with a device per node, and the home device of every variable group
/// placed so far (a variable's value lives there).
#[derive(Debug)]
pub(crate) struct Placed {
    pub(crate) pruned: Pruned,
    devices: HashMap<NodeId, DeviceId>,
    homes: HashMap<NodeId, DeviceId>,
}

impl Placed {
    /// The device of node `id`.
    pub(crate) fn device(&self, id: NodeId) -> DeviceId {
        self.devices.get(&id).copied().unwrap_or(DeviceId::CPU)
    }

    /// Where variable `var` lives; `None` for one whose group was never placed.
    pub(crate) fn home(&self, var: NodeId) -> Option<DeviceId> {
        self.homes.get(&var).copied()
    }

    /// TF's placement log lines for the nodes, in run order.
    pub(crate) fn log_lines(&self, g: &GraphData) -> Vec<String> {
        let line = |&id: &NodeId| placement::log_line(&g.nodes[id].name, g.nodes[id].op.type_name(), self.device(id));
        self.pruned.order.iter().map(line).collect()
    }
}

/// Places the nodes of `pruned` with `placer`.
pub(crate) fn place(g: &GraphData, pruned: Pruned, placer: &mut Placer<'_>) -> Result<Placed> {
    let devices = placement::place(g, &pruned.order, placer)?;
    let homes = placer.pinned.clone();
    Ok(Placed { pruned, devices, homes })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::prune::{prune, tests::sig};
    use super::*;
    use crate::graph::Graph;
    use crate::placement::{CostModel, GpuTarget, PlacementPolicy};

    fn placer<'a>(gpus: &'a [GpuTarget], pinned: &'a mut HashMap<NodeId, DeviceId>) -> Placer<'a> {
        Placer { gpus, soft: true, policy: PlacementPolicy::default(), pinned }
    }

    #[test]
    fn without_a_gpu_everything_is_on_the_cpu_and_logged_in_run_order() {
        let g = Graph::new();
        let a = g.named("a").constant(1.0f32).unwrap();
        let b = g.named("b").add(&a, 1.0f32).unwrap();
        let mut pinned = HashMap::new();
        let pruned = prune(&g.read(), &sig(&g, &[&b], &[])).unwrap();
        let placed = place(&g.read(), pruned, &mut placer(&[], &mut pinned)).unwrap();
        assert_eq!(placed.device(b.ep.node), DeviceId::CPU);
        let lines = placed.log_lines(&g.read());
        // `a`, the constant 1 and `b`, in run order: `b` last.
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[2].starts_with("b: (AddV2): "), "{lines:?}");
        assert!(lines.iter().all(|l| l.ends_with("device:CPU:0")), "{lines:?}");
    }

    #[test]
    fn a_gpu_takes_free_nodes_and_a_cpu_request_is_kept() {
        let g = Graph::new();
        let a = g.named("a").constant(1.0f32).unwrap();
        let b = g.named("b").add(&a, 1.0f32).unwrap();
        let c = {
            let _d = g.device("/cpu:0");
            g.named("c").mul(&b, 2.0f32).unwrap()
        };
        let v = g.variable(1.0f32, "v").unwrap();
        let gpu = GpuTarget {
            max_binding: 1 << 30,
            budget: None,
            model: CostModel::for_adapter(wgpu::DeviceType::DiscreteGpu),
            lowering: None,
        };
        let mut pinned = HashMap::new();
        let pruned = prune(&g.read(), &sig(&g, &[&c, v.value()], &[])).unwrap();
        let placed = place(&g.read(), pruned, &mut placer(std::slice::from_ref(&gpu), &mut pinned)).unwrap();
        assert_eq!(placed.device(b.ep.node), DeviceId::gpu(0));
        assert_eq!(placed.device(c.ep.node), DeviceId::CPU);
        assert_eq!(placed.home(v.tensor().ep.node), Some(DeviceId::gpu(0)));
    }

    /// A target of a test GPU.
    pub(crate) fn test_gpu() -> GpuTarget {
        GpuTarget {
            max_binding: 1 << 30,
            budget: None,
            model: CostModel::for_adapter(wgpu::DeviceType::DiscreteGpu),
            lowering: None,
        }
    }

    #[test]
    fn requests_for_gpu_ordinals_colocation_and_generators_on_two_gpus() {
        let g = Graph::new();
        let (a, b) = {
            let _d = g.device("/device:GPU:1");
            (g.named("a").constant(1.0f32).unwrap(), g.named("b").constant(2.0f32).unwrap())
        };
        let k = g.named("k").constant(3.0f32).unwrap();
        let s = {
            let _d = g.device("/gpu:1");
            g.named("s").add(&a, &k).unwrap()
        };
        let t = g.named("t").mul(&s, &b).unwrap();
        let v = {
            let _d = g.device("/device:GPU:1");
            g.variable(1.0f32, "v").unwrap()
        };
        let gpus = [test_gpu(), test_gpu()];
        let mut pinned = HashMap::new();
        let pruned = prune(&g.read(), &sig(&g, &[&t, v.value()], &[])).unwrap();
        let placed = place(&g.read(), pruned, &mut placer(&gpus, &mut pinned)).unwrap();
        assert_eq!(placed.device(s.ep.node), DeviceId::gpu(1));
        // A free node goes to GPU:0; a constant without a request goes to its consumer's GPU.
        assert_eq!(placed.device(t.ep.node), DeviceId::gpu(0));
        assert_eq!(placed.device(k.ep.node), DeviceId::gpu(1));
        // The variable's group asked for GPU:1: its read is there too.
        assert_eq!(placed.home(v.tensor().ep.node), Some(DeviceId::gpu(1)));
        assert_eq!(placed.device(v.value().ep.node), DeviceId::gpu(1));
        // With one GPU, GPU:1 does not exist: soft placement reads it as GPU:0.
        let mut pinned = HashMap::new();
        let pruned = prune(&g.read(), &sig(&g, &[&t], &[])).unwrap();
        let placed = place(&g.read(), pruned, &mut placer(&gpus[..1], &mut pinned)).unwrap();
        assert_eq!(placed.device(s.ep.node), DeviceId::gpu(0));
    }
}
