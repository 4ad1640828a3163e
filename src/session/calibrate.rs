//! Calibrating the placement cost model: time a matmul, a large add and a transfer once per
//! process on the CPU and on the adapter, and fit the model's speeds to them.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use super::{ConfigProto, Session};
use crate::error::Result;
use crate::graph::Graph;
use crate::placement::{CostModel, DeviceModel};
use crate::runtime::gpu::context::GpuContext;
use crate::tensor::{DType, Shape, Tensor};

/// The calibrated model of `ctx`'s adapter, measured on first use and kept for the process.
pub(super) fn model(ctx: &GpuContext) -> Result<CostModel> {
    static MODELS: OnceLock<Mutex<HashMap<usize, CostModel>>> = OnceLock::new();
    let models = MODELS.get_or_init(Default::default);
    if let Some(m) = models.lock().unwrap_or_else(|e| e.into_inner()).get(&ctx.index()) {
        return Ok(*m);
    }
    let base = CostModel::for_adapter(ctx.info().device_type);
    let mut gpu_config = ConfigProto { placement_policy: crate::placement::PlacementPolicy::Tf, ..Default::default() };
    // The adapter's first device, whether or not it is the process's default adapter.
    gpu_config.gpu_options.visible_device_list = ctx.index().to_string();
    let cpu = measure(&ConfigProto::cpu_only())?;
    let gpu = measure(&gpu_config)?;
    let model = CostModel {
        cpu: cpu.device,
        gpu: gpu.device,
        transfer_bytes_per_s: gpu.transfer_bytes_per_s.unwrap_or(base.transfer_bytes_per_s),
        transfer_latency_s: gpu.transfer_latency_s.unwrap_or(base.transfer_latency_s),
    };
    log::info!("calibrated placement cost model for {}: {model:?}", ctx.description());
    models.lock().unwrap_or_else(|e| e.into_inner()).insert(ctx.index(), model);
    Ok(model)
}

struct Measured {
    device: DeviceModel,
    transfer_bytes_per_s: Option<f64>,
    transfer_latency_s: Option<f64>,
}

/// The best of a few timed runs of `f`, in seconds, after one warm-up.
fn best(mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    let mut t = f64::INFINITY;
    for _ in 0..3 {
        let t0 = Instant::now();
        f()?;
        t = t.min(t0.elapsed().as_secs_f64());
    }
    Ok(t.max(1e-9))
}

fn measure(config: &ConfigProto) -> Result<Measured> {
    const N: usize = 256;
    const ELEMS: usize = 1 << 20;
    let g = Graph::new();
    let a = g.variable(Tensor::filled(DType::F32, &[N, N], 0.5), "calibrate/a")?;
    let mm = g.matmul(&a, &a, false, false)?;
    let x = g.variable(Tensor::filled(DType::F32, &[ELEMS], 1.0), "calibrate/x")?;
    let add = g.add(&x, &x)?;
    let tiny = g.add(1.0f32, 2.0f32)?;
    let fed = g.placeholder(DType::F32, Shape::known(&[ELEMS]))?;
    let sum = g.reduce_sum(&fed, None, false)?;
    let s = Session::new(&g, config.clone())?;
    s.run(&[g.global_variables_initializer()?])?;
    // Results are reduced to scalars so that readbacks stay out of the timings.
    let mm_sum = g.reduce_sum(&mm, None, false)?;
    let add_sum = g.reduce_sum(&add, None, false)?;
    let launch = best(|| s.run(&[&tiny]).map(drop))?;
    let matmul = best(|| s.run(&[&mm_sum]).map(drop))?;
    let stream = best(|| s.run(&[&add_sum]).map(drop))?;
    let input = Tensor::filled(DType::F32, &[ELEMS], 1.0);
    let upload = best(|| s.run_feed(&[&sum], &[(&fed, input.clone())]).map(drop))?;
    let flops = 2.0 * (N * N * N) as f64;
    let bytes = (3 * ELEMS * 4) as f64;
    let device = DeviceModel {
        flops_per_s: flops / (matmul - launch).max(1e-9),
        bytes_per_s: bytes / (stream - launch).max(1e-9),
        launch_s: launch / 2.0,
    };
    let gpu = s.device() != "CPU";
    let transfer = (upload - stream).max(1e-9);
    Ok(Measured {
        device,
        transfer_bytes_per_s: gpu.then(|| (ELEMS * 4) as f64 / transfer),
        transfer_latency_s: gpu.then_some(launch),
    })
}
