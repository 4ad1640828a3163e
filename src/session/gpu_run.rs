//! One GPU in one run ([`GpuRun`]), on one stream: constants are uploaded once and stay
//! resident, variables keep their buffers across assignments, only feeds (and values from
//! the host or another GPU) are uploaded and only fetches (and values the host or another GPU
//! needs) are read back. The run ends with one submit per GPU ([`finish`]: every GPU submits
//! before any is waited for); a batch of readbacks in the middle of a run costs one extra
//! submit. The run's own buffers go back to the pool at its end.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::config::{NodeStats, RunMetadata, RunOptions, TraceLevel};
use super::device_cpu::{check_assign, check_update, value};
use super::device_gpu::DeviceValues;
use super::executor::{Device, Value};
use super::plan::{Input, Plan, Step};
use crate::error::{Code, Error, Result};
use crate::graph::NodeId;
use crate::ops::{AssignMode, BinaryKind, OpKind};
use crate::placement::DeviceId;
use crate::runtime::gpu::stream::{GpuTensor, Stream, Submitted};
use crate::runtime::gpu::timer::TimeSink;
use crate::runtime::gpu::variant::{lowering_for, Target};
use crate::tensor::Tensor;

/// One GPU in one run: its stream and the buffers it allocated.
pub(crate) struct GpuRun<'a> {
    pub(super) id: DeviceId,
    stream: Option<Stream<'a>>,
    /// Buffers this run allocated, by pointer: only these go back to the pool when freed, and
    /// all of those still here go back at the end of the run, so that no intermediate (an
    /// upload, the sum of an `AssignAdd`) outlives it.
    owned: HashMap<usize, Arc<wgpu::Buffer>>,
    vars: &'a mut HashMap<NodeId, GpuTensor>,
    consts: &'a mut HashMap<NodeId, GpuTensor>,
    fallbacks: &'a mut u64,
    from_gpus: &'a mut u64,
    target: Target,
    timeout: Option<Duration>,
    /// Kernel times, when the run is traced and the device can time kernels.
    kernel_times: Option<TimeSink>,
}

impl<'a> GpuRun<'a> {
    pub(super) fn new(d: &'a mut DeviceValues, timeout: Option<Duration>, traced: bool) -> Result<Self> {
        let DeviceValues { id, pool, vars, consts, fallbacks, from_gpus, target } = d;
        let mut stream = Stream::new(pool)?;
        // With a full trace, kernels are timed on the GPU where the device can.
        let sink = TimeSink::default();
        let kernel_times = (traced && stream.time_kernels(sink.clone())).then_some(sink);
        Ok(GpuRun {
            id: *id,
            stream: Some(stream),
            owned: HashMap::new(),
            vars,
            consts,
            fallbacks,
            from_gpus,
            target: *target,
            timeout,
            kernel_times,
        })
    }

