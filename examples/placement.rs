//! Device placement, as TF logs it: a small graph with a variable, a conv2d, a matmul, one
//! node forced to the CPU with a device scope and one with no GPU kernel (float64), run with
//! `log_device_placement` and then with `device_count {"GPU": 0}`.

use wgflow::{ConfigProto, DType, Graph, Padding, RunMetadata, RunOptions, Session, Shape, Tensor, TraceLevel};

fn main() -> wgflow::Result<()> {
    wgflow::gpu::ensure_runtime_dir();
    env_logger::init();
    let g = Graph::new();
    let image = g.placeholder(DType::F32, Shape::known(&[1, 8, 8, 3]))?;
    let filter = g.variable(Tensor::filled(DType::F32, &[3, 3, 3, 4], 0.1), "filter")?;
    let conv = g.named("conv").conv2d(&image, &filter, &[1, 1, 1, 1], Padding::Same, &[1, 1, 1, 1])?;
    let flat = g.reshape(&g.relu(&conv)?, &[1, 256])?;
    let dense = g.variable(Tensor::filled(DType::F32, &[256, 10], 0.01), "dense")?;
    let logits = g.named("logits").matmul(&flat, &dense, false, false)?;
    let probs = {
        let _cpu = g.device("/cpu:0");
        g.named("probs").softmax(&logits, -1)?
    };
    // float64 has no GPU kernels: this node goes to the CPU without being asked.
    let wide = g.named("wide").cast(&probs, DType::F64)?;
    let total = g.named("total").reduce_sum(&wide, None, false)?;
    let init = g.global_variables_initializer()?;
    let input = Tensor::filled(DType::F32, &[1, 8, 8, 3], 1.0);

    for (title, config) in [
        ("default placement", ConfigProto { log_device_placement: true, ..Default::default() }),
        ("device_count {\"GPU\": 0}", ConfigProto { log_device_placement: true, ..ConfigProto::cpu_only() }),
    ] {
        let s = Session::new(&g, config)?;
        println!("== {title} ({})", s.device());
        s.run(&[&init])?;
        let mut md = RunMetadata::default();
        let opts = RunOptions { trace_level: TraceLevel::FullTrace, ..Default::default() };
        let out = s.run_with(&[(&total).into()], &[((&image).into(), input.clone())], &opts, Some(&mut md))?;
        for line in s.placement_log() {
            println!("{line}");
        }
        let transfers: Vec<&str> =
            md.step_stats.iter().filter(|st| st.op.starts_with("Memcpy")).map(|st| st.name.as_str()).collect();
        println!("transfers: {}", if transfers.is_empty() { "none".to_string() } else { transfers.join(", ") });
        println!("bytes moved: {} up, {} down", md.bytes_uploaded, md.bytes_downloaded);
        if let Some(Some(Tensor::F64(sum))) = out.first() {
            println!("sum of probabilities (float64): {:.6}\n", sum.sum());
        }
    }
    Ok(())
}
