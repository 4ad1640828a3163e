//! The GPU executor: runs a plan on one device stream. Constants are uploaded once and stay
//! resident, variables live in the session's buffers, only feeds are uploaded and only fetches
//! are read back, after one submit. An op without a GPU kernel runs on the CPU (its device
//! inputs are read back first, which costs an extra submit).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use super::config::{RunMetadata, RunOptions};
use super::plan::{FetchFrom, Input, Plan, Step};
use crate::error::{Error, Result};
use crate::graph::NodeId;
use crate::ops::{AssignMode, BinaryKind, GpuLowering, Op, OpKind};
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
    pub(crate) fn new(ctx: Arc<GpuContext>) -> Self {
        GpuState { pool: BufferPool::new(ctx), vars: HashMap::new(), consts: HashMap::new(), cpu_fallbacks: 0 }
    }

    pub(crate) fn stats(&self) -> GpuStats {
        self.pool.stats()
    }

    /// Ops that ran on the CPU because they have no GPU kernel for their inputs.
    pub(crate) fn cpu_fallbacks(&self) -> u64 {
        self.cpu_fallbacks
    }

    /// Runs `plan` and returns the fetched values.
    pub(crate) fn execute(
        &mut self,
        plan: &Plan,
        feeds: Vec<Tensor>,
        options: &RunOptions,
        mut metadata: Option<&mut RunMetadata>,
    ) -> Result<Vec<Option<Tensor>>> {
        let start = Instant::now();
        let GpuState { pool, vars, consts, cpu_fallbacks } = self;
        let mut run = Run { stream: Some(Stream::new(pool)?), owned: HashSet::new(), options, fallbacks: 0 };
        let mut slots: Vec<Option<Value>> = vec![None; plan.slots];
        for (((slot, _), t), node) in plan.feeds.iter().zip(feeds).zip(&plan.feed_nodes) {
            let v = if on_gpu(t.dtype()) {
                Value::Dev(run.on_device(&Value::Host(t)).map_err(|e| e.at(node))?)
            } else {
                Value::Host(t)
            };
            slots[*slot] = Some(v);
        }
        for step in &plan.steps {
            let t0 = Instant::now();
            let outs = super::exec::check_deadline(options, start)
                .and_then(|()| run.step(plan, step, &slots, vars, consts))
                .map_err(|e| e.at(&step.name));
            *cpu_fallbacks += std::mem::take(&mut run.fallbacks);
            let outs = match outs {
                Ok(outs) => outs,
                Err(e) => {
                    // Nothing was submitted: the run's buffers go straight back to the pool.
                    for v in slots.into_iter().flatten() {
                        if let Value::Dev(t) = v {
                            run.release(t);
                        }
                    }
                    return Err(e);
                }
            };
            for (slot, value) in step.outputs.iter().zip(outs) {
                if let Some(s) = slot {
                    slots[*s] = Some(value);
                }
            }
            for &s in &step.frees {
                if let Some(Value::Dev(t)) = slots[s].take() {
                    run.release(t);
                }
            }
            super::exec::record_step(metadata.as_deref_mut(), options, step, start, t0);
        }
        // Record the readbacks, then submit once.
        let mut pending: Vec<Result<Option<Value>>> = Vec::with_capacity(plan.fetches.len());
        for f in &plan.fetches {
            pending.push(match f {
                FetchFrom::Nothing => Ok(None),
                FetchFrom::Slot(s) => slots[*s].clone().map(Some).ok_or_else(|| Error::internal("fetch not computed")),
                FetchFrom::Var(id, name) => read_var(vars, *id, name).map(|t| Some(Value::Dev(t))),
            });
        }
        let mut positions = Vec::with_capacity(pending.len());
        for p in &pending {
            positions.push(match p {
                Ok(Some(Value::Dev(t))) => Some(run.stream()?.fetch(t)?),
                _ => None,
            });
        }
        let remaining: Vec<GpuTensor> =
            slots.into_iter().flatten().filter_map(|v| if let Value::Dev(t) = v { Some(t) } else { None }).collect();
        for t in remaining {
            run.release(t);
        }
        let mut downloaded = run.finish()?;
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

fn read_var(vars: &HashMap<NodeId, GpuTensor>, id: NodeId, name: &str) -> Result<GpuTensor> {
    vars.get(&id).cloned().ok_or_else(|| super::exec::uninitialized(name))
}

/// The state of one run: its stream and the buffers it allocated.
struct Run<'p, 'o> {
    stream: Option<Stream<'p>>,
    /// Buffers this run allocated (by pointer); only these go back to the pool when freed.
    owned: HashSet<usize>,
    options: &'o RunOptions,
    fallbacks: u64,
}

impl<'p> Run<'p, '_> {
    fn stream(&mut self) -> Result<&mut Stream<'p>> {
        self.stream.as_mut().ok_or_else(|| Error::internal("the run's stream is gone"))
    }

    fn own(&mut self, t: GpuTensor) -> GpuTensor {
        self.owned.insert(Arc::as_ptr(&t.buffer) as usize);
        t
    }

    fn release(&mut self, t: GpuTensor) {
        if self.owned.remove(&(Arc::as_ptr(&t.buffer) as usize)) {
            if let Some(s) = self.stream.as_mut() {
                s.release(t);
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

    /// Reads device values back in the middle of a run (for a CPU-only op): one extra submit.
    fn download(&mut self, values: &[Value]) -> Result<Vec<Tensor>> {
        let mut idx = Vec::with_capacity(values.len());
        for v in values {
            idx.push(match v {
                Value::Dev(t) => Some(self.stream()?.fetch(t)?),
                Value::Host(_) => None,
            });
        }
        let timeout = self.options.timeout;
        let stream = self.stream()?;
        let timeout = timeout.unwrap_or_else(|| stream.context().poll_timeout());
        let mut got = stream.flush(timeout)?;
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

    fn on_device(&mut self, v: &Value) -> Result<GpuTensor> {
        match v {
            Value::Dev(t) => Ok(t.clone()),
            Value::Host(t) => {
                let t = self.stream()?.upload(t)?;
                Ok(self.own(t))
            }
        }
    }

    fn input(
        &self,
        plan: &Plan,
        slots: &[Option<Value>],
        vars: &HashMap<NodeId, GpuTensor>,
        i: &Input,
    ) -> Result<Value> {
        match i {
            Input::Slot(s) => slots[*s].clone().ok_or_else(|| Error::internal("input value missing")),
            Input::Var(id) => read_var(vars, *id, plan.var_names.get(id).map_or("?", String::as_str)).map(Value::Dev),
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
            Some(Err(e)) => Err(e),
            None => Ok(None),
        }
    }

    fn step(
        &mut self,
        plan: &Plan,
        step: &Step,
        slots: &[Option<Value>],
        vars: &mut HashMap<NodeId, GpuTensor>,
        consts: &mut HashMap<NodeId, GpuTensor>,
    ) -> Result<Vec<Value>> {
        match &step.op {
            OpKind::Const(t) if on_gpu(t.dtype()) && step.device == DeviceKind::Gpu => {
                if let Some(c) = consts.get(&step.node) {
                    return Ok(vec![Value::Dev(c.clone())]);
                }
                let c = self.stream()?.upload(t)?;
                consts.insert(step.node, c.clone());
                Ok(vec![Value::Dev(c)])
            }
            OpKind::Const(t) => Ok(vec![Value::Host(t.clone())]),
            OpKind::Compute(op) => {
                let ins = step.inputs.iter().map(|i| self.input(plan, slots, vars, i)).collect::<Result<Vec<_>>>()?;
                if step.device == DeviceKind::Cpu {
                    return self.on_cpu(op.as_ref(), &ins);
                }
                match self.compute(op.as_ref(), &ins)? {
                    Some(v) => Ok(vec![v]),
                    None => {
                        self.fallbacks += 1;
                        self.on_cpu(op.as_ref(), &ins)
                    }
                }
            }
            OpKind::Assign(mode) => {
                let Input::Var(var) = step.inputs[0] else {
                    return Err(Error::invalid_argument("Assign needs a variable as its first input"));
                };
                let value = self.input(plan, slots, vars, &step.inputs[1])?;
                let value = self.on_device(&value)?;
                let new = match mode {
                    AssignMode::Set => value,
                    AssignMode::Add | AssignMode::Sub => {
                        let name = plan.var_names.get(&var).map_or("?", String::as_str);
                        let old = read_var(vars, var, name)?;
                        super::exec::check_update((old.dtype, &old.shape), (value.dtype, &value.shape))?;
                        let kind = if *mode == AssignMode::Add { BinaryKind::Add } else { BinaryKind::Sub };
                        match self.compute(&crate::ops::binary_op(kind), &[Value::Dev(old), Value::Dev(value)])? {
                            Some(Value::Dev(t)) => t,
                            _ => return Err(Error::unimplemented("this variable update has no GPU kernel")),
                        }
                    }
                };
                // The variable keeps its own buffer; the new value is copied into it in order.
                let target = match vars.get(&var) {
                    Some(old) if old.byte_len() == new.byte_len() && old.dtype == new.dtype => {
                        let mut t = old.clone();
                        t.shape = new.shape.clone();
                        t
                    }
                    _ => {
                        let stream = self.stream()?;
                        let t = stream.alloc(new.dtype, &new.shape)?;
                        if let Some(old) = vars.remove(&var) {
                            stream.release(old);
                        }
                        t
                    }
                };
                self.stream()?.copy(&new, &target)?;
                vars.insert(var, target.clone());
                Ok(vec![Value::Dev(target)])
            }
            OpKind::IsVariableInitialized => match step.inputs[0] {
                Input::Var(var) => Ok(vec![Value::Host(Tensor::from(vars.contains_key(&var)))]),
                _ => Err(Error::invalid_argument("IsVariableInitialized needs a variable input")),
            },
            OpKind::ReportUninitialized => {
                Ok(vec![Value::Host(super::exec::uninitialized_names(plan, step, |id| vars.contains_key(&id)))])
            }
            OpKind::Placeholder(spec) => Err(super::exec::unfed_placeholder(&step.name, spec)),
            OpKind::Variable(_) | OpKind::NoOp => Ok(Vec::new()),
        }
    }

    /// Runs an op on the CPU (placed there, or without a GPU kernel); its results stay on the
    /// host until a GPU op needs them.
    fn on_cpu(&mut self, op: &dyn Op, ins: &[Value]) -> Result<Vec<Value>> {
        let host = self.download(ins)?;
        let refs: Vec<&Tensor> = host.iter().collect();
        Ok(op.compute(&refs)?.into_iter().map(Value::Host).collect())
    }
}
