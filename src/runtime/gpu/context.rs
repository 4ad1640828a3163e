//! A GPU device: an adapter's device and queue with its pipeline cache, health and memory
//! counters, opened once per process and shared by every session that uses it (the registry of
//! open devices is `registry`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::lock;
use super::pipeline::PipelineCache;
#[cfg(feature = "test-hooks")]
pub use super::registry::adapter_name;
pub use super::registry::available_adapters;
pub(crate) use super::registry::{adapter_count, current};
use super::registry::{describe, experimental, wanted_features};
use crate::error::{Code, Error, Result};

/// Names the adapter to use: an index into the adapter list, or a part of its name.
pub const ADAPTER_ENV: &str = "WGFLOW_ADAPTER";
/// Forces a kernel variant of matmul and conv2d, to test or compare them: `tiled`, `regblock`,
/// `sg8`, `coop`, or `auto` (unset: cooperative matrices where the adapter offers a usable
/// configuration, the 8-wide subgroup kernels on 8-wide subgroups, else `regblock`). See
/// [`KernelVariant`](super::variant::KernelVariant). Read once per process.
pub const KERNEL_ENV: &str = "WGFLOW_KERNEL";
/// How long `Stream::finish` waits for the GPU before reporting it unavailable.
pub const TIMEOUT_ENV: &str = "WGFLOW_GPU_TIMEOUT_MS";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// A device of an adapter, shared by every session that uses it, with its pipeline cache.
pub struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) pipelines: PipelineCache,
    index: usize,
    /// Which device of its adapter this is (0 for the first; a session with several GPUs on
    /// one adapter opens more).
    ordinal: usize,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    health: Arc<Health>,
    /// What the adapter offers (the device asks for a subset): for reports and kernel choice.
    adapter_features: wgpu::Features,
    /// The adapter's cooperative matrix configurations (empty where it has none).
    coop: Vec<wgpu::CooperativeMatrixProperties>,
    bytes_held: AtomicU64,
    timeout: Duration,
    _instance: wgpu::Instance,
}

/// What the device callbacks report: loss and errors no scope caught.
#[derive(Default)]
struct Health {
    lost: Mutex<Option<String>>,
    uncaptured: Mutex<Option<String>>,
}

