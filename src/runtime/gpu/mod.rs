//! The GPU runtime on wgpu: devices shared by every session that uses them ([`context`], opened
//! once per adapter and ordinal by `registry`), pipelines cached by their WGSL per device
//! ([`pipeline`]), buffer pools per session and device ([`pool`]), and the stream that records
//! a run's work on one device into one encoder and submits it once ([`stream`]). The WGSL
//! sources are in [`shaders`].

mod compat;
pub(crate) mod context;
mod describe;
pub(crate) mod flags;
pub(crate) mod pipeline;
pub(crate) mod pool;
mod registry;
pub(crate) mod shader_files;
pub(crate) mod shaders;
pub(crate) mod stream;
pub(crate) mod timer;
pub mod variant;
mod yardstick;

use std::sync::{Mutex, MutexGuard};

/// Transfer and compile counts, as a session reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GpuStats {
    /// Bytes copied from host tensors to the device.
    pub bytes_uploaded: u64,
    /// Bytes read back from the device.
    pub bytes_downloaded: u64,
    /// Pipelines compiled (cache misses).
    pub pipelines_compiled: u64,
    /// Queue submits.
    pub submits: u64,
    /// Bytes of device memory held now.
    pub bytes_held: u64,
}

#[cfg(feature = "test-hooks")]
impl GpuStats {
    /// The counts since `before` (bytes held stays the current value).
    pub fn since(&self, before: &GpuStats) -> GpuStats {
        GpuStats {
            bytes_uploaded: self.bytes_uploaded.saturating_sub(before.bytes_uploaded),
            bytes_downloaded: self.bytes_downloaded.saturating_sub(before.bytes_downloaded),
            pipelines_compiled: self.pipelines_compiled.saturating_sub(before.pipelines_compiled),
            submits: self.submits.saturating_sub(before.submits),
            bytes_held: self.bytes_held,
        }
    }
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
