//! Sessions: they hold every value (variables, intermediates) and run the part of a graph
//! that the fetches need.
//!
//! A run goes through a pipeline of stages, each in its own module with its own type:
//! `resolve` (fetches and feeds to a signature, the plan cache's key) → `prune`
//! (the nodes needed, in run order) → `place` (a device per node, logged) → `fuse` (nodes
//! grouped into fused units) → `lower` (the plan: slots, transfers, frees) →
//! `executor` (the one step loop, over the `device_cpu` and `device_gpu` devices). The stages
//! up to `lower` run once per signature; the plan is cached.
//!
//! # Threads
//!
//! Every method of [`Session`] takes `&self` and a session is `Send + Sync`: one session can
//! serve several threads, as TF's does. What a run changes sits behind three locks, never
//! held two at a time by one thread, so runs cannot deadlock on one another:
//!
//! - the planner (a mutex): the plan cache, the devices variables are pinned to and the
//!   placement log. A run holds it to look its plan up, or to build it (the graph's own lock
//!   taken for reading inside), then lets it go before it executes.
//! - the values (a read-write lock): the variables, and in a GPU session the buffer pool and
//!   the resident constants; `None` once the session is closed. A run holds it while its
//!   plan executes, from the first step to the last readback. A plan on the host alone that
//!   assigns no variable takes it shared (in a GPU session too, when the plan uses no GPU),
//!   so such runs (inference, reading variables) go on at the same time; a run that assigns
//!   takes it alone, so its reads and writes are atomic with respect to every other run
//!   (`assign_add` from several threads loses no update, and a run that reads variables sees
//!   all of another run's assignments or none). A run that uses a GPU takes it alone: it
//!   records into one stream per GPU on that GPU's buffer pool, so GPU runs of one session
//!   take turns, whatever the number of its GPUs (two sessions still run side by side).
//! - the counters: atomics, read without waiting; [`Session::stats`] reads the GPU's figures
//!   under the values' lock, so in a GPU session it waits for the run in progress.
//!
//! [`Session::close`] marks the session closed (later runs fail with TF's
//! `FailedPrecondition`), waits for the runs in progress by taking the values' lock, and frees
//! the values; dropping the session frees them too.
//!
//! A run's kernels use rayon (the session's own pool with `intra_op_parallelism_threads`,
//! else the global one) while it holds the values' lock, and a rayon thread that waits for
//! work may pick up another task: a run started from a rayon task can then block, on that
//! lock, the very thread the run holding it waits on. Share a session between threads of your
//! own (`std::thread`, scoped threads), not between rayon tasks.

mod calibrate;
mod config;
mod device_cpu;
mod device_gpu;
mod devices;
mod executor;
mod fetch;
mod fuse;
mod gpu_kernels;
mod gpu_run;
mod lower;
mod place;
mod plan;
mod prune;
mod resolve;
mod state;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};

pub use config::{
    ConfigProto, DeviceAttributes, GpuOptions, GraphOptions, NodeStats, RunMetadata, RunOptions, TraceLevel,
    TransferBytes, VirtualDevices,
};
pub use fetch::{FeedKey, Fetch};

use crate::error::{Error, Result};
use crate::graph::{Graph, Operation, Output};
use crate::tensor::Tensor;
use device_cpu::Variables;
use state::Backend;

/// Counters a session keeps, so its promises can be tested.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Runs started.
    pub runs: u64,
    /// Plans built (pruning and sorting); a repeated run signature builds none.
    pub plans_built: u64,
    /// Bytes copied from the host to the GPU, in all runs so far.
    pub bytes_uploaded: u64,
    /// Bytes read back from the GPU, in all runs so far.
    pub bytes_downloaded: u64,
    /// Bytes copied from one GPU to another, in all runs so far (each through the host, so
    /// also counted in `bytes_downloaded` and `bytes_uploaded`).
    pub bytes_between_gpus: u64,
    /// GPU pipelines this session compiled (cache misses).
    pub pipelines_compiled: u64,
    /// GPU queue submits (of all GPUs).
    pub submits: u64,
    /// GPU memory this session holds now, in bytes (on all GPUs).
    pub gpu_bytes_held: u64,
    /// Ops of a GPU session that ran on the CPU because they have no GPU kernel.
    pub cpu_fallbacks: u64,
    /// GPU buffers this session's pool has created; a repeated run reuses them and adds none.
    pub gpu_buffers_allocated: u64,
    /// In a GPU session, the graph nodes the last run's plan placed on the CPU (fused nodes
    /// counted one by one, transfers not), whatever the reason: a device request, a dtype or
    /// op the GPU has no kernel for at placement, the cost model. Unlike `cpu_fallbacks`
    /// (ops placed on the GPU that ran on the CPU at run time, for lack of a kernel for their
    /// run-time shapes), this says whether a run stayed on the GPU: both 0. Always 0 in a CPU
    /// session.
    pub nodes_on_cpu: u64,
}

