//! A bandwidth yardstick: timed device-to-device copies, for the benchmark harness to compare
//! kernels with the memory speed of the same adapter.

use std::time::Instant;

use super::context::GpuContext;
use crate::error::{Error, Result};

impl GpuContext {
    /// Copies `bytes` bytes from one device buffer to another `reps` times, one submit and
    /// wait each, after one untimed copy, and returns the seconds each took. A copy reads and
    /// writes `bytes`, so it touches `2 * bytes`. Fails with `ResourceExhausted` past the
    /// device's buffer size limit.
    pub fn time_copies(&self, bytes: u64, reps: usize) -> Result<Vec<f64>> {
        let size = bytes.max(4).next_multiple_of(4);
        if size > self.limits().max_buffer_size {
            return Err(Error::resource_exhausted(format!(
                "a {size}-byte copy is over the device's buffer size limit of {} bytes",
                self.limits().max_buffer_size
            )));
        }
        let buffer = |label, usage| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: false,
            })
        };
        let (src, dst) = self.scoped("allocating the copy yardstick's buffers", || {
            (
                buffer("yardstick src", wgpu::BufferUsages::COPY_SRC),
                buffer("yardstick dst", wgpu::BufferUsages::COPY_DST),
            )
        })?;
        let mut times = Vec::with_capacity(reps);
        for rep in 0..=reps {
            let start = Instant::now();
            let mut encoder =
                self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("yardstick") });
            encoder.copy_buffer_to_buffer(&src, 0, &dst, 0, size);
            let index = self.queue.submit([encoder.finish()]);
            super::compat::wait_for(&self.device, index, self.poll_timeout())?;
            if rep > 0 {
                times.push(start.elapsed().as_secs_f64());
            }
        }
        Ok(times)
    }
}
