//! Submitting a [`Stream`]'s work and reading back what it fetched: one submit, one wait
//! (with the context's timeout), the error flags checked, then every fetched tensor mapped
//! and copied into a host tensor.

use std::sync::Arc;
use std::time::Duration;

use super::Stream;
use crate::error::{Error, Result};
use crate::runtime::gpu::compat;
use crate::runtime::gpu::flags::FlagReads;
use crate::tensor::{DType, Tensor};

/// A tensor to read back after the submit.
pub(super) struct Readback {
    pub(super) staging: Arc<wgpu::Buffer>,
    pub(super) bytes: u64,
    pub(super) dtype: DType,
    pub(super) shape: Vec<usize>,
}

/// A pending map of a readback's buffer (none for an empty tensor).
type Slot = Option<compat::MapSlot>;

/// Work submitted and not yet waited for: its readbacks' pending maps, its error flags' and its
/// kernel times'.
pub struct Submitted {
    index: wgpu::SubmissionIndex,
    slots: Vec<Slot>,
    flag_reads: FlagReads,
    flag_slots: Vec<compat::MapSlot>,
    times: Option<crate::runtime::gpu::timer::Pending>,
}

impl Stream<'_> {
    /// Submits the recorded work (nothing when nothing was recorded), waits for it, checks
    /// the error flags and reads back every fetched tensor, in fetch order.
    pub(super) fn submit_and_read(&mut self, timeout: Duration) -> Result<Vec<Tensor>> {
        match self.submit_pending()? {
            Some(submitted) => self.read_submitted(submitted, timeout),
            None => Ok(Vec::new()),
        }
    }

    /// Submits the recorded work and asks for the maps of its readbacks, without waiting;
    /// `None` when nothing was recorded.
    pub(super) fn submit_pending(&mut self) -> Result<Option<Submitted>> {
        if !std::mem::take(&mut self.recorded) {
            return Ok(None);
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
        let slots: Vec<Slot> =
            self.readbacks.iter().map(|r| (r.bytes > 0).then(|| compat::request_read(&r.staging, r.bytes))).collect();
        let flag_slots: Vec<_> = flag_reads.buffers().map(|(b, n)| compat::request_read(b, n)).collect();
        Ok(Some(Submitted { index, slots, flag_reads, flag_slots, times }))
    }

    /// Waits (at most `timeout`) for `submitted`, checks its error flags and reads back every
    /// fetched tensor, in fetch order.
    pub(super) fn read_submitted(&mut self, submitted: Submitted, timeout: Duration) -> Result<Vec<Tensor>> {
        let Submitted { index, slots, flag_reads, flag_slots, times } = submitted;
        let ctx = self.ctx.clone();
        if let Err(e) = compat::wait_for(&ctx.device, index, timeout).and_then(|()| ctx.ensure_alive()) {
            // The GPU may still use these buffers: keep them out of the pool until it is dropped.
            self.after.clear();
            self.readbacks.clear();
            return Err(e);
        }
        for slot in slots.iter().flatten().chain(&flag_slots) {
            compat::await_mapped(&ctx.device, slot, timeout)?;
        }
        self.check_flags(flag_reads, &flag_slots, &slots)?;
        if let (Some(timer), Some(pending)) = (&self.timer, times) {
            timer.read(&ctx.device, pending, timeout)?;
        }
        self.read_all(slots)
    }

    /// Fails the run on a raised error flag, after every readback is unmapped.
    fn check_flags(&mut self, flag_reads: FlagReads, flag_slots: &[compat::MapSlot], slots: &[Slot]) -> Result<()> {
        if flag_reads.is_empty() {
            return Ok(());
        }
        let words = flag_reads
            .buffers()
            .zip(flag_slots)
            .map(|((b, n), slot)| compat::read_mapped::<u32>(b, n, slot))
            .collect::<Result<Vec<_>>>();
        let checked = words.and_then(|w| flag_reads.check(w, &mut self.after));
        if checked.is_err() {
            for (r, slot) in self.readbacks.iter().zip(slots) {
                if let Some(s) = slot {
                    let _ = compat::read_mapped::<u8>(&r.staging, r.bytes, s);
                }
            }
        }
        checked
    }

    /// The fetched tensors from their mapped buffers; a buffer that could not be read stays
    /// mapped and out of the pool.
    fn read_all(&mut self, slots: Vec<Slot>) -> Result<Vec<Tensor>> {
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
