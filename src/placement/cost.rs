//! The cost-model placement policy: each free node goes where its estimated kernel time plus
//! the transfers it causes is least. Times come from a [`CostModel`] of the two devices, built
//! from the adapter's type or calibrated by timing kernels once.

use std::collections::HashMap;

use super::DeviceKind;
use crate::graph::{GraphData, NodeId};
use crate::ops::OpKind;
use crate::tensor::TensorSpec;

/// How a session chooses between the CPU and the GPU for nodes that could run on either.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PlacementPolicy {
    /// TF's rule: the GPU whenever it has a kernel for the node.
    #[default]
    Tf,
    /// Estimated times decide. With `calibrate`, the speeds are measured once per process
    /// (a matmul, an add and a transfer on each device) instead of taken from the adapter type.
    CostModel {
        /// Time kernels to fit the model.
        calibrate: bool,
    },
}

/// Speeds of one device.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DeviceModel {
    /// Arithmetic throughput, FLOP/s.
    pub flops_per_s: f64,
    /// Memory throughput of a streaming kernel, bytes/s.
    pub bytes_per_s: f64,
    /// Fixed cost of one kernel, seconds.
    pub launch_s: f64,
}

impl DeviceModel {
    /// Estimated seconds for a kernel of `flops` touching `bytes`: the slower of compute and
    /// memory, plus the launch.
    pub fn time(&self, flops: f64, bytes: f64) -> f64 {
        self.launch_s + (flops / self.flops_per_s).max(bytes / self.bytes_per_s)
    }
}

/// Speeds of the CPU, the GPU and the link between them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CostModel {
    /// The host.
    pub cpu: DeviceModel,
    /// The adapter.
    pub gpu: DeviceModel,
    /// Host↔device copy throughput, bytes/s.
    pub transfer_bytes_per_s: f64,
    /// Fixed cost of a transfer, seconds (a readback in the middle of a run waits for the GPU).
    pub transfer_latency_s: f64,
}

impl CostModel {
    /// A model from the adapter type alone. A software adapter (lavapipe reports itself as a
    /// CPU-type device) shares the host's cores, so its kernels are slower than the CPU
    /// kernels and its launches dearer.
    pub fn for_adapter(device_type: wgpu::DeviceType) -> CostModel {
        let cpu = DeviceModel { flops_per_s: 50e9, bytes_per_s: 8e9, launch_s: 1e-6 };
        let (gpu, link, latency) = match device_type {
            wgpu::DeviceType::DiscreteGpu => {
                (DeviceModel { flops_per_s: 10e12, bytes_per_s: 500e9, launch_s: 10e-6 }, 12e9, 50e-6)
            }
            wgpu::DeviceType::IntegratedGpu | wgpu::DeviceType::VirtualGpu => {
                (DeviceModel { flops_per_s: 1e12, bytes_per_s: 50e9, launch_s: 10e-6 }, 20e9, 50e-6)
            }
            wgpu::DeviceType::Cpu | wgpu::DeviceType::Other => {
                (DeviceModel { flops_per_s: 10e9, bytes_per_s: 4e9, launch_s: 40e-6 }, 4e9, 150e-6)
            }
        };
        CostModel { cpu, gpu, transfer_bytes_per_s: link, transfer_latency_s: latency }
    }

    fn device(&self, d: DeviceKind) -> &DeviceModel {
        match d {
            DeviceKind::Cpu => &self.cpu,
            DeviceKind::Gpu => &self.gpu,
        }
    }

    /// Estimated seconds to move `bytes` between the devices.
    pub fn transfer(&self, bytes: f64) -> f64 {
        self.transfer_latency_s + bytes / self.transfer_bytes_per_s
    }
}

fn bytes(spec: &TensorSpec) -> f64 {
    crate::ops::spec_elements(spec) * spec.dtype.size() as f64
}

