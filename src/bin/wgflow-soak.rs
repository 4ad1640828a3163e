//! `wgflow-soak`: many threads and sessions on one shared graph, for a given time, with the
//! results checked exactly and the memory sampled.
//!
//! Usage: `wgflow-soak [--seconds N] [--threads T] [--sessions S] [--device gpu|cpu|mixed]
//! [--churn K]` (defaults: 30 s, 8 threads, 4 sessions each, `mixed`: half of each thread's
//! sessions on the GPU, half on the CPU, when there is a GPU; 500 sessions churned).
//!
//! - Every session bumps its own counter variable by its own delta (`assign_add` of a fed
//!   value) and fetches it back; every fourth iteration is a training step (gradient descent
//!   on a linear regression). A counter must equal `bumps * delta` exactly, in every session:
//!   sessions share the graph, never their values.
//! - A sampler reads the process's resident memory (`VmRSS`) and the GPU bytes held by all
//!   sessions (`gpu::Adapter::bytes_held`) every half second; the report gives start (after a
//!   warm-up), peak and end. They must stay flat: at the end no more than 10% + 32 MiB of RSS
//!   and 1 MiB of GPU memory above the start.
//! - Then `K` GPU sessions are created, run and dropped one after the other: the GPU bytes
//!   held must come back to where they were, to the byte.
//!
//! Exits with status 1 when a check fails.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use std::time::{Duration, Instant};

use wgflow::train::Optimizer;
use wgflow::{ConfigProto, DType, Graph, Operation, Output, Result, Session, Shape, Tensor};

struct Args {
    seconds: f64,
    threads: usize,
    sessions: usize,
    device: String,
    churn: usize,
}

