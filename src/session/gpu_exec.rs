//! The GPU executor: runs a plan on one device stream. Constants are uploaded once and stay
//! resident, variables live in the session's buffers, only feeds are uploaded and only fetches
//! are read back, after one submit. Nodes placed on the CPU run on the host, with their own
//! variables; the plan's transfer steps move values between the devices (a batch of readbacks
//! in the middle of a run costs one extra submit). An op that finds no GPU kernel at run time
//! for its concrete inputs runs on the CPU too, counted as a fallback.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::config::{RunMetadata, RunOptions};
use super::exec::Variables;
use super::plan::{Action, FetchFrom, Input, Plan, Step};
use crate::error::{Error, Result};
use crate::graph::NodeId;
use crate::ops::{AssignMode, BinaryKind, GpuLowering, Op, OpKind, PassBuf};
use crate::placement::DeviceKind;
use crate::runtime::gpu::context::GpuContext;
use crate::runtime::gpu::pool::BufferPool;
use crate::runtime::gpu::stream::{GpuTensor, Stream};
use crate::runtime::gpu::GpuStats;
use crate::tensor::{DType, Tensor};

/// What a GPU session holds: its buffer pool, its variables and its resident constants.
pub(crate) struct GpuState {
    pub(crate) pool: BufferPool,
    pub(crate) vars: HashMap<NodeId, GpuTensor>,
    /// Variables placed on the CPU.
    host_vars: Variables,
    consts: HashMap<NodeId, GpuTensor>,
    cpu_fallbacks: u64,
}

/// A value during a run.
#[derive(Clone, Debug)]
enum Value {
    Host(Tensor),
    Dev(GpuTensor),
}

fn on_gpu(dtype: DType) -> bool {
    matches!(dtype, DType::F32 | DType::I32)
}

