//! TF's gradients of depthwise convolutions (`tests/data/depthwise_grad.json`, written by
//! `scripts/make_depthwise_grad.py`): `depthwise_conv2d` of a fed input and filter, and its
//! gradients with TF's upstream `dy`, on the CPU and the GPU.

use super::common::{self, Device, Tally, Tol};
use serde_json::Value;
use wgflow::{DType, Graph, Padding, Session, Shape};

fn ints(v: &Value) -> Vec<usize> {
    v.as_array().expect("ints").iter().map(|d| d.as_u64().expect("int") as usize).collect()
}

/// One case on `device`: the forward output and both gradients against TF's.
fn run_case(case: &Value, device: Device) -> Result<(), String> {
    let (x, f, dy) = (common::tensor(&case["x"]), common::tensor(&case["filter"]), common::tensor(&case["dy"]));
    let padding = match case["padding"].as_str() {
        Some("SAME") => Padding::Same,
        _ => Padding::Valid,
    };
    let g = Graph::new();
    let xp = g.placeholder(DType::F32, Shape::known(x.shape())).map_err(|e| e.to_string())?;
    let fp = g.placeholder(DType::F32, Shape::known(f.shape())).map_err(|e| e.to_string())?;
    let y = g
        .depthwise_conv2d(&xp, &fp, &ints(&case["strides"]), padding, &ints(&case["dilations"]))
        .map_err(|e| e.to_string())?;
    let dyc = g.constant(dy).map_err(|e| e.to_string())?;
    let grads =
        g.gradients(std::slice::from_ref(&y), &[xp.clone(), fp.clone()], Some(&[dyc])).map_err(|e| e.to_string())?;
    let (Some(gx), Some(gf)) = (&grads[0], &grads[1]) else {
        return Err("no gradient".into());
    };
    let s = Session::new(&g, device.config()).map_err(|e| e.to_string())?;
    let feeds = [(xp, x), (fp, f)];
    let out = s.run_feed(&[y, gx.clone(), gf.clone()], &feeds).map_err(|e| e.to_string())?;
    device.check_ran_here(&s)?;
    let tol = Tol::Close { rtol: 1e-5, atol: 1e-5 };
    for (got, key) in out.iter().zip(["y", "dx", "dfilter"]) {
        let got = got.as_ref().ok_or_else(|| format!("{key}: no value"))?;
        common::compare(got, &common::tensor(&case[key]), tol).map_err(|e| format!("{key}: {e}"))?;
    }
    Ok(())
}

#[test]
fn depthwise_gradients_match_tensorflow() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/depthwise_grad.json");
    let file: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("json")).expect("parses");
    let cases = file["cases"].as_array().expect("cases");
    let mut devices = vec![Device::Cpu];
    if common::gpu_ready() {
        devices.push(Device::Gpu);
    }
    for device in devices {
        let mut tally = Tally::new("depthwise_grad.json", device);
        for (k, case) in cases.iter().enumerate() {
            tally.record(&format!("case {k}"), run_case(case, device));
        }
        tally.finish(cases.len());
    }
}
