//! Runs a TensorFlow model file (a binary GraphDef, `.pb`) on the CPU and on the GPU:
//!
//! ```text
//! cargo run --release --example run_graphdef -- FILE.pb --feed input:0=random --fetch NAME:0
//! ```
//!
//! `--feed NAME:0=random` feeds seeded uniform values in [-1, 1) of the placeholder's shape
//! (an unknown dimension becomes `--batch`, default 1); `--feed NAME:0=zeros` and `=ones` are
//! also accepted. Without `--fetch`, the last node is fetched. It prints each fetched
//! output's shape and first values (and where its largest value is), the placement summary (nodes per
//! device, CPU fallbacks) and the median run time, for each device.

use std::collections::BTreeMap;
use std::time::Instant;

use wgflow::{ConfigProto, FeedKey, Fetch, Graph, RunMetadata, RunOptions, Session, Tensor, TraceLevel};

struct Args {
    file: String,
    feeds: Vec<(String, String)>,
    fetches: Vec<String>,
    batch: usize,
    runs: usize,
}

fn parse() -> Result<Args, String> {
    let mut args = Args { file: String::new(), feeds: Vec::new(), fetches: Vec::new(), batch: 1, runs: 20 };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |what: &str| it.next().ok_or(format!("{a} needs {what}"));
        match a.as_str() {
            "--feed" => {
                let v = value("NAME:0=random|zeros|ones")?;
                let (name, how) = v.split_once('=').ok_or(format!("--feed {v}: expected NAME:0=random"))?;
                args.feeds.push((name.to_string(), how.to_string()));
            }
            "--fetch" => args.fetches.push(value("NAME:0")?),
            "--batch" => args.batch = value("a number")?.parse().map_err(|e| format!("--batch: {e}"))?,
            "--runs" => args.runs = value("a number")?.parse().map_err(|e| format!("--runs: {e}"))?,
            f if !f.starts_with("--") && args.file.is_empty() => args.file = f.to_string(),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.file.is_empty() {
        return Err("usage: run_graphdef FILE.pb [--feed NAME:0=random] [--fetch NAME:0] [--batch N] [--runs N]".into());
    }
    Ok(args)
}

/// The value to feed `name` of `g`: its static shape with unknown dimensions set to `batch`.
fn feed_value(g: &Graph, name: &str, how: &str, batch: usize) -> wgflow::Result<Tensor> {
    let t = g.tensor_by_name(name)?;
    let dims: Vec<usize> = t.shape().dims().map(|d| d.iter().map(|d| d.unwrap_or(batch)).collect()).unwrap_or_default();
    let n: usize = dims.iter().product();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let data = (0..n)
        .map(|_| match how {
            "zeros" => 0.0,
            "ones" => 1.0,
            _ => {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            }
        })
        .collect();
    let value = Tensor::from_f32(&dims, data)?;
    if t.dtype() == wgflow::DType::F32 {
        Ok(value)
    } else {
        Err(wgflow::Error::unimplemented(format!("{name}: this example feeds float32 placeholders only")))
    }
}

fn run_on(g: &Graph, device: &str, config: ConfigProto, args: &Args) -> wgflow::Result<()> {
    let s = Session::new(g, config)?;
    let names: Vec<String> = match args.fetches.is_empty() {
        true => {
            let ops = g.operations();
            let last =
                ops.last().and_then(|op| op.output(0)).ok_or_else(|| wgflow::Error::invalid_argument("empty graph"))?;
            vec![last.name()]
        }
        false => args.fetches.clone(),
    };
    let fetches: Vec<Fetch> =
        names.iter().map(|f| g.tensor_by_name(f).map(Fetch::from)).collect::<wgflow::Result<_>>()?;
    let feeds: Vec<(FeedKey, Tensor)> = args
        .feeds
        .iter()
        .map(|(n, how)| Ok((g.tensor_by_name(n)?.into(), feed_value(g, n, how, args.batch)?)))
        .collect::<wgflow::Result<_>>()?;
    let mut md = RunMetadata::default();
    let traced = RunOptions { trace_level: TraceLevel::FullTrace, ..Default::default() };
    let out = s.run_with(&fetches, &feeds, &traced, Some(&mut md))?;
    println!("== {device} ({})", s.device());
    for (f, t) in names.iter().zip(&out) {
        let Some(t) = t else { continue };
        let v = t.to_f32_vec()?;
        let top = v.iter().enumerate().fold((0, f32::MIN), |b, (i, &x)| if x > b.1 { (i, x) } else { b });
        let first: Vec<String> = v.iter().take(6).map(|x| format!("{x:.5}")).collect();
        println!(
            "  {f}: shape {:?}, first [{}], largest value at flat index {} ({:.5})",
            t.shape(),
            first.join(", "),
            top.0,
            top.1
        );
    }
    let mut per_device: BTreeMap<String, usize> = BTreeMap::new();
    for n in &md.step_stats {
        *per_device.entry(n.device.clone()).or_default() += 1 + n.fused_nodes.len().saturating_sub(1);
    }
    let summary: Vec<String> = per_device.iter().map(|(d, n)| format!("{n} on {d}")).collect();
    println!("  placement: {}; CPU fallbacks: {}", summary.join(", "), s.stats().cpu_fallbacks);
    let mut times: Vec<f64> = (0..args.runs.max(1))
        .map(|_| {
            let t = Instant::now();
            s.run_with(&fetches, &feeds, &RunOptions::default(), None).map(|_| t.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<wgflow::Result<_>>()?;
    times.sort_by(f64::total_cmp);
    println!("  median run time over {} runs: {:.3} ms", times.len(), times[times.len() / 2]);
    Ok(())
}

fn main() {
    wgflow::gpu::ensure_runtime_dir();
    env_logger::init();
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let g = match Graph::from_pb_file(&args.file) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("{}: {e}", args.file);
            std::process::exit(1);
        }
    };
    println!("{}: {} nodes", args.file, g.len());
    let mut failed = false;
    for (device, config) in [("CPU", ConfigProto::cpu_only()), ("GPU", ConfigProto::default())] {
        if let Err(e) = run_on(&g, device, config, &args) {
            eprintln!("{device}: {e}");
            failed = true;
        }
    }
    if failed {
        std::process::exit(1);
    }
}
