//! The cases of `gradients.json`: `tf.gradients` of small losses and GradientDescent runs,
//! rebuilt with wgflow's API and compared with TF's values on every device.

mod common;

use common::{Device, Tol};
use serde_json::Value;
use wgflow::train::Optimizer;
use wgflow::{DType, Graph, Output, Padding, Session, Shape, Tensor};

const TOL: Tol = Tol::Close { rtol: 1e-4, atol: 1e-5 };

type Case = Result<(), String>;

fn input(case: &Value, key: &str) -> Tensor {
    common::tensor(&case["inputs"][key])
}

fn err(e: wgflow::Error) -> String {
    e.to_string()
}

/// Evaluates `fetches` and compares each with the case's output of the same key; a key whose
/// expected value is null must have no gradient (`None`).
fn check(s: &Session, case: &Value, fetches: &[(&str, Option<Output>)]) -> Case {
    for (key, t) in fetches {
        match (t, case["outputs"][*key].is_null()) {
            (None, true) => {}
            (None, false) => return Err(format!("{key}: no gradient, TF has one")),
            (Some(_), true) => return Err(format!("{key}: a gradient, TF has None")),
            (Some(t), false) => {
                let got = s.eval(t).map_err(err)?;
                common::compare(&got, &common::tensor(&case["outputs"][*key]), TOL)
                    .map_err(|e| format!("{key}: {e}"))?;
            }
        }
    }
    Ok(())
}

fn mse_matmul_bias(case: &Value, d: Device) -> Case {
    let g = Graph::new();
    let _scope = d.scope(&g);
    let x = g.constant(input(case, "x")).map_err(err)?;
    let y = g.constant(input(case, "y")).map_err(err)?;
    let w = g.variable(input(case, "W_init"), "W").map_err(err)?;
    let b = g.variable(input(case, "b_init"), "b").map_err(err)?;
    let pred = g.add(g.matmul(&x, &w, false, false).map_err(err)?, &b).map_err(err)?;
    let loss = g.reduce_mean(g.square(g.sub(&pred, &y).map_err(err)?).map_err(err)?, None, false).map_err(err)?;
    let grads = g.gradients(&[&loss], &[w.as_ref(), b.as_ref(), &x], None).map_err(err)?;
    let s = Session::new(&g, d.config()).map_err(err)?;
    s.run(&[g.global_variables_initializer().map_err(err)?]).map_err(err)?;
    let fetches = [
        ("pred", Some(pred)),
        ("loss", Some(loss)),
        ("grad_W", grads[0].clone()),
        ("grad_b", grads[1].clone()),
        ("grad_x", grads[2].clone()),
    ];
    check(&s, case, &fetches)?;
    d.check_ran_here(&s)
}

fn conv2d_relu_mean(case: &Value, d: Device) -> Case {
    let name = case["name"].as_str().unwrap_or_default();
    let stem = name.rsplit_once('_').map_or(name, |(stem, _)| stem);
    let stride: usize = stem.rsplit_once("_s").and_then(|(_, s)| s.parse().ok()).ok_or("stride")?;
    let padding = if name.ends_with("same") { Padding::Same } else { Padding::Valid };
    let g = Graph::new();
    let _scope = d.scope(&g);
    let x = g.constant(input(case, "x")).map_err(err)?;
    let f = g.variable(input(case, "filter_init"), "filter").map_err(err)?;
    let conv = g.conv2d(&x, &f, &[1, stride, stride, 1], padding, &[1, 1, 1, 1]).map_err(err)?;
    let loss = g.reduce_mean(g.relu(&conv).map_err(err)?, None, false).map_err(err)?;
    let grads = g.gradients(&[&loss], &[f.as_ref(), &x], None).map_err(err)?;
    let s = Session::new(&g, d.config()).map_err(err)?;
    s.run(&[g.global_variables_initializer().map_err(err)?]).map_err(err)?;
    let fetches =
        [("conv", Some(conv)), ("loss", Some(loss)), ("grad_filter", grads[0].clone()), ("grad_x", grads[1].clone())];
    check(&s, case, &fetches)?;
    d.check_ran_here(&s)
}

