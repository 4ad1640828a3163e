//! `wgflow-bench`: the same graphs on the CPU and on each GPU adapter, under each placement
//! policy (all-CPU, all-GPU, TF's default, the cost model). Prints a markdown table, writes
//! it to `bench-results/latest.md`, with `latest.json` and the chart `latest.svg` (`quick.*`
//! with `--quick`).
//!
//! Usage: `wgflow-bench [--quick] [--filter TEXT] [--cpu-only] [--adapter INDEX|NAME]
//! [--out DIR]`. `--filter` keeps the entries whose name contains TEXT; `--cpu-only` measures
//! the all-CPU policy alone. One process uses one adapter, so with several adapters (and no
//! `--adapter`) it runs itself once per adapter, each child writing its table and chart under
//! `adapter-N/`, and `latest.json` gathers all of them.

mod compile;
mod measure;
mod models;
mod report;
mod suite;

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{json, Value};
use wgflow::gpu::{Adapter, ADAPTER_ENV};

use measure::{Budget, Policy};
use report::Row;
use suite::Rate;

struct Args {
    quick: bool,
    /// Only the entries whose name contains this.
    filter: Option<String>,
    /// Only the all-CPU policy (for working on CPU kernels).
    cpu_only: bool,
    adapter: Option<String>,
    out: PathBuf,
    /// Print the adapter's report and exit.
    device_info: bool,
    /// The GPU sweep (matmul up to 4096, conv2d shapes, 64M elementwise) under all-GPU.
    sweep: bool,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        quick: false,
        filter: None,
        cpu_only: false,
        adapter: None,
        out: PathBuf::from("bench-results"),
        device_info: false,
        sweep: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => args.quick = true,
            "--cpu-only" => args.cpu_only = true,
            "--device-info" => args.device_info = true,
            "--sweep" => args.sweep = true,
            "--f16-matmul" => measure::F16_MATMUL.store(true, std::sync::atomic::Ordering::Relaxed),
            "--filter" => args.filter = Some(it.next().ok_or("--filter needs a text")?),
            "--adapter" => args.adapter = Some(it.next().ok_or("--adapter needs an index or a name")?),
            "--out" => args.out = PathBuf::from(it.next().ok_or("--out needs a directory")?),
            "-h" | "--help" => {
                println!(
                    "usage: wgflow-bench [--quick] [--filter TEXT] [--cpu-only] [--adapter INDEX|NAME] [--out DIR] \
                     [--device-info] [--sweep] [--f16-matmul]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    wgflow::gpu::ensure_runtime_dir();
    env_logger::init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wgflow-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let args = parse()?;
    if let Some(c) = &args.adapter {
        std::env::set_var(ADAPTER_ENV, c);
    }
    if args.device_info {
        print!("{}", Adapter::open(None)?.report());
        print!("{}", compile::first_runs()?);
        return Ok(());
    }
    let stem = match (args.sweep, args.quick) {
        (true, _) => "sweep",
        (false, true) => "quick",
        (false, false) => "latest",
    };
    std::fs::create_dir_all(&args.out)?;
    let adapters = wgflow::gpu::adapters();
    let runs: Vec<Value> = match &args.adapter {
        None if adapters.len() > 1 && !args.sweep => {
            // One child process per adapter; each writes its own results under the output dir.
            let mut runs = Vec::new();
            for (i, name) in adapters.iter().enumerate() {
                eprintln!("adapter {name}");
                let dir = args.out.join(format!("adapter-{i}"));
                let mut cmd = std::process::Command::new(std::env::current_exe()?);
                cmd.args(["--adapter", &i.to_string(), "--out"]).arg(&dir);
                if args.quick {
                    cmd.arg("--quick");
                }
                if let Some(f) = &args.filter {
                    cmd.args(["--filter", f]);
                }
                if !cmd.status()?.success() {
                    return Err(format!("the run on adapter {name} failed").into());
                }
                let child: Value = serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{stem}.json")))?)?;
                runs.extend(child["runs"].as_array().cloned().unwrap_or_default());
            }
            runs
        }
        _ => {
            let (title, rows) = bench(&args)?;
            let table = format!("{title}\n\n{}", report::table(&rows));
            println!("\n{table}");
            std::fs::write(args.out.join(format!("{stem}.md")), table)?;
            std::fs::write(args.out.join(format!("{stem}.svg")), report::svg(&title, &rows))?;
            vec![json!({ "title": title, "entries": rows.iter().map(report::row_json).collect::<Vec<_>>() })]
        }
    };
    let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let doc =
        json!({ "machine": machine(), "adapters": adapters, "quick": args.quick, "unix_time": unix, "runs": runs });
    let path = args.out.join(format!("{stem}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&doc)?)?;
    eprintln!("wrote {} and {}.svg", path.display(), args.out.join(stem).display());
    Ok(())
}

/// The CPU's model name and thread count, and the OS.
fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{model}, {threads} threads, {}", std::env::consts::OS)
}

/// Runs the suite on the CPU and on this process's adapter (if any), under every policy; the
/// sweep under all-GPU alone.
fn bench(args: &Args) -> Result<(String, Vec<Row>), Box<dyn Error>> {
    let (quick, filter) = (args.quick, args.filter.as_deref());
    let gpu = if args.cpu_only { None } else { Adapter::open(None).ok() };
    let title = match &gpu {
        Some(ctx) => format!("CPU: {}; GPU: {}", machine(), ctx.description()),
        None => format!("CPU: {}; no GPU adapter", machine()),
    };
    eprintln!("{title}");
    let mut entries = if args.sweep { suite::sweep() } else { suite::suite(quick) };
    entries.retain(|e| filter.is_none_or(|f| e.name.contains(f)));
    let policies: Vec<Policy> = match (&gpu, args.sweep) {
        (Some(_), true) => vec![Policy::AllGpu],
        (Some(_), false) => Policy::ALL.to_vec(),
        (None, _) => vec![Policy::AllCpu],
    };
    let bar = indicatif::ProgressBar::new((entries.len() * policies.len()) as u64);
    bar.set_style(indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")?);
    let mut rows = Vec::new();
    for entry in &entries {
        // Runs per policy until its time is spent, within [min, max] runs.
        let mut budget = if quick {
            Budget { warmup: 2, min_runs: 4, max_runs: 400, time: Duration::from_millis(400) }
        } else {
            Budget { warmup: 3, min_runs: 8, max_runs: 2000, time: Duration::from_secs(2) }
        };
        if entry.is_tiny() {
            budget.warmup *= 10;
            budget.max_runs = 5000;
        }
        bar.set_message(entry.name.clone());
        let timings: Vec<_> = measure::time_all(entry, &policies, budget, |_| bar.inc(1))
            .into_iter()
            .map(|(p, t)| (p, t.map_err(|e| e.to_string())))
            .collect();
        let (mut memcpy_cpu_s, mut memcpy_gpu_s) = (None, None);
        if entry.rate == Rate::Bytes {
            // A copy of half the bytes reads and writes them all.
            let half = (entry.bytes / 2.0) as usize;
            memcpy_cpu_s = Some(measure::host_copy(half, 20).0);
            if let Some(ctx) = &gpu {
                memcpy_gpu_s =
                    ctx.time_copies(half as u64, budget.max_runs.min(20)).ok().map(|mut t| measure::median(&mut t));
            }
        }
        rows.push(Row {
            name: entry.name.clone(),
            flops: entry.flops,
            bytes: entry.bytes,
            rate: entry.rate,
            timings,
            memcpy_cpu_s,
            memcpy_gpu_s,
        });
    }
    bar.finish_and_clear();
    for r in &rows {
        for (p, t) in &r.timings {
            if let Err(e) = t {
                eprintln!("{} ({}): {e}", r.name, p.label());
            }
        }
    }
    Ok((title, rows))
}
