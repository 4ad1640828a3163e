//! Every case of `linalg_reduce.json` (matmul and batched matmul, reductions, softmax,
//! bias_add, reshape, transpose, concat, max/avg pooling) through the public API, on every
//! device.

mod common;

use common::{Device, Tol};
use serde_json::Value;
use wgflow::{Graph, Output, Padding, Session};

/// The reduction axes of a case: `null` (all), an integer, or a list.
fn axes(v: &Value) -> Result<Option<Vec<i64>>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => Ok(Some(vec![n.as_i64().ok_or("axis")?])),
        Value::Array(a) => {
            a.iter().map(|x| x.as_i64().ok_or_else(|| "axis".to_string())).collect::<Result<_, _>>().map(Some)
        }
        other => Err(format!("bad axis {other}")),
    }
}

fn ints(v: &Value) -> Result<Vec<i64>, String> {
    v.as_array().ok_or("list")?.iter().map(|x| x.as_i64().ok_or_else(|| "int".to_string())).collect()
}

fn usizes(v: &Value) -> Result<Vec<usize>, String> {
    Ok(ints(v)?.into_iter().map(|x| x as usize).collect())
}

fn padding(v: &Value) -> Result<Padding, String> {
    match v.as_str() {
        Some("SAME") => Ok(Padding::Same),
        Some("VALID") => Ok(Padding::Valid),
        other => Err(format!("padding {other:?}")),
    }
}

/// Builds the case's op on constants `x`.
fn build(g: &Graph, op: &str, attrs: &Value, x: &[Output]) -> Result<Output, String> {
    let keep = attrs["keepdims"].as_bool().unwrap_or(false);
    let r = match op {
        "matmul" => g.matmul(
            &x[0],
            &x[1],
            attrs["transpose_a"].as_bool().unwrap_or(false),
            attrs["transpose_b"].as_bool().unwrap_or(false),
        ),
        "reduce_sum" => g.reduce_sum(&x[0], axes(&attrs["axis"])?.as_deref(), keep),
        "reduce_mean" => g.reduce_mean(&x[0], axes(&attrs["axis"])?.as_deref(), keep),
        "reduce_max" => g.reduce_max(&x[0], axes(&attrs["axis"])?.as_deref(), keep),
        "softmax" => g.softmax(&x[0], attrs["axis"].as_i64().unwrap_or(-1)),
        "bias_add" => g.bias_add(&x[0], &x[1]),
        "reshape" => g.reshape(&x[0], &ints(&attrs["shape"])?),
        "transpose" => match &attrs["perm"] {
            Value::Null => g.transpose(&x[0], None),
            p => g.transpose(&x[0], Some(&usizes(p)?)),
        },
        "concat" => g.concat(x, attrs["axis"].as_i64().ok_or("axis")?),
        "max_pool" => {
            g.max_pool(&x[0], &usizes(&attrs["ksize"])?, &usizes(&attrs["strides"])?, padding(&attrs["padding"])?)
        }
        "avg_pool" => {
            g.avg_pool(&x[0], &usizes(&attrs["ksize"])?, &usizes(&attrs["strides"])?, padding(&attrs["padding"])?)
        }
        other => return Err(format!("unknown op {other}")),
    };
    r.map_err(|e| e.to_string())
}

fn run_case(case: &Value, device: Device) -> Result<(), String> {
    let g = Graph::new();
    let _placement = device.scope(&g);
    let op = case["op"].as_str().ok_or("op")?;
    let inputs = case["inputs"].as_array().ok_or("inputs")?;
    let consts = inputs
        .iter()
        .map(|t| g.constant(common::tensor(t)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let y = build(&g, op, &case["attrs"], &consts)?;
    // TF wraps a Softmax on another axis in transposes; wgflow makes one Softmax node.
    let want_type = case["tf_op_type"].as_str().ok_or("tf_op_type")?;
    let want_type = if op == "softmax" { "Softmax" } else { want_type };
    if y.op().op_type() != want_type {
        return Err(format!("op type {} != {want_type}", y.op().op_type()));
    }
    let want = common::tensor(&case["output"]);
    let static_shape = y.shape();
    if !static_shape.is_compatible_with(want.shape()) {
        return Err(format!("static shape {static_shape} does not fit {:?}", want.shape()));
    }
    let sess = Session::new(&g, device.config()).map_err(|e| e.to_string())?;
    let got = sess.eval(&y).map_err(|e| e.to_string())?;
    device.check_ran_here(&sess)?;
    common::compare(&got, &want, Tol::Close { rtol: 1e-5, atol: 1e-5 })
}

fn run_suite(device: Device) {
    let golden = common::load("linalg_reduce.json");
    let cases = golden["cases"].as_array().expect("cases");
    let mut tally = common::Tally::new("linalg_reduce.json", device);
    for case in cases {
        tally.record(case["name"].as_str().unwrap_or("?"), run_case(case, device));
    }
    tally.finish(154);
}

#[test]
fn golden_linalg_reduce_cpu() {
    run_suite(Device::Cpu);
}

#[test]
fn golden_linalg_reduce_gpu() {
    if common::gpu_ready() {
        run_suite(Device::Gpu)
    }
}

#[test]
fn golden_linalg_reduce_mixed() {
    if common::gpu_ready() {
        run_suite(Device::Mixed);
    }
}

/// The same cases in a session with two GPUs, nodes alternating between `/device:GPU:0` and
/// `/device:GPU:1` (each edge between them a copy through the host).
#[test]
fn golden_linalg_reduce_two_gpus() {
    if common::gpu_ready() {
        run_suite(Device::TwoGpus);
    }
}
