//! The executor: the one step loop that runs a [`Plan`], in CPU and GPU sessions alike. It
//! holds the run's value slots, feeds them, frees each value after its last reader, checks the
//! deadline, records step stats and gathers the fetches; every device-specific action goes
//! through the [`Device`] trait, implemented by the host (`device_cpu`) and by each GPU's run
//! (`gpu_run`). A step runs on the device placement gave it; the one exception is the
//! run-time fallback: a GPU-placed op with no GPU kernel for its concrete input shapes runs on
//! the host, counted in `SessionStats::cpu_fallbacks`. A copy between two GPUs reads the value
//! back from the one (batched with the other copies from it: one submit) and uploads it to
//! the other: wgpu has no copies between devices.

use std::time::Instant;

use super::config::{NodeStats, RunMetadata, RunOptions, TraceLevel};
use super::device_cpu::{uninitialized, CpuDevice};
use super::gpu_run::{self, GpuRun};
use super::plan::{Action, FetchFrom, Input, Plan, Step};
use crate::error::{Error, Result};
use crate::graph::NodeId;
use crate::ops::OpKind;
use crate::placement::DeviceId;
use crate::runtime::gpu::stream::GpuTensor;
use crate::tensor::Tensor;

/// A value during a run: on the host or in a GPU buffer.
#[derive(Clone, Debug)]
pub(crate) enum Value {
    Host(Tensor),
    Dev(GpuTensor),
}

/// What the executor needs of a device.
pub(crate) trait Device {
    /// Marks the start of plan step `index`, named `name` (for kernel timing and errors).
    fn begin_step(&mut self, index: usize, name: &str) -> Result<()>;
    /// Runs node `op` of `step` with its input values (`None`: an uninitialized variable),
    /// assignments to this device's variables included; `Ok(None)` when the device has no
    /// kernel for these inputs.
    fn run(&mut self, plan: &Plan, step: &Step, op: &OpKind, ins: &[Option<Value>]) -> Result<Option<Vec<Value>>>;
    /// A copy of a host or device value on this device.
    fn upload(&mut self, value: &Value) -> Result<Value>;
    /// Host copies of `values`, with one readback for all those on this device.
    fn read_back(&mut self, values: &[Value]) -> Result<Vec<Tensor>>;
    /// The value of variable `id` when this device holds it.
    fn read_var(&self, id: NodeId) -> Option<Value>;
    /// Gives back a value this run no longer needs.
    fn release(&mut self, value: Value);
}

/// The state of one run.
struct Executor<'r, 'a> {
    plan: &'r Plan,
    options: &'r RunOptions,
    start: Instant,
    cpu: CpuDevice<'a>,
    /// The run of each GPU, by ordinal; `None` for a GPU the plan does not use.
    gpus: Vec<Option<GpuRun<'a>>>,
    slots: Vec<Option<Value>>,
    /// Bytes of the host values alive now, and their most in this run.
    live: u64,
    peak: u64,
}