/// The losses of two inputs `a` and `b`, by case name.
fn two_input_loss(g: &Graph, name: &str, a: &Output, b: &Output) -> wgflow::Result<Output> {
    Ok(match name {
        "sum_mul" => g.reduce_sum(g.mul(a, b)?, None, false)?,
        "sum_exp" => g.reduce_sum(g.exp(a)?, None, false)?,
        "sum_tanh_sigmoid" => g.reduce_sum(g.add(g.tanh(a)?, g.sigmoid(b)?)?, None, false)?,
        "mean_div" => g.reduce_mean(g.div(a, g.add(g.abs(b)?, 1.0f32)?)?, None, false)?,
        "sum_softmax_weighted" => g.reduce_sum(g.mul(g.softmax(a, -1)?, b)?, None, false)?,
        "max_reduce" => g.reduce_sum(g.reduce_max(a, Some(&[1]), false)?, None, false)?,
        // TF's b[0] is a strided slice; here the same row is picked by a matmul with [1, 0].
        "broadcast_add_row" => {
            let pick = g.constant(Tensor::from_f32(&[1, 2], vec![1.0, 0.0])?)?;
            let row = g.reshape(g.matmul(pick, b, false, false)?, &[3])?;
            g.reduce_sum(g.square(g.add(a, row)?)?, None, false)?
        }
        "sum_maximum" => g.reduce_sum(g.maximum(a, b)?, None, false)?,
        other => return Err(wgflow::Error::invalid_argument(format!("unknown case {other}"))),
    })
}

fn elementwise(case: &Value, d: Device) -> Case {
    let name = case["name"].as_str().unwrap_or_default();
    let g = Graph::new();
    let _scope = d.scope(&g);
    let a = g.constant(input(case, "a")).map_err(err)?;
    let b = g.constant(input(case, "b")).map_err(err)?;
    let loss = two_input_loss(&g, name, &a, &b).map_err(err)?;
    let grads = g.gradients(std::slice::from_ref(&loss), &[a, b], None).map_err(err)?;
    let s = Session::new(&g, d.config()).map_err(err)?;
    check(&s, case, &[("loss", Some(loss)), ("grad_a", grads[0].clone()), ("grad_b", grads[1].clone())])?;
    d.check_ran_here(&s)
}

fn unconnected(case: &Value, d: Device) -> Case {
    let g = Graph::new();
    let a = g.placeholder(DType::F32, Shape::known(&[2])).map_err(err)?;
    let b = g.placeholder(DType::F32, Shape::known(&[2])).map_err(err)?;
    let y = (&a * 3.0f32).map_err(err)?;
    let grads = g.gradients(&[y], &[a.clone(), b], None).map_err(err)?;
    let names: Vec<Value> = grads.iter().map(|t| t.as_ref().map_or(Value::Null, |t| Value::from(t.name()))).collect();
    if Value::from(names.clone()) != case["outputs"]["grads_python"] {
        return Err(format!("{names:?}"));
    }
    let s = Session::new(&g, d.config()).map_err(err)?;
    let grad = grads[0].as_ref().ok_or("no gradient for a")?;
    let got = s.eval_feed(grad, &[(&a, Tensor::from(vec![1.0f32, 2.0]))]).map_err(err)?;
    common::compare(&got, &Tensor::from(vec![3.0f32, 3.0]), Tol::Exact)
}

