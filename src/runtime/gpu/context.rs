//! The process-wide GPU: one adapter, device and queue, opened once and shared by every session.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::lock;
use super::pipeline::PipelineCache;
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

/// The adapter and device every session shares, with its pipeline cache.
pub struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) pipelines: PipelineCache,
    index: usize,
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

/// The process's one context, and the last `NotFound` from opening one (so that a machine
/// without a GPU does not enumerate adapters for every session).
struct Slot {
    ready: Option<Arc<GpuContext>>,
    failed: Option<(Option<String>, Error)>,
}

static SLOT: Mutex<Slot> = Mutex::new(Slot { ready: None, failed: None });

/// The name of the adapter this process uses (or would use), if there is one.
#[cfg(feature = "test-hooks")]
pub fn adapter_name() -> Option<String> {
    GpuContext::get(None).ok().map(|c| c.info().name.clone())
}

/// One line per adapter of the pinned backend: `#0 llvmpipe (...) (Vulkan, Cpu)`.
pub fn available_adapters() -> Vec<String> {
    let (_, adapters, _) = enumerate();
    adapters.iter().enumerate().map(|(i, a)| describe(i, &a.get_info())).collect()
}

fn describe(index: usize, info: &wgpu::AdapterInfo) -> String {
    format!("#{index} {} ({:?}, {:?})", info.name, info.backend, info.device_type)
}

/// The backend wgflow pins, so the same GPU is not listed twice (lavapipe appears on both Vulkan
/// and GL on Linux).
fn pinned_backends() -> wgpu::Backends {
    if cfg!(any(target_os = "macos", target_os = "ios")) {
        wgpu::Backends::METAL
    } else if cfg!(windows) {
        wgpu::Backends::DX12
    } else {
        wgpu::Backends::VULKAN
    }
}

fn instance_for(backends: wgpu::Backends) -> (wgpu::Instance, wgpu::Backends) {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends;
    if std::env::var_os("WGPU_BACKEND").is_some() {
        desc = desc.with_env();
    }
    let backends = desc.backends;
    (wgpu::Instance::new(desc), backends)
}

/// The compute-capable adapters: of the pinned backend (or `WGPU_BACKEND`), else of GL on Linux.
fn enumerate() -> (wgpu::Instance, Vec<wgpu::Adapter>, wgpu::Backends) {
    let compute =
        |a: &wgpu::Adapter| a.get_downlevel_capabilities().flags.contains(wgpu::DownlevelFlags::COMPUTE_SHADERS);
    let (instance, backends) = instance_for(pinned_backends());
    let adapters: Vec<_> =
        pollster::block_on(instance.enumerate_adapters(backends)).into_iter().filter(compute).collect();
    if adapters.is_empty() && cfg!(target_os = "linux") && std::env::var_os("WGPU_BACKEND").is_none() {
        let (instance, backends) = instance_for(wgpu::Backends::GL);
        let gl: Vec<_> =
            pollster::block_on(instance.enumerate_adapters(backends)).into_iter().filter(compute).collect();
        return (instance, gl, backends);
    }
    (instance, adapters, backends)
}

/// Whether `choice` (an index or a case-insensitive part of the name) names adapter `index`.
fn matches(choice: &str, index: usize, info: &wgpu::AdapterInfo) -> bool {
    match choice.trim().parse::<usize>() {
        Ok(i) => i == index,
        Err(_) => info.name.to_lowercase().contains(&choice.trim().to_lowercase()),
    }
}

/// The preferred adapter when none is named: discrete, integrated, virtual, then CPU.
fn rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

/// The process's open context, if one is open (no adapter is opened here).
pub(crate) fn current() -> Option<Arc<GpuContext>> {
    lock(&SLOT).ready.clone()
}

/// The features wgflow asks of an adapter that has them.
fn wanted_features() -> wgpu::Features {
    wgpu::Features::SUBGROUP
        | wgpu::Features::TIMESTAMP_QUERY
        | wgpu::Features::SHADER_F16
        | wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX
}