/// Runs `plan` with `feeds` (one per plan feed slot) on the host and the runs of the GPUs it
/// uses (by ordinal), and returns the fetched values. On success and on error, the run gives
/// back every buffer it took; variables and resident constants keep theirs.
pub(crate) fn execute(
    plan: &Plan,
    feeds: Vec<Tensor>,
    cpu: CpuDevice<'_>,
    gpus: Vec<Option<GpuRun<'_>>>,
    options: &RunOptions,
    mut metadata: Option<&mut RunMetadata>,
) -> Result<Vec<Option<Tensor>>> {
    let slots = vec![None; plan.slot_device.len()];
    let mut ex = Executor { plan, options, start: Instant::now(), cpu, gpus, slots, live: 0, peak: 0 };
    for ((slot, _), t) in plan.feeds.iter().zip(feeds) {
        ex.live += t.byte_len() as u64;
        ex.slots[*slot] = Some(Value::Host(t));
    }
    ex.peak = ex.live;
    if let Err(e) = ex.run_steps(metadata.as_deref_mut()) {
        drop(ex.slots);
        for gpu in ex.gpus.iter_mut().flatten() {
            gpu.release_all();
        }
        return Err(e);
    }
    let fetched = ex.fetch_values();
    let Executor { slots, gpus, peak, start, .. } = ex;
    // What the run computed and nobody holds any more (fetched values are held).
    for v in slots.into_iter().flatten() {
        if let Value::Host(t) = v {
            crate::runtime::cpu::recycle::give(t);
        }
    }
    if let Some(md) = metadata.as_deref_mut() {
        md.peak_bytes.insert(DeviceId::CPU.full_name().to_string(), peak);
    }
    match (gpus.iter().any(Option::is_some), fetched) {
        (true, Ok(values)) => gpu_run::finish(gpus, plan, values, options, metadata, start),
        // The work recorded (assignments among it) still runs, as it does in a host run.
        (true, Err(e)) => gpu_run::finish(gpus, plan, Vec::new(), options, metadata, start).and(Err(e)),
        (false, fetched) => fetched?
            .into_iter()
            .map(|v| match v {
                None => Ok(None),
                Some((_, Value::Host(t))) => Ok(Some(t)),
                Some((_, Value::Dev(_))) => Err(Error::internal("a device value in a run without a GPU")),
            })
            .collect(),
    }
}

