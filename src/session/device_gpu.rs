//! The GPU device. [`GpuState`] is what a GPU session holds between runs: its buffer pool, its
//! GPU variables, its resident constants and the host's variables (for CPU-placed nodes).
//! [`GpuRun`] is the GPU in one run, on one stream: constants are uploaded once and stay
//! resident, variables keep their buffers across assignments, only feeds are uploaded and
//! only fetches are read back, after one submit (a batch of readbacks in the middle of a run
//! costs one extra submit). The run's own buffers go back to the pool at its end.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::config::{NodeStats, RunMetadata, RunOptions, TraceLevel};
use super::device_cpu::{check_assign, check_update, value, CpuDevice, Variables};
use super::executor::{self, Device, Value};
use super::plan::{Action, FetchFrom, Input, Plan, Step};
use crate::error::{Code, Error, Result};
use crate::graph::NodeId;
use crate::ops::{AssignMode, BinaryKind, OpKind};
use crate::placement::DeviceKind;
use crate::runtime::gpu::context::GpuContext;
use crate::runtime::gpu::pool::BufferPool;
use crate::runtime::gpu::stream::{GpuTensor, Stream};
use crate::runtime::gpu::timer::TimeSink;
use crate::runtime::gpu::variant::with_f16_matmul;
use crate::runtime::gpu::GpuStats;
use crate::tensor::{DType, Tensor};

/// What a GPU session holds: its buffer pool, its variables and its resident constants.
pub(crate) struct GpuState {
    pub(crate) pool: BufferPool,
    vars: HashMap<NodeId, GpuTensor>,
    /// Variables placed on the CPU.
    host_vars: Variables,
    consts: HashMap<NodeId, GpuTensor>,
    cpu_fallbacks: u64,
    /// `GpuOptions::allow_f16_matmul`, in force while this session's kernels are lowered.
    allow_f16_matmul: bool,
}

/// Whether the GPU has kernels for this dtype.
pub(super) fn on_gpu(dtype: DType) -> bool {
    matches!(dtype, DType::F32 | DType::I32)
}

impl GpuState {
    /// An empty state on `ctx`, allocating within `budget` bytes if given, lowering matmuls to
    /// f16 cooperative matrices where the adapter offers them if `allow_f16_matmul`.
    pub(crate) fn new(ctx: Arc<GpuContext>, budget: Option<u64>, allow_f16_matmul: bool) -> Self {
        let mut pool = BufferPool::new(ctx);
        pool.set_budget(budget);
        GpuState {
            pool,
            vars: HashMap::new(),
            host_vars: Variables::default(),
            consts: HashMap::new(),
            cpu_fallbacks: 0,
            allow_f16_matmul,
        }
    }

    pub(crate) fn stats(&self) -> GpuStats {
        self.pool.stats()
    }

    /// Ops that ran on the CPU because they have no GPU kernel for their inputs.
    pub(crate) fn cpu_fallbacks(&self) -> u64 {
        self.cpu_fallbacks
    }

    /// Whether `plan` runs on the host alone: every step a CPU node that neither reads nor
    /// fetches a GPU variable, nor asks which variables are initialised. Such a run takes no
    /// stream: it neither submits nor shows GPU figures.
    fn host_only(&self, plan: &Plan) -> bool {
        let on_gpu = |i: &Input| matches!(i, Input::Var(id) if self.vars.contains_key(id));
        plan.steps.iter().all(|s| {
            s.device == DeviceKind::Cpu
                && matches!(&s.action, Action::Node(op) if !matches!(op, OpKind::IsVariableInitialized | OpKind::ReportUninitialized))
                && !s.inputs.iter().any(on_gpu)
        }) && plan.fetches.iter().all(|f| !matches!(f, FetchFrom::Var(id, _) if self.vars.contains_key(id)))
    }