/// Consent to wgpu's experimental features when the adapter offers cooperative matrices (the
/// only one wgflow asks for), else none.
#[allow(unsafe_code)]
fn experimental(offered: wgpu::Features) -> wgpu::ExperimentalFeatures {
    if offered.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX) {
        // SAFETY: wgpu marks its experimental features as possibly buggy. wgflow uses one,
        // cooperative matrices, only in the coop matmul kernel, whose shader naga validates;
        // `WGFLOW_KERNEL=regblock` avoids it.
        unsafe { wgpu::ExperimentalFeatures::enabled() }
    } else {
        wgpu::ExperimentalFeatures::disabled()
    }
}

impl GpuContext {
    /// The process's shared context, opened on first use. `adapter_choice` (else the
    /// `WGFLOW_ADAPTER` variable) names the adapter by index or by part of its name; once a
    /// context is open, naming a different adapter is a `FailedPrecondition`. A context whose
    /// device was lost is replaced by a fresh one. No adapter at all is `NotFound`.
    pub fn get(adapter_choice: Option<&str>) -> Result<Arc<GpuContext>> {
        let choice = adapter_choice
            .map(str::to_string)
            .or_else(|| std::env::var(ADAPTER_ENV).ok())
            .filter(|c| !c.trim().is_empty());
        let mut slot = lock(&SLOT);
        if let Some(ctx) = &slot.ready {
            if ctx.ensure_alive().is_ok() {
                if let Some(c) = &choice {
                    if !matches(c, ctx.index, &ctx.info) {
                        return Err(Error::failed_precondition(format!(
                            "this process already uses GPU adapter {}; adapter {c:?} cannot be opened as well",
                            describe(ctx.index, &ctx.info)
                        )));
                    }
                }
                return Ok(ctx.clone());
            }
            slot.ready = None;
        }
        if let Some((c, e)) = &slot.failed {
            if *c == choice {
                return Err(e.clone());
            }
        }
        match Self::open(choice.as_deref()) {
            Ok(ctx) => {
                slot.failed = None;
                slot.ready = Some(ctx.clone());
                Ok(ctx)
            }
            Err(e) => {
                // Remember only the lack of an adapter; other failures may pass.
                if e.code == Code::NotFound {
                    slot.failed = Some((choice, e.clone()));
                }
                Err(e)
            }
        }
    }

    fn open(choice: Option<&str>) -> Result<Arc<GpuContext>> {
        let (instance, adapters, backends) = enumerate();
        if adapters.is_empty() {
            return Err(Error::not_found(format!("no GPU adapter with compute shaders found (backends {backends:?})")));
        }
        let infos: Vec<_> = adapters.iter().map(wgpu::Adapter::get_info).collect();
        let index = match choice {
            Some(c) => infos.iter().enumerate().position(|(i, info)| matches(c, i, info)).ok_or_else(|| {
                let list: Vec<_> = infos.iter().enumerate().map(|(i, info)| describe(i, info)).collect();
                Error::invalid_argument(format!("no GPU adapter matches {c:?}; available: {}", list.join(", ")))
            })?,
            None => (0..infos.len()).min_by_key(|&i| rank(infos[i].device_type)).unwrap_or(0),
        };
        let adapter = &adapters[index];
        let info = infos[index].clone();
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
        log::info!("wgflow GPU: {} limits: {:?}", describe(index, &info), device.limits());
        Ok(Arc::new(GpuContext {
            limits: device.limits(),
            device,
            queue,
            pipelines: PipelineCache::default(),
            index,
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
    /// A context of its own, outside the process cache (slow: a new device). For tests that
    /// must not disturb the shared device, such as destroying it.
    pub fn open_private(adapter_choice: Option<&str>) -> Result<Arc<GpuContext>> {
        Self::open(adapter_choice)
    }

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