impl GpuState {
    /// An empty state on `ctx`, allocating within `budget` bytes if given.
    pub(crate) fn new(ctx: Arc<GpuContext>, budget: Option<u64>) -> Self {
        let mut pool = BufferPool::new(ctx);
        pool.set_budget(budget);
        GpuState {
            pool,
            vars: HashMap::new(),
            host_vars: Variables::default(),
            consts: HashMap::new(),
            cpu_fallbacks: 0,
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
    /// fetches a GPU variable, nor asks which variables are initialised (the host executor
    /// knows only the host variables).
    fn host_only(&self, plan: &Plan) -> bool {
        let on_gpu = |i: &Input| matches!(i, Input::Var(id) if self.vars.contains_key(id));
        plan.steps.iter().all(|s| {
            s.device == DeviceKind::Cpu
                && matches!(&s.action, Action::Node(op) if !matches!(op, OpKind::IsVariableInitialized | OpKind::ReportUninitialized))
                && !s.inputs.iter().any(on_gpu)
        }) && plan.fetches.iter().all(|f| !matches!(f, FetchFrom::Var(id, _) if self.vars.contains_key(id)))
    }

    /// Runs `plan` and returns the fetched values.
    pub(crate) fn execute(
        &mut self,
        plan: &Plan,
        feeds: Vec<Tensor>,
        options: &RunOptions,
        mut metadata: Option<&mut RunMetadata>,
    ) -> Result<Vec<Option<Tensor>>> {
        if self.host_only(plan) {
            // Nothing for the GPU: the CPU executor runs the plan on the host variables.
            return super::exec::execute(plan, feeds, &mut self.host_vars, options, metadata);
        }
        let start = Instant::now();
        let GpuState { pool, vars, host_vars, consts, cpu_fallbacks } = self;
        pool.reset_peak();
        let mut run = Run {
            stream: Some(Stream::new(pool)?),
            owned: HashMap::new(),
            options,
            fallbacks: 0,
            host_bytes: 0,
            host_peak: 0,
        };
        // With a full trace, kernels are timed on the GPU where the device can.
        let kernel_times: crate::runtime::gpu::timer::TimeSink = Default::default();
        let full_trace = metadata.is_some() && options.trace_level == super::config::TraceLevel::FullTrace;
        let timed = full_trace && run.stream()?.time_kernels(kernel_times.clone());
        let mut slots: Vec<Option<Value>> = vec![None; plan.slots];
        for ((slot, _), t) in plan.feeds.iter().zip(feeds) {
            run.host_bytes += t.byte_len() as u64;
            slots[*slot] = Some(Value::Host(t));
        }
        run.host_peak = run.host_bytes;
        let mut stores = Stores { vars, host_vars, consts };
        let mut i = 0;
        while i < plan.steps.len() {
            let t0 = Instant::now();
            if timed {
                run.stream()?.set_label(i);
            }
            run.stream()?.set_node(&plan.steps[i].name);
            // Readbacks placed together are done with one submit.
            let batch = readback_batch(plan, i);
            let result = super::exec::check_deadline(options, start).and_then(|()| {
                if batch > 0 {
                    run.readbacks(plan, &plan.steps[i..i + batch], &mut slots, &stores)
                } else {
                    let step = &plan.steps[i];
                    let outs = run.step(plan, step, &slots, &mut stores).map_err(|e| e.at(&step.name))?;
                    run.store(step, outs, &mut slots);
                    Ok(())
                }
            });
            *cpu_fallbacks += std::mem::take(&mut run.fallbacks);
            if let Err(e) = result {
                // Every buffer the run took goes back to the pool (after whatever was submitted).
                drop(slots);
                run.release_all();
                return Err(e);
            }
            for step in &plan.steps[i..i + batch.max(1)] {
                for &s in &step.frees {
                    match slots[s].take() {
                        Some(Value::Dev(t)) => run.release(t),
                        Some(Value::Host(t)) => {
                            run.host_bytes = run.host_bytes.saturating_sub(t.byte_len() as u64);
                            crate::runtime::cpu::recycle::give(t);
                        }
                        None => {}
                    }
                }
                super::exec::record_step(metadata.as_deref_mut(), options, step, start, t0);
            }
            i += batch.max(1);
        }
        // Record the readbacks, then submit once.
        let mut pending: Vec<Result<Option<Value>>> = Vec::with_capacity(plan.fetches.len());
        for f in &plan.fetches {
            pending.push(match f {
                FetchFrom::Nothing => Ok(None),
                FetchFrom::Slot(s) => slots[*s].clone().map(Some).ok_or_else(|| Error::internal("fetch not computed")),
                FetchFrom::Var(id, name) => stores.read_var(*id, name).map(Some),
            });
        }
        let mut positions = Vec::with_capacity(pending.len());
        for p in &pending {
            positions.push(match p {
                Ok(Some(Value::Dev(t))) => Some(run.stream()?.fetch(t)?),
                _ => None,
            });
        }
        // The run's own buffers (slots, uploads, intermediates of assignments) go back to the
        // pool once the submit is done; variables and constants keep theirs.
        drop(slots);
        run.release_all();
        let host_peak = run.host_peak;
        let submitted = Instant::now();
        let mut downloaded = run.finish()?;
        drop(run);
        if let Some(md) = metadata {
            // Kernels run after the submit: the GPU's time shows as one record for the submit
            // (with its wait and readbacks); the node records above are the recording times, replaced
            // by the kernels' GPU times where timestamp queries ran.
            if options.trace_level == super::config::TraceLevel::FullTrace {
                md.step_stats.push(super::config::NodeStats {
                    name: "gpu_submit".into(),
                    op: "Submit".into(),
                    device: DeviceKind::Gpu.full_name().to_string(),
                    start_us: (submitted - start).as_secs_f64() * 1e6,
                    duration_us: submitted.elapsed().as_secs_f64() * 1e6,
                    fused_nodes: Vec::new(),
                });
            }
            if timed {
                let times = kernel_times.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let submit_us = (submitted - start).as_secs_f64() * 1e6;
                md.gpu_kernel_timestamps = apply_kernel_times(md, plan, &times, submit_us);
            }
            md.peak_bytes.insert(DeviceKind::Gpu.full_name().to_string(), pool.peak());
            md.peak_bytes.insert(DeviceKind::Cpu.full_name().to_string(), host_peak);
        }
        let mut out = Vec::with_capacity(pending.len());
        for (p, pos) in pending.into_iter().zip(positions) {
            out.push(match (p?, pos) {
                (None, _) => None,
                (Some(Value::Host(t)), _) => Some(t),
                (Some(Value::Dev(_)), Some(i)) => Some(std::mem::replace(&mut downloaded[i], Tensor::from(0.0f32))),
                (Some(Value::Dev(_)), None) => return Err(Error::internal("a device fetch was not recorded")),
            });
        }
        Ok(out)
    }
}

/// Gives the GPU nodes of this run's step stats their kernels' GPU times: the start of the
/// first kernel and the sum of their durations, placed on the host timeline from the submit
/// on. Returns whether any kernel was timed.
fn apply_kernel_times(
    md: &mut RunMetadata,
    plan: &Plan,
    times: &[crate::runtime::gpu::timer::KernelTime],
    submit_us: f64,
) -> bool {
    let Some(origin) = times.iter().map(|t| t.start_ns).reduce(f64::min) else { return false };
    let mut per_step: HashMap<usize, (f64, f64)> = HashMap::new();
    for t in times {
        let e = per_step.entry(t.label).or_insert((f64::INFINITY, 0.0));
        *e = (e.0.min(t.start_ns), e.1 + t.duration_ns);
    }
    let gpu = DeviceKind::Gpu.full_name();
    for (label, (first, total)) in per_step {
        let Some(step) = plan.steps.get(label) else { continue };
        if let Some(record) = md.step_stats.iter_mut().rev().find(|r| r.name == step.name && r.device == gpu) {
            record.start_us = submit_us + (first - origin) / 1e3;
            record.duration_us = total / 1e3;
        }
    }
    true
}

/// The number of device-to-host transfers starting at step `i` (0 when step `i` is not one).
fn readback_batch(plan: &Plan, i: usize) -> usize {
    plan.steps[i..].iter().take_while(|s| matches!(s.action, Action::Transfer) && s.device == DeviceKind::Cpu).count()
}

/// Where a run finds the session's values.
struct Stores<'a> {
    vars: &'a mut HashMap<NodeId, GpuTensor>,
    host_vars: &'a mut Variables,
    consts: &'a mut HashMap<NodeId, GpuTensor>,
}

impl Stores<'_> {
    /// A variable's value, on whichever device holds it.
    fn read_var(&self, id: NodeId, name: &str) -> Result<Value> {
        match (self.vars.get(&id), self.host_vars.values.get(&id)) {
            (Some(t), _) => Ok(Value::Dev(t.clone())),
            (None, Some(t)) => Ok(Value::Host(t.clone())),
            (None, None) => Err(super::exec::uninitialized(name)),
        }
    }

