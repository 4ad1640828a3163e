//! Runs a case on every config and compares each result with the reference (the CPU without
//! fusion), within the bound of `bound.rs`.

use super::bound;
use super::build;
use super::case::Case;
use crate::common::Device;
use wgflow::{ConfigProto, Graph, Session, Tensor};

/// The configs a case runs on: (name, GPU, fusion). The first is the reference.
pub const CONFIGS: [(&str, bool, bool); 4] = [
    ("cpu-unfused", false, false),
    ("cpu-fused", false, true),
    ("gpu-fused", true, true),
    ("gpu-unfused", true, false),
];

/// What one case did.
#[derive(Default, Debug)]
pub struct Counts {
    /// Results compared with the reference.
    pub comparisons: usize,
    /// Elements whose bound is not finite (an overflow upstream): only their non-finite
    /// values were compared.
    pub unbounded: usize,
    /// GPU sessions that placed a node on the CPU or fell back to it.
    pub gpu_on_cpu: usize,
    /// The largest |difference| / (2 bound) seen (how much of the tolerance was used).
    pub worst: f64,
}

fn config(gpu: bool, fusion: bool) -> ConfigProto {
    let mut c = if gpu { ConfigProto::default() } else { ConfigProto::cpu_only() };
    c.graph_options.remapping = fusion;
    c
}

/// Runs `case` on the CPU configs, and on the GPU ones with `gpu`; an error describes the
/// first mismatch.
pub fn check(case: &Case, gpu: bool) -> Result<Counts, String> {
    let inputs = build::inputs(case);
    let g = Graph::new();
    let (outs, feeds) = build::build(&g, case, &inputs, true).map_err(|e| format!("build: {e}"))?;
    let out = outs[case.last()].clone();
    let mut counts = Counts::default();
    let mut reference: Option<Tensor> = None;
    let mut bound: Option<Tensor> = None;
    for (name, on_gpu, fusion) in CONFIGS {
        if on_gpu && !gpu {
            continue;
        }
        let s = Session::new(&g, config(on_gpu, fusion)).map_err(|e| format!("{name}: session: {e}"))?;
        let got = s.run_feed(&[&out], &feeds).map_err(|e| format!("{name}: run failed: {e}"))?;
        let got = got.into_iter().next().flatten().ok_or_else(|| format!("{name}: no value"))?;
        if on_gpu && Device::Gpu.check_ran_here(&s).is_err() {
            counts.gpu_on_cpu += 1;
        }
        if got.shape() != case.shape(case.last()) {
            return Err(format!("{name}: shape {:?}, generator said {:?}", got.shape(), case.shape(case.last())));
        }
        let Some(want) = &reference else {
            reference = Some(got);
            bound = bound::bound(case, &inputs).map_err(|e| format!("tolerance twin: {e}"))?;
            continue;
        };
        compare(&got, want, bound.as_ref(), &mut counts)
            .map_err(|e| format!("{name} vs cpu-unfused: {e}{}", small_inputs(&inputs)))?;
        counts.comparisons += 1;
    }
    Ok(counts)
}

/// `got` within twice the bound of `want` (both are within the bound of the exact value);
/// non-finite values must match; int32 (argmax) must be equal.
fn compare(got: &Tensor, want: &Tensor, bound: Option<&Tensor>, counts: &mut Counts) -> Result<(), String> {
    if got.dtype() != want.dtype() {
        return Err(format!("dtype {} != {}", got.dtype(), want.dtype()));
    }
    let Some(bound) = bound else {
        return if got == want { Ok(()) } else { Err(first_difference(got, want)) };
    };
    let (g, w, b) = (got.to_f32_vec().unwrap(), want.to_f32_vec().unwrap(), bound.to_f32_vec().unwrap());
    let len = w.len();
    for (i, ((&g, &w), &b)) in g.iter().zip(&w).zip(&b).enumerate() {
        let ok = if !g.is_finite() || !w.is_finite() {
            (g.is_nan() && w.is_nan()) || g == w
        } else if !b.is_finite() {
            counts.unbounded += 1;
            true
        } else {
            let used = f64::from(g - w).abs() / (2.0 * f64::from(b));
            if used.is_finite() {
                counts.worst = counts.worst.max(used);
            }
            used <= 1.0 + 1e-5 || g == w
        };
        if !ok {
            let excess = f64::from(g - w).abs() / (2.0 * f64::from(b));
            return Err(format!("element {i} of {}: got {g:e}, want {w:e}, bound 2*{b:e} ({excess:.3}x)", len));
        }
    }
    Ok(())
}

fn first_difference(got: &Tensor, want: &Tensor) -> String {
    let ints = |t: &Tensor| match t {
        Tensor::I32(a) => a.iter().map(|&x| x as f64).collect(),
        other => other.to_f32_vec().unwrap_or_default().into_iter().map(f64::from).collect::<Vec<f64>>(),
    };
    let (g, w) = (ints(got), ints(want));
    match g.iter().zip(&w).position(|(a, b)| a != b) {
        Some(i) => format!("element {i} of {}: got {}, want {} (compared exactly)", w.len(), g[i], w[i]),
        None => "different values (compared exactly)".to_string(),
    }
}

/// The values of the inputs of at most 8 elements, for the failure message (the others are
/// given by the seed).
fn small_inputs(inputs: &[Option<Tensor>]) -> String {
    let small = inputs.iter().enumerate().filter_map(|(i, t)| {
        let v = t.as_ref()?.to_f32_vec().ok().filter(|v| v.len() <= 8)?;
        Some(format!("\n  n{i} = {v:?}"))
    });
    small.collect()
}
