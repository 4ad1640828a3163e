//! Device placement: which device each node of a plan runs on, after TF's placer.
//!
//! The rules, in order:
//! - a variable is colocated with its `Assign`, `read` and update nodes: one group, whose
//!   devices are the intersection of what its members may use. The session keeps a group's
//!   device once chosen, so a variable never moves between runs;
//! - an explicit device request (`/cpu:0`, `/device:GPU:1`, a full
//!   `/job:localhost/replica:0/task:0/device:CPU:0`, …) is honoured. A session has one CPU
//!   (`CPU:0`) and its GPUs `GPU:0` to `GPU:<n-1>` (see `GpuOptions::visible_device_list`): a
//!   request for a device it does not have (`/gpu:7`, `/cpu:3`) fails with TF's "Could not
//!   satisfy explicit device specification" without soft placement, and is read as index 0
//!   of its kind with it. Members of a variable group that ask for different GPUs fail with
//!   TF's "Cannot merge devices with incompatible ids" (with soft placement: `GPU:0`);
//! - a node the GPU can take (a kernel for its dtypes, outputs within the storage binding limit
//!   and the memory budget) goes to its GPU (the one it asks for, else `GPU:0`) when the
//!   session has one; otherwise the CPU. A GPU request that cannot be met falls back to the
//!   CPU under soft placement and fails without it;
//! - identity-like nodes without a request follow their input, and constants and other
//!   input-less generators go where their consumers are (the first GPU among them, if any),
//!   so neither causes a round trip.
//!
//! [`PlacementPolicy::CostModel`] replaces the third rule's "GPU when possible" by a choice
//! from estimated kernel and transfer times (see [`cost`]).

pub mod cost;
mod device;
mod request;

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::graph::{GraphData, NodeId};
use crate::ops::OpKind;
use crate::tensor::{DType, TensorSpec};
pub use cost::{CostModel, DeviceModel, PlacementPolicy};
pub use device::{DeviceId, DeviceKind, MAX_GPUS};
pub use request::requested;
use request::{canonical_request, requested_index};

/// What the placer knows of one of the session's GPUs.
#[derive(Clone, Debug)]
pub(crate) struct GpuTarget {
    /// The largest storage binding, in bytes.
    pub(crate) max_binding: u64,
    /// The GPU's memory budget, if it has one.
    pub(crate) budget: Option<u64>,
    /// Speeds of both devices and of transfers, for the cost-model policy.
    pub(crate) model: CostModel,
    /// The device the kernels are lowered for, when asking an op whether the GPU takes it
    /// (`None`: the process's default device).
    pub(crate) lowering: Option<crate::runtime::gpu::variant::Target>,
}

/// The placer's inputs besides the graph.
pub(crate) struct Placer<'a> {
    /// The session's GPUs, by ordinal; none places everything on the CPU.
    pub(crate) gpus: &'a [GpuTarget],
    pub(crate) soft: bool,
    pub(crate) policy: PlacementPolicy,
    /// Devices of variable groups placed by earlier plans; new groups are added.
    pub(crate) pinned: &'a mut HashMap<NodeId, DeviceId>,
}

/// Why the GPU cannot take a node, or `None` when it can.
enum Refusal {
    NoGpu,
    NoKernel(String),
    TooLarge(u64, u64),
    OverBudget(u64, u64),
}

impl Refusal {
    fn describe(&self) -> String {
        match self {
            Refusal::NoGpu => format!("available devices are [ {} ]", DeviceId::CPU.full_name()),
            Refusal::NoKernel(what) => format!("no GPU kernel for {what}"),
            Refusal::TooLarge(bytes, limit) => {
                format!("a tensor of {bytes} bytes is over the GPU's storage binding limit of {limit} bytes")
            }
            Refusal::OverBudget(bytes, budget) => {
                format!("its tensors need {bytes} bytes, over the GPU memory budget of {budget} bytes")
            }
        }
    }
}

/// A shape with unknown dimensions taken as 1 (unknown rank as a scalar).
fn concrete(spec: &TensorSpec) -> Vec<usize> {
    spec.shape.dims().map(|d| d.iter().map(|x| x.unwrap_or(1)).collect()).unwrap_or_default()
}