    fn initialized(&self, id: NodeId) -> bool {
        self.vars.contains_key(&id) || self.host_vars.values.contains_key(&id)
    }
}

/// The state of one run: its stream and the buffers it allocated.
struct Run<'p, 'o> {
    stream: Option<Stream<'p>>,
    /// Buffers this run allocated, by pointer: only these go back to the pool when freed, and
    /// all of those still here go back at the end of the run, so that no intermediate (an
    /// upload, the sum of an `AssignAdd`) outlives it.
    owned: HashMap<usize, Arc<wgpu::Buffer>>,
    options: &'o RunOptions,
    fallbacks: u64,
    /// Bytes of the host values alive now, and their most in this run.
    host_bytes: u64,
    host_peak: u64,
}

impl<'p> Run<'p, '_> {
    fn stream(&mut self) -> Result<&mut Stream<'p>> {
        self.stream.as_mut().ok_or_else(|| Error::internal("the run's stream is gone"))
    }

    fn own(&mut self, t: GpuTensor) -> GpuTensor {
        self.owned.insert(Arc::as_ptr(&t.buffer) as usize, t.buffer.clone());
        t
    }

    fn release(&mut self, t: GpuTensor) {
        if let Some(buffer) = self.owned.remove(&(Arc::as_ptr(&t.buffer) as usize)) {
            if let Some(s) = self.stream.as_mut() {
                s.release_buffer(buffer);
            }
        }
    }

    /// Gives back every buffer the run still owns.
    fn release_all(&mut self) {
        let owned = std::mem::take(&mut self.owned);
        if let Some(s) = self.stream.as_mut() {
            for (_, buffer) in owned {
                s.release_buffer(buffer);
            }
        }
    }

    fn finish(&mut self) -> Result<Vec<Tensor>> {
        let stream = self.stream.take().ok_or_else(|| Error::internal("the run's stream is gone"))?;
        match self.options.timeout {
            Some(t) => stream.finish_within(t),
            None => stream.finish(),
        }
    }

    /// Puts a step's outputs in their slots, counting host bytes.
    fn store(&mut self, step: &Step, outs: Vec<Value>, slots: &mut [Option<Value>]) {
        for (slot, value) in step.outputs.iter().zip(outs) {
            match (slot, value) {
                (Some(s), value) => {
                    if let Value::Host(t) = &value {
                        self.host_bytes += t.byte_len() as u64;
                        self.host_peak = self.host_peak.max(self.host_bytes);
                    }
                    slots[*s] = Some(value);
                }
                (None, Value::Host(t)) => crate::runtime::cpu::recycle::give(t),
                (None, Value::Dev(_)) => {}
            }
        }
    }

    /// Reads device values back in the middle of a run: one extra submit for all of them.
    fn download(&mut self, values: &[Value]) -> Result<Vec<Tensor>> {
        let mut idx = Vec::with_capacity(values.len());
        for v in values {
            idx.push(match v {
                Value::Dev(t) => Some(self.stream()?.fetch(t)?),
                Value::Host(_) => None,
            });
        }
        let mut got = if idx.iter().any(Option::is_some) {
            let timeout = self.options.timeout;
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

    /// Runs a batch of device-to-host transfer steps with one readback.
    fn readbacks(&mut self, plan: &Plan, batch: &[Step], slots: &mut [Option<Value>], stores: &Stores) -> Result<()> {
        let values = batch
            .iter()
            .map(|step| self.input(plan, slots, stores, &step.inputs[0]).map_err(|e| e.at(&step.name)))
            .collect::<Result<Vec<_>>>()?;
        let host = self.download(&values)?;
        for (step, t) in batch.iter().zip(host) {
            self.store(step, vec![Value::Host(t)], slots);
        }
        Ok(())
    }

    fn on_device(&mut self, v: &Value) -> Result<GpuTensor> {
        match v {
            Value::Dev(t) => Ok(t.clone()),
            Value::Host(t) => {
                let t = self.stream()?.upload(t)?;
                Ok(self.own(t))
            }
        }
    }

    fn input(&self, plan: &Plan, slots: &[Option<Value>], stores: &Stores, i: &Input) -> Result<Value> {
        match i {
            Input::Slot(s) => slots[*s].clone().ok_or_else(|| Error::internal("input value missing")),
            Input::Var(id) => stores.read_var(*id, plan.var_name(*id)),
        }
    }

    /// Runs `op` on its GPU kernel; `Ok(None)` when it has none for these inputs.
    fn compute(&mut self, op: &dyn Op, ins: &[Value]) -> Result<Option<Value>> {
        let specs: Vec<(DType, Vec<usize>)> = ins
            .iter()
            .map(|v| match v {
                Value::Host(t) => (t.dtype(), t.shape().to_vec()),
                Value::Dev(t) => (t.dtype, t.shape.clone()),
            })
            .collect();
        let spec_refs: Vec<(DType, &[usize])> = specs.iter().map(|(d, s)| (*d, s.as_slice())).collect();
        let lowering = if spec_refs.iter().all(|(d, _)| on_gpu(*d)) { op.gpu(&spec_refs) } else { None };
        match lowering {
            Some(Ok(GpuLowering::View(shape))) => {
                let mut t = self.on_device(&ins[0])?;
                t.shape = shape;
                Ok(Some(Value::Dev(t)))
            }
            Some(Ok(GpuLowering::Kernel { wgsl, uniforms, invocations, workgroup_size, out })) => {
                let dev = ins.iter().map(|v| self.on_device(v)).collect::<Result<Vec<_>>>()?;
                let refs: Vec<&GpuTensor> = dev.iter().collect();
                let stream = self.stream()?;
                let output = stream.alloc(out.0, &out.1)?;
                stream.dispatch(&wgsl, &uniforms, &refs, &output, invocations, workgroup_size)?;
                Ok(Some(Value::Dev(self.own(output))))
            }
            Some(Ok(GpuLowering::Passes(p))) => {
                let dev = ins.iter().map(|v| self.on_device(v)).collect::<Result<Vec<_>>>()?;
                let stream = self.stream()?;
                let output = stream.alloc(p.out.0, &p.out.1)?;
                let mut temps = Vec::with_capacity(p.temps.len());
                let result = (|| -> Result<()> {
                    for (dtype, shape) in &p.temps {
                        temps.push(stream.alloc(*dtype, shape)?);
                    }
                    let pick = |b: &PassBuf| -> Result<&GpuTensor> {
                        match *b {
                            PassBuf::Input(i) => dev.get(i),
                            PassBuf::Temp(i) => temps.get(i),
                            PassBuf::Out => Some(&output),
                        }
                        .ok_or_else(|| Error::internal("a GPU pass binds a buffer its lowering does not have"))
                    };
                    for pass in &p.passes {
                        let refs = pass.inputs.iter().map(pick).collect::<Result<Vec<_>>>()?;
                        let out = pick(&pass.output)?;
                        stream.dispatch(
                            &pass.wgsl,
                            &pass.uniforms,
                            &refs,
                            out,
                            pass.invocations,
                            pass.workgroup_size,
                        )?;
                    }
                    Ok(())
                })();
                // The temporaries go back to the pool in stream order (reused only by later work).
                for t in temps {
                    stream.release(t);
                }
                match result {
                    Ok(()) => Ok(Some(Value::Dev(self.own(output)))),
                    Err(e) => {
                        stream.release(output);
                        Err(e)
                    }
                }
            }
            Some(Err(e)) => Err(e),
            None => Ok(None),
        }
    }

    fn step(&mut self, plan: &Plan, step: &Step, slots: &[Option<Value>], stores: &mut Stores) -> Result<Vec<Value>> {
        let op = match &step.action {
            Action::Transfer => {
                let v = self.input(plan, slots, stores, &step.inputs[0])?;
                return Ok(vec![match step.device {
                    DeviceKind::Gpu => Value::Dev(self.on_device(&v)?),
                    DeviceKind::Cpu => Value::Host(self.download(&[v])?.remove(0)),
                }]);
            }
            Action::Node(op) => op,
        };
        match op {
            OpKind::IsVariableInitialized => match step.inputs[0] {
                Input::Var(var) => return Ok(vec![Value::Host(Tensor::from(stores.initialized(var)))]),
                _ => return Err(Error::invalid_argument("IsVariableInitialized needs a variable input")),
            },
            OpKind::ReportUninitialized => {
                return Ok(vec![Value::Host(super::exec::uninitialized_names(plan, step, |id| stores.initialized(id)))])
            }
            _ if step.device == DeviceKind::Cpu => return self.on_host(plan, step, op, slots, stores),
            _ => {}
        }
        match op {
            OpKind::Const(t) if on_gpu(t.dtype()) => {
                if let Some(c) = stores.consts.get(&step.node) {
                    return Ok(vec![Value::Dev(c.clone())]);
                }
                let c = self.stream()?.upload(t)?;
                stores.consts.insert(step.node, c.clone());
                Ok(vec![Value::Dev(c)])
            }
            OpKind::Compute(op) => {
                let ins = step.inputs.iter().map(|i| self.input(plan, slots, stores, i)).collect::<Result<Vec<_>>>()?;
                match self.compute(op.as_ref(), &ins)? {
                    Some(v) => Ok(vec![v]),
                    None => {
                        self.fallbacks += 1;
                        self.on_host(plan, step, &OpKind::Compute(op.clone()), slots, stores)
                    }
                }
            }
            OpKind::Assign(mode) => self.assign(plan, step, *mode, slots, stores),
            _ => self.on_host(plan, step, op, slots, stores),
        }
    }

    /// An assignment to a variable on the GPU: the variable keeps its buffer, and the new
    /// value is copied into it in stream order.
    fn assign(
        &mut self,
        plan: &Plan,
        step: &Step,
        mode: AssignMode,
        slots: &[Option<Value>],
        stores: &mut Stores,
    ) -> Result<Vec<Value>> {
        let Input::Var(var) = step.inputs[0] else {
            return Err(Error::invalid_argument("Assign needs a variable as its first input"));
        };
        let value = self.input(plan, slots, stores, &step.inputs[step.inputs.len() - 1])?;
        if mode == AssignMode::Set {
            let (dtype, shape) = match &value {
                Value::Host(t) => (t.dtype(), t.shape()),
                Value::Dev(t) => (t.dtype, t.shape.as_slice()),
            };
            super::exec::check_assign(plan, var, (dtype, shape))?;
        }
        let mut value = self.on_device(&value)?;
        if mode == AssignMode::GradientDescent {
            let alpha = self.input(plan, slots, stores, &step.inputs[1])?;
            value = match self.compute(&crate::ops::binary_op(BinaryKind::Mul), &[alpha, Value::Dev(value)])? {
                Some(Value::Dev(t)) => t,
                _ => return Err(Error::unimplemented("this variable update has no GPU kernel")),
            };
        }
        let new = match mode {
            AssignMode::Set => value,
            AssignMode::Add | AssignMode::Sub | AssignMode::GradientDescent => {
                let name = plan.var_name(var);
                let old = match stores.read_var(var, name)? {
                    Value::Dev(t) => t,
                    Value::Host(_) => return Err(Error::internal("a GPU assignment to a variable on the CPU")),
                };
                super::exec::check_update((old.dtype, &old.shape), (value.dtype, &value.shape))?;
                let kind = if mode == AssignMode::Add { BinaryKind::Add } else { BinaryKind::Sub };
                // (`ApplyGradientDescent` subtracts the scaled delta computed above.)
                match self.compute(&crate::ops::binary_op(kind), &[Value::Dev(old), Value::Dev(value)])? {
                    Some(Value::Dev(t)) => t,
                    _ => return Err(Error::unimplemented("this variable update has no GPU kernel")),
                }
            }
        };
        let target = match stores.vars.get(&var) {
            Some(old) if old.byte_len() == new.byte_len() && old.dtype == new.dtype => {
                let mut t = old.clone();
                t.shape = new.shape.clone();
                t
            }
            _ => {
                let stream = self.stream()?;
                let t = stream.alloc(new.dtype, &new.shape)?;
                if let Some(old) = stores.vars.remove(&var) {
                    stream.release(old);
                }
                t
            }
        };
        self.stream()?.copy(&new, &target)?;
        stores.vars.insert(var, target.clone());
        Ok(vec![Value::Dev(target)])
    }

    /// Runs a node on the host (placed on the CPU, or without a GPU kernel for its inputs),
    /// with the CPU's variables. Device inputs are read back first (one extra submit); after
    /// placement's transfers there are none unless the node fell back.
    fn on_host(
        &mut self,
        plan: &Plan,
        step: &Step,
        op: &OpKind,
        slots: &[Option<Value>],
        stores: &mut Stores,
    ) -> Result<Vec<Value>> {
        let mut values = Vec::with_capacity(step.inputs.len());
        let mut present = Vec::with_capacity(step.inputs.len());
        for i in &step.inputs {
            match self.input(plan, slots, stores, i) {
                Ok(v) => {
                    values.push(v);
                    present.push(true);
                }
                Err(e) if matches!(i, Input::Var(_)) && e.code == crate::error::Code::FailedPrecondition => {
                    values.push(Value::Host(Tensor::from(0.0f32)));
                    present.push(false);
                }
                Err(e) => return Err(e),
            }
        }
        let host = self.download(&values)?;
        let ins = host.into_iter().zip(present).map(|(t, p)| p.then_some(t)).collect();
        let outs = super::exec::host_step(plan, step, op, ins, stores.host_vars)?;
        Ok(outs.into_iter().map(Value::Host).collect())
    }
}
