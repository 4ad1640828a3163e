//! One run's GPU work: uploads, dispatches and readbacks recorded into one command encoder,
//! submitted once by `finish`, which then maps every readback with a single poll.

use std::borrow::Cow;
use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::Duration;

use ndarray::{ArcArray, IxDyn};

use super::compat;
use super::context::GpuContext;
use super::flags::ErrorFlags;
use super::pool::{BufferKind, BufferPool};
use super::GpuStats;
use crate::error::{Error, Result};
use crate::tensor::{dims_string, DType, Tensor};

/// A tensor in a pooled device buffer (which may be larger than the tensor).
#[derive(Clone, Debug)]
pub struct GpuTensor {
    /// The buffer; its first `byte_len()` bytes hold the elements in row-major order.
    pub buffer: Arc<wgpu::Buffer>,
    /// Element type (F32 or I32).
    pub dtype: DType,
    /// Concrete shape.
    pub shape: Vec<usize>,
}

impl GpuTensor {
    /// The number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The size of the elements in bytes.
    pub fn byte_len(&self) -> u64 {
        self.len() as u64 * self.dtype.size() as u64
    }
    /// The binding of the tensor's bytes (at least 4, as bindings cannot be empty).
    fn binding(&self) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &self.buffer,
            offset: 0,
            size: NonZeroU64::new(self.byte_len().max(4)),
        })
    }
}

/// The byte size of a tensor the GPU can hold: float32 and int32 only.
fn gpu_bytes(dtype: DType, shape: &[usize]) -> Result<u64> {
    if !matches!(dtype, DType::F32 | DType::I32) {
        return Err(Error::unimplemented(format!(
            "{dtype} tensors cannot be placed on the GPU (float32 and int32 only)"
        )));
    }
    shape
        .iter()
        .try_fold(dtype.size() as u64, |acc, &d| acc.checked_mul(d as u64))
        .ok_or_else(|| Error::resource_exhausted(format!("a tensor of shape {} is too large", dims_string(shape))))
}

/// The row-major bytes of an array, borrowed when it is contiguous.
fn host_bytes<T: bytemuck::Pod>(a: &ArcArray<T, IxDyn>) -> Cow<'_, [u8]> {
    match a.as_slice() {
        Some(s) => Cow::Borrowed(bytemuck::cast_slice(s)),
        None => Cow::Owned(bytemuck::cast_slice(&a.iter().copied().collect::<Vec<T>>()).to_vec()),
    }
}

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

/// A tensor to read back after the submit.
struct Readback {
    staging: Arc<wgpu::Buffer>,
    bytes: u64,
    dtype: DType,
    shape: Vec<usize>,
}

/// The GPU work of one run, recorded into one command encoder.
pub struct Stream<'p> {
    pool: &'p mut BufferPool,
    ctx: Arc<GpuContext>,
    /// Created on first use, so that a run with no GPU work costs no encoder.
    encoder: Option<wgpu::CommandEncoder>,
    readbacks: Vec<Readback>,
    /// Buffers that go back to the pool once the GPU is done with them.
    after: Vec<Arc<wgpu::Buffer>>,
    /// Times kernels for run metadata, when asked and the device can.
    timer: Option<super::timer::Timer>,
    /// Whether anything was uploaded or recorded since the last submit; a run with nothing
    /// for the GPU (all its nodes on the CPU) then neither submits nor waits.
    recorded: bool,
    /// The error flags of the checking kernels dispatched since the last submit.
    flags: ErrorFlags,
    /// The node whose kernels are dispatched now (named by a raised error flag).
    node: String,
}

impl<'p> Stream<'p> {
    /// A new stream drawing buffers from `pool`.
    pub fn new(pool: &'p mut BufferPool) -> Result<Self> {
        let ctx = pool.context().clone();
        ctx.ensure_alive()?;
        Ok(Stream {
            pool,
            ctx,
            encoder: None,
            timer: None,
            readbacks: Vec::new(),
            after: Vec::new(),
            recorded: false,
            flags: ErrorFlags::default(),
            node: String::new(),
        })
    }

