//! The executor: the one step loop that runs a [`Plan`], in CPU and GPU sessions alike. It
//! holds the run's value slots, feeds them, frees each value after its last reader, checks the
//! deadline, records step stats and gathers the fetches; every device-specific action goes
//! through the [`Device`] trait, implemented by the host (`device_cpu`) and by a GPU run
//! (`device_gpu`). A step runs on the device placement gave it; the one exception is the
//! run-time fallback: a GPU-placed op with no GPU kernel for its concrete input shapes runs on
//! the host, counted in `SessionStats::cpu_fallbacks`.

use std::time::Instant;

use super::config::{NodeStats, RunMetadata, RunOptions, TraceLevel};
use super::device_cpu::{uninitialized, CpuDevice};
use super::device_gpu::GpuRun;
use super::plan::{Action, FetchFrom, Input, Plan, Step};
use crate::error::{Error, Result};
use crate::graph::NodeId;
use crate::ops::OpKind;
use crate::placement::DeviceKind;
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
    gpu: Option<GpuRun<'a>>,
    slots: Vec<Option<Value>>,
    /// Bytes of the host values alive now, and their most in this run.
    live: u64,
    peak: u64,
}

/// Runs `plan` with `feeds` (one per plan feed slot) on the host and, when given, a GPU run,
/// and returns the fetched values. On success and on error, the run gives back every buffer
/// it took; variables and resident constants keep theirs.
pub(crate) fn execute(
    plan: &Plan,
    feeds: Vec<Tensor>,
    cpu: CpuDevice<'_>,
    gpu: Option<GpuRun<'_>>,
    options: &RunOptions,
    mut metadata: Option<&mut RunMetadata>,
) -> Result<Vec<Option<Tensor>>> {
    let mut ex =
        Executor { plan, options, start: Instant::now(), cpu, gpu, slots: vec![None; plan.slots], live: 0, peak: 0 };
    for ((slot, _), t) in plan.feeds.iter().zip(feeds) {
        ex.live += t.byte_len() as u64;
        ex.slots[*slot] = Some(Value::Host(t));
    }
    ex.peak = ex.live;
    if let Err(e) = ex.run_steps(metadata.as_deref_mut()) {
        drop(ex.slots);
        if let Some(mut gpu) = ex.gpu {
            gpu.release_all();
        }
        return Err(e);
    }
    let fetched = ex.fetch_values();
    let Executor { slots, gpu, peak, start, .. } = ex;
    // What the run computed and nobody holds any more (fetched values are held).
    for v in slots.into_iter().flatten() {
        if let Value::Host(t) = v {
            crate::runtime::cpu::recycle::give(t);
        }
    }
    if let Some(md) = metadata.as_deref_mut() {
        md.peak_bytes.insert(DeviceKind::Cpu.full_name().to_string(), peak);
    }
    match (gpu, fetched) {
        (Some(gpu), Ok(values)) => gpu.finish(plan, values, options, metadata, start),
        // The work recorded (assignments among it) still runs, as it does in a host run.
        (Some(gpu), Err(e)) => gpu.finish(plan, Vec::new(), options, metadata, start).and(Err(e)),
        (None, fetched) => fetched?
            .into_iter()
            .map(|v| match v {
                None => Ok(None),
                Some(Value::Host(t)) => Ok(Some(t)),
                Some(Value::Dev(_)) => Err(Error::internal("a device value in a run without a GPU")),
            })
            .collect(),
    }
}

