//! Timing: one session per (entry, policy), warm-up runs, then timed runs in blocks per policy
//! (each run waits for the GPU: a run returns after its submit has finished).

use std::time::{Duration, Instant};

use wgflow::{ConfigProto, FeedKey, Graph, PlacementPolicy, Result, RunMetadata, RunOptions, Session, TraceLevel};

use crate::suite::Entry;

/// A placement policy of the harness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// `GPU: 0`.
    AllCpu,
    /// Every node built under `/gpu:0`, soft placement off: a node the GPU cannot take fails.
    AllGpu,
    /// The default config: TF's rule with soft placement.
    Tf,
    /// `PlacementPolicy::CostModel`, calibrated once per process.
    CostModel,
}

impl Policy {
    pub const ALL: [Policy; 4] = [Policy::AllCpu, Policy::AllGpu, Policy::Tf, Policy::CostModel];

    pub fn label(self) -> &'static str {
        match self {
            Policy::AllCpu => "all-CPU",
            Policy::AllGpu => "all-GPU",
            Policy::Tf => "TF default",
            Policy::CostModel => "cost model",
        }
    }

    fn config(self) -> ConfigProto {
        match self {
            Policy::AllCpu => ConfigProto::cpu_only(),
            Policy::AllGpu => ConfigProto { allow_soft_placement: false, ..ConfigProto::default() },
            Policy::Tf => ConfigProto::default(),
            Policy::CostModel => ConfigProto {
                placement_policy: PlacementPolicy::CostModel { calibrate: true },
                ..ConfigProto::default()
            },
        }
    }
}

/// How long to measure.
#[derive(Clone, Copy)]
pub struct Budget {
    pub warmup: usize,
    pub min_runs: usize,
    pub max_runs: usize,
    pub time: Duration,
}

/// The figures of one (entry, policy).
#[derive(Clone, Debug)]
pub struct Timing {
    pub median_s: f64,
    pub min_s: f64,
    pub runs: usize,
    /// Nodes of the run per device ("CPU", "GPU"), transfers not counted.
    pub nodes_cpu: usize,
    pub nodes_gpu: usize,
}

/// The median of `times` (which it sorts).
pub fn median(times: &mut [f64]) -> f64 {
    times.sort_by(f64::total_cmp);
    match times.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => times[n / 2],
        n => 0.5 * (times[n / 2 - 1] + times[n / 2]),
    }
}

/// A session of one policy, ready to time.
struct Prepared {
    session: Session,
    fetches: Vec<wgflow::Fetch>,
    feeds: Vec<(FeedKey, wgflow::Tensor)>,
    nodes_cpu: usize,
    nodes_gpu: usize,
}

/// Builds `entry` (under `/gpu:0` for all-GPU), opens a session, initializes the variables,
/// runs once with a trace (to see the placement) and warms up.
fn prepare(entry: &Entry, policy: Policy, warmup: usize) -> Result<Prepared> {
    let g = Graph::new();
    let case = {
        let _scope = (policy == Policy::AllGpu).then(|| g.device("/gpu:0"));
        (entry.build)(&g)?
    };
    let init = g.global_variables_initializer()?;
    let mut config = policy.config();
    config.graph_options.remapping = entry.fused;
    let session = Session::new(&g, config)?;
    session.run(&[&init])?;
    let feeds: Vec<(FeedKey, wgflow::Tensor)> = case.feeds.iter().map(|(k, v)| (k.into(), v.clone())).collect();
    let mut metadata = RunMetadata::default();
    let traced = RunOptions { trace_level: TraceLevel::FullTrace, ..RunOptions::default() };
    session.run_with(&case.fetches, &feeds, &traced, Some(&mut metadata))?;
    for _ in 1..warmup {
        session.run_with(&case.fetches, &feeds, &RunOptions::default(), None)?;
    }
    let count = |device: &str| {
        metadata
            .partition
            .iter()
            .filter(|(d, _)| d.ends_with(device))
            .map(|(_, nodes)| nodes.iter().filter(|n| !n.contains("/Memcpy")).count())
            .sum()
    };
    Ok(Prepared { session, fetches: case.fetches, feeds, nodes_cpu: count("CPU:0"), nodes_gpu: count("GPU:0") })
}

/// Times `entry` under each policy: eight passes over the policies, alternately in reverse
/// order, each policy's runs in one block of an eighth of its time per pass, so that a slow spell of the machine weighs
/// on all of them alike while no run follows another policy's (on a software GPU, a GPU run
/// leaves the shared cores' caches cold for a CPU run right after). `tick` is called after
/// each policy is prepared.
pub fn time_all(
    entry: &Entry,
    policies: &[Policy],
    budget: Budget,
    mut tick: impl FnMut(Policy),
) -> Vec<(Policy, Result<Timing>)> {
    let mut prepared: Vec<(Policy, Result<Prepared>)> = Vec::new();
    for &p in policies {
        prepared.push((p, prepare(entry, p, budget.warmup)));
        tick(p);
    }
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); prepared.len()];
    let mut failed: Vec<Option<wgflow::Error>> = vec![None; prepared.len()];
    // Passes over the policies, alternately forwards and backwards.
    const PASSES: usize = 8;
    let count = prepared.len();
    let order: Vec<usize> =
        (0..PASSES).flat_map(|pass| (0..count).map(move |k| if pass % 2 == 0 { k } else { count - 1 - k })).collect();
    for (block, &i) in order.iter().enumerate() {
        // The runs still owed to this policy, spread over its remaining passes.
        let left = PASSES - block / count;
        let (Ok(p), None) = (&mut prepared[i].1, &failed[i]) else { continue };
        let done = times[i].len();
        let min_runs = budget.min_runs.saturating_sub(done).div_ceil(left);
        let max_runs = budget.max_runs.saturating_sub(done).div_ceil(left);
        let started = Instant::now();
        let mut runs = 0;
        while runs < min_runs || (runs < max_runs && started.elapsed() < budget.time / PASSES as u32) {
            let t0 = Instant::now();
            match p.session.run_with(&p.fetches, &p.feeds, &RunOptions::default(), None) {
                Ok(_) => times[i].push(t0.elapsed().as_secs_f64()),
                Err(e) => {
                    failed[i] = Some(e);
                    break;
                }
            }
            runs += 1;
        }
    }
    prepared
        .into_iter()
        .zip(times)
        .zip(failed)
        .map(|(((policy, p), mut t), fail)| {
            let timing = match (p, fail) {
                (Err(e), _) | (Ok(_), Some(e)) => Err(e),
                (Ok(p), None) => {
                    let min_s = t.iter().copied().fold(f64::INFINITY, f64::min);
                    Ok(Timing {
                        median_s: median(&mut t),
                        min_s,
                        runs: t.len(),
                        nodes_cpu: p.nodes_cpu,
                        nodes_gpu: p.nodes_gpu,
                    })
                }
            };
            (policy, timing)
        })
        .collect()
}

/// Host memcpy of `bytes` bytes (touching twice that), median and min seconds over `runs`.
pub fn host_copy(bytes: usize, runs: usize) -> (f64, f64) {
    let src = vec![1u8; bytes];
    let mut dst = vec![0u8; bytes];
    dst.copy_from_slice(&src);
    let mut times: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let t0 = Instant::now();
            dst.copy_from_slice(std::hint::black_box(&src));
            std::hint::black_box(&dst);
            t0.elapsed().as_secs_f64()
        })
        .collect();
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    (median(&mut times), min)
}