fn parse() -> std::result::Result<Args, String> {
    let mut a = Args { seconds: 30.0, threads: 8, sessions: 4, device: "mixed".into(), churn: 500 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| v.parse::<f64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--seconds" => a.seconds = number(value()?)?,
            "--threads" => a.threads = number(value()?)? as usize,
            "--sessions" => a.sessions = number(value()?)? as usize,
            "--churn" => a.churn = number(value()?)? as usize,
            "--device" => a.device = value()?,
            "-h" | "--help" => {
                println!("usage: wgflow-soak [--seconds N] [--threads T] [--sessions S] [--device gpu|cpu|mixed] [--churn K]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(a)
}

/// The shared graph: a counter bumped by a fed delta, and a linear regression to train.
struct Model {
    g: Graph,
    counter: Output,
    delta: Output,
    bump: Output,
    train: Operation,
    loss: Output,
    init: Operation,
}

const WIDTH: usize = 16;

fn model() -> Result<Model> {
    let g = Graph::new();
    let c = g.variable(Tensor::from(vec![0.0f32; WIDTH]), "counter")?;
    let delta = g.placeholder(DType::F32, Shape::known(&[]))?;
    let bump = g.assign_add(&c, g.add(g.zeros(&[WIDTH])?, &delta)?)?;
    // y = x · w_true; the model learns w from zero.
    let (rows, cols) = (64, 8);
    let x: Vec<f32> = (0..rows * cols).map(|i| ((i * 37 % 17) as f32 - 8.0) / 8.0).collect();
    let w_true: Vec<f32> = (0..cols).map(|i| i as f32 * 0.25 - 1.0).collect();
    let y: Vec<f32> = (0..rows).map(|r| (0..cols).map(|k| x[r * cols + k] * w_true[k]).sum()).collect();
    let xc = g.constant(Tensor::from_f32(&[rows, cols], x)?)?;
    let w = g.variable(Tensor::from_f32(&[cols, 1], vec![0.0; cols])?, "w")?;
    let err = g.sub(g.matmul(&xc, w.value(), false, false)?, Tensor::from_f32(&[rows, 1], y)?)?;
    let loss = g.reduce_mean(g.square(&err)?, None, false)?;
    let train = Optimizer::gradient_descent(0.05).minimize(&loss, None, None)?;
    let init = g.global_variables_initializer()?;
    Ok(Model { counter: c.value().clone(), delta, bump, train, loss, init, g })
}

/// The resident memory of this process, in bytes (`VmRSS`; 0 where `/proc` is missing).
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next());
    kb.and_then(|v| v.parse::<u64>().ok()).map_or(0, |kb| kb * 1024)
}

/// One session of a thread, with its own delta and counts.
struct Worker {
    s: Session,
    delta: f32,
    bumps: u64,
    steps: u64,
    first_loss: f32,
    last_loss: f32,
}

impl Worker {
    fn new(m: &Model, config: ConfigProto, delta: f32) -> Result<Worker> {
        let s = Session::new(&m.g, config)?;
        s.run(std::slice::from_ref(&m.init))?;
        Ok(Worker { s, delta, bumps: 0, steps: 0, first_loss: f32::NAN, last_loss: f32::NAN })
    }

    /// One iteration: a bump, every 4th a training step, every 16th (and with `check`) a
    /// fetch of the counter, which must be `bumps * delta` exactly.
    fn step(&mut self, m: &Model, check: bool) -> Result<Option<String>> {
        self.s.run_feed(std::slice::from_ref(&m.bump), &[(m.delta.clone(), Tensor::from(self.delta))])?;
        self.bumps += 1;
        if self.bumps.is_multiple_of(4) {
            let out = self.s.run(&[wgflow::Fetch::from(&m.train), wgflow::Fetch::from(&m.loss)])?;
            self.last_loss = out[1].as_ref().map_or(f32::NAN, |t| t.scalar_f32().unwrap_or(f32::NAN));
            if self.steps == 0 {
                self.first_loss = self.last_loss;
            }
            self.steps += 1;
        }
        if !self.bumps.is_multiple_of(16) && !check {
            return Ok(None);
        }
        let c = self.s.eval(&m.counter)?;
        let want = self.bumps as f32 * self.delta;
        Ok(c.as_f32()?.iter().any(|&v| v != want).then(|| {
            format!("{}: counter {c:?} after {} bumps of {}, want {want}", self.s.device(), self.bumps, self.delta)
        }))
    }
}

/// A thread's sessions, driven in turn until `stop`; the last iteration of each checks.
fn drive(
    m: &Model,
    configs: Vec<(ConfigProto, f32)>,
    stop: &AtomicBool,
    bad: &Mutex<Vec<String>>,
) -> Result<Vec<Worker>> {
    let mut workers = configs.into_iter().map(|(c, d)| Worker::new(m, c, d)).collect::<Result<Vec<_>>>()?;
    let mut last = false;
    while !last {
        last = stop.load(Ordering::Relaxed);
        for w in &mut workers {
            if let Some(f) = w.step(m, last)? {
                if let Ok(mut b) = bad.lock() {
                    b.push(f);
                }
            }
        }
    }
    Ok(workers)
}

#[derive(Default)]
struct Samples {
    rss: Vec<u64>,
    gpu: Vec<u64>,
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64)
}

fn main() {
    wgflow::gpu::ensure_runtime_dir();
    env_logger::init();
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("wgflow-soak: {e}");
            std::process::exit(2);
        }
    };
    std::process::exit(match run(&args) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            eprintln!("wgflow-soak: {e}");
            1
        }
    })
}

