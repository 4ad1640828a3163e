//! The GPU adapters wgflow can run on, after TF's `tf.config.list_physical_devices("GPU")`.
//!
//! A session's `GPU:0` is, by default, the process's adapter: the one that
//! [`GpuOptions::adapter`](crate::GpuOptions::adapter) or the [`ADAPTER_ENV`] variable names
//! (by index into [`adapters`] or by part of its name), else the best kind there is
//! (discrete, then integrated, then virtual, then software); its device is shared by all the
//! sessions that use it. A session with several GPUs names more adapters with
//! [`GpuOptions::visible_device_list`](crate::GpuOptions::visible_device_list) (indices into
//! [`adapters`], TF's physical GPU ids) or makes several GPUs of one adapter with
//! [`GpuOptions::virtual_devices`](crate::GpuOptions::virtual_devices); each is a wgpu device
//! of its own, opened once per process. [`Adapter::open`] opens the process's adapter outside
//! a session, to describe it or to measure its copy bandwidth.
//!
//! ```no_run
//! # fn main() -> wgflow::Result<()> {
//! for line in wgflow::gpu::adapters() {
//!     println!("{line}"); // `#0 NVIDIA GeForce RTX 4090 (Vulkan, DiscreteGpu)`
//! }
//! let gpu = wgflow::gpu::Adapter::open(None)?;
//! println!("sessions use {}", gpu.description());
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;

use crate::error::Result;
use crate::runtime::gpu::context::{available_adapters, GpuContext};

pub use crate::runtime::gpu::context::{ADAPTER_ENV, KERNEL_ENV, TIMEOUT_ENV};
pub use crate::runtime::gpu::variant::{
    active_variant as kernel_variant, CoopShape, KernelVariant, RbTile, GRID_THREADS_ENV,
};

/// Gives Mesa's Vulkan drivers (lavapipe among them) the runtime directory they expect.
///
/// Without `XDG_RUNTIME_DIR` (a fresh server, a container, CI), Mesa prints
/// `error: XDG_RUNTIME_DIR is invalid or not set in the environment.` when a device opens,
/// which reads like a failure. When the variable is unset or names no directory, this sets
/// it to a private directory, `$TMPDIR/wgflow-xdg-UID` (mode 0700, created if needed), as
/// `scripts/test.sh` does for the tests. It changes the process environment, so call it at
/// the start of `main`, before other threads start; wgflow's binaries and examples do. A no-op
/// where the variable is already good, and on systems without it (not Unix).
pub fn ensure_runtime_dir() {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let current = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| std::path::Path::new(d).is_dir());
        if current.is_some() {
            return;
        }
        let uid = std::fs::metadata("/proc/self").map_or(0, |m| m.uid());
        let dir = std::env::temp_dir().join(format!("wgflow-xdg-{uid}"));
        let made = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)));
        match made {
            Ok(()) => std::env::set_var("XDG_RUNTIME_DIR", &dir),
            Err(e) => log::debug!("no private runtime dir at {}: {e}", dir.display()),
        }
    }
}

/// One line per GPU adapter with compute shaders, in index order:
/// `#0 llvmpipe (LLVM 15.0.7, 256 bits) (Vulkan, Cpu)`. Empty on a machine without one.
pub fn adapters() -> Vec<String> {
    available_adapters()
}

/// The process's GPU adapter, opened (the same device the sessions share).
#[derive(Clone)]
pub struct Adapter {
    ctx: Arc<GpuContext>,
}

impl Adapter {
    /// Opens the process's adapter: `choice` (an index into [`adapters`] or part of a name),
    /// else the one [`ADAPTER_ENV`] names, else the best one. Errors: `NotFound` without an
    /// adapter, `InvalidArgument` when none matches `choice`, `FailedPrecondition` when the
    /// process already uses another adapter.
    pub fn open(choice: Option<&str>) -> Result<Adapter> {
        GpuContext::get(choice).map(|ctx| Adapter { ctx })
    }

    /// The adapter's name, as its driver reports it.
    pub fn name(&self) -> &str {
        &self.ctx.info().name
    }

    /// The adapter's line in [`adapters`]: `#0 name (Backend, DeviceType)`.
    pub fn description(&self) -> String {
        self.ctx.description()
    }

    /// A bandwidth yardstick: copies `bytes` bytes from one device buffer to another `reps`
    /// times, one submit and wait each, after one untimed copy, and returns the seconds each
    /// took. A copy reads and writes `bytes`, so it touches `2 * bytes`. Fails with
    /// `ResourceExhausted` past the device's buffer size limit.
    pub fn time_copies(&self, bytes: u64, reps: usize) -> Result<Vec<f64>> {
        self.ctx.time_copies(bytes, reps)
    }

    /// A multi-line description: name, driver, subgroup sizes, the features wgflow's kernels
    /// use, the limits that size them, and the adapter's cooperative matrix configurations.
    pub fn report(&self) -> String {
        self.ctx.report()
    }

    /// Bytes of device memory that the buffer pools of all live sessions on this adapter's
    /// shared device hold now (variables, constants, intermediates kept for reuse; further
    /// devices a session opens on the adapter for `GPU:1` and up count apart). A dropped or
    /// closed session's buffers are freed, so with no session alive this is 0; each session's
    /// own share is [`SessionStats::gpu_bytes_held`](crate::SessionStats::gpu_bytes_held).
    pub fn bytes_held(&self) -> u64 {
        self.ctx.bytes_held()
    }
}

impl std::fmt::Debug for Adapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Adapter").field(&self.description()).finish()
    }
}
