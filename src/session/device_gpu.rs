//! The GPUs of a session. [`GpuState`] is what a GPU session holds between runs: for each of
//! its GPUs ([`DeviceValues`]) a buffer pool, the GPU's variables and its resident constants,
//! and the host's variables (for CPU-placed nodes). A run opens a `GpuRun` (`gpu_run.rs`) on
//! each GPU its plan uses: one stream per GPU, all driven by the one executor.

use std::collections::HashMap;
use std::sync::Arc;

use super::config::{RunMetadata, RunOptions, TraceLevel};
use super::device_cpu::{CpuDevice, Variables};
use super::executor;
use super::gpu_run::GpuRun;
use super::plan::{Action, FetchFrom, Input, Plan};
use crate::error::Result;
use crate::graph::NodeId;
use crate::ops::OpKind;
use crate::placement::DeviceId;
use crate::runtime::gpu::context::GpuContext;
use crate::runtime::gpu::pool::BufferPool;
use crate::runtime::gpu::stream::GpuTensor;
use crate::runtime::gpu::variant::Target;
use crate::runtime::gpu::GpuStats;
use crate::tensor::{DType, Tensor};

/// What one GPU of a session holds: its buffer pool, variables and resident constants.
pub(crate) struct DeviceValues {
    pub(crate) id: DeviceId,
    pub(crate) pool: BufferPool,
    pub(super) vars: HashMap<NodeId, GpuTensor>,
    pub(super) consts: HashMap<NodeId, GpuTensor>,
    /// GPU-placed ops that ran on the CPU for want of a kernel.
    pub(super) fallbacks: u64,
    /// Bytes that came to this GPU from another one (through the host).
    pub(super) from_gpus: u64,
    /// What its kernels are lowered for (its adapter, `GpuOptions::allow_f16_matmul`).
    pub(super) target: Target,
}

/// What a GPU session holds: its GPUs' values and the host's variables.
pub(crate) struct GpuState {
    pub(crate) gpus: Vec<DeviceValues>,
    /// Variables placed on the CPU.
    host_vars: Variables,
}

/// Whether the GPU has kernels for this dtype.
pub(super) fn on_gpu(dtype: DType) -> bool {
    matches!(dtype, DType::F32 | DType::I32)
}

impl GpuState {
    /// An empty state on the GPUs `devices` (`GPU:0` first), each allocating within its
    /// budget if it has one, lowering matmuls to f16 cooperative matrices where the adapter
    /// offers them if `allow_f16_matmul`.
    pub(crate) fn new(devices: Vec<(Arc<GpuContext>, Option<u64>)>, allow_f16_matmul: bool) -> Self {
        let gpus = devices
            .into_iter()
            .enumerate()
            .map(|(i, (ctx, budget))| {
                let target = Target::of(&ctx, allow_f16_matmul);
                let mut pool = BufferPool::new(ctx);
                pool.set_budget(budget);
                DeviceValues {
                    id: DeviceId::gpu(i as u8),
                    pool,
                    vars: HashMap::new(),
                    consts: HashMap::new(),
                    fallbacks: 0,
                    from_gpus: 0,
                    target,
                }
            })
            .collect();
        GpuState { gpus, host_vars: Variables::default() }
    }

    /// The GPUs' counts added up.
    pub(crate) fn stats(&self) -> GpuStats {
        self.gpus.iter().map(|d| d.pool.stats()).fold(GpuStats::default(), |a, s| GpuStats {
            bytes_uploaded: a.bytes_uploaded + s.bytes_uploaded,
            bytes_downloaded: a.bytes_downloaded + s.bytes_downloaded,
            pipelines_compiled: a.pipelines_compiled + s.pipelines_compiled,
            submits: a.submits + s.submits,
            bytes_held: a.bytes_held + s.bytes_held,
        })
    }

    /// Ops that ran on the CPU because they have no GPU kernel for their inputs.
    pub(crate) fn cpu_fallbacks(&self) -> u64 {
        self.gpus.iter().map(|d| d.fallbacks).sum()
    }

    /// Bytes copied from one GPU to another so far.
    pub(crate) fn bytes_between_gpus(&self) -> u64 {
        self.gpus.iter().map(|d| d.from_gpus).sum()
    }

    /// Buffers the GPUs' pools have created.
    pub(crate) fn buffers_allocated(&self) -> usize {
        self.gpus.iter().map(|d| d.pool.buffers_allocated()).sum()
    }

    /// Whether `plan` uses GPU `i`: a step runs there or copies from there, or it reads or
    /// fetches a variable the GPU holds. A GPU a run does not use gets no stream: it neither
    /// submits nor shows figures. (With one GPU: whether the plan is not host-only.)
    fn uses(&self, plan: &Plan, i: usize) -> bool {
        let vars = &self.gpus[i].vars;
        let holds = |i: &Input| matches!(i, Input::Var(id) if vars.contains_key(id));
        let here = |d: DeviceId| d.gpu_index() == Some(i);
        plan.steps.iter().any(|s| {
            here(s.device)
                || matches!(s.action, Action::Transfer { from } if here(from))
                || s.inputs.iter().any(holds)
                || (self.gpus.len() == 1
                    && matches!(&s.action, Action::Node(OpKind::IsVariableInitialized | OpKind::ReportUninitialized)))
        }) || plan.fetches.iter().any(|f| matches!(f, FetchFrom::Var(id, _) if vars.contains_key(id)))
    }

    /// The host's variables, for a run that uses no GPU ([`GpuState::host_only`]) under the
    /// shared lock.
    pub(crate) fn host_vars(&self) -> &Variables {
        &self.host_vars
    }

    /// Whether `plan` uses none of the GPUs (see `uses`): it runs on the host alone.
    pub(crate) fn host_only(&self, plan: &Plan) -> bool {
        (0..self.gpus.len()).all(|i| !self.uses(plan, i))
    }

    /// Runs `plan` with the executor on the host and the GPUs it uses.
    pub(crate) fn execute(
        &mut self,
        plan: &Plan,
        feeds: Vec<Tensor>,
        options: &RunOptions,
        mut metadata: Option<&mut RunMetadata>,
    ) -> Result<Vec<Option<Tensor>>> {
        let used: Vec<bool> = (0..self.gpus.len()).map(|i| self.uses(plan, i)).collect();
        let GpuState { gpus, host_vars } = self;
        let traced = metadata.is_some() && options.trace_level == TraceLevel::FullTrace;
        let mut runs = Vec::with_capacity(gpus.len());
        for (d, used) in gpus.iter_mut().zip(&used) {
            runs.push(match used {
                true => {
                    d.pool.reset_peak();
                    Some(GpuRun::new(d, options.timeout, traced)?)
                }
                false => None,
            });
        }
        let out = executor::execute(plan, feeds, CpuDevice::new(host_vars), runs, options, metadata.as_deref_mut())?;
        if let Some(md) = metadata {
            for (d, _) in gpus.iter().zip(&used).filter(|(_, used)| **used) {
                md.peak_bytes.insert(d.id.full_name().to_string(), d.pool.peak());
            }
        }
        Ok(out)
    }
}
