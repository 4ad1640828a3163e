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
//!   plan executes, from the first step to the last readback. In a CPU session a plan that
//!   assigns no variable takes it shared, so such runs (inference, reading variables) go on
//!   at the same time; a run that assigns takes it alone, so its reads and writes are atomic
//!   with respect to every other run (`assign_add` from several threads loses no update,
//!   and a run that reads variables sees all of another run's assignments or none). In a GPU
//!   session every run takes it alone: a run records into one stream on the session's buffer
//!   pool, so GPU runs of one session take turns (two sessions still run side by side).
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
mod executor;
mod fetch;
mod fuse;
mod gpu_kernels;
mod lower;
mod place;
mod plan;
mod prune;
mod resolve;
mod state;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};

pub use config::{ConfigProto, GpuOptions, GraphOptions, NodeStats, RunMetadata, RunOptions, TraceLevel};
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
    /// GPU pipelines this session compiled (cache misses).
    pub pipelines_compiled: u64,
    /// GPU queue submits.
    pub submits: u64,
    /// GPU memory this session holds now, in bytes.
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
    /// What placement knows of the GPU; `None` in a CPU session.
    gpu_target: Option<crate::placement::GpuTarget>,
    /// `"GPU: <adapter>"` or `"CPU"`.
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
        let mut gpu_target = None;
        let mut device = "CPU".to_string();
        let backend = if config.devices("GPU") == Some(0) {
            Backend::Cpu(Variables::default())
        } else {
            match crate::runtime::gpu::context::GpuContext::get(config.gpu_options.adapter.as_deref()) {
                Ok(ctx) => {
                    if !config.gpu_options.allow_growth {
                        log::warn!("allow_growth = false: wgflow allocates GPU buffers as needed, within the budget");
                    }
                    let target = placement_target(&config, &ctx)?;
                    device = format!("GPU: {}", ctx.info().name);
                    let state = device_gpu::GpuState::new(ctx, target.budget, config.gpu_options.allow_f16_matmul);
                    gpu_target = Some(target);
                    Backend::Gpu(Box::new(state))
                }
                Err(e) if e.code == crate::error::Code::NotFound => {
                    log::info!("no GPU adapter ({}): the session runs on the CPU", e.message);
                    Backend::Cpu(Variables::default())
                }
                Err(e) => return Err(e),
            }
        };
        Ok(Session {
            graph: graph.clone(),
            config,
            pool,
            gpu_target,
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
            s.gpu_buffers_allocated = g.pool.buffers_allocated() as u64;
        }
        s
    }

    /// A counter of the GPU bytes this session holds that stays readable after the session
    /// is dropped (for tests of memory release); `None` for a CPU session. A test hook: only
    /// with the `test-hooks` feature.
    #[cfg(feature = "test-hooks")]
    pub fn gpu_memory_counter(&self) -> Option<crate::runtime::gpu::pool::HeldBytes> {
        match state::read(&self.values).as_ref() {
            Some(Backend::Gpu(g)) => Some(g.pool.held_counter()),
            _ => None,
        }
    }

    /// The placement of every node of every plan built so far (a copy), one line per node in
    /// TF's format (`conv: (Conv2D): /job:localhost/replica:0/task:0/device:GPU:0`). With
    /// `log_device_placement` the lines are also logged (`log` at info level) as plans are built.
    pub fn placement_log(&self) -> Vec<String> {
        state::lock(&self.planner).log.clone()
    }

    /// The cost model placement uses in this session (`None` without a GPU): from the adapter
    /// type, or calibrated with `PlacementPolicy::CostModel { calibrate: true }`.
    pub fn cost_model(&self) -> Option<crate::placement::CostModel> {
        self.gpu_target.as_ref().map(|t| t.model)
    }

    /// The GPU memory budget of this session in bytes, if it has one.
    pub fn gpu_memory_budget(&self) -> Option<u64> {
        self.gpu_target.as_ref().and_then(|t| t.budget)
    }

    /// Where this session runs: `"GPU: <adapter>"` or `"CPU"` (`"CPU"` once closed).
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
        if self.gpu_target.is_some() {
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

/// What placement needs to know of the session's GPU: its binding limit, the memory budget
/// (an explicit byte limit, else a fraction of the adapter's memory where that is known: wgpu
/// cannot query it, so the config states it) and the cost model.
fn placement_target(
    config: &ConfigProto,
    ctx: &crate::runtime::gpu::context::GpuContext,
) -> Result<crate::placement::GpuTarget> {
    let options = &config.gpu_options;
    if !(options.per_process_gpu_memory_fraction > 0.0 && options.per_process_gpu_memory_fraction <= 1.0) {
        return Err(Error::invalid_argument(format!(
            "per_process_gpu_memory_fraction must be in (0, 1], got {}",
            options.per_process_gpu_memory_fraction
        )));
    }
    let budget = options.memory_limit_bytes.or_else(|| {
        options.adapter_memory_bytes.map(|total| (total as f64 * options.per_process_gpu_memory_fraction) as u64)
    });
    let model = match config.placement_policy {
        crate::placement::PlacementPolicy::CostModel { calibrate: true } => calibrate::model(ctx)?,
        _ => crate::placement::CostModel::for_adapter(ctx.info().device_type),
    };
    Ok(crate::placement::GpuTarget { max_binding: ctx.limits().max_storage_buffer_binding_size, budget, model })
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