impl<'a> Executor<'_, 'a> {
    /// The run of GPU `i`.
    fn gpu(&mut self, i: usize) -> Result<&mut GpuRun<'a>> {
        self.gpus
            .get_mut(i)
            .and_then(Option::as_mut)
            .ok_or_else(|| Error::internal("a GPU step on a GPU the run has not"))
    }

    /// The step loop. Device-to-host transfers placed together are read back with one submit.
    fn run_steps(&mut self, mut md: Option<&mut RunMetadata>) -> Result<()> {
        let plan = self.plan;
        let mut i = 0;
        while i < plan.steps.len() {
            let t0 = Instant::now();
            if let Some(g) = plan.steps[i].device.gpu_index() {
                self.gpu(g)?.begin_step(i, &plan.steps[i].name)?;
            }
            check_deadline(self.options, self.start)?;
            let batch = readback_batch(plan, i);
            if batch > 0 {
                self.readbacks(&plan.steps[i..i + batch])?;
            } else {
                let step = &plan.steps[i];
                let outs = self.step(step).map_err(|e| e.at(&step.name))?;
                self.store(step, outs);
            }
            for step in &plan.steps[i..i + batch.max(1)] {
                for &s in &step.frees {
                    self.free(s)?;
                }
                record_step(md.as_deref_mut(), self.options, step, self.start, t0);
            }
            i += batch.max(1);
        }
        Ok(())
    }

    /// The value of each input of `step`: `None` for a variable that holds no value yet.
    fn inputs(&self, step: &Step) -> Result<Vec<Option<Value>>> {
        step.inputs.iter().map(|i| self.input(i)).collect()
    }

    fn input(&self, input: &Input) -> Result<Option<Value>> {
        match input {
            Input::Slot(s) => self.slots[*s].clone().map(Some).ok_or_else(|| Error::internal("input value missing")),
            Input::Var(id) => Ok(self.read_var(*id)),
        }
    }

    /// A variable's value, on whichever device holds it.
    fn read_var(&self, id: NodeId) -> Option<Value> {
        self.locate_var(id).map(|(_, v)| v)
    }

    /// A variable's value and the GPU that holds it (0 for the host).
    fn locate_var(&self, id: NodeId) -> Option<(usize, Value)> {
        let on_gpu = self.gpus.iter().enumerate().find_map(|(i, g)| g.as_ref()?.read_var(id).map(|v| (i, v)));
        on_gpu.or_else(|| self.cpu.read_var(id).map(|v| (0, v)))
    }

    /// The one input of a transfer, failing as TF does for an uninitialized variable.
    fn transfer_input(&self, step: &Step) -> Result<Value> {
        let input = step.inputs.first().ok_or_else(|| Error::internal("a transfer without an input"))?;
        self.input(input)?.ok_or_else(|| match input {
            Input::Var(id) => uninitialized(self.plan.var_name(*id)),
            Input::Slot(_) => Error::internal("input value missing"),
        })
    }

    fn step(&mut self, step: &Step) -> Result<Vec<Value>> {
        let op = match &step.action {
            Action::Node(op) => op,
            Action::Transfer { from } => {
                let v = self.transfer_input(step)?;
                let v = match from.gpu_index() {
                    Some(g) => {
                        let t = self.host_copies(vec![Some(v)], g)?.pop().flatten();
                        Value::Host(t.ok_or_else(|| Error::internal("a value was not read back"))?)
                    }
                    None => v,
                };
                return Ok(vec![self.arrive(v, *from, step.device)?]);
            }
        };
        let ins = self.inputs(step)?;
        match op {
            // Initialization checks look at the variables of both devices.
            OpKind::IsVariableInitialized => {
                return Ok(vec![Value::Host(Tensor::from(matches!(ins.first(), Some(Some(_)))))])
            }
            OpKind::ReportUninitialized => {
                return Ok(vec![Value::Host(uninitialized_names(self.plan, step, |id| self.read_var(id).is_some()))])
            }
            _ => {}
        }
        let plan = self.plan;
        let gpu_index = step.device.gpu_index();
        if let Some(g) = gpu_index {
            let gpu = self.gpu(g)?;
            if let Some(outs) = gpu.run(plan, step, op, &ins)? {
                return Ok(outs);
            }
            // No GPU kernel for these inputs (or no computation at all, as for a placeholder):
            // the host runs it, and a compute op counts as a fallback.
            if matches!(op, OpKind::Compute(_)) {
                gpu.count_fallback();
            }
        }
        // Device inputs of a host node (after a fallback on its GPU) are read back first.
        let host = match ins.iter().flatten().any(|v| matches!(v, Value::Dev(_))) {
            true => self.host_copies(ins, gpu_index.unwrap_or(0))?.into_iter().map(|t| t.map(Value::Host)).collect(),
            false => ins,
        };
        self.cpu.run_owned(plan, step, op, host)
    }

    /// Host copies of `values`, whose device values are on GPU `gpu` (one readback for all).
    fn host_copies(&mut self, values: Vec<Option<Value>>, gpu: usize) -> Result<Vec<Option<Tensor>>> {
        let present: Vec<Value> = values.iter().flatten().cloned().collect();
        let mut host = match present.iter().any(|v| matches!(v, Value::Dev(_))) {
            true => self.gpu(gpu)?.read_back(&present)?.into_iter(),
            false => self.cpu.read_back(&present)?.into_iter(),
        };
        Ok(values.iter().map(|v| v.as_ref().and_then(|_| host.next())).collect())
    }

    /// A value on the host (read back from `from` if that is a GPU) put on device `to`: kept
    /// on the host, uploaded to a GPU, or uploaded to a GPU from another one.
    fn arrive(&mut self, v: Value, from: DeviceId, to: DeviceId) -> Result<Value> {
        match (to.gpu_index(), v) {
            (None, v) => Ok(v),
            (Some(g), Value::Host(t)) if from.is_gpu() => self.gpu(g)?.receive(&t),
            (Some(g), v) => self.gpu(g)?.upload(&v),
        }
    }

    /// Runs a batch of transfer steps out of one GPU (to the host or to other GPUs) with one
    /// readback.
    fn readbacks(&mut self, batch: &[Step]) -> Result<()> {
        let Some(Action::Transfer { from }) = batch.first().map(|s| &s.action) else {
            return Err(Error::internal("a readback batch without a transfer"));
        };
        let from = *from;
        let values = batch
            .iter()
            .map(|step| self.transfer_input(step).map_err(|e| e.at(&step.name)))
            .collect::<Result<Vec<_>>>()?;
        let host = self.gpu(from.gpu_index().unwrap_or(0))?.read_back(&values)?;
        for (step, t) in batch.iter().zip(host) {
            let v = self.arrive(Value::Host(t), from, step.device).map_err(|e| e.at(&step.name))?;
            self.store(step, vec![v]);
        }
        Ok(())
    }

    /// Puts a step's outputs in their slots, counting host bytes; an output nobody reads is
    /// given back at once.
    fn store(&mut self, step: &Step, outs: Vec<Value>) {
        for (slot, value) in step.outputs.iter().zip(outs) {
            match (slot, value) {
                (Some(s), value) => {
                    if let Value::Host(t) = &value {
                        self.live += t.byte_len() as u64;
                        self.peak = self.peak.max(self.live);
                    }
                    self.slots[*s] = Some(value);
                }
                (None, Value::Host(t)) => crate::runtime::cpu::recycle::give(t),
                (None, Value::Dev(_)) => {}
            }
        }
    }

    /// Frees slot `s` after its last reader.
    fn free(&mut self, s: usize) -> Result<()> {
        match self.slots[s].take() {
            Some(v @ Value::Dev(_)) => {
                let g = self.plan.slot_device[s].gpu_index().unwrap_or(0);
                self.gpu(g)?.release(v)
            }
            Some(Value::Host(t)) => {
                self.live = self.live.saturating_sub(t.byte_len() as u64);
                self.cpu.release(Value::Host(t));
            }
            None => {}
        }
        Ok(())
    }

    /// The fetched values, each with the GPU that holds it (0 for host values).
    fn fetch_values(&self) -> Result<Vec<Option<(usize, Value)>>> {
        self.plan
            .fetches
            .iter()
            .map(|f| match f {
                FetchFrom::Nothing => Ok(None),
                FetchFrom::Slot(s) => {
                    let g = self.plan.slot_device[*s].gpu_index().unwrap_or(0);
                    let v = self.slots[*s].clone().ok_or_else(|| Error::internal("fetched value was not computed"))?;
                    Ok(Some((g, v)))
                }
                FetchFrom::Var(id, name) => self.locate_var(*id).map(Some).ok_or_else(|| uninitialized(name)),
            })
            .collect()
    }
}