/// A session on a graph, after TF1's `tf.Session`.
///
/// Two sessions on one graph are independent: each has its own variables. A session is
/// `Send + Sync`: every method takes `&self`, so one session can serve several threads at
/// once (through `&Session` in scoped threads, or an `Arc<Session>`), as TF's can; see the
/// module doc for what runs at the same time and what waits.
///
/// ```
/// use wgflow::{ConfigProto, Graph, Session, Tensor};
///
/// let g = Graph::new();
/// let v = g.variable(0.0f32, "v")?;
/// let bump = g.assign_add(&v, 1.0f32)?;
/// let sess = Session::new(&g, ConfigProto::cpu_only())?; // no `mut`: runs take `&self`
/// sess.run(&[g.global_variables_initializer()?])?;
/// std::thread::scope(|s| {
///     for _ in 0..4 {
///         s.spawn(|| (0..25).try_for_each(|_| sess.run(&[&bump]).map(drop)));
///     }
/// });
/// // Each assignment ran alone: none was lost.
/// assert_eq!(sess.eval(&v)?, Tensor::from(100.0f32));
/// # Ok::<(), wgflow::Error>(())
/// ```
pub struct Session {
    graph: Graph,
    config: ConfigProto,
    pool: Option<rayon::ThreadPool>,
    /// What placement knows of each GPU, `GPU:0` first; none in a CPU session.
    gpu_targets: Vec<crate::placement::GpuTarget>,
    /// The session's devices, CPU first.
    devices: Vec<DeviceAttributes>,
    /// `"GPU: <adapter>, …"` or `"CPU"`.
    device: String,
    /// This session's id: the owner of the host buffers its runs give back for reuse.
    id: crate::runtime::cpu::recycle::Owner,
    /// The plan cache, the variables' devices and the placement log.
    planner: Mutex<state::Planner>,
    /// The values (variables, resident constants, the GPU's buffer pool); `None` once closed.
    values: RwLock<Option<Backend>>,
    closed: AtomicBool,
    counters: state::Counters,
}

