//! Golden test of `conv2d` against real TensorFlow: the 116 cases of `conv2d.json` and its
//! error cases (static shapes: errors at build time or run time; unknown shapes: at run time).

mod common;

use common::{Device, Tol};
use serde_json::Value;
use wgflow::{DType, Graph, Output, Padding, Session, Shape, Tensor};

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array().expect("list").iter().map(|d| d.as_u64().expect("int") as usize).collect()
}

fn padding(v: &Value) -> Padding {
    match v.as_str().expect("padding") {
        "SAME" => Padding::Same,
        "VALID" => Padding::Valid,
        other => panic!("padding {other}"),
    }
}

/// Builds `conv2d(input, filter)` with the strides, padding and dilations of `case`.
fn conv(g: &Graph, case: &Value, input: &Output, filter: &Output) -> wgflow::Result<Output> {
    g.conv2d(input, filter, &usizes(&case["strides"]), padding(&case["padding"]), &usizes(&case["dilations"]))
}

fn run_case(case: &Value, device: Device) -> Result<(), String> {
    let g = Graph::new();
    let _placement = device.scope(&g);
    let input = g.constant(common::tensor(&case["input"])).map_err(|e| e.to_string())?;
    let filter = g.constant(common::tensor(&case["filter"])).map_err(|e| e.to_string())?;
    let out = conv(&g, case, &input, &filter).map_err(|e| format!("build: {e}"))?;
    let sess = Session::new(&g, device.config()).map_err(|e| e.to_string())?;
    let got = sess.eval(&out).map_err(|e| format!("run: {e}"))?;
    device.check_ran_here(&sess)?;
    let want = common::tensor(&case["output"]);
    let exact = case["tags"].as_array().is_some_and(|t| t.iter().any(|t| t == "exact"));
    let tol = if exact { Tol::Exact } else { Tol::Close { rtol: 1e-5, atol: 1e-4 } };
    common::compare(&got, &want, tol)
}

fn run_suite(device: Device) {
    let golden = common::load("conv2d.json");
    let cases = golden["cases"].as_array().expect("cases");
    let mut tally = common::Tally::new("conv2d.json", device);
    for case in cases {
        tally.record(case["name"].as_str().expect("name"), run_case(case, device));
    }
    tally.finish(116);
}

#[test]
fn golden_conv2d_cpu() {
    run_suite(Device::Cpu)
}

#[test]
fn golden_conv2d_gpu() {
    if common::gpu_ready() {
        run_suite(Device::Gpu)
    }
}

/// Checks one error case in one variant: `static` (constant `tf.ones` inputs) or `dynamic`
/// (placeholders of the right rank with unknown dimensions, fed at run time).
fn run_error_case(case: &Value, variant: &str, device: Device) -> Result<(), String> {
    let expect = &case[variant];
    let (in_shape, f_shape) = (usizes(&case["input_shape"]), usizes(&case["filter_shape"]));
    let g = Graph::new();
    let (input, filter, feeds) = if variant == "static" {
        (g.ones(&in_shape).map_err(|e| e.to_string())?, g.ones(&f_shape).map_err(|e| e.to_string())?, Vec::new())
    } else {
        let p = g.placeholder(DType::F32, Shape::unknown_dims(in_shape.len())).map_err(|e| e.to_string())?;
        let q = g.placeholder(DType::F32, Shape::unknown_dims(f_shape.len())).map_err(|e| e.to_string())?;
        let feeds = vec![
            (p.clone(), Tensor::filled(DType::F32, &in_shape, 1.0)),
            (q.clone(), Tensor::filled(DType::F32, &f_shape, 1.0)),
        ];
        (p, q, feeds)
    };
    let class = expect["error_class"].as_str();
    let message = expect["message"].as_str().unwrap_or("");
    let built = conv(&g, case, &input, &filter);
    if expect["when"] == "graph construction" {
        return match built {
            Ok(_) => Err("built, but TF fails at graph construction".to_string()),
            Err(e) => common::check_error(&e, class.unwrap_or(""), message),
        };
    }
    let out = built.map_err(|e| format!("build failed: {e}"))?;
    let sess = Session::new(&g, device.config()).map_err(|e| e.to_string())?;
    let result = sess.eval_feed(&out, &feeds);
    match (class, result) {
        (Some(class), Err(e)) => common::check_error(&e, class, message),
        (Some(_), Ok(t)) => Err(format!("ran (shape {:?}), but TF fails at run time", t.shape())),
        (None, Ok(t)) if t.shape() == usizes(&expect["result_shape"]).as_slice() => Ok(()),
        (None, Ok(t)) => Err(format!("result shape {:?} != {}", t.shape(), expect["result_shape"])),
        (None, Err(e)) => Err(format!("failed, but TF succeeds: {e}")),
    }
}

fn run_error_suite(device: Device) {
    let golden = common::load("conv2d.json");
    let errors = golden["meta"]["errors"].as_array().expect("meta.errors");
    let mut failures = Vec::new();
    let mut total = 0;
    for case in errors {
        for variant in ["static", "dynamic"] {
            total += 1;
            let name = format!("{}/{variant}", case["name"].as_str().expect("name"));
            if let Err(e) = run_error_case(case, variant, device) {
                failures.push(format!("{name}: {e}"));
            }
        }
    }
    println!("golden conv2d.json errors {}: {}/{total} passed", device.name(), total - failures.len());
    for f in &failures {
        println!("  FAILED {f}");
    }
    assert!(failures.is_empty(), "{} conv2d error cases failed", failures.len());
    assert_eq!(total, 2 * errors.len());
}

#[test]
fn golden_conv2d_errors_cpu() {
    run_error_suite(Device::Cpu)
}

#[test]
fn golden_conv2d_errors_gpu() {
    if common::gpu_ready() {
        run_error_suite(Device::Gpu)
    }
}

#[test]
fn golden_conv2d_mixed() {
    if common::gpu_ready() {
        run_suite(Device::Mixed);
    }
}

/// The same cases in a session with two GPUs, nodes alternating between `/device:GPU:0` and
/// `/device:GPU:1` (each edge between them a copy through the host).
#[test]
fn golden_conv2d_two_gpus() {
    if common::gpu_ready() {
        run_suite(Device::TwoGpus);
    }
}