/// Bytes of a spec whose shape is fully known.
fn static_bytes(spec: &TensorSpec) -> Option<u64> {
    let dims = spec.shape.dims()?;
    let mut n = spec.dtype.size() as u64;
    for d in dims {
        n = n.checked_mul((*d)? as u64)?;
    }
    Some(n)
}

fn on_gpu_dtype(d: DType) -> bool {
    matches!(d, DType::F32 | DType::I32)
}

/// The variable a node is colocated with: assignments, reads and updates of it.
pub(crate) fn colocated_variable(g: &GraphData, id: NodeId) -> Option<NodeId> {
    let node = &g.nodes[id];
    let first = node.inputs.first()?.node;
    if !matches!(g.nodes[first].op, OpKind::Variable(_)) {
        return None;
    }
    match &node.op {
        OpKind::Assign(_) | OpKind::IsVariableInitialized => Some(first),
        OpKind::Compute(op) if op.is_identity() => Some(first),
        _ => None,
    }
}

/// Ops whose output is their input with another shape: placed with their input.
fn is_view(op: &OpKind) -> bool {
    matches!(op, OpKind::Compute(op) if op.is_view())
}

impl Placer<'_> {
    /// The device `node` requests, checked against the devices the session has: one CPU and
    /// its GPUs, `GPU:0` to `GPU:<n-1>`. A request for a device it does not have (`/gpu:7`,
    /// `/cpu:3`) fails without soft placement, as in TF; with it the node is treated as asking
    /// for index 0 of that kind (and falls back to the CPU if that GPU cannot take it).
    fn request_of(&self, name: &str, device: &str) -> Result<Option<DeviceId>> {
        let Some(kind) = requested(device).map_err(|e| e.at(name))? else {
            return Ok(None);
        };
        let index = requested_index(device).unwrap_or(0);
        let exists = match kind {
            DeviceKind::Cpu => index == 0,
            DeviceKind::Gpu => index < self.gpus.len(),
        };
        // Without a GPU, a GPU request takes the "available devices" path of `decide`.
        if exists || self.soft || (kind == DeviceKind::Gpu && self.gpus.is_empty()) {
            let index = if exists { index as u8 } else { 0 };
            return Ok(Some(DeviceId { kind, index }));
        }
        let mut available = vec![DeviceId::CPU.full_name()];
        available.extend((0..self.gpus.len()).map(|i| DeviceId::gpu(i as u8).full_name()));
        Err(Error::invalid_argument(format!(
            "Cannot assign a device for operation {name}: Could not satisfy explicit device specification '{}' \
             because no devices matching that specification are registered in this process; available devices: {}",
            canonical_request(device, kind, index),
            available.join(", ")
        ))
        .at(name))
    }

    /// Whether GPU `gpu` can take node `id`.
    fn refusal(&self, g: &GraphData, id: NodeId, gpu: usize) -> Option<Refusal> {
        let Some(gpu) = self.gpus.get(gpu) else { return Some(Refusal::NoGpu) };
        let node = &g.nodes[id];
        let ins: Vec<TensorSpec> = node.inputs.iter().map(|ep| g.nodes[ep.node].outputs[ep.index].clone()).collect();
        // Every input and output must fit a binding; together they must fit the budget.
        let known: Vec<u64> = ins.iter().chain(&node.outputs).filter_map(static_bytes).collect();
        if let Some(budget) = gpu.budget.filter(|b| known.iter().sum::<u64>() > *b) {
            return Some(Refusal::OverBudget(known.iter().sum(), budget));
        }
        for out in ins.iter().chain(&node.outputs) {
            if let Some(bytes) = static_bytes(out) {
                if bytes > gpu.max_binding {
                    return Some(Refusal::TooLarge(bytes, gpu.max_binding));
                }
                if let Some(budget) = gpu.budget.filter(|b| bytes > *b) {
                    return Some(Refusal::OverBudget(bytes, budget));
                }
            }
        }
        match &node.op {
            OpKind::Const(_) | OpKind::Placeholder(_) | OpKind::Variable(_) | OpKind::Assign(_) => {
                let dtype = node.outputs.first().map(|s| s.dtype).unwrap_or(DType::F32);
                (!on_gpu_dtype(dtype)).then(|| Refusal::NoKernel(format!("dtype {dtype}")))
            }
            OpKind::Compute(op) => {
                let shapes: Vec<Vec<usize>> = ins.iter().map(concrete).collect();
                let specs: Vec<(DType, &[usize])> =
                    ins.iter().zip(&shapes).map(|(s, d)| (s.dtype, d.as_slice())).collect();
                let supports = || op.gpu_supports(&specs);
                let has = specs.iter().all(|(d, _)| on_gpu_dtype(*d))
                    && match gpu.lowering {
                        Some(t) => crate::runtime::gpu::variant::lowering_for(t, supports),
                        None => supports(),
                    };
                let dtypes: Vec<String> = ins.iter().map(|s| s.dtype.to_string()).collect();
                (!has).then(|| {
                    Refusal::NoKernel(format!("{} with inputs of dtype [{}]", op.type_name(), dtypes.join(", ")))
                })
            }
            OpKind::ReportUninitialized => Some(Refusal::NoKernel("ReportUninitializedVariables".into())),
            OpKind::IsVariableInitialized | OpKind::NoOp => None,
        }
    }

    /// The device of a node or group that asks for `request`, given why the GPU would refuse
    /// it; `None` when the node is free (no request, and the GPU can take it).
    fn decide(
        &self,
        name: &str,
        device: &str,
        request: Option<DeviceId>,
        refusal: Option<Refusal>,
    ) -> Result<Option<DeviceId>> {
        if request == Some(DeviceId::CPU) {
            return Ok(Some(DeviceId::CPU));
        }
        match refusal {
            None => Ok(request),
            Some(_) if self.soft => Ok(Some(DeviceId::CPU)),
            Some(r @ Refusal::OverBudget(..)) => {
                Err(Error::resource_exhausted(format!("OOM when placing {name} on the GPU: {}", r.describe())).at(name))
            }
            Some(r) if request.is_some_and(DeviceId::is_gpu) => Err(Error::invalid_argument(format!(
                "Cannot assign a device for operation {name}: {{{{node {name}}}}} was explicitly assigned to {device} but {}. \
                 Make sure the device specification refers to a valid device.",
                r.describe()
            ))
            .at(name)),
            Some(_) => Ok(Some(DeviceId::CPU)),
        }
    }
}

