//! Recording kernel dispatches into a [`Stream`]: the workgroup grid of an invocation count,
//! the uniforms every kernel receives, the bind group of its tensors (and error flag) and the
//! compute pass.

use std::num::NonZeroU64;
use std::sync::Arc;

use super::{GpuTensor, Stream};
use crate::error::{Error, Result};
use crate::runtime::gpu::flags::FLAG_BYTES;
use crate::runtime::gpu::pipeline::Kernel;
use crate::runtime::gpu::pool::BufferKind;
use crate::runtime::gpu::timer::Timer;

/// The workgroup grid for `invocations` threads: `(x, 1)`, or folded into `(x, y)` when x would
/// exceed `max_per_dim`. Kernels find their index with the prelude's `linear_index`.
pub fn workgroup_grid(invocations: u64, workgroup_size: u32, max_per_dim: u32) -> Result<(u32, u32)> {
    if workgroup_size == 0 || max_per_dim == 0 {
        return Err(Error::internal("a workgroup size and a workgroup limit must be positive"));
    }
    let groups = invocations.div_ceil(u64::from(workgroup_size));
    let max = u64::from(max_per_dim);
    let (x, y) =
        if groups <= max { (groups, 1) } else { (groups.div_ceil(groups.div_ceil(max)), groups.div_ceil(max)) };
    let too_many =
        || Error::resource_exhausted(format!("{invocations} GPU invocations are more than one dispatch can index"));
    let threads = x.checked_mul(y).and_then(|g| g.checked_mul(u64::from(workgroup_size)));
    if y > max || threads.is_none_or(|t| t > 1u64 << 32) {
        return Err(too_many());
    }
    Ok((u32::try_from(x).map_err(|_| too_many())?, u32::try_from(y).map_err(|_| too_many())?))
}

/// The uniform words of a dispatch: the invocation count, then `uniforms`, padded to a
/// multiple of 16 bytes; an error when they fall short of the kernel's params.
fn params_words(kernel: &Kernel, count: u32, uniforms: &[u32]) -> Result<Vec<u32>> {
    let mut words = Vec::with_capacity(uniforms.len() + 4);
    words.push(count);
    words.extend_from_slice(uniforms);
    words.resize(words.len().div_ceil(4) * 4, 0);
    let params_bytes = words.len() as u64 * 4;
    if params_bytes < kernel.params_bytes {
        return Err(Error::internal(format!(
            "the kernel's params take {} bytes, but the count and {} uniforms fill {params_bytes}",
            kernel.params_bytes,
            uniforms.len()
        )));
    }
    Ok(words)
}

impl Stream<'_> {
    /// Records one dispatch of the kernel `wgsl` over `invocations` threads in workgroups of
    /// `workgroup_size` (which must be the kernel's 1-D `@workgroup_size`). The kernel's uniform
    /// at binding 0 receives the invocation count followed by `uniforms`; `inputs` bind to
    /// 1..=n and `output` to n+1.
    pub fn dispatch(
        &mut self,
        wgsl: &str,
        uniforms: &[u32],
        inputs: &[&GpuTensor],
        output: &GpuTensor,
        invocations: u64,
        workgroup_size: u32,
    ) -> Result<()> {
        let (kernel, compiled) = self.ctx.kernel(wgsl, inputs.len())?;
        if compiled {
            self.pool.stats.pipelines_compiled += 1;
        }
        if kernel.workgroup_size != [workgroup_size, 1, 1] {
            return Err(Error::internal(format!(
                "the kernel's @workgroup_size is {:?}, but it was dispatched as 1-D workgroups of {workgroup_size}",
                kernel.workgroup_size
            )));
        }
        if inputs.iter().any(|t| Arc::ptr_eq(&t.buffer, &output.buffer)) {
            return Err(Error::internal("a kernel's output buffer is also one of its inputs"));
        }
        let count = u32::try_from(invocations)
            .map_err(|_| Error::resource_exhausted(format!("{invocations} invocations are over 2^32")))?;
        let (x, y) =
            workgroup_grid(invocations, workgroup_size, self.ctx.limits().max_compute_workgroups_per_dimension)?;
        if invocations == 0 {
            return Ok(());
        }
        let words = params_words(&kernel, count, uniforms)?;
        let bind_group = self.bind(&kernel, &words, inputs, output)?;
        self.recorded = true;
        self.encoder();
        let Stream { encoder: Some(encoder), timer, .. } = self else {
            return Err(Error::internal("the stream has no encoder"));
        };
        let timestamp_writes = timer.as_mut().and_then(Timer::writes);
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes });
        pass.set_pipeline(&kernel.pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(x, y, 1);
        Ok(())
    }

    /// The bind group of one dispatch: a pooled uniform buffer holding `words` at binding 0,
    /// `inputs` then `output`, and the node's error flag after them when the kernel has one.
    /// Checked before anything is recorded, so that a bad binding leaves the encoder usable.
    fn bind(
        &mut self,
        kernel: &Kernel,
        words: &[u32],
        inputs: &[&GpuTensor],
        output: &GpuTensor,
    ) -> Result<wgpu::BindGroup> {
        let params_bytes = words.len() as u64 * 4;
        let params = self.pool.take_kind(params_bytes, BufferKind::Uniform)?;
        self.after.push(params.clone());
        let flag = match kernel.error_flag {
            true => {
                let stride = self.flag_stride();
                self.encoder();
                let Stream { encoder: Some(encoder), pool, flags, node, .. } = self else {
                    return Err(Error::internal("the stream has no encoder"));
                };
                Some(flags.slot(pool, encoder, stride, node)?)
            }
            false => None,
        };
        let mut entries = Vec::with_capacity(inputs.len() + 3);
        entries.push(wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &params,
                offset: 0,
                size: NonZeroU64::new(params_bytes),
            }),
        });
        for (binding, t) in (1u32..).zip(inputs.iter().copied().chain([output])) {
            entries.push(wgpu::BindGroupEntry { binding, resource: t.binding() });
        }
        if let Some((buffer, offset)) = &flag {
            entries.push(wgpu::BindGroupEntry {
                binding: inputs.len() as u32 + 2,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer,
                    offset: *offset,
                    size: NonZeroU64::new(FLAG_BYTES),
                }),
            });
        }
        let ctx = self.ctx.clone();
        ctx.scoped("binding a GPU dispatch", || {
            ctx.queue.write_buffer(&params, 0, bytemuck::cast_slice(words));
            ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &kernel.bind_layout,
                entries: &entries,
            })
        })
    }
}
