//! What a session shares between the threads that run it, behind which lock; the plan cache
//! and the run under the lock on the values. See the locking design in the module doc of
//! `session`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::config::TransferBytes;
use super::config::{RunMetadata, RunOptions};
use super::device_cpu::{CpuDevice, Variables};
use super::plan::Plan;
use super::prune::Signature;
use super::{device_gpu, executor, fuse, lower, place, prune, Session};
use crate::error::{Error, Result};
use crate::graph::NodeId;
use crate::placement::DeviceId;
use crate::tensor::Tensor;

/// Where a session's values live: variables, and on each GPU its buffer pool and resident
/// constants.
pub(super) enum Backend {
    Cpu(Variables),
    Gpu(Box<device_gpu::GpuState>),
}

/// The planning state, behind one mutex: plans are built one at a time, so that two threads
/// with a new signature build it once and place variables consistently.
#[derive(Default)]
pub(super) struct Planner {
    pub(super) plans: HashMap<Signature, Arc<Plan>>,
    /// Devices of the variable groups placed so far: a variable never moves.
    pub(super) pinned: HashMap<NodeId, DeviceId>,
    pub(super) log: Vec<String>,
}

/// The counters that are the session's own (the GPU's come from its pool).
#[derive(Default)]
pub(super) struct Counters {
    pub(super) runs: AtomicU64,
    pub(super) plans_built: AtomicU64,
    pub(super) nodes_on_cpu: AtomicU64,
}

impl Counters {
    pub(super) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(super) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// The mutex's contents. A panic in another run (a bug) leaves them usable: plans and
/// variables are replaced whole, never half written.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

/// TF's error for a run of a closed session.
pub(super) fn closed() -> Error {
    Error::failed_precondition("Attempted to use a closed Session.")
}

/// `Session` may be shared between threads (`&Session`, `Arc<Session>`).
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<Session>();
};

impl Session {
    /// The plan of `sig`: the cached one, else the pipeline's product, built under the
    /// planner's lock: prune → place (logged before fusion, as TF logs placement before its
    /// rewrites) → fuse → lower.
    pub(super) fn plan(&self, sig: Signature) -> Result<Arc<Plan>> {
        let mut planner = lock(&self.planner);
        if self.is_closed() {
            return Err(closed());
        }
        if let Some(plan) = planner.plans.get(&sig) {
            return Ok(plan.clone());
        }
        let Planner { plans, pinned, log } = &mut *planner;
        let graph = self.graph.read();
        let mut placer = crate::placement::Placer {
            gpus: &self.gpu_targets,
            soft: self.config.allow_soft_placement,
            policy: self.config.placement_policy,
            pinned,
        };
        let placed = place::place(&graph, prune::prune(&graph, &sig)?, &mut placer)?;
        for line in placed.log_lines(&graph) {
            if self.config.log_device_placement {
                log::info!("{line}");
            }
            log.push(line);
        }
        let grouped = fuse::fuse(&graph, placed, &sig.fetches, self.config.graph_options.remapping);
        let plan = Arc::new(lower::lower(&graph, &sig, &grouped));
        drop(graph);
        Counters::add(&self.counters.plans_built, 1);
        plans.insert(sig, plan.clone());
        Ok(plan)
    }

    /// Runs `plan` on the session's devices (in its thread pool, if it has one) and adds the
    /// run's partition and transfer figures to `metadata`. A run on the host alone that
    /// assigns no variable (in a CPU session, or in a GPU session with a plan that uses no
    /// GPU) shares the values' lock with others like it; every other run holds it alone, from
    /// its first step to its last readback.
    pub(super) fn execute(
        &self,
        plan: &Plan,
        values: Vec<Tensor>,
        options: &RunOptions,
        metadata: Option<&mut RunMetadata>,
    ) -> Result<Vec<Option<Tensor>>> {
        let mut metadata = metadata;
        if let Some(md) = metadata.as_deref_mut() {
            for step in &plan.steps {
                md.partition.entry(step.device.full_name().to_string()).or_default().push(step.name.clone());
            }
        }
        let owner = self.id;
        if !plan.writes_variables() {
            let state = read(&self.values);
            let vars = match state.as_ref() {
                Some(Backend::Cpu(vars)) => Some(vars),
                Some(Backend::Gpu(gpu)) if gpu.host_only(plan) => Some(gpu.host_vars()),
                Some(Backend::Gpu(_)) => None,
                None => return Err(closed()),
            };
            if let Some(vars) = vars {
                return self.in_pool(move || {
                    let _owner = crate::runtime::cpu::recycle::OwnerScope::enter(owner);
                    executor::execute(plan, values, CpuDevice::shared(vars), Vec::new(), options, metadata)
                });
            }
        }
        let mut state = write(&self.values);
        let state = state.as_mut().ok_or_else(closed)?;
        let before = transfers(state);
        let between = between_gpus(state);
        let md = metadata.as_deref_mut();
        let out = self.in_pool(|| {
            // The host buffers this run gives back for reuse are this session's.
            let _owner = crate::runtime::cpu::recycle::OwnerScope::enter(owner);
            match &mut *state {
                Backend::Cpu(vars) => executor::execute(plan, values, CpuDevice::new(vars), Vec::new(), options, md),
                Backend::Gpu(gpu) => gpu.execute(plan, values, options, md),
            }
        });
        if let Some(md) = metadata {
            let after = transfers(state);
            for ((name, b), (_, a)) in before.into_iter().zip(after) {
                let (up, down) = (a.uploaded - b.uploaded, a.downloaded - b.downloaded);
                md.bytes_uploaded += up;
                md.bytes_downloaded += down;
                if up + down > 0 {
                    let e = md.gpu_bytes.entry(name.to_string()).or_default();
                    e.uploaded += up;
                    e.downloaded += down;
                }
            }
            md.bytes_between_gpus += between_gpus(state) - between;
        }
        out
    }

    /// Runs `f` in the session's thread pool, if it has one.
    fn in_pool<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(pool) => pool.install(f),
            None => f(),
        }
    }
}

/// Bytes uploaded to and downloaded from each GPU so far.
fn transfers(state: &Backend) -> Vec<(&'static str, TransferBytes)> {
    match state {
        Backend::Gpu(g) => g
            .gpus
            .iter()
            .map(|d| {
                let s = d.pool.stats();
                (d.id.full_name(), TransferBytes { uploaded: s.bytes_uploaded, downloaded: s.bytes_downloaded })
            })
            .collect(),
        Backend::Cpu(_) => Vec::new(),
    }
}

/// Bytes copied between GPUs so far.
fn between_gpus(state: &Backend) -> u64 {
    match state {
        Backend::Gpu(g) => g.bytes_between_gpus(),
        Backend::Cpu(_) => 0,
    }
}