/// The id of the next session (0 is no session's).
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Session {
    /// A session on `graph` with `config`.
    pub fn new(graph: &Graph, config: ConfigProto) -> Result<Session> {
        let pool = match config.intra_op_parallelism_threads {
            0 => None,
            n => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build()
                    .map_err(|e| Error::internal(format!("thread pool: {e}")))?,
            ),
        };
        let gpus = devices::open_gpus(&config)?;
        if !gpus.is_empty() && !config.gpu_options.allow_growth {
            log::warn!("allow_growth = false: wgflow allocates GPU buffers as needed, within the budget");
        }
        let mut attributes = vec![DeviceAttributes {
            name: crate::placement::DeviceId::CPU.full_name().to_string(),
            device_type: "CPU".to_string(),
            memory_limit_bytes: None,
            description: "the host".to_string(),
        }];
        attributes.extend(gpus.iter().enumerate().map(|(i, g)| DeviceAttributes {
            name: crate::placement::DeviceId::gpu(i as u8).full_name().to_string(),
            device_type: "GPU".to_string(),
            memory_limit_bytes: g.target.budget,
            description: format!("{} device {}", g.ctx.description(), g.ctx.ordinal()),
        }));
        let device = match gpus.is_empty() {
            true => "CPU".to_string(),
            false => {
                let names: Vec<&str> = gpus.iter().map(|g| g.ctx.info().name.as_str()).collect();
                format!("GPU: {}", names.join(", "))
            }
        };
        let gpu_targets: Vec<_> = gpus.iter().map(|g| g.target.clone()).collect();
        let backend = match gpus.is_empty() {
            true => Backend::Cpu(Variables::default()),
            false => {
                let devices = gpus.into_iter().map(|g| (g.ctx, g.target.budget)).collect();
                Backend::Gpu(Box::new(device_gpu::GpuState::new(devices, config.gpu_options.allow_f16_matmul)))
            }
        };
        Ok(Session {
            graph: graph.clone(),
            config,
            pool,
            gpu_targets,
            devices: attributes,
            device,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            planner: Mutex::default(),
            values: RwLock::new(Some(backend)),
            closed: AtomicBool::new(false),
            counters: state::Counters::default(),
        })
    }

    /// The session's graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The session's configuration.
    pub fn config(&self) -> &ConfigProto {
        &self.config
    }

    /// The session's counters. The GPU's are read under the values' lock: in a GPU session
    /// this waits for the run in progress, if any.
    pub fn stats(&self) -> SessionStats {
        let c = &self.counters;
        let mut s = SessionStats {
            runs: state::Counters::get(&c.runs),
            plans_built: state::Counters::get(&c.plans_built),
            nodes_on_cpu: state::Counters::get(&c.nodes_on_cpu),
            ..SessionStats::default()
        };
        if let Some(Backend::Gpu(g)) = state::read(&self.values).as_ref() {
            let gs = g.stats();
            s.bytes_uploaded = gs.bytes_uploaded;
            s.bytes_downloaded = gs.bytes_downloaded;
            s.pipelines_compiled = gs.pipelines_compiled;
            s.submits = gs.submits;
            s.gpu_bytes_held = gs.bytes_held;
            s.cpu_fallbacks = g.cpu_fallbacks();
            s.gpu_buffers_allocated = g.buffers_allocated() as u64;
            s.bytes_between_gpus = g.bytes_between_gpus();
        }
        s
    }

    /// A counter of the GPU bytes this session holds on `GPU:0` that stays readable after
    /// the session is dropped (for tests of memory release); `None` for a CPU session. A test
    /// hook: only with the `test-hooks` feature.
    #[cfg(feature = "test-hooks")]
    pub fn gpu_memory_counter(&self) -> Option<crate::runtime::gpu::pool::HeldBytes> {
        self.gpu_memory_counters().into_iter().next()
    }

    /// [`Session::gpu_memory_counter`] of every GPU, `GPU:0` first. A test hook.
    #[cfg(feature = "test-hooks")]
    pub fn gpu_memory_counters(&self) -> Vec<crate::runtime::gpu::pool::HeldBytes> {
        match state::read(&self.values).as_ref() {
            Some(Backend::Gpu(g)) => g.gpus.iter().map(|d| d.pool.held_counter()).collect(),
            _ => Vec::new(),
        }
    }

    /// The session's devices, the CPU first, then `GPU:0`, `GPU:1`, … (TF's
    /// `Session.list_devices()`).
    pub fn list_devices(&self) -> Vec<DeviceAttributes> {
        self.devices.clone()
    }

    /// The placement of every node of every plan built so far (a copy), one line per node in
    /// TF's format (`conv: (Conv2D): /job:localhost/replica:0/task:0/device:GPU:0`). With
    /// `log_device_placement` the lines are also logged (`log` at info level) as plans are built.
    pub fn placement_log(&self) -> Vec<String> {
        state::lock(&self.planner).log.clone()
    }

    /// The cost model placement uses in this session (`None` without a GPU): from the type of
    /// `GPU:0`'s adapter, or calibrated with `PlacementPolicy::CostModel { calibrate: true }`.
    pub fn cost_model(&self) -> Option<crate::placement::CostModel> {
        self.gpu_targets.first().map(|t| t.model)
    }

    /// The GPU memory budget of this session in bytes (of `GPU:0`), if it has one.
    pub fn gpu_memory_budget(&self) -> Option<u64> {
        self.gpu_targets.first().and_then(|t| t.budget)
    }

    /// Where this session runs: `"GPU: <adapter>"` (with several GPUs, their adapters in
    /// ordinal order: `"GPU: <adapter>, <adapter>"`; [`Session::list_devices`] says more) or
    /// `"CPU"` (`"CPU"` once closed).
    pub fn device(&self) -> String {
        match self.is_closed() {
            true => "CPU".to_string(),
            false => self.device.clone(),
        }
    }

    /// Runs the fetches (tensors yield values, operations yield `None`).
    pub fn run<F: Into<Fetch> + Clone>(&self, fetches: &[F]) -> Result<Vec<Option<Tensor>>> {
        let fetches: Vec<Fetch> = fetches.iter().cloned().map(Into::into).collect();
        self.run_with(&fetches, &[], &RunOptions::default(), None)
    }

    /// Runs the fetches with `feeds` replacing the values of the fed tensors.
    pub fn run_feed<F: Into<Fetch> + Clone, K: Into<FeedKey> + Clone>(
        &self,
        fetches: &[F],
        feeds: &[(K, Tensor)],
    ) -> Result<Vec<Option<Tensor>>> {
        let fetches: Vec<Fetch> = fetches.iter().cloned().map(Into::into).collect();
        let feeds: Vec<(FeedKey, Tensor)> = feeds.iter().map(|(k, t)| (k.clone().into(), t.clone())).collect();
        self.run_with(&fetches, &feeds, &RunOptions::default(), None)
    }

    /// Evaluates one tensor (TF's `Tensor.eval`).
    pub fn eval(&self, fetch: impl Into<Fetch>) -> Result<Tensor> {
        self.eval_feed::<FeedKey>(fetch, &[])
    }

    /// Evaluates one tensor with feeds.
    pub fn eval_feed<K: Into<FeedKey> + Clone>(
        &self,
        fetch: impl Into<Fetch>,
        feeds: &[(K, Tensor)],
    ) -> Result<Tensor> {
        let fetch = fetch.into();
        let mut out = self.run_feed(std::slice::from_ref(&fetch), feeds)?;
        out.pop()
            .flatten()
            .ok_or_else(|| Error::invalid_argument(format!("{fetch:?} is an operation and yields no value")))
    }

    /// The full form of `run`: fetches, feeds, options, and metadata to fill.
    pub fn run_with(
        &self,
        fetches: &[Fetch],
        feeds: &[(FeedKey, Tensor)],
        options: &RunOptions,
        metadata: Option<&mut RunMetadata>,
    ) -> Result<Vec<Option<Tensor>>> {
        if self.is_closed() {
            return Err(state::closed());
        }
        state::Counters::add(&self.counters.runs, 1);
        let (sig, feed_values) = self.signature(fetches, feeds)?;
        let plan = self.plan(sig)?;
        let values = resolve::checked_feeds(&plan, feed_values)?;
        if !self.gpu_targets.is_empty() {
            self.counters.nodes_on_cpu.store(plan.nodes_on_cpu, Ordering::Relaxed);
        }
        self.execute(&plan, values, options, metadata)
    }

    /// Closes the session: it waits for the runs in progress, frees its values, and later
    /// runs fail with `FailedPrecondition`. Dropping a session frees them too.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        *state::write(&self.values) = None;
        state::lock(&self.planner).plans.clear();
        crate::runtime::cpu::recycle::release(self.id);
    }

    /// Whether the session was closed.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}

impl Output {
    /// Evaluates this tensor in `session` (TF's `Tensor.eval`).
    pub fn eval(&self, session: &Session) -> Result<Tensor> {
        session.eval(self)
    }
}

impl Operation {
    /// Runs this operation in `session` (TF's `Operation.run`).
    pub fn run(&self, session: &Session) -> Result<()> {
        session.run(&[self]).map(|_| ())
    }
}

impl Drop for Session {
    /// The session's values go with it; the host buffers its runs kept for reuse are returned
    /// too (other sessions keep theirs).
    fn drop(&mut self) {
        crate::runtime::cpu::recycle::release(self.id);
    }
}