    /// Runs `plan` with the executor on the host and (unless the plan is host-only) the GPU.
    pub(crate) fn execute(
        &mut self,
        plan: &Plan,
        feeds: Vec<Tensor>,
        options: &RunOptions,
        mut metadata: Option<&mut RunMetadata>,
    ) -> Result<Vec<Option<Tensor>>> {
        let host_only = self.host_only(plan);
        let GpuState { pool, vars, host_vars, consts, cpu_fallbacks, allow_f16_matmul } = self;
        if host_only {
            return executor::execute(plan, feeds, CpuDevice::new(host_vars), None, options, metadata);
        }
        pool.reset_peak();
        let traced = metadata.is_some() && options.trace_level == TraceLevel::FullTrace;
        let gpu = GpuRun::new(&mut *pool, vars, consts, cpu_fallbacks, options.timeout, traced)?;
        let out = with_f16_matmul(*allow_f16_matmul, || {
            executor::execute(plan, feeds, CpuDevice::new(host_vars), Some(gpu), options, metadata.as_deref_mut())
        })?;
        if let Some(md) = metadata {
            md.peak_bytes.insert(DeviceKind::Gpu.full_name().to_string(), pool.peak());
        }
        Ok(out)
    }
}

/// The GPU in one run: its stream and the buffers it allocated.
pub(crate) struct GpuRun<'a> {
    stream: Option<Stream<'a>>,
    /// Buffers this run allocated, by pointer: only these go back to the pool when freed, and
    /// all of those still here go back at the end of the run, so that no intermediate (an
    /// upload, the sum of an `AssignAdd`) outlives it.
    owned: HashMap<usize, Arc<wgpu::Buffer>>,
    vars: &'a mut HashMap<NodeId, GpuTensor>,
    consts: &'a mut HashMap<NodeId, GpuTensor>,
    fallbacks: &'a mut u64,
    timeout: Option<Duration>,
    /// Kernel times, when the run is traced and the device can time kernels.
    kernel_times: Option<TimeSink>,
}

impl<'a> GpuRun<'a> {
    fn new(
        pool: &'a mut BufferPool,
        vars: &'a mut HashMap<NodeId, GpuTensor>,
        consts: &'a mut HashMap<NodeId, GpuTensor>,
        fallbacks: &'a mut u64,
        timeout: Option<Duration>,
        traced: bool,
    ) -> Result<Self> {
        let mut stream = Stream::new(pool)?;
        // With a full trace, kernels are timed on the GPU where the device can.
        let sink = TimeSink::default();
        let kernel_times = (traced && stream.time_kernels(sink.clone())).then_some(sink);
        Ok(GpuRun { stream: Some(stream), owned: HashMap::new(), vars, consts, fallbacks, timeout, kernel_times })
    }