impl<'a> Executor<'_, 'a> {
    fn gpu(&mut self) -> Result<&mut GpuRun<'a>> {
        self.gpu.as_mut().ok_or_else(|| Error::internal("a GPU step in a run without a GPU"))
    }

    /// The step loop. Device-to-host transfers placed together are read back with one submit.
    fn run_steps(&mut self, mut md: Option<&mut RunMetadata>) -> Result<()> {
        let plan = self.plan;
        let mut i = 0;
        while i < plan.steps.len() {
            let t0 = Instant::now();
            if let Some(gpu) = self.gpu.as_mut() {
                gpu.begin_step(i, &plan.steps[i].name)?;
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
        self.gpu.as_ref().and_then(|g| g.read_var(id)).or_else(|| self.cpu.read_var(id))
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
            Action::Transfer => {
                let v = self.transfer_input(step)?;
                let moved = match step.device {
                    DeviceKind::Gpu => self.gpu()?.upload(&v)?,
                    DeviceKind::Cpu => {
                        let t = self.host_copies(vec![Some(v)])?.pop().flatten();
                        Value::Host(t.ok_or_else(|| Error::internal("a value was not read back"))?)
                    }
                };
                return Ok(vec![moved]);
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
        if step.device == DeviceKind::Gpu {
            let gpu = self.gpu()?;
            if let Some(outs) = gpu.run(plan, step, op, &ins)? {
                return Ok(outs);
            }
            // No GPU kernel for these inputs (or no computation at all, as for a placeholder):
            // the host runs it, and a compute op counts as a fallback.
            if matches!(op, OpKind::Compute(_)) {
                gpu.count_fallback();
            }
        }
        // Device inputs of a host node (after a fallback) are read back first.
        let host = match ins.iter().flatten().any(|v| matches!(v, Value::Dev(_))) {
            true => self.host_copies(ins)?.into_iter().map(|t| t.map(Value::Host)).collect(),
            false => ins,
        };
        self.cpu.run_owned(plan, step, op, host)
    }

    /// Host copies of `values` (one readback for all device values among them).
    fn host_copies(&mut self, values: Vec<Option<Value>>) -> Result<Vec<Option<Tensor>>> {
        let present: Vec<Value> = values.iter().flatten().cloned().collect();
        let mut host = match present.iter().any(|v| matches!(v, Value::Dev(_))) {
            true => self.gpu()?.read_back(&present)?.into_iter(),
            false => self.cpu.read_back(&present)?.into_iter(),
        };
        Ok(values.iter().map(|v| v.as_ref().and_then(|_| host.next())).collect())
    }

    /// Runs a batch of device-to-host transfer steps with one readback.
    fn readbacks(&mut self, batch: &[Step]) -> Result<()> {
        let values = batch
            .iter()
            .map(|step| self.transfer_input(step).map_err(|e| e.at(&step.name)))
            .collect::<Result<Vec<_>>>()?;
        let host = self.gpu()?.read_back(&values)?;
        for (step, t) in batch.iter().zip(host) {
            self.store(step, vec![Value::Host(t)]);
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
            Some(v @ Value::Dev(_)) => self.gpu()?.release(v),
            Some(Value::Host(t)) => {
                self.live = self.live.saturating_sub(t.byte_len() as u64);
                self.cpu.release(Value::Host(t));
            }
            None => {}
        }
        Ok(())
    }

    fn fetch_values(&self) -> Result<Vec<Option<Value>>> {
        self.plan
            .fetches
            .iter()
            .map(|f| match f {
                FetchFrom::Nothing => Ok(None),
                FetchFrom::Slot(s) => {
                    self.slots[*s].clone().map(Some).ok_or_else(|| Error::internal("fetched value was not computed"))
                }
                FetchFrom::Var(id, name) => self.read_var(*id).map(Some).ok_or_else(|| uninitialized(name)),
            })
            .collect()
    }
}

/// The number of device-to-host transfers starting at step `i` (0 when step `i` is not one).
fn readback_batch(plan: &Plan, i: usize) -> usize {
    plan.steps[i..].iter().take_while(|s| matches!(s.action, Action::Transfer) && s.device == DeviceKind::Cpu).count()
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
mod tests {
    use super::super::device_cpu::Variables;
    use super::super::fuse::tests::grouped;
    use super::super::lower::lower;
    use super::super::prune::tests::sig;
    use super::*;
    use crate::graph::{Graph, Output};

    fn run(
        g: &Graph,
        fetches: &[&Output],
        vars: &mut Variables,
        md: Option<&mut RunMetadata>,
    ) -> Result<Vec<Option<Tensor>>> {
        let s = sig(g, fetches, &[]);
        let plan = lower(&g.read(), &s, &grouped(g, &s, false, true));
        let options = RunOptions { trace_level: TraceLevel::FullTrace, ..RunOptions::default() };
        execute(&plan, Vec::new(), CpuDevice::new(vars), None, &options, md)
    }

    #[test]
    fn the_host_runs_a_plan_assigns_variables_and_records_every_step() {
        let g = Graph::new();
        let v = g.variable(1.0f32, "v").unwrap();
        let y = g.named("y").mul(v.value(), 3.0f32).unwrap();
        let up = g.named("up").assign_add(&v, 2.0f32).unwrap();
        let mut vars = Variables::default();
        let e = run(&g, &[&y], &mut vars, None).unwrap_err();
        assert_eq!(e.message, "Attempting to use uninitialized value v");
        run(&g, &[&v.initializer().output(0).unwrap()], &mut vars, None).unwrap();
        let mut md = RunMetadata::default();
        let out = run(&g, &[&y, &up], &mut vars, Some(&mut md)).unwrap();
        // The read runs before the update, as in TF.
        assert_eq!(out, vec![Some(Tensor::from(3.0f32)), Some(Tensor::from(3.0f32))]);
        assert_eq!(run(&g, &[v.tensor()], &mut vars, None).unwrap(), vec![Some(Tensor::from(3.0f32))]);
        let names: Vec<&str> = md.step_stats.iter().map(|r| r.name.as_str()).collect();
        assert!(names.contains(&"y") && names.contains(&"up"), "{names:?}");
        assert!(md.peak_bytes.contains_key(DeviceKind::Cpu.full_name()));
    }
}