impl GpuContext {
    /// Opens device `ordinal` of `adapter` (adapter `index` of `instance`'s list).
    pub(super) fn open_device(
        instance: wgpu::Instance,
        adapter: &wgpu::Adapter,
        index: usize,
        ordinal: usize,
    ) -> Result<Arc<GpuContext>> {
        let info = adapter.get_info();
        let (adapter_features, coop) = (adapter.features(), adapter.cooperative_matrix_properties());
        let desc = wgpu::DeviceDescriptor {
            label: Some("wgflow"),
            // Subgroup operations where the adapter has them (the sg8 matmul / conv2d kernels
            // share loaded values across lanes with them), timestamps, and cooperative matrices
            // with f16 (see `variant`).
            required_features: adapter.features() & wanted_features(),
            required_limits: adapter.limits(),
            experimental_features: experimental(adapter.features()),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc)).map_err(|e| {
            Error::new(Code::Unavailable, format!("opening GPU adapter {}: {e}", describe(index, &info)))
        })?;
        let health = Arc::new(Health::default());
        let h = health.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            log::error!("wgpu error outside any error scope: {e}");
            *lock(&h.uncaptured) = Some(e.to_string());
        }));
        let h = health.clone();
        device.set_device_lost_callback(move |reason, message| {
            log::warn!("GPU device lost ({reason:?}): {message}");
            *lock(&h.lost) = Some(format!("{reason:?}: {message}"));
        });
        let timeout = std::env::var(TIMEOUT_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(DEFAULT_TIMEOUT, Duration::from_millis);
        log::info!("wgflow GPU: {} device {ordinal} limits: {:?}", describe(index, &info), device.limits());
        Ok(Arc::new(GpuContext {
            limits: device.limits(),
            device,
            queue,
            pipelines: PipelineCache::default(),
            index,
            ordinal,
            info,
            health,
            adapter_features,
            coop,
            bytes_held: AtomicU64::new(0),
            timeout,
            _instance: instance,
        }))
    }

    /// The adapter: name, backend, device type (lavapipe reports `Cpu`), driver.
    pub fn info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }
    /// The adapter's position in the list of [`available_adapters`].
    pub fn index(&self) -> usize {
        self.index
    }
    /// Which device of its adapter this is: 0, or more where a session opened several.
    pub fn ordinal(&self) -> usize {
        self.ordinal
    }
    /// `#0 name (Backend, DeviceType)`.
    pub fn description(&self) -> String {
        describe(self.index, &self.info)
    }
    /// The features the adapter offers (the device enables the ones wgflow uses).
    pub fn adapter_features(&self) -> wgpu::Features {
        self.adapter_features
    }
    /// The features the device has enabled.
    pub fn device_features(&self) -> wgpu::Features {
        self.device.features()
    }
    /// The adapter's cooperative matrix configurations (empty where it offers none).
    pub fn cooperative_matrices(&self) -> &[wgpu::CooperativeMatrixProperties] {
        &self.coop
    }
    /// The device's limits (the adapter's own, not wgpu's defaults).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }
    /// How long `Stream::finish` waits for the GPU before it reports `Unavailable`
    /// (60 s, or `WGFLOW_GPU_TIMEOUT_MS`).
    pub fn poll_timeout(&self) -> Duration {
        self.timeout
    }
    /// Bytes of device memory held by all buffer pools of this context.
    pub fn bytes_held(&self) -> u64 {
        self.bytes_held.load(Ordering::Relaxed)
    }
    pub(crate) fn add_held(&self, bytes: u64) {
        self.bytes_held.fetch_add(bytes, Ordering::Relaxed);
    }
    pub(crate) fn sub_held(&self, bytes: u64) {
        self.bytes_held.fetch_sub(bytes, Ordering::Relaxed);
    }
    /// `Unavailable` once the device is lost.
    pub fn ensure_alive(&self) -> Result<()> {
        match lock(&self.health.lost).as_ref() {
            None => Ok(()),
            Some(why) => Err(Error::new(Code::Unavailable, format!("the GPU device was lost ({why})"))),
        }
    }
    /// Runs `f` inside error scopes and turns what they catch into errors naming `what`:
    /// out-of-memory into `ResourceExhausted`, validation and internal errors into `Internal`.
    pub(crate) fn scoped<T>(&self, what: &str, f: impl FnOnce() -> T) -> Result<T> {
        self.ensure_alive()?;
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let internal = self.device.push_error_scope(wgpu::ErrorFilter::Internal);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let validation = pollster::block_on(validation.pop());
        let internal = pollster::block_on(internal.pop());
        let oom = pollster::block_on(oom.pop());
        self.ensure_alive()?;
        if let Some(e) = oom {
            return Err(Error::resource_exhausted(format!("{what}: the GPU is out of memory: {e}")));
        }
        if let Some(e) = validation.or(internal) {
            return Err(Error::internal(format!("{what}: {e}")));
        }
        Ok(out)
    }
}

/// Test hooks: a private context, the context-wide counters, and errors and device loss on
/// demand (only with the `test-hooks` feature).
#[cfg(feature = "test-hooks")]
impl GpuContext {
    /// Pipelines compiled by this context so far, across all sessions.
    pub fn pipelines_compiled(&self) -> u64 {
        self.pipelines.compiled()
    }
    /// Context-wide counts: pipelines compiled and bytes held by all pools. Transfers and
    /// submits are counted per pool ([`BufferPool::stats`](super::pool::BufferPool::stats)).
    pub fn stats(&self) -> super::GpuStats {
        let (pipelines_compiled, bytes_held) = (self.pipelines_compiled(), self.bytes_held());
        super::GpuStats { pipelines_compiled, bytes_held, ..Default::default() }
    }
    /// The last wgpu error that no error scope caught (it was logged), cleared by this call.
    pub fn take_uncaptured_error(&self) -> Option<String> {
        lock(&self.health.uncaptured).take()
    }
    /// Destroys the device; every later use reports `Unavailable`. Meant for contexts from
    /// [`GpuContext::open_private`], to test device loss.
    pub fn destroy_device(&self) {
        self.device.destroy();
        let mut lost = lock(&self.health.lost);
        if lost.is_none() {
            *lost = Some("destroyed".to_string());
        }
    }
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext").field("adapter", &self.description()).finish_non_exhaustive()
    }
}
