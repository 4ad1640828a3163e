//! Several GPUs in one session: two wgpu devices of one adapter (`GPU:0` and `GPU:1`, made with
//! `GpuOptions::virtual_devices`), and the copy between them measured: a weight resident on
//! `GPU:0` is read by a layer on `GPU:1` (`sum(relu(w))`), for three sizes; the same graph all
//! on `GPU:0` runs beside it.
//!
//! `cargo run --release --example multi_gpu`

use std::time::Instant;

use wgflow::{ConfigProto, DType, Graph, RunMetadata, RunOptions, Session, Tensor, TraceLevel, VirtualDevices};

const RUNS: usize = 15;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `sum(relu(w))` with the weight `w` (`n` x `n` floats) on `/gpu:0` and the layer on `gpu`.
fn layer(n: usize, gpu: &str) -> wgflow::Result<(Graph, wgflow::Output)> {
    let g = Graph::new();
    let w = {
        let _d = g.device("/gpu:0");
        g.variable(Tensor::filled(DType::F32, &[n, n], 0.5), "w")?
    };
    let y = {
        let _d = g.device(gpu);
        let h = g.named("h").relu(&w)?;
        g.named("y").reduce_sum(&h, None, false)?
    };
    Ok((g, y))
}

/// Median run time (ms), median copy step time (ms) and bytes moved between the GPUs per run.
fn measure(n: usize, gpu: &str, config: &ConfigProto) -> wgflow::Result<(f64, f64, u64, Tensor)> {
    let (g, y) = layer(n, gpu)?;
    let s = Session::new(&g, config.clone())?;
    s.run(&[g.global_variables_initializer()?])?;
    let out = s.eval(&y)?;
    let (mut runs, mut copies, mut bytes) = (Vec::new(), Vec::new(), 0);
    let options = RunOptions { trace_level: TraceLevel::FullTrace, ..Default::default() };
    for _ in 0..RUNS {
        let mut md = RunMetadata::default();
        let t = Instant::now();
        s.run_with(&[(&y).into()], &[], &options, Some(&mut md))?;
        runs.push(t.elapsed().as_secs_f64() * 1e3);
        copies.push(md.step_stats.iter().filter(|r| r.op == "MemcpyDtoD").map(|r| r.duration_us / 1e3).sum());
        bytes = md.bytes_between_gpus;
    }
    Ok((median(runs), median(copies), bytes, out))
}

fn main() -> wgflow::Result<()> {
    wgflow::gpu::ensure_runtime_dir();
    env_logger::init();
    let mut config = ConfigProto::default();
    config.gpu_options.virtual_devices = vec![VirtualDevices::split(2)];

    // The devices, and where the small graph's nodes go.
    let (g, y) = layer(4, "/gpu:1")?;
    let s = Session::new(&g, config.clone())?;
    for d in s.list_devices() {
        println!("{}: {}", d.name, d.description);
    }
    s.run(&[g.global_variables_initializer()?])?;
    let mut md = RunMetadata::default();
    let options = RunOptions { trace_level: TraceLevel::FullTrace, ..Default::default() };
    let out = s.run_with(&[(&y).into()], &[], &options, Some(&mut md))?;
    println!("y = {:?}", out[0].as_ref().map(|t| t.to_f32_vec()));
    for line in s.placement_log() {
        println!("{line}");
    }
    let copies: Vec<String> = md
        .step_stats
        .iter()
        .filter(|r| r.op.starts_with("Memcpy"))
        .map(|r| format!("{} ({} to {})", r.name, r.op, r.device.rsplit('/').next().unwrap_or("")))
        .collect();
    println!("transfers: {}", copies.join(", "));
    for (device, b) in &md.gpu_bytes {
        println!("{device}: {} bytes up, {} bytes down", b.uploaded, b.downloaded);
    }
    println!("between the GPUs: {} bytes; session stats: {:?}", md.bytes_between_gpus, s.stats());

    println!();
    println!(
        "| weight | bytes GPU:0 -> GPU:1 per run | copy step | copy rate | run, layer on GPU:1 | run, all on GPU:0 |"
    );
    println!("|---|---|---|---|---|---|");
    for n in [64, 512, 2048] {
        let (two, copy, bytes, a) = measure(n, "/gpu:1", &config)?;
        let (one, _, _, b) = measure(n, "/gpu:0", &config)?;
        assert_eq!(a, b, "both placements compute the same value");
        println!(
            "| {n}x{n} | {bytes} | {copy:.3} ms | {:.2} GB/s | {two:.3} ms | {one:.3} ms |",
            bytes as f64 / (copy * 1e-3) / 1e9
        );
    }
    Ok(())
}