/// FLOPs and bytes touched by node `id`, from its static specs.
fn work(g: &GraphData, id: NodeId) -> (f64, f64) {
    let node = &g.nodes[id];
    let ins: Vec<TensorSpec> = node.inputs.iter().map(|ep| g.nodes[ep.node].outputs[ep.index].clone()).collect();
    let moved: f64 = ins.iter().chain(&node.outputs).map(bytes).sum();
    let flops = match &node.op {
        OpKind::Compute(op) => op.flops(&ins, &node.outputs),
        _ => 0.0,
    };
    (flops, moved)
}

/// The device for a free variable group under the cost model: the one on which all of the
/// graph's kernels together are cheaper by the model. Weights then stay where most of the work
/// that reads and updates them is done, and a later plan does not pay a transfer per run for a
/// group pinned on the wrong side by the initializer's plan.
pub(crate) fn resident_device(g: &GraphData, m: &CostModel) -> DeviceKind {
    let (mut cpu, mut gpu) = (0.0, 0.0);
    for (id, node) in g.nodes.iter().enumerate() {
        if matches!(node.op, OpKind::Compute(_)) {
            let (flops, b) = work(g, id);
            cpu += m.cpu.time(flops, b);
            gpu += m.gpu.time(flops, b);
        }
    }
    if cpu < gpu {
        DeviceKind::Cpu
    } else {
        DeviceKind::Gpu
    }
}

/// Total estimated time of `device` for the nodes in `order`: kernels plus one transfer per
/// tensor and destination device.
fn total(g: &GraphData, order: &[NodeId], device: &HashMap<NodeId, DeviceKind>, m: &CostModel) -> f64 {
    let mut t = 0.0;
    let mut moved: std::collections::HashSet<(crate::graph::Endpoint, DeviceKind)> = Default::default();
    for &id in order {
        let Some(&d) = device.get(&id) else { continue };
        let (flops, b) = work(g, id);
        t += m.device(d).time(flops, b);
        for ep in &g.nodes[id].inputs {
            if device.get(&ep.node).is_some_and(|&src| src != d) && moved.insert((*ep, d)) {
                t += m.transfer(bytes(&g.nodes[ep.node].outputs[ep.index]));
            }
        }
    }
    t
}

/// Devices for the `free` nodes (topologically ordered), given the devices already fixed:
/// the cheapest of a greedy choice per node, all on the GPU and all on the CPU, by the model.
pub(crate) fn choose(
    g: &GraphData,
    free: &[NodeId],
    fixed: &HashMap<NodeId, DeviceKind>,
    m: &CostModel,
) -> Vec<(NodeId, DeviceKind)> {
    let mut greedy = fixed.clone();
    for &id in free {
        let (flops, b) = work(g, id);
        let cost = |d: DeviceKind| {
            let inputs: f64 = g.nodes[id]
                .inputs
                .iter()
                .filter(|ep| greedy.get(&ep.node).is_some_and(|&src| src != d))
                .map(|ep| m.transfer(bytes(&g.nodes[ep.node].outputs[ep.index])))
                .sum();
            m.device(d).time(flops, b) + inputs
        };
        let d = if cost(DeviceKind::Cpu) < cost(DeviceKind::Gpu) { DeviceKind::Cpu } else { DeviceKind::Gpu };
        greedy.insert(id, d);
    }
    let uniform = |d: DeviceKind| {
        let mut all = fixed.clone();
        all.extend(free.iter().map(|&id| (id, d)));
        all
    };
    let mut order: Vec<NodeId> = fixed.keys().chain(free).copied().collect();
    order.sort_unstable();
    let best = [greedy, uniform(DeviceKind::Gpu), uniform(DeviceKind::Cpu)]
        .into_iter()
        .map(|c| (total(g, &order, &c, m), c))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
        .unwrap_or_default();
    free.iter().map(|&id| (id, best.get(&id).copied().unwrap_or(DeviceKind::Gpu))).collect()
}