    pub(super) fn stream(&mut self) -> Result<&mut Stream<'a>> {
        self.stream.as_mut().ok_or_else(|| Error::internal("the run's stream is gone"))
    }

    /// Counts a GPU-placed op that ran on the host for want of a kernel.
    pub(crate) fn count_fallback(&mut self) {
        *self.fallbacks += 1;
    }

    pub(super) fn own(&mut self, t: GpuTensor) -> GpuTensor {
        self.owned.insert(Arc::as_ptr(&t.buffer) as usize, t.buffer.clone());
        t
    }

    /// Gives back every buffer the run still owns (after whatever was submitted).
    pub(crate) fn release_all(&mut self) {
        let owned = std::mem::take(&mut self.owned);
        if let Some(s) = self.stream.as_mut() {
            for (_, buffer) in owned {
                s.release_buffer(buffer);
            }
        }
    }

    pub(super) fn on_device(&mut self, v: &Value) -> Result<GpuTensor> {
        match v {
            Value::Dev(t) => Ok(t.clone()),
            Value::Host(t) => {
                let t = self.stream()?.upload(t)?;
                Ok(self.own(t))
            }
        }
    }

    /// A constant, uploaded on its first run and resident after.
    fn constant(&mut self, node: NodeId, t: &Tensor) -> Result<Value> {
        if let Some(c) = self.consts.get(&node) {
            return Ok(Value::Dev(c.clone()));
        }
        let c = self.stream()?.upload(t)?;
        self.consts.insert(node, c.clone());
        Ok(Value::Dev(c))
    }

    /// An assignment to a variable on the GPU: the variable keeps its buffer, and the new
    /// value is copied into it in stream order.
    fn assign(&mut self, plan: &Plan, step: &Step, mode: AssignMode, ins: &[Option<Value>]) -> Result<Value> {
        let Some(Input::Var(var)) = step.inputs.first().copied() else {
            return Err(Error::invalid_argument("Assign needs a variable as its first input"));
        };
        let present = |k: usize| value(plan, step, ins, k);
        let update = present(ins.len().saturating_sub(1))?;
        if mode == AssignMode::Set {
            let (dtype, shape) = match &update {
                Value::Host(t) => (t.dtype(), t.shape()),
                Value::Dev(t) => (t.dtype, t.shape.as_slice()),
            };
            check_assign(plan, var, (dtype, shape))?;
        }
        let mut update = self.on_device(&update)?;
        if mode == AssignMode::GradientDescent {
            update = self.binary(BinaryKind::Mul, present(1)?, Value::Dev(update))?;
        }
        let new = match mode {
            AssignMode::Set => update,
            AssignMode::Add | AssignMode::Sub | AssignMode::GradientDescent => {
                let old = match present(0)? {
                    Value::Dev(t) => t,
                    Value::Host(_) => return Err(Error::internal("a GPU assignment to a variable on the CPU")),
                };
                check_update((old.dtype, &old.shape), (update.dtype, &update.shape))?;
                let kind = if mode == AssignMode::Add { BinaryKind::Add } else { BinaryKind::Sub };
                // (`ApplyGradientDescent` subtracts the scaled delta computed above.)
                self.binary(kind, Value::Dev(old), Value::Dev(update))?
            }
        };
        let target = match self.vars.get(&var) {
            Some(old) if old.byte_len() == new.byte_len() && old.dtype == new.dtype => {
                let mut t = old.clone();
                t.shape = new.shape.clone();
                t
            }
            _ => {
                let old = self.vars.remove(&var);
                let stream = self.stream()?;
                let t = stream.alloc(new.dtype, &new.shape)?;
                if let Some(old) = old {
                    stream.release(old);
                }
                t
            }
        };
        self.stream()?.copy(&new, &target)?;
        self.vars.insert(var, target.clone());
        Ok(Value::Dev(target))
    }

    /// A binary op of a variable update, on the GPU.
    fn binary(&mut self, kind: BinaryKind, a: Value, b: Value) -> Result<GpuTensor> {
        match self.compute(&crate::ops::binary_op(kind), &[a, b])? {
            Some(Value::Dev(t)) => Ok(t),
            _ => Err(Error::unimplemented("this variable update has no GPU kernel")),
        }
    }

    /// Ends the run: records the readbacks of `values` (the fetches), gives back the run's
    /// buffers, submits once, fills the GPU parts of `metadata` and returns the host values.
    pub(crate) fn finish(
        mut self,
        plan: &Plan,
        values: Vec<Option<Value>>,
        options: &RunOptions,
        metadata: Option<&mut RunMetadata>,
        start: Instant,
    ) -> Result<Vec<Option<Tensor>>> {
        let mut positions = Vec::with_capacity(values.len());
        for v in &values {
            positions.push(match v {
                Some(Value::Dev(t)) => Some(self.stream()?.fetch(t)?),
                _ => None,
            });
        }
        self.release_all();
        let submitted = Instant::now();
        let stream = self.stream.take().ok_or_else(|| Error::internal("the run's stream is gone"))?;
        let mut downloaded = match self.timeout {
            // The run's own deadline passed while the GPU worked: TF's `DeadlineExceeded`
            // (a device that is lost stays `Unavailable`).
            Some(t) => {
                let ctx = stream.context().clone();
                stream.finish_within(t).map_err(|e| match (e.code, ctx.ensure_alive()) {
                    (Code::Unavailable, Ok(())) => Error::new(
                        Code::DeadlineExceeded,
                        format!("Timed out waiting for the run to finish: the GPU was still working after {t:?}"),
                    ),
                    _ => e,
                })?
            }
            None => stream.finish()?,
        };
        if let Some(md) = metadata {
            self.trace(md, plan, options, start, submitted);
        }
        let mut out = Vec::with_capacity(values.len());
        for (v, pos) in values.into_iter().zip(positions) {
            out.push(match (v, pos) {
                (None, _) => None,
                (Some(Value::Host(t)), _) => Some(t),
                (Some(Value::Dev(_)), Some(i)) => Some(std::mem::replace(&mut downloaded[i], Tensor::from(0.0f32))),
                (Some(Value::Dev(_)), None) => return Err(Error::internal("a device fetch was not recorded")),
            });
        }
        Ok(out)
    }

    /// Kernels run after the submit: the GPU's time shows as one record for the submit (with
    /// its wait and readbacks); the node records are the recording times, replaced by the
    /// kernels' GPU times where timestamp queries ran.
    fn trace(&self, md: &mut RunMetadata, plan: &Plan, options: &RunOptions, start: Instant, submitted: Instant) {
        if options.trace_level == TraceLevel::FullTrace {
            md.step_stats.push(NodeStats {
                name: "gpu_submit".into(),
                op: "Submit".into(),
                device: DeviceKind::Gpu.full_name().to_string(),
                start_us: (submitted - start).as_secs_f64() * 1e6,
                duration_us: submitted.elapsed().as_secs_f64() * 1e6,
                fused_nodes: Vec::new(),
            });
        }
        if let Some(sink) = &self.kernel_times {
            let times = sink.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let submit_us = (submitted - start).as_secs_f64() * 1e6;
            md.gpu_kernel_timestamps = super::gpu_kernels::apply_kernel_times(md, plan, &times, submit_us);
        }
    }
}

