//! The process's GPU devices: the adapters of the pinned backend, and the devices opened on
//! them, one per (adapter, ordinal), each shared by every session that uses it.
//!
//! A session's `GPU:0` is the default adapter's device 0 (the one [`GpuContext::get`]
//! returns, as before several GPUs existed); a session with several GPUs
//! (`GpuOptions::visible_device_list`, `GpuOptions::virtual_devices`) also uses devices of
//! other adapters, or further devices of one adapter ([`GpuContext::on_adapter`]). Each device
//! has its own queue, pipeline cache and memory counters; wgpu offers no copies between them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::context::GpuContext;
use super::lock;
use crate::error::{Code, Error, Result};

/// The open devices, the default adapter's device 0, and the last `NotFound` from opening
/// one (so that a machine without a GPU does not enumerate adapters for every session).
struct Registry {
    default: Option<Arc<GpuContext>>,
    open: BTreeMap<(usize, usize), Arc<GpuContext>>,
    failed: Option<(Option<String>, Error)>,
    /// How many adapters there are, once enumerated.
    count: Option<usize>,
}

static REGISTRY: Mutex<Registry> =
    Mutex::new(Registry { default: None, open: BTreeMap::new(), failed: None, count: None });

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

/// The number of adapters [`available_adapters`] lists (enumerated once per process).
pub(crate) fn adapter_count() -> usize {
    if let Some(n) = lock(&REGISTRY).count {
        return n;
    }
    let n = enumerate().1.len();
    lock(&REGISTRY).count = Some(n);
    n
}

pub(super) fn describe(index: usize, info: &wgpu::AdapterInfo) -> String {
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

/// The process's default context, if one is open (no adapter is opened here).
pub(crate) fn current() -> Option<Arc<GpuContext>> {
    lock(&REGISTRY).default.clone()
}

/// The index of the adapter `choice` names among `adapters`, else of the preferred one.
fn pick(adapters: &[wgpu::Adapter], choice: Option<&str>, backends: wgpu::Backends) -> Result<usize> {
    if adapters.is_empty() {
        return Err(Error::not_found(format!("no GPU adapter with compute shaders found (backends {backends:?})")));
    }
    let infos: Vec<_> = adapters.iter().map(wgpu::Adapter::get_info).collect();
    Ok(match choice {
        Some(c) => infos.iter().enumerate().position(|(i, info)| matches(c, i, info)).ok_or_else(|| {
            let list: Vec<_> = infos.iter().enumerate().map(|(i, info)| describe(i, info)).collect();
            Error::invalid_argument(format!("no GPU adapter matches {c:?}; available: {}", list.join(", ")))
        })?,
        None => (0..infos.len()).min_by_key(|&i| rank(infos[i].device_type)).unwrap_or(0),
    })
}

/// The open, live context of `key`, if any (a lost one is dropped from the registry).
fn live(reg: &mut Registry, key: (usize, usize)) -> Option<Arc<GpuContext>> {
    match reg.open.get(&key) {
        Some(ctx) if ctx.ensure_alive().is_ok() => Some(ctx.clone()),
        Some(_) => {
            reg.open.remove(&key);
            None
        }
        None => None,
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
            .or_else(|| std::env::var(super::context::ADAPTER_ENV).ok())
            .filter(|c| !c.trim().is_empty());
        let mut reg = lock(&REGISTRY);
        if let Some(ctx) = &reg.default {
            if ctx.ensure_alive().is_ok() {
                if let Some(c) = &choice {
                    if !matches(c, ctx.index(), ctx.info()) {
                        return Err(Error::failed_precondition(format!(
                            "this process already uses GPU adapter {}; adapter {c:?} cannot be opened as well",
                            ctx.description()
                        )));
                    }
                }
                return Ok(ctx.clone());
            }
            reg.default = None;
        }
        if let Some((c, e)) = &reg.failed {
            if *c == choice {
                return Err(e.clone());
            }
        }
        let (instance, adapters, backends) = enumerate();
        reg.count = Some(adapters.len());
        let opened = pick(&adapters, choice.as_deref(), backends).and_then(|index| match live(&mut reg, (index, 0)) {
            Some(ctx) => Ok(ctx),
            None => GpuContext::open_device(instance, &adapters[index], index, 0),
        });
        match opened {
            Ok(ctx) => {
                reg.failed = None;
                reg.default = Some(ctx.clone());
                reg.open.insert((ctx.index(), 0), ctx.clone());
                Ok(ctx)
            }
            Err(e) => {
                // Remember only the lack of an adapter; other failures may pass.
                if e.code == Code::NotFound {
                    reg.failed = Some((choice, e.clone()));
                }
                Err(e)
            }
        }
    }

    /// Device `ordinal` of adapter `index`, opened on first use and shared by every session
    /// that uses it (a lost one is replaced). Device 0 of the default adapter is the context
    /// [`GpuContext::get`] returns. `InvalidArgument` for an adapter that does not exist.
    pub fn on_adapter(index: usize, ordinal: usize) -> Result<Arc<GpuContext>> {
        let mut reg = lock(&REGISTRY);
        if let Some(ctx) = live(&mut reg, (index, ordinal)) {
            return Ok(ctx);
        }
        let (instance, adapters, backends) = enumerate();
        reg.count = Some(adapters.len());
        let index = pick(&adapters, Some(&index.to_string()), backends)?;
        let ctx = GpuContext::open_device(instance, &adapters[index], index, ordinal)?;
        reg.open.insert((index, ordinal), ctx.clone());
        Ok(ctx)
    }

    /// A context of its own, outside the process cache (slow: a new device). For tests that
    /// must not disturb the shared device, such as destroying it.
    #[cfg(feature = "test-hooks")]
    pub fn open_private(adapter_choice: Option<&str>) -> Result<Arc<GpuContext>> {
        let (instance, adapters, backends) = enumerate();
        let index = pick(&adapters, adapter_choice, backends)?;
        GpuContext::open_device(instance, &adapters[index], index, 0)
    }
}

/// The features wgflow asks of an adapter that has them.
pub(super) fn wanted_features() -> wgpu::Features {
    wgpu::Features::SUBGROUP
        | wgpu::Features::TIMESTAMP_QUERY
        | wgpu::Features::SHADER_F16
        | wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX
}

/// Consent to wgpu's experimental features when the adapter offers cooperative matrices (the
/// only one wgflow asks for), else none.
#[allow(unsafe_code)]
pub(super) fn experimental(offered: wgpu::Features) -> wgpu::ExperimentalFeatures {
    if offered.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX) {
        // SAFETY: wgpu marks its experimental features as possibly buggy. wgflow uses one,
        // cooperative matrices, only in the coop matmul kernel, whose shader naga validates;
        // `WGFLOW_KERNEL=regblock` avoids it.
        unsafe { wgpu::ExperimentalFeatures::enabled() }
    } else {
        wgpu::ExperimentalFeatures::disabled()
    }
}