    pub(super) fn stream(&mut self) -> Result<&mut Stream<'a>> {
        self.stream.as_mut().ok_or_else(|| Error::internal("the run's stream is gone"))
    }

    /// Runs `f` (an op's lowering) for this GPU's adapter.
    pub(super) fn lowering<T>(&self, f: impl FnOnce() -> T) -> T {
        lowering_for(self.target, f)
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

    /// A value read back from another GPU, uploaded here (counted as moved between GPUs).
    pub(super) fn receive(&mut self, t: &Tensor) -> Result<Value> {
        let v = self.on_device(&Value::Host(t.clone()))?;
        *self.from_gpus += v.byte_len();
        Ok(Value::Dev(v))
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

    /// Records the readbacks of `values` (this GPU's fetches), gives back the run's buffers
    /// and submits, without waiting.
    fn submit(&mut self, values: &[Option<Value>]) -> Result<(Vec<Option<usize>>, Option<Submitted>)> {
        let mut positions = Vec::with_capacity(values.len());
        for v in values {
            positions.push(match v {
                Some(Value::Dev(t)) => Some(self.stream()?.fetch(t)?),
                _ => None,
            });
        }
        self.release_all();
        Ok((positions, self.stream()?.submit()?))
    }

    /// Waits for what [`GpuRun::submit`] submitted (at most the run's deadline) and reads back.
    fn wait(&mut self, submitted: Option<Submitted>) -> Result<Vec<Tensor>> {
        let stream = self.stream.take().ok_or_else(|| Error::internal("the run's stream is gone"))?;
        match self.timeout {
            // The run's own deadline passed while the GPU worked: TF's `DeadlineExceeded`
            // (a device that is lost stays `Unavailable`).
            Some(t) => {
                let ctx = stream.context().clone();
                stream.finish_submitted(submitted, t).map_err(|e| match (e.code, ctx.ensure_alive()) {
                    (Code::Unavailable, Ok(())) => Error::new(
                        Code::DeadlineExceeded,
                        format!("Timed out waiting for the run to finish: the GPU was still working after {t:?}"),
                    ),
                    _ => e,
                })
            }
            None => {
                let timeout = stream.context().poll_timeout();
                stream.finish_submitted(submitted, timeout)
            }
        }
    }

    /// Kernels run after the submit: the GPU's time shows as one record for the submit (with
    /// its wait and readbacks); the node records are the recording times, replaced by the
    /// kernels' GPU times where timestamp queries ran.
    fn trace(&self, md: &mut RunMetadata, plan: &Plan, options: &RunOptions, start: Instant, submitted: Instant) {
        if options.trace_level == TraceLevel::FullTrace {
            md.step_stats.push(NodeStats {
                name: "gpu_submit".into(),
                op: "Submit".into(),
                device: self.id.full_name().to_string(),
                start_us: (submitted - start).as_secs_f64() * 1e6,
                duration_us: submitted.elapsed().as_secs_f64() * 1e6,
                fused_nodes: Vec::new(),
            });
        }
        if let Some(sink) = &self.kernel_times {
            let times = sink.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let submit_us = (submitted - start).as_secs_f64() * 1e6;
            let timed = super::gpu_kernels::apply_kernel_times(md, plan, self.id, &times, submit_us);
            md.gpu_kernel_timestamps |= timed;
        }
    }
}

/// Ends a run on its GPUs: each records the readbacks of the fetched values it holds (`values`:
/// each with the index of the GPU that holds it) and submits; then each is waited for and its
/// fetches read back. Returns the host values, fetches in order. A failure on one GPU still
/// waits for the others, and the first error is returned.
pub(super) fn finish(
    gpus: Vec<Option<GpuRun<'_>>>,
    plan: &Plan,
    values: Vec<Option<(usize, Value)>>,
    options: &RunOptions,
    mut metadata: Option<&mut RunMetadata>,
    start: Instant,
) -> Result<Vec<Option<Tensor>>> {
    let submitted = Instant::now();
    let mut pending = Vec::with_capacity(gpus.len());
    let mut failed: Option<Error> = None;
    for (i, gpu) in gpus.into_iter().enumerate() {
        let Some(mut gpu) = gpu else { continue };
        let mine: Vec<Option<Value>> =
            values.iter().map(|v| v.as_ref().filter(|(g, _)| *g == i).map(|(_, v)| v.clone())).collect();
        match gpu.submit(&mine) {
            Ok((positions, s)) => pending.push((i, gpu, positions, s)),
            Err(e) => {
                failed.get_or_insert(e);
            }
        }
    }
    let mut read: Vec<(usize, Vec<Option<usize>>, Vec<Tensor>)> = Vec::with_capacity(pending.len());
    for (i, mut gpu, positions, s) in pending {
        match gpu.wait(s) {
            Ok(tensors) => read.push((i, positions, tensors)),
            Err(e) => {
                failed.get_or_insert(e);
            }
        }
        if let Some(md) = metadata.as_deref_mut() {
            gpu.trace(md, plan, options, start, submitted);
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    let mut out = Vec::with_capacity(values.len());
    for (k, v) in values.into_iter().enumerate() {
        out.push(match v {
            None => None,
            Some((_, Value::Host(t))) => Some(t),
            Some((g, Value::Dev(_))) => {
                let got = read.iter_mut().find(|(i, _, _)| *i == g).and_then(|(_, positions, tensors)| {
                    let p = positions.get(k).copied().flatten()?;
                    tensors.get_mut(p).map(|t| std::mem::replace(t, Tensor::from(0.0f32)))
                });
                Some(got.ok_or_else(|| Error::internal("a device fetch was not recorded"))?)
            }
        });
    }
    Ok(out)
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
            OpKind::Const(t) if super::device_gpu::on_gpu(t.dtype()) => Ok(Some(vec![self.constant(step.node, t)?])),
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