/// The number of transfers out of one GPU starting at step `i` (0 when step `i` is not one):
/// copies to the host or to other GPUs, read back together.
fn readback_batch(plan: &Plan, i: usize) -> usize {
    let from_gpu = |s: &Step| match s.action {
        Action::Transfer { from } if from.is_gpu() => Some(from),
        _ => None,
    };
    let Some(first) = from_gpu(&plan.steps[i]) else { return 0 };
    plan.steps[i..].iter().take_while(|s| from_gpu(s) == Some(first)).count()
}

/// `DeadlineExceeded` once a run has taken longer than its `RunOptions::timeout`.
fn check_deadline(options: &RunOptions, start: Instant) -> Result<()> {
    match options.timeout {
        Some(limit) if start.elapsed() > limit => {
            Err(Error::new(crate::error::Code::DeadlineExceeded, "Timed out waiting for the run to finish"))
        }
        _ => Ok(()),
    }
}

/// Adds a step's device and timing to the run's metadata when the run is traced.
fn record_step(metadata: Option<&mut RunMetadata>, options: &RunOptions, step: &Step, start: Instant, t0: Instant) {
    if let (Some(md), TraceLevel::FullTrace) = (metadata, options.trace_level) {
        md.step_stats.push(NodeStats {
            name: step.name.clone(),
            op: step.type_name().to_string(),
            device: step.device.full_name().to_string(),
            start_us: (t0 - start).as_secs_f64() * 1e6,
            duration_us: t0.elapsed().as_secs_f64() * 1e6,
            fused_nodes: step.fused.clone(),
        });
    }
}

/// The result of `report_uninitialized_variables`: the names of the step's variables for which
/// `initialized` is false.
pub(super) fn uninitialized_names(plan: &Plan, step: &Step, initialized: impl Fn(NodeId) -> bool) -> Tensor {
    let names: Vec<String> = step
        .inputs
        .iter()
        .filter_map(|i| match i {
            Input::Var(id) if !initialized(*id) => plan.vars.get(id).map(|(name, _)| name.clone()),
            _ => None,
        })
        .collect();
    Tensor::from(names)
}

#[cfg(test)]
mod tests;