fn run(a: &Args) -> Result<bool> {
    let gpu = wgflow::gpu::Adapter::open(None).ok().filter(|_| a.device != "cpu");
    let m = Arc::new(model()?);
    let config = |k: usize| match (&gpu, a.device.as_str(), k % 2) {
        (Some(_), "gpu", _) | (Some(_), _, 0) => ConfigProto::default(),
        _ => ConfigProto::cpu_only(),
    };
    println!(
        "wgflow-soak: {} threads x {} sessions for {} s on one graph ({}), devices: {}",
        a.threads,
        a.sessions,
        a.seconds,
        gpu.as_ref().map_or("no GPU".into(), |g| g.description()),
        if gpu.is_none() { "cpu" } else { a.device.as_str() }
    );
    let stop = Arc::new(AtomicBool::new(false));
    let bad = Arc::new(Mutex::new(Vec::new()));
    let totals = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let losses = Arc::new(Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    for t in 0..a.threads {
        let (m, stop, bad, totals, losses) = (m.clone(), stop.clone(), bad.clone(), totals.clone(), losses.clone());
        let configs: Vec<(ConfigProto, f32)> =
            (0..a.sessions).map(|k| (config(k), (t * a.sessions + k + 1) as f32)).collect();
        handles.push(std::thread::spawn(move || match drive(&m, configs, &stop, &bad) {
            Ok(workers) => {
                for w in workers {
                    totals.0.fetch_add(w.bumps, Ordering::Relaxed);
                    totals.1.fetch_add(w.steps, Ordering::Relaxed);
                    if let Ok(mut l) = losses.lock() {
                        l.push((w.first_loss, w.last_loss));
                    }
                }
            }
            Err(e) => {
                if let Ok(mut b) = bad.lock() {
                    b.push(format!("thread {t}: {e}"));
                }
            }
        }));
    }
    let started = Instant::now();
    let warmup = Duration::from_secs_f64((a.seconds * 0.1).clamp(1.0, 10.0));
    let gpu_bytes = || gpu.as_ref().map_or(0, wgflow::gpu::Adapter::bytes_held);
    let mut samples = Samples::default();
    while started.elapsed().as_secs_f64() < a.seconds {
        std::thread::sleep(Duration::from_millis(500));
        if started.elapsed() >= warmup {
            samples.rss.push(rss());
            samples.gpu.push(gpu_bytes());
        }
    }
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
    let mut ok = true;
    let (bumps, steps) = (totals.0.load(Ordering::Relaxed), totals.1.load(Ordering::Relaxed));
    let sessions = a.threads * a.sessions;
    println!(
        "{sessions} sessions: {bumps} counter bumps and {steps} training steps in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let failures = bad.lock().map(|b| b.clone()).unwrap_or_default();
    let losses = losses.lock().map(|l| l.clone()).unwrap_or_default();
    let trained = losses.iter().filter(|(first, last)| last < first).count();
    println!(
        "exact counters: {} of {sessions} sessions; training lowered the loss in {trained}",
        sessions - failures.len().min(sessions)
    );
    for f in failures.iter().take(10) {
        println!("  FAILED {f}");
    }
    ok &= failures.is_empty() && losses.len() == sessions && trained == sessions;
    for (what, v, slack) in [("RSS", &samples.rss, None), ("GPU bytes held", &samples.gpu, Some(1u64 << 20))] {
        let (Some(&start), Some(&end)) = (v.first(), v.last()) else { continue };
        let peak = v.iter().copied().max().unwrap_or(0);
        let allowed = slack.unwrap_or(start / 10 + (32 << 20));
        let flat = end <= start + allowed;
        println!(
            "{what}: start {}, peak {}, end {} ({})",
            mib(start),
            mib(peak),
            mib(end),
            if flat { "flat" } else { "GREW" }
        );
        ok &= flat;
    }
    if let Some(g) = &gpu {
        // One session stays alive through the churn, so that the figure is not trivially 0.
        let mut keeper = Worker::new(&m, ConfigProto::default(), 1.0)?;
        keeper.step(&m, true)?;
        let before = g.bytes_held();
        let t0 = Instant::now();
        let mut held_each = 0;
        for k in 0..a.churn {
            let s = Session::new(&m.g, ConfigProto::default())?;
            s.run(std::slice::from_ref(&m.init))?;
            let delta = (k % 7) as f32;
            s.run_feed(std::slice::from_ref(&m.bump), &[(m.delta.clone(), Tensor::from(delta))])?;
            let c = s.eval(&m.counter)?;
            held_each = held_each.max(s.stats().gpu_bytes_held);
            if c.as_f32()?.iter().any(|&v| v != delta) || !s.device().starts_with("GPU") {
                println!("  FAILED churned session {k} on {}: counter {c:?}, want {delta}", s.device());
                ok = false;
            }
        }
        let after = g.bytes_held();
        let same = after == before && held_each > 0;
        println!(
            "{} GPU sessions created, run and dropped in {:.1} s (each held up to {held_each} bytes): GPU bytes \
             held {} before, {} after ({})",
            a.churn,
            t0.elapsed().as_secs_f64(),
            before,
            after,
            if same { "every byte returned" } else { "LEAKED" }
        );
        ok &= same;
    }
    println!("{}", if ok { "soak passed" } else { "soak FAILED" });
    Ok(ok)
}
