//! Every case of `elementwise.json` (TF's binary and unary ops, broadcasting, NaN/inf/-0.0,
//! int32) through the public API, on every device.

mod common;

use common::{Device, Tol};
use wgflow::{BinaryKind, DType, Graph, Session, Shape, UnaryKind};

fn tolerance(op: &str) -> Tol {
    match op {
        "add" | "sub" | "mul" | "neg" | "abs" | "maximum" | "minimum" | "relu" | "square" | "floordiv"
        | "truncatediv" => Tol::Exact,
        "div" | "sqrt" => Tol::Close { rtol: 1e-6, atol: 0.0 },
        _ => Tol::Close { rtol: 2e-6, atol: 1e-6 },
    }
}

fn binary(op: &str) -> Option<BinaryKind> {
    Some(match op {
        "add" => BinaryKind::Add,
        "sub" => BinaryKind::Sub,
        "mul" => BinaryKind::Mul,
        "div" => BinaryKind::Div,
        "floordiv" => BinaryKind::FloorDiv,
        "truncatediv" => BinaryKind::TruncateDiv,
        "maximum" => BinaryKind::Maximum,
        "minimum" => BinaryKind::Minimum,
        "pow" => BinaryKind::Pow,
        _ => return None,
    })
}

fn unary(op: &str) -> Option<UnaryKind> {
    Some(match op {
        "neg" => UnaryKind::Neg,
        "abs" => UnaryKind::Abs,
        "exp" => UnaryKind::Exp,
        "log" => UnaryKind::Log,
        "sqrt" => UnaryKind::Sqrt,
        "rsqrt" => UnaryKind::Rsqrt,
        "tanh" => UnaryKind::Tanh,
        "sigmoid" => UnaryKind::Sigmoid,
        "relu" => UnaryKind::Relu,
        "square" => UnaryKind::Square,
        _ => return None,
    })
}

fn run_case(case: &serde_json::Value, device: Device) -> Result<(), String> {
    let g = Graph::new();
    let _placement = device.scope(&g);
    let op = case["op"].as_str().ok_or("op")?;
    let inputs: Vec<_> = case["inputs"].as_array().ok_or("inputs")?.iter().map(common::tensor).collect();
    let consts =
        inputs.iter().map(|t| g.constant(t.clone())).collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
    let y = if let Some(k) = binary(op) {
        g.binary(k, &consts[0], &consts[1])
    } else if let Some(k) = unary(op) {
        g.unary(k, &consts[0])
    } else {
        return Err(format!("unknown op {op}"));
    }
    .map_err(|e| e.to_string())?;
    let want_type = case["tf_op_type"].as_str().ok_or("tf_op_type")?;
    if y.op().op_type() != want_type {
        return Err(format!("op type {} != {want_type}", y.op().op_type()));
    }
    let sess = Session::new(&g, device.config()).map_err(|e| e.to_string())?;
    let got = sess.eval(&y).map_err(|e| e.to_string())?;
    device.check_ran_here(&sess)?;
    common::compare(&got, &common::tensor(&case["output"]), tolerance(op))
}

/// The file's error cases: a static mismatch fails at the builder call, a dynamic one at run.
fn run_errors(meta: &serde_json::Value, device: Device, tally: &mut common::Tally) {
    for e in meta["errors"].as_array().expect("errors") {
        let name = e["name"].as_str().expect("name");
        let (class, msg) = (e["error_class"].as_str().expect("class"), e["message"].as_str().expect("message"));
        let result = if e["when"] == "graph construction" {
            let g = Graph::new();
            // TF made two constants first (Const, Const_1) in that script; mirror the names.
            let _ = (g.constant(0.0f32), g.constant(0.0f32));
            let a = g.constant(vec![1.0f32, 2.0]).expect("const");
            let b = g.constant(vec![1.0f32, 2.0, 3.0]).expect("const");
            match g.add(&a, &b) {
                Ok(_) => Err("built without error".to_string()),
                Err(err) => common::check_error(&err, class, msg),
            }
        } else {
            let g = Graph::new();
            let p = g.placeholder(DType::F32, Shape::unknown()).expect("p");
            let q = g.placeholder(DType::F32, Shape::unknown()).expect("q");
            let _ = g.add(&p, &q);
            let s = g.named("add").add(&p, &q).expect("add");
            let sess = Session::new(&g, device.config()).expect("session");
            let feeds =
                [(&p, wgflow::Tensor::from(vec![1.0f32, 2.0])), (&q, wgflow::Tensor::from(vec![1.0f32, 2.0, 3.0]))];
            match sess.eval_feed(&s, &feeds) {
                Ok(_) => Err("ran without error".to_string()),
                Err(err) => common::check_error(&err, class, msg).and_then(|_| {
                    (err.node.as_deref() == Some("add_1")).then_some(()).ok_or(format!("node {:?}", err.node))
                }),
            }
        };
        tally.record(name, result);
    }
}

fn run_suite(device: Device) {
    let golden = common::load("elementwise.json");
    let cases = golden["cases"].as_array().expect("cases");
    let mut tally = common::Tally::new("elementwise.json", device);
    for case in cases {
        tally.record(case["name"].as_str().unwrap_or("?"), run_case(case, device));
    }
    let mut errors = common::Tally::new("elementwise.json errors", device);
    run_errors(&golden["meta"], device, &mut errors);
    let n_errors = golden["meta"]["errors"].as_array().map_or(0, Vec::len);
    tally.finish(cases.len());
    errors.finish(n_errors);
}

#[test]
fn golden_elementwise_cpu() {
    run_suite(Device::Cpu);
}

#[test]
fn golden_elementwise_gpu() {
    if common::gpu_ready() {
        run_suite(Device::Gpu);
    }
}

#[test]
fn golden_elementwise_mixed() {
    if common::gpu_ready() {
        run_suite(Device::Mixed);
    }
}

/// The same cases in a session with two GPUs, nodes alternating between `/device:GPU:0` and
/// `/device:GPU:1` (each edge between them a copy through the host).
#[test]
fn golden_elementwise_two_gpus() {
    if common::gpu_ready() {
        run_suite(Device::TwoGpus);
    }
}