impl Device for GpuRun<'_> {
    fn begin_step(&mut self, index: usize, name: &str) -> Result<()> {
        let timed = self.kernel_times.is_some();
        let stream = self.stream()?;
        if timed {
            stream.set_label(index);
        }
        stream.set_node(name);
        Ok(())
    }

    fn run(&mut self, plan: &Plan, step: &Step, op: &OpKind, ins: &[Option<Value>]) -> Result<Option<Vec<Value>>> {
        match op {
            OpKind::Const(t) if on_gpu(t.dtype()) => Ok(Some(vec![self.constant(step.node, t)?])),
            OpKind::Compute(op) => {
                let ins = (0..ins.len()).map(|k| value(plan, step, ins, k)).collect::<Result<Vec<_>>>()?;
                Ok(self.compute(op.as_ref(), &ins)?.map(|v| vec![v]))
            }
            OpKind::Assign(mode) => Ok(Some(vec![self.assign(plan, step, *mode, ins)?])),
            // Placeholders, no-ops and constants of other dtypes have no GPU work.
            _ => Ok(None),
        }
    }

    fn upload(&mut self, value: &Value) -> Result<Value> {
        self.on_device(value).map(Value::Dev)
    }

    /// Reads device values back in the middle of a run: one extra submit for all of them.
    fn read_back(&mut self, values: &[Value]) -> Result<Vec<Tensor>> {
        let mut idx = Vec::with_capacity(values.len());
        for v in values {
            idx.push(match v {
                Value::Dev(t) => Some(self.stream()?.fetch(t)?),
                Value::Host(_) => None,
            });
        }
        let mut got = if idx.iter().any(Option::is_some) {
            let timeout = self.timeout;
            let stream = self.stream()?;
            let timeout = timeout.unwrap_or_else(|| stream.context().poll_timeout());
            stream.flush(timeout)?
        } else {
            Vec::new()
        };
        values
            .iter()
            .zip(idx)
            .map(|(v, i)| match (v, i) {
                (Value::Host(t), _) => Ok(t.clone()),
                (Value::Dev(_), Some(i)) => Ok(std::mem::replace(&mut got[i], Tensor::from(0.0f32))),
                _ => Err(Error::internal("a device input was not read back")),
            })
            .collect()
    }

    fn read_var(&self, id: NodeId) -> Option<Value> {
        self.vars.get(&id).cloned().map(Value::Dev)
    }

    fn release(&mut self, value: Value) {
        let Value::Dev(t) = value else { return };
        // A view (a reshape) shares its source's buffer: while another live value holds it
        // (besides `owned` and this one), the last of them to go releases it.
        if Arc::strong_count(&t.buffer) > 2 {
            return;
        }
        if let Some(buffer) = self.owned.remove(&(Arc::as_ptr(&t.buffer) as usize)) {
            if let Some(s) = self.stream.as_mut() {
                s.release_buffer(buffer);
            }
        }
    }
}
