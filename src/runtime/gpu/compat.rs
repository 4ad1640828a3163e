//! The wgpu calls whose shape changed between wgpu versions, one small function each, so that
//! an upgrade touches this file only.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Code, Error, Result};

/// Blocks until `submission` has finished on the GPU, or `timeout` passes (then `Unavailable`).
pub(crate) fn wait_for(device: &wgpu::Device, submission: wgpu::SubmissionIndex, timeout: Duration) -> Result<()> {
    match device.poll(wgpu::PollType::Wait { submission_index: Some(submission), timeout: Some(timeout) }) {
        Ok(_) => Ok(()),
        Err(wgpu::PollError::Timeout) => Err(Error::new(
            Code::Unavailable,
            format!("the GPU did not finish its work within {timeout:?} (device hung or lost)"),
        )),
        Err(e) => Err(Error::internal(format!("waiting for the GPU: {e}"))),
    }
}

/// The outcome of a `map_async`, filled in by its callback during a poll.
pub(crate) type MapSlot = Arc<Mutex<Option<Result<(), wgpu::BufferAsyncError>>>>;

/// Asks for the first `bytes` of `buffer` to be mapped for reading at the next poll.
pub(crate) fn request_read(buffer: &wgpu::Buffer, bytes: u64) -> MapSlot {
    let slot: MapSlot = Arc::new(Mutex::new(None));
    let filled = slot.clone();
    buffer.map_async(wgpu::MapMode::Read, 0..bytes, move |result| {
        if let Ok(mut s) = filled.lock() {
            *s = Some(result);
        }
    });
    slot
}

/// Waits for the map callback of [`request_read`]. The GPU work is done when this is called,
/// but when several threads poll the shared device, another thread's poll may still be
/// delivering this callback: poll again (without blocking) until it lands or `timeout` passes.
pub(crate) fn await_mapped(device: &wgpu::Device, slot: &MapSlot, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let done = slot.lock().map_err(|_| Error::internal("buffer map state poisoned"))?.is_some();
        if done || Instant::now() >= deadline {
            return Ok(());
        }
        // A failed poll here shows up as the missing mapping below.
        let _ = device.poll(wgpu::PollType::Poll);
        std::thread::yield_now();
    }
}

/// Reads the first `bytes` of a buffer mapped by [`request_read`] as `T`s, then unmaps it.
pub(crate) fn read_mapped<T: bytemuck::Pod>(buffer: &wgpu::Buffer, bytes: u64, slot: &MapSlot) -> Result<Vec<T>> {
    let state = slot.lock().map_err(|_| Error::internal("buffer map state poisoned"))?.take();
    match state {
        Some(Ok(())) => {}
        Some(Err(e)) => return Err(Error::internal(format!("mapping a readback buffer failed: {e}"))),
        None => return Err(Error::internal("a readback buffer was not mapped after the GPU finished")),
    }
    let values = {
        let view =
            buffer.get_mapped_range(0..bytes).map_err(|e| Error::internal(format!("reading a mapped buffer: {e}")))?;
        bytemuck::pod_collect_to_vec::<u8, T>(&view)
    };
    buffer.unmap();
    Ok(values)
}
