//! The GPU kernels of one run: executing an op's WGSL lowering (a view, one kernel, or several
//! passes with temporaries) on the run's stream, and the kernel times of a traced run.

use std::collections::HashMap;

use super::config::RunMetadata;
use super::device_gpu::on_gpu;
use super::executor::Value;
use super::gpu_run::GpuRun;
use super::plan::Plan;
use crate::error::{Error, Result};
use crate::ops::{GpuLowering, Op, PassBuf};
use crate::placement::DeviceId;
use crate::runtime::gpu::stream::GpuTensor;
use crate::tensor::DType;

impl GpuRun<'_> {
    /// Runs `op` on its GPU kernel; `Ok(None)` when it has none for these inputs.
    pub(super) fn compute(&mut self, op: &dyn Op, ins: &[Value]) -> Result<Option<Value>> {
        let specs: Vec<(DType, Vec<usize>)> = ins
            .iter()
            .map(|v| match v {
                Value::Host(t) => (t.dtype(), t.shape().to_vec()),
                Value::Dev(t) => (t.dtype, t.shape.clone()),
            })
            .collect();
        let spec_refs: Vec<(DType, &[usize])> = specs.iter().map(|(d, s)| (*d, s.as_slice())).collect();
        let lowering =
            if spec_refs.iter().all(|(d, _)| on_gpu(*d)) { self.lowering(|| op.gpu(&spec_refs)) } else { None };
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
            Some(Ok(passes @ GpuLowering::Passes(_))) => self.passes(passes, ins).map(Some),
            Some(Err(e)) => Err(e),
            None => Ok(None),
        }
    }

    /// Runs a lowering of several passes, with its temporaries, into one new output.
    fn passes(&mut self, lowering: GpuLowering, ins: &[Value]) -> Result<Value> {
        let GpuLowering::Passes(p) = lowering else {
            return Err(Error::internal("a lowering of several passes was expected"));
        };
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
                stream.dispatch(&pass.wgsl, &pass.uniforms, &refs, out, pass.invocations, pass.workgroup_size)?;
            }
            Ok(())
        })();
        // The temporaries go back to the pool in stream order (reused only by later work).
        for t in temps {
            stream.release(t);
        }
        match result {
            Ok(()) => Ok(Value::Dev(self.own(output))),
            Err(e) => {
                stream.release(output);
                Err(e)
            }
        }
    }
}

/// Gives the nodes of GPU `device` in this run's step stats their kernels' GPU times: the
/// start of the first kernel and the sum of their durations, placed on the host timeline from
/// the submit on. Returns whether any kernel was timed.
pub(super) fn apply_kernel_times(
    md: &mut RunMetadata,
    plan: &Plan,
    device: DeviceId,
    times: &[crate::runtime::gpu::timer::KernelTime],
    submit_us: f64,
) -> bool {
    let Some(origin) = times.iter().map(|t| t.start_ns).reduce(f64::min) else { return false };
    let mut per_step: HashMap<usize, (f64, f64)> = HashMap::new();
    for t in times {
        let e = per_step.entry(t.label).or_insert((f64::INFINITY, 0.0));
        *e = (e.0.min(t.start_ns), e.1 + t.duration_ns);
    }
    let gpu = device.full_name();
    for (label, (first, total)) in per_step {
        let Some(step) = plan.steps.get(label) else { continue };
        if let Some(record) = md.step_stats.iter_mut().rev().find(|r| r.name == step.name && r.device == gpu) {
            record.start_us = submit_us + (first - origin) / 1e3;
            record.duration_us = total / 1e3;
        }
    }
    true
}
