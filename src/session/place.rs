//! Stage 2 of a run's pipeline, place: a device for every node of a [`Pruned`] order. This is
//! the only place a node's device is decided (by `crate::placement`'s rules and cost model);
//! the later stages and the executor run each node where its [`Placed`] says.

use std::collections::HashMap;

use super::prune::Pruned;
use crate::error::Result;
use crate::graph::{GraphData, NodeId};
use crate::placement::{self, DeviceKind, Placer};

/// The pruned order with a device per node, and the home device of every variable group
/// placed so far (a variable's value lives there).
#[derive(Debug)]
pub(crate) struct Placed {
    pub(crate) pruned: Pruned,
    devices: HashMap<NodeId, DeviceKind>,
    homes: HashMap<NodeId, DeviceKind>,
}

impl Placed {
    /// The device of node `id`.
    pub(crate) fn device(&self, id: NodeId) -> DeviceKind {
        self.devices.get(&id).copied().unwrap_or(DeviceKind::Cpu)
    }

    /// Where variable `var` lives; `None` for one whose group was never placed.
    pub(crate) fn home(&self, var: NodeId) -> Option<DeviceKind> {
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
mod tests {
    use super::super::prune::{prune, tests::sig};
    use super::*;
    use crate::graph::Graph;
    use crate::placement::{CostModel, GpuTarget, PlacementPolicy};

    fn placer<'a>(gpu: Option<&'a GpuTarget>, pinned: &'a mut HashMap<NodeId, DeviceKind>) -> Placer<'a> {
        Placer { gpu, soft: true, policy: PlacementPolicy::default(), pinned }
    }

    #[test]
    fn without_a_gpu_everything_is_on_the_cpu_and_logged_in_run_order() {
        let g = Graph::new();
        let a = g.named("a").constant(1.0f32).unwrap();
        let b = g.named("b").add(&a, 1.0f32).unwrap();
        let mut pinned = HashMap::new();
        let pruned = prune(&g.read(), &sig(&g, &[&b], &[])).unwrap();
        let placed = place(&g.read(), pruned, &mut placer(None, &mut pinned)).unwrap();
        assert_eq!(placed.device(b.ep.node), DeviceKind::Cpu);
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
        };
        let mut pinned = HashMap::new();
        let pruned = prune(&g.read(), &sig(&g, &[&c, v.value()], &[])).unwrap();
        let placed = place(&g.read(), pruned, &mut placer(Some(&gpu), &mut pinned)).unwrap();
        assert_eq!(placed.device(b.ep.node), DeviceKind::Gpu);
        assert_eq!(placed.device(c.ep.node), DeviceKind::Cpu);
        assert_eq!(placed.home(v.tensor().ep.node), Some(DeviceKind::Gpu));
    }
}