    /// The run's command encoder, created on first use.
    fn encoder(&mut self) -> &mut wgpu::CommandEncoder {
        let device = &self.ctx.device;
        self.encoder.get_or_insert_with(|| {
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("wgflow run") })
        })
    }

    /// Times every kernel dispatched from now on with timestamp queries (when the device
    /// supports them), putting the times into `sink` once each submit has finished. Returns
    /// whether the device can.
    pub fn time_kernels(&mut self, sink: super::timer::TimeSink) -> bool {
        self.timer = super::timer::Timer::new(&self.ctx.device, &self.ctx.queue, sink);
        self.timer.is_some()
    }

    /// Labels the kernels dispatched from now on (for [`Stream::time_kernels`]).
    pub fn set_label(&mut self, label: usize) {
        if let Some(t) = self.timer.as_mut() {
            t.label = label;
        }
    }

    /// Names the node whose kernels are dispatched from now on, for the errors their flags
    /// raise.
    pub fn set_node(&mut self, name: &str) {
        self.node.clear();
        self.node.push_str(name);
    }

    /// The spacing of error flags in their buffer (the storage offset alignment).
    fn flag_stride(&self) -> u64 {
        u64::from(self.ctx.limits().min_storage_buffer_offset_alignment).max(super::flags::FLAG_BYTES)
    }

    /// The device context the stream records for.
    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    /// The pool's counts so far (this stream's work included).
    pub fn stats(&self) -> GpuStats {
        self.pool.stats()
    }

    /// An uninitialised device tensor from the pool.
    pub fn alloc(&mut self, dtype: DType, shape: &[usize]) -> Result<GpuTensor> {
        let bytes = gpu_bytes(dtype, shape)?;
        let buffer = self.pool.take(bytes)?;
        Ok(GpuTensor { buffer, dtype, shape: shape.to_vec() })
    }

    /// Copies a float32 or int32 host tensor into a pooled device buffer (the copy happens
    /// before the stream's commands run).
    pub fn upload(&mut self, tensor: &Tensor) -> Result<GpuTensor> {
        let data = match tensor {
            Tensor::F32(a) => host_bytes(a),
            Tensor::I32(a) => host_bytes(a),
            other => {
                return Err(Error::unimplemented(format!(
                    "{} tensors cannot be placed on the GPU (float32 and int32 only)",
                    other.dtype()
                )))
            }
        };
        let gpu = self.alloc(tensor.dtype(), tensor.shape())?;
        if !data.is_empty() {
            let ctx = &self.ctx;
            ctx.scoped("uploading a tensor", || ctx.queue.write_buffer(&gpu.buffer, 0, &data))?;
        }
        self.pool.stats.bytes_uploaded += data.len() as u64;
        self.recorded = true;
        Ok(gpu)
    }

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
        let params = self.pool.take_kind(params_bytes, BufferKind::Uniform)?;
        self.after.push(params.clone());
        let mut entries = Vec::with_capacity(inputs.len() + 2);
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
        if let Some((buffer, offset)) = &flag {
            entries.push(wgpu::BindGroupEntry {
                binding: inputs.len() as u32 + 2,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer,
                    offset: *offset,
                    size: NonZeroU64::new(super::flags::FLAG_BYTES),
                }),
            });
        }
        let ctx = self.ctx.clone();
        // Checked before anything is recorded, so that a bad binding leaves the encoder usable.
        let bind_group = ctx.scoped("binding a GPU dispatch", || {
            ctx.queue.write_buffer(&params, 0, bytemuck::cast_slice(&words));
            ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &kernel.bind_layout,
                entries: &entries,
            })
        })?;
        self.recorded = true;
        self.encoder();
        let Stream { encoder: Some(encoder), timer, .. } = self else {
            return Err(Error::internal("the stream has no encoder"));
        };
        let timestamp_writes = timer.as_mut().and_then(super::timer::Timer::writes);
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes });
        pass.set_pipeline(&kernel.pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(x, y, 1);
        Ok(())
    }

    /// Records a copy of `tensor` (as it is at this point of the stream) for readback, and
    /// returns its position in the result of [`Stream::finish`].
    pub fn fetch(&mut self, tensor: &GpuTensor) -> Result<usize> {
        let bytes = gpu_bytes(tensor.dtype, &tensor.shape)?;
        let staging = self.pool.take_kind(bytes, BufferKind::Staging)?;
        if bytes > 0 {
            self.encoder().copy_buffer_to_buffer(&tensor.buffer, 0, &staging, 0, bytes);
        }
        self.readbacks.push(Readback { staging, bytes, dtype: tensor.dtype, shape: tensor.shape.clone() });
        self.recorded = true;
        Ok(self.readbacks.len() - 1)
    }

    /// Records a copy of `src` into `dst` (same byte length), ordered after earlier commands.
    pub fn copy(&mut self, src: &GpuTensor, dst: &GpuTensor) -> Result<()> {
        let bytes = gpu_bytes(src.dtype, &src.shape)?;
        if bytes != gpu_bytes(dst.dtype, &dst.shape)? {
            return Err(Error::internal("a GPU copy between tensors of different sizes"));
        }
        if bytes > 0 && !Arc::ptr_eq(&src.buffer, &dst.buffer) {
            self.encoder().copy_buffer_to_buffer(&src.buffer, 0, &dst.buffer, 0, bytes);
            self.recorded = true;
        }
        Ok(())
    }

    /// Gives a tensor's buffer back to the pool once this stream's work is done.
    pub fn release(&mut self, tensor: GpuTensor) {
        self.release_buffer(tensor.buffer);
    }

    /// Gives a buffer back to the pool once this stream's work is done.
    pub fn release_buffer(&mut self, buffer: Arc<wgpu::Buffer>) {
        self.after.push(buffer);
    }

    /// Submits the recorded work (one submit; none when nothing was recorded), waits for it with the context's
    /// timeout (`Unavailable` past it or on device loss), and reads back every fetched tensor.
    pub fn finish(self) -> Result<Vec<Tensor>> {
        let timeout = self.ctx.poll_timeout();
        self.finish_within(timeout)
    }

    /// [`Stream::finish`], waiting at most `timeout` for the GPU.
    pub fn finish_within(mut self, timeout: Duration) -> Result<Vec<Tensor>> {
        self.flush(timeout)
    }

    /// Submits the work recorded so far, reads back what was fetched, and goes on with a new
    /// encoder on the same pool (used when a CPU op needs device values in the middle of a run).
    pub fn flush(&mut self, timeout: Duration) -> Result<Vec<Tensor>> {
        let out = self.submit_and_read(timeout)?;
        for buffer in self.after.drain(..) {
            self.pool.give(buffer);
        }
        for r in self.readbacks.drain(..) {
            self.pool.give(r.staging);
        }
        Ok(out)
    }

    fn submit_and_read(&mut self, timeout: Duration) -> Result<Vec<Tensor>> {
        if !std::mem::take(&mut self.recorded) {
            return Ok(Vec::new());
        }
        let ctx = self.ctx.clone();
        self.encoder();
        let mut encoder = self.encoder.take().ok_or_else(|| Error::internal("the stream has no encoder"))?;
        let times = self.timer.as_mut().and_then(|t| t.resolve(&ctx.device, &mut encoder));
        let stride = self.flag_stride();
        let flag_reads = self.flags.copy_out(self.pool, &mut encoder, stride, &mut self.after)?;
        let submitted = ctx.scoped("submitting the run's GPU work", || ctx.queue.submit([encoder.finish()]));
        self.pool.stats.submits += 1;
        let index = submitted?;
        let slots: Vec<_> =
            self.readbacks.iter().map(|r| (r.bytes > 0).then(|| compat::request_read(&r.staging, r.bytes))).collect();
        let flag_slots: Vec<_> = flag_reads.buffers().map(|(b, n)| compat::request_read(b, n)).collect();
        if let Err(e) = compat::wait_for(&ctx.device, index, timeout).and_then(|()| ctx.ensure_alive()) {
            // The GPU may still use these buffers: keep them out of the pool until it is dropped.
            self.after.clear();
            self.readbacks.clear();
            return Err(e);
        }
        for slot in slots.iter().flatten().chain(&flag_slots) {
            compat::await_mapped(&ctx.device, slot, timeout)?;
        }
        if !flag_reads.is_empty() {
            let words = flag_reads
                .buffers()
                .zip(&flag_slots)
                .map(|((b, n), slot)| compat::read_mapped::<u32>(b, n, slot))
                .collect::<Result<Vec<_>>>();
            // A raised flag fails the run, after every readback is unmapped.
            let checked = words.and_then(|w| flag_reads.check(w, &mut self.after));
            if let Err(e) = checked {
                for (r, slot) in self.readbacks.iter().zip(&slots) {
                    if let Some(s) = slot {
                        let _ = compat::read_mapped::<u8>(&r.staging, r.bytes, s);
                    }
                }
                return Err(e);
            }
        }
        if let (Some(timer), Some(pending)) = (&self.timer, times) {
            timer.read(&ctx.device, pending, timeout)?;
        }
        let mut out = Vec::with_capacity(self.readbacks.len());
        let mut failed = None;
        for (r, slot) in self.readbacks.iter_mut().zip(slots) {
            let read = match (&slot, r.dtype) {
                (None, DType::F32) => Tensor::from_f32(&r.shape, Vec::new()),
                (None, _) => Tensor::from_i32(&r.shape, Vec::new()),
                (Some(s), DType::F32) => {
                    compat::read_mapped::<f32>(&r.staging, r.bytes, s).and_then(|v| Tensor::from_f32(&r.shape, v))
                }
                (Some(s), _) => {
                    compat::read_mapped::<i32>(&r.staging, r.bytes, s).and_then(|v| Tensor::from_i32(&r.shape, v))
                }
            };
            match read {
                Ok(t) => {
                    self.pool.stats.bytes_downloaded += r.bytes;
                    out.push(t);
                }
                Err(e) => {
                    // A buffer left mapped must not be reused.
                    r.bytes = u64::MAX;
                    failed.get_or_insert(e);
                }
            }
        }
        self.readbacks.retain(|r| r.bytes != u64::MAX);
        match failed {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}

impl Drop for Stream<'_> {
    /// Returns the stream's uniforms, released tensors and readback buffers to the pool.
    fn drop(&mut self) {
        for buffer in self.after.drain(..) {
            self.pool.give(buffer);
        }
        for r in self.readbacks.drain(..) {
            self.pool.give(r.staging);
        }
    }
}