/// The GPU a request names, else `GPU:0`: the one whose refusal counts.
fn gpu_of(request: Option<DeviceId>) -> usize {
    request.and_then(DeviceId::gpu_index).unwrap_or(0)
}

/// Places the nodes of `order` (the plan's nodes, in topological order) and returns each one's
/// device.
pub(crate) fn place(g: &GraphData, order: &[NodeId], p: &mut Placer<'_>) -> Result<HashMap<NodeId, DeviceId>> {
    let mut device: HashMap<NodeId, DeviceId> = HashMap::new();
    // Variable groups first: their device holds for the session's lifetime.
    for &id in order {
        if let Some(var) = colocated_variable(g, id) {
            let d = place_group(g, var, p)?;
            device.insert(id, d);
        }
    }
    let mut free: Vec<NodeId> = Vec::new();
    for &id in order {
        if device.contains_key(&id) {
            continue;
        }
        let node = &g.nodes[id];
        let request = p.request_of(&node.name, &node.device)?;
        let refusal = p.refusal(g, id, gpu_of(request));
        match p.decide(&node.name, &node.device, request, refusal)? {
            Some(d) => {
                device.insert(id, d);
            }
            None => free.push(id),
        }
    }
    // Free nodes: GPU:0 can take them and nobody asked for a device.
    let generator = |id: NodeId| g.nodes[id].inputs.is_empty() && !matches!(g.nodes[id].op, OpKind::NoOp);
    let compute: Vec<NodeId> = free.iter().copied().filter(|&id| !generator(id) && !is_view(&g.nodes[id].op)).collect();
    match (p.policy, p.gpus.first()) {
        (PlacementPolicy::CostModel { .. }, Some(gpu)) => {
            // Fed placeholders arrive on the host; variables are where their group is. The
            // model knows two devices, the CPU and a GPU: any GPU counts as the GPU.
            let mut known: HashMap<NodeId, DeviceKind> = device.iter().map(|(&id, d)| (id, d.kind)).collect();
            for (id, node) in g.nodes.iter().enumerate() {
                match node.op {
                    OpKind::Placeholder(_) => {
                        known.insert(id, DeviceKind::Cpu);
                    }
                    OpKind::Variable(_) => {
                        if let Some(d) = p.pinned.get(&id) {
                            known.insert(id, d.kind);
                        }
                    }
                    _ => {}
                }
            }
            for (id, d) in cost::choose(g, &compute, &known, &gpu.model) {
                device.insert(id, DeviceId { kind: d, index: 0 });
            }
        }
        _ => {
            for &id in &compute {
                device.insert(id, DeviceId::gpu(0));
            }
        }
    }
    // A view goes where its source is; a view of a generator not placed yet (an `Identity`
    // of a weight `Const`, as frozen TF graphs have) goes, like the generator, where its
    // consumers are: otherwise the weights of a CPU plan would sit on the GPU and cross over
    // on every run.
    for &id in order {
        if !device.contains_key(&id) && is_view(&g.nodes[id].op) {
            if let Some(from) = g.nodes[id].inputs.first().and_then(|ep| device.get(&ep.node).copied()) {
                device.insert(id, from);
            }
        }
    }
    // Generators (and those views) go where their consumers are: the first GPU among them if
    // any consumer is on a GPU, the CPU if all are there.
    let mut consumers: HashMap<NodeId, Vec<NodeId>> = HashMap::new();
    for &id in order {
        for ep in &g.nodes[id].inputs {
            consumers.entry(ep.node).or_default().push(id);
        }
    }
    for &id in order.iter().rev() {
        if device.contains_key(&id) {
            continue;
        }
        let users = consumers.get(&id).map(Vec::as_slice).unwrap_or(&[]);
        let first_gpu = users.iter().filter_map(|u| device.get(u).copied()).filter(|d| d.is_gpu()).min();
        let d = match first_gpu {
            Some(d) => d,
            None if users.is_empty() => DeviceId::gpu(0),
            None => DeviceId::CPU,
        };
        device.insert(id, d);
    }
    Ok(device)
}