fn sgd(case: &Value, d: Device) -> Case {
    let name = case["name"].as_str().unwrap_or_default();
    let field = |key: &str| -> Result<f32, String> {
        let rest = name.split(&format!("_{key}")).nth(1).ok_or(key.to_string())?;
        rest.split('_').next().and_then(|v| v.parse().ok()).ok_or(format!("{key} in {name}"))
    };
    let (lr, w0, b0) = (field("lr")?, field("w")?, field("b")?);
    let g = Graph::new();
    let _scope = d.scope(&g);
    let x = g.placeholder(DType::F32, Shape::partial(&[None, Some(1)])).map_err(err)?;
    let y = g.placeholder(DType::F32, Shape::partial(&[None, Some(1)])).map_err(err)?;
    let w = g.variable(Tensor::from_f32(&[1, 1], vec![w0]).map_err(err)?, "W").map_err(err)?;
    let b = g.variable(Tensor::from(vec![b0]), "b").map_err(err)?;
    let pred = g.add(g.matmul(&x, &w, false, false).map_err(err)?, &b).map_err(err)?;
    let loss = g.reduce_mean(g.square(g.sub(&pred, &y).map_err(err)?).map_err(err)?, None, false).map_err(err)?;
    let train = Optimizer::gradient_descent(lr).minimize(&loss, None, None).map_err(err)?;
    for pair in case["train_op_nodes"].as_array().ok_or("train_op_nodes")? {
        let (node, op) = (pair[0].as_str().unwrap_or_default(), pair[1].as_str().unwrap_or_default());
        let found = g.operation_by_name(node).map_err(err)?;
        if found.op_type() != op {
            return Err(format!("{node} is a {}, TF has {op}", found.op_type()));
        }
    }
    let s = Session::new(&g, d.config()).map_err(err)?;
    s.run(&[g.global_variables_initializer().map_err(err)?]).map_err(err)?;
    let feeds = [(x.clone(), input(case, "x")), (y.clone(), input(case, "y"))];
    let scalar = |v: &Value| Tensor::from(v.as_f64().unwrap_or(f64::NAN) as f32);
    for step in case["steps"].as_array().ok_or("steps")? {
        let at = |k: &str| format!("step {}: {k}", step["step"]);
        common::compare(&s.eval(w.tensor()).map_err(err)?, &common::tensor(&step["W_before"]), TOL)
            .map_err(|e| at(&e))?;
        common::compare(&s.eval(b.tensor()).map_err(err)?, &common::tensor(&step["b_before"]), TOL)
            .map_err(|e| at(&e))?;
        let before = s.eval_feed(&loss, &feeds).map_err(err)?;
        common::compare(&before, &scalar(&step["loss_before"]), TOL).map_err(|e| at(&format!("loss_before {e}")))?;
        let out = s.run_feed(&[wgflow::Fetch::from(&train), (&loss).into()], &feeds).map_err(err)?;
        if out[0].is_some() {
            return Err(at("the train op yields a value"));
        }
        let with = out[1].clone().ok_or("no loss")?;
        common::compare(&with, &scalar(&step["loss_fetched_with_train_op"]), TOL)
            .map_err(|e| at(&format!("loss with train {e}")))?;
    }
    let last = &case["final"];
    common::compare(&s.eval_feed(&loss, &feeds).map_err(err)?, &scalar(&last["loss"]), TOL)?;
    common::compare(&s.eval(w.tensor()).map_err(err)?, &common::tensor(&last["W"]), TOL)?;
    common::compare(&s.eval(b.tensor()).map_err(err)?, &common::tensor(&last["b"]), TOL)?;
    d.check_ran_here(&s)
}

fn run_case(case: &Value, d: Device) -> Case {
    let name = case["name"].as_str().unwrap_or_default();
    match name {
        "mse_matmul_bias" => mse_matmul_bias(case, d),
        "unconnected_is_none" => unconnected(case, d),
        n if n.starts_with("conv2d_relu_mean") => conv2d_relu_mean(case, d),
        n if n.starts_with("sgd_") => sgd(case, d),
        _ => elementwise(case, d),
    }
}

fn run_suite(device: Device) {
    let golden = common::load("gradients.json");
    let cases = golden["cases"].as_array().expect("cases");
    let mut tally = common::Tally::new("gradients.json", device);
    for case in cases {
        tally.record(case["name"].as_str().unwrap_or("?"), run_case(case, device));
    }
    tally.finish(17);
}

#[test]
fn golden_gradients_cpu() {
    run_suite(Device::Cpu);
}

#[test]
fn golden_gradients_gpu() {
    if common::gpu_ready() {
        run_suite(Device::Gpu)
    }
}

#[test]
fn golden_gradients_mixed() {
    if common::gpu_ready() {
        run_suite(Device::Mixed);
    }
}

/// The same cases in a session with two GPUs, nodes alternating between `/device:GPU:0` and
/// `/device:GPU:1` (each edge between them a copy through the host).
#[test]
fn golden_gradients_two_gpus() {
    if common::gpu_ready() {
        run_suite(Device::TwoGpus);
    }
}
