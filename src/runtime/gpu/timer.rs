//! Per-kernel GPU times from timestamp queries, for run metadata: each timed dispatch writes a
//! timestamp at the start and the end of its compute pass; the stream resolves them with its
//! submit and reads them back with its fetches.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::compat;
use crate::error::Result;

/// The GPU time of one kernel: the label its step gave it, and its start and duration in
/// nanoseconds (starts are on the GPU's clock: only their differences mean something).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KernelTime {
    pub label: usize,
    pub start_ns: f64,
    pub duration_ns: f64,
}

/// Where a stream's timer puts the kernel times it reads.
pub type TimeSink = Arc<Mutex<Vec<KernelTime>>>;

/// Kernels timed per submit at most (two queries each); later ones run untimed.
const MAX_SPANS: u32 = 1024;

pub(crate) struct Timer {
    set: wgpu::QuerySet,
    /// The label of each timed pass since the last submit.
    spans: Vec<usize>,
    /// The label of the kernels dispatched from now on.
    pub(crate) label: usize,
    sink: TimeSink,
    period_ns: f64,
}

impl Timer {
    /// A timer, or `None` when the device cannot write timestamps.
    pub(crate) fn new(device: &wgpu::Device, queue: &wgpu::Queue, sink: TimeSink) -> Option<Timer> {
        if !device.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
            return None;
        }
        let set = device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("wgflow kernel times"),
            ty: wgpu::QueryType::Timestamp,
            count: 2 * MAX_SPANS,
        });
        Some(Timer { set, spans: Vec::new(), label: 0, sink, period_ns: f64::from(queue.get_timestamp_period()) })
    }

    /// The timestamp writes of the next compute pass, if there is room for them.
    pub(crate) fn writes(&mut self) -> Option<wgpu::ComputePassTimestampWrites<'_>> {
        let i = u32::try_from(self.spans.len()).ok().filter(|&i| i < MAX_SPANS)?;
        self.spans.push(self.label);
        Some(wgpu::ComputePassTimestampWrites {
            query_set: &self.set,
            beginning_of_pass_write_index: Some(2 * i),
            end_of_pass_write_index: Some(2 * i + 1),
        })
    }

    /// Records the resolution of this submit's timestamps into a buffer to read after it.
    pub(crate) fn resolve(&mut self, device: &wgpu::Device, encoder: &mut wgpu::CommandEncoder) -> Option<Pending> {
        let n = u32::try_from(self.spans.len()).ok().filter(|&n| n > 0)?;
        let bytes = u64::from(2 * n) * wgpu::QUERY_SIZE as u64;
        let buffer = |label, usage| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes,
                usage,
                mapped_at_creation: false,
            })
        };
        let resolved = buffer("kernel times", wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC);
        let staging = buffer("kernel times readback", wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST);
        encoder.resolve_query_set(&self.set, 0..2 * n, &resolved, 0);
        encoder.copy_buffer_to_buffer(&resolved, 0, &staging, 0, bytes);
        Some(Pending { staging, bytes, labels: std::mem::take(&mut self.spans) })
    }

    /// Reads the times of a finished submit into the sink.
    pub(crate) fn read(&self, device: &wgpu::Device, pending: Pending, timeout: Duration) -> Result<()> {
        let slot = compat::request_read(&pending.staging, pending.bytes);
        compat::await_mapped(device, &slot, timeout)?;
        let ticks = compat::read_mapped::<u64>(&pending.staging, pending.bytes, &slot)?;
        let mut sink = self.sink.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (label, pair) in pending.labels.into_iter().zip(ticks.chunks_exact(2)) {
            sink.push(KernelTime {
                label,
                start_ns: pair[0] as f64 * self.period_ns,
                duration_ns: pair[1].saturating_sub(pair[0]) as f64 * self.period_ns,
            });
        }
        Ok(())
    }
}

/// Timestamps resolved by a submit, waiting to be read.
pub(crate) struct Pending {
    staging: wgpu::Buffer,
    bytes: u64,
    labels: Vec<usize>,
}
