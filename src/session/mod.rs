//! Sessions: they hold every value (variables, intermediates) and run the part of a graph
//! that the fetches need.
//!
//! A run goes through a pipeline of stages, each in its own module with its own type:
//! `resolve` (fetches and feeds to a signature, the plan cache's key) → `prune`
//! (the nodes needed, in run order) → `place` (a device per node, logged) → `fuse` (nodes
//! grouped into fused units) → `lower` (the plan: slots, transfers, frees) →
//! `executor` (the one step loop, over the `device_cpu` and `device_gpu` devices). The stages
//! up to `lower` run once per signature; the plan is cached.

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

use std::collections::HashMap;
use std::sync::Arc;

pub use config::{ConfigProto, GpuOptions, GraphOptions, NodeStats, RunMetadata, RunOptions, TraceLevel};
pub use fetch::{FeedKey, Fetch};

use crate::error::{Error, Result};
use crate::graph::{Graph, Operation, Output};
use crate::tensor::Tensor;
use device_cpu::{CpuDevice, Variables};
use plan::Plan;
use prune::Signature;

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

/// Where a session's values live.
enum Backend {
    Cpu(Variables),
    Gpu(Box<device_gpu::GpuState>),
}

/// A session on a graph, after TF1's `tf.Session`.
///
/// Two sessions on one graph are independent: each has its own variables. A session is
/// `Send`, so sessions can run on different threads at the same time.
pub struct Session {
    graph: Graph,
    config: ConfigProto,
    state: Option<Backend>,
    plans: HashMap<Signature, Arc<Plan>>,
    stats: SessionStats,
    pool: Option<rayon::ThreadPool>,
    placement_log: Vec<String>,
    /// What placement knows of the GPU; `None` in a CPU session.
    gpu_target: Option<crate::placement::GpuTarget>,
    /// Devices of the variable groups placed so far: a variable never moves.
    pinned: HashMap<crate::graph::NodeId, crate::placement::DeviceKind>,
    /// This session's id: the owner of the host buffers its runs give back for reuse.
    id: crate::runtime::cpu::recycle::Owner,
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
        let backend = if config.devices("GPU") == Some(0) {
            Backend::Cpu(Variables::default())
        } else {
            match crate::runtime::gpu::context::GpuContext::get(config.gpu_options.adapter.as_deref()) {
                Ok(ctx) => {
                    if !config.gpu_options.allow_growth {
                        log::warn!("allow_growth = false: wgflow allocates GPU buffers as needed, within the budget");
                    }
                    let target = placement_target(&config, &ctx)?;
                    let state = device_gpu::GpuState::new(ctx, target.budget);
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
            state: Some(backend),
            plans: HashMap::new(),
            stats: SessionStats::default(),
            pool,
            placement_log: Vec::new(),
            gpu_target,
            pinned: HashMap::new(),
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
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

    /// The session's counters.
    pub fn stats(&self) -> SessionStats {
        let mut s = self.stats;
        if let Some(Backend::Gpu(g)) = &self.state {
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
        match &self.state {
            Some(Backend::Gpu(g)) => Some(g.pool.held_counter()),
            _ => None,
        }
    }

    /// The placement of every node of every plan built so far, one line per node in TF's
    /// format (`conv: (Conv2D): /job:localhost/replica:0/task:0/device:GPU:0`). With
    /// `log_device_placement` the lines are also logged (`log` at info level) as plans are built.
    pub fn placement_log(&self) -> &[String] {
        &self.placement_log
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

    /// Where this session runs: `"GPU: <adapter>"` or `"CPU"`.
    pub fn device(&self) -> String {
        match &self.state {
            Some(Backend::Gpu(g)) => format!("GPU: {}", g.pool.context().info().name),
            _ => "CPU".to_string(),
        }
    }

    /// Runs the fetches (tensors yield values, operations yield `None`).
    pub fn run<F: Into<Fetch> + Clone>(&mut self, fetches: &[F]) -> Result<Vec<Option<Tensor>>> {
        let fetches: Vec<Fetch> = fetches.iter().cloned().map(Into::into).collect();
        self.run_with(&fetches, &[], &RunOptions::default(), None)
    }

    /// Runs the fetches with `feeds` replacing the values of the fed tensors.
    pub fn run_feed<F: Into<Fetch> + Clone, K: Into<FeedKey> + Clone>(
        &mut self,
        fetches: &[F],
        feeds: &[(K, Tensor)],
    ) -> Result<Vec<Option<Tensor>>> {
        let fetches: Vec<Fetch> = fetches.iter().cloned().map(Into::into).collect();
        let feeds: Vec<(FeedKey, Tensor)> = feeds.iter().map(|(k, t)| (k.clone().into(), t.clone())).collect();
        self.run_with(&fetches, &feeds, &RunOptions::default(), None)
    }

    /// Evaluates one tensor (TF's `Tensor.eval`).
    pub fn eval(&mut self, fetch: impl Into<Fetch>) -> Result<Tensor> {
        self.eval_feed::<FeedKey>(fetch, &[])
    }

    /// Evaluates one tensor with feeds.
    pub fn eval_feed<K: Into<FeedKey> + Clone>(
        &mut self,
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
        &mut self,
        fetches: &[Fetch],
        feeds: &[(FeedKey, Tensor)],
        options: &RunOptions,
        metadata: Option<&mut RunMetadata>,
    ) -> Result<Vec<Option<Tensor>>> {
        if self.state.is_none() {
            return Err(Error::failed_precondition("Attempted to use a closed Session."));
        }
        self.stats.runs += 1;
        let (sig, feed_values) = self.signature(fetches, feeds)?;
        let plan = match self.plans.get(&sig) {
            Some(p) => p.clone(),
            None => self.build_plan(sig)?,
        };
        let values = resolve::checked_feeds(&plan, feed_values)?;
        if matches!(self.state, Some(Backend::Gpu(_))) {
            self.stats.nodes_on_cpu = plan.nodes_on_cpu;
        }
        self.execute(&plan, values, options, metadata)
    }

    /// Runs `plan` on the session's devices (in its thread pool, if it has one) and adds the
    /// run's partition and transfer figures to `metadata`.
    fn execute(
        &mut self,
        plan: &Plan,
        values: Vec<Tensor>,
        options: &RunOptions,
        metadata: Option<&mut RunMetadata>,
    ) -> Result<Vec<Option<Tensor>>> {
        let before = self.gpu_transfers();
        let state =
            self.state.as_mut().ok_or_else(|| Error::failed_precondition("Attempted to use a closed Session."))?;
        let mut metadata = metadata;
        if let Some(md) = metadata.as_deref_mut() {
            for step in &plan.steps {
                md.partition.entry(step.device.full_name().to_string()).or_default().push(step.name.clone());
            }
        }
        let md = metadata.as_deref_mut();
        let owner = self.id;
        let run = move || {
            // The host buffers this run gives back for reuse are this session's.
            let _owner = crate::runtime::cpu::recycle::OwnerScope::enter(owner);
            match state {
                Backend::Cpu(vars) => executor::execute(plan, values, CpuDevice::new(vars), None, options, md),
                Backend::Gpu(gpu) => gpu.execute(plan, values, options, md),
            }
        };
        let out = match &self.pool {
            Some(pool) => pool.install(run),
            None => run(),
        };
        if let Some(md) = metadata {
            let after = self.gpu_transfers();
            md.bytes_uploaded += after.0 - before.0;
            md.bytes_downloaded += after.1 - before.1;
        }
        out
    }

    /// The pipeline of a new signature: prune → place (logged before fusion, as TF logs
    /// placement before its rewrites) → fuse → lower. The plan is cached.
    fn build_plan(&mut self, sig: Signature) -> Result<Arc<Plan>> {
        let graph = self.graph.read();
        let mut placer = crate::placement::Placer {
            gpu: self.gpu_target.as_ref(),
            soft: self.config.allow_soft_placement,
            policy: self.config.placement_policy,
            pinned: &mut self.pinned,
        };
        let placed = place::place(&graph, prune::prune(&graph, &sig)?, &mut placer)?;
        for line in placed.log_lines(&graph) {
            if self.config.log_device_placement {
                log::info!("{line}");
            }
            self.placement_log.push(line);
        }
        let grouped = fuse::fuse(&graph, placed, &sig.fetches, self.config.graph_options.remapping);
        let plan = Arc::new(lower::lower(&graph, &sig, &grouped));
        drop(graph);
        self.stats.plans_built += 1;
        self.plans.insert(sig, plan.clone());
        Ok(plan)
    }

    /// Bytes uploaded and downloaded by this session so far.
    fn gpu_transfers(&self) -> (u64, u64) {
        let s = self.stats();
        (s.bytes_uploaded, s.bytes_downloaded)
    }

    /// Closes the session: its values are freed and later runs fail.
    pub fn close(&mut self) {
        self.state = None;
        self.plans.clear();
        crate::runtime::cpu::recycle::release(self.id);
    }

    /// Whether the session was closed.
    pub fn is_closed(&self) -> bool {
        self.state.is_none()
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
    pub fn eval(&self, session: &mut Session) -> Result<Tensor> {
        session.eval(self)
    }
}

impl Operation {
    /// Runs this operation in `session` (TF's `Operation.run`).
    pub fn run(&self, session: &mut Session) -> Result<()> {
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
