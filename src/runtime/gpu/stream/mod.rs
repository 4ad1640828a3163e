//! One run's GPU work: uploads, dispatches and readbacks recorded into one command encoder,
//! submitted once by `finish`, which then maps every readback with a single poll.
//!
//! [`Stream`] itself (uploads, copies, fetches, releases) is here; the device tensor is in
//! `tensor.rs`, recording a kernel dispatch in `dispatch.rs`, the submit and the readbacks in
//! `readback.rs`.

mod dispatch;
mod readback;
mod tensor;

use std::sync::Arc;
use std::time::Duration;

use super::context::GpuContext;
use super::flags::ErrorFlags;
use super::pool::{BufferKind, BufferPool};
use crate::error::{Error, Result};
use crate::tensor::{DType, Tensor};
#[cfg(feature = "test-hooks")]
pub use dispatch::workgroup_grid;
use readback::Readback;
pub use readback::Submitted;
pub use tensor::GpuTensor;
use tensor::{gpu_bytes, host_bytes};

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
    #[cfg(feature = "test-hooks")]
    pub fn stats(&self) -> super::GpuStats {
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
    /// (Sessions submit every GPU's stream before waiting for any: [`Stream::submit`].)
    #[cfg(feature = "test-hooks")]
    pub fn finish(self) -> Result<Vec<Tensor>> {
        let timeout = self.ctx.poll_timeout();
        self.finish_within(timeout)
    }

    /// [`Stream::finish`], waiting at most `timeout` for the GPU.
    #[cfg(feature = "test-hooks")]
    pub fn finish_within(mut self, timeout: Duration) -> Result<Vec<Tensor>> {
        self.flush(timeout)
    }

    /// Submits the recorded work without waiting for it (so that other devices' work can be
    /// submitted before anyone waits); [`Stream::finish_submitted`] then waits and reads back.
    pub fn submit(&mut self) -> Result<Option<Submitted>> {
        self.submit_pending()
    }

    /// Waits at most `timeout` for the work of [`Stream::submit`] (`None`: nothing was
    /// recorded) and reads back every fetched tensor, as [`Stream::flush`] does.
    /// The stream's buffers go back to the pool as it drops.
    pub fn finish_submitted(mut self, submitted: Option<Submitted>, timeout: Duration) -> Result<Vec<Tensor>> {
        match submitted {
            Some(s) => self.read_submitted(s, timeout),
            None => Ok(Vec::new()),
        }
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