/// The device of the group of variable `var`: pinned if placed before, else the intersection
/// of its members' requests and of what their GPU can take.
fn place_group(g: &GraphData, var: NodeId, p: &mut Placer<'_>) -> Result<DeviceId> {
    if let Some(d) = p.pinned.get(&var) {
        return Ok(*d);
    }
    let members: Vec<NodeId> =
        std::iter::once(var).chain((0..g.nodes.len()).filter(|&id| colocated_variable(g, id) == Some(var))).collect();
    let mut request: Option<(DeviceId, NodeId)> = None;
    for &m in &members {
        let node = &g.nodes[m];
        if let Some(r) = p.request_of(&node.name, &node.device)? {
            match request {
                Some((prev, other)) if prev != r && !p.soft => {
                    let what = if prev.kind == r.kind { "ids" } else { "types" };
                    return Err(Error::invalid_argument(format!(
                        "Cannot colocate nodes {{{{colocation_node {}}}}} and {{{{colocation_node {}}}}}: \
                         Cannot merge devices with incompatible {what}: '{}' and '{}'",
                        g.nodes[other].name, node.name, g.nodes[other].device, node.device
                    ))
                    .at(&node.name));
                }
                // Soft placement: GPUs of different ids merge into GPU:0 (TF drops the id),
                // different kinds into the CPU.
                Some((prev, _)) if prev != r && prev.kind == r.kind => request = Some((DeviceId::gpu(0), m)),
                Some((prev, _)) if prev != r => request = Some((DeviceId::CPU, m)),
                Some(_) => {}
                None => request = Some((r, m)),
            }
        }
    }
    let asked = request.map(|(r, _)| r);
    let refusal = p.refusal(g, var, gpu_of(asked));
    let name = &g.nodes[var].name;
    let device = request.map(|(_, m)| g.nodes[m].device.as_str()).unwrap_or("");
    let d = match (p.decide(name, device, asked, refusal)?, p.policy, p.gpus.first()) {
        (Some(d), _, _) => d,
        // Under the cost model, a free group lives where the graph's kernels run faster.
        (None, PlacementPolicy::CostModel { .. }, Some(gpu)) => {
            DeviceId { kind: cost::resident_device(g, &gpu.model), index: 0 }
        }
        (None, _, _) => DeviceId::gpu(0),
    };
    p.pinned.insert(var, d);
    Ok(d)
}

/// TF's placement log line: `conv: (Conv2D): /job:localhost/replica:0/task:0/device:GPU:0`.
pub(crate) fn log_line(name: &str, op_type: &str, device: DeviceId) -> String {
    format!("{name}: ({op_type}): {}", device.full_name())
}
