//! The scenarios of `session.json`: TF1's Python rewritten against wgflow's API, step by
//! step, checking values, error classes and messages, and the graph's nodes.

mod common;

use std::collections::BTreeMap;

use common::{Device, Tol};
use serde_json::{json, Value};
use wgflow::{DType, Fetch, Graph, Padding, Session, Shape, Tensor};

/// What one step of a scenario produced.
enum Outcome {
    /// A run: its fetched values, flattened.
    Run(wgflow::Result<Vec<Option<Tensor>>>),
    /// A builder call that TF rejects at graph-construction time.
    Build(wgflow::Result<()>),
    /// A recorded Python value (names, types).
    Record(Value),
}

type Steps = Vec<Outcome>;

fn new_session(g: &Graph, d: Device) -> Session {
    Session::new(g, d.config()).expect("session")
}

fn run<F: Into<Fetch> + Clone>(s: &Session, fetches: &[F]) -> Outcome {
    Outcome::Run(s.run(fetches))
}

fn run_feed<F: Into<Fetch> + Clone>(s: &Session, fetches: &[F], feeds: &[(&str, Tensor)]) -> Outcome {
    Outcome::Run(s.run_feed(fetches, feeds))
}

fn f32s(shape: &[usize], v: &[f32]) -> Tensor {
    Tensor::from_f32(shape, v.to_vec()).expect("tensor")
}

fn variable_assign_read(d: Device, out: &mut Steps) -> wgflow::Result<Graph> {
    let g = Graph::new();
    let v = g.variable(42.0f32, "Variable")?;
    let assign = g.assign(&v, 13.0f32)?;
    let init = g.global_variables_initializer()?;
    let s = new_session(&g, d);
    out.push(run(&s, &[&init]));
    out.push(run(&s, &[&v]));
    out.push(run(&s, &[&assign]));
    out.push(run(&s, &[&v]));
    out.push(run(&s, &[&init]));
    out.push(run(&s, &[&v]));
    Ok(g)
}

fn second_session_uninitialized(d: Device, out: &mut Steps) -> wgflow::Result<Graph> {
    let g = Graph::new();
    let v = g.variable(42.0f32, "Variable")?;
    let init = g.global_variables_initializer()?;
    let s1 = new_session(&g, d);
    out.push(run(&s1, &[&init]));
    out.push(run(&s1, &[&v]));
    let s2 = new_session(&g, d);
    out.push(run(&s2, &[&v]));
    let plus = (v.value() + 1.0f32)?;
    out.push(run(&s2, &[&plus]));
    let is_init = g.is_variable_initialized(&v)?;
    out.push(run(&s2, &[&is_init]));
    let report = g.report_uninitialized_variables()?;
    out.push(run(&s2, &[&report]));
    Ok(g)
}

fn sessions_are_independent(d: Device, out: &mut Steps) -> wgflow::Result<Graph> {
    let g = Graph::new();
    let v = g.variable(42.0f32, "Variable")?;
    let assign = g.assign(&v, 13.0f32)?;
    let init = g.global_variables_initializer()?;
    let (s1, s2) = (new_session(&g, d), new_session(&g, d));
    out.push(run(&s1, &[&init]));
    out.push(run(&s1, &[&assign]));
    out.push(run(&s2, &[&init]));
    out.push(run(&s2, &[&v]));
    out.push(run(&s1, &[&v]));
    s1.close();
    out.push(run(&s1, &[&v]));
    s2.close();
    Ok(g)
}

fn placeholder_feeding(d: Device, out: &mut Steps) -> wgflow::Result<Graph> {
    let g = Graph::new();
    let p = g.placeholder(DType::F32, Shape::known(&[2]))?;
    let y = (&p * 2.0f32)?;
    let u = g.placeholder(DType::F32, Shape::unknown())?;
    let s = new_session(&g, d);
    out.push(run(&s, &[&y]));
    out.push(run(&s, &[&p]));
    out.push(Outcome::Run(s.run_feed(&[&y], &[(&p, f32s(&[2], &[1.0, 2.0]))])));
    out.push(Outcome::Run(s.run_feed(&[&p], &[(&p, f32s(&[2], &[3.0, 4.0]))])));
    out.push(Outcome::Run(s.run_feed(&[&y], &[(&p, f32s(&[3], &[1.0, 2.0, 3.0]))])));
    let u2 = (&u * 2.0f32)?;
    out.push(Outcome::Run(s.run_feed(&[&u2], &[(&u, f32s(&[2, 2], &[1.0; 4]))])));
    out.push(run_feed(&s, &[&y], &[("Placeholder:0", f32s(&[2], &[5.0, 6.0]))]));
    Ok(g)
}

fn feed_overrides_constant_and_intermediate(d: Device, out: &mut Steps) -> wgflow::Result<Graph> {
    let g = Graph::new();
    let a = g.constant(vec![1.0f32, 2.0])?;
    let b = g.constant(vec![10.0f32, 20.0])?;
    let c = (&a + &b)?;
    let dd = (&c * 2.0f32)?;
    let p = g.placeholder(DType::F32, Shape::known(&[2]))?;
    let e = (&p + 1.0f32)?;
    let f = (&e * 3.0f32)?;
    let s = new_session(&g, d);
    out.push(run(&s, &[&dd]));
    out.push(Outcome::Run(s.run_feed(&[&dd], &[(&a, f32s(&[2], &[0.0, 0.0]))])));
    out.push(Outcome::Run(s.run_feed(&[&dd], &[(&c, f32s(&[2], &[100.0, 100.0]))])));
    out.push(Outcome::Run(s.run_feed(&[&c], &[(&c, f32s(&[2], &[7.0, 8.0]))])));
    out.push(Outcome::Run(s.run_feed(&[&f], &[(&e, f32s(&[2], &[1.0, 1.0]))])));
    out.push(Outcome::Run(s.run_feed(&[&c, &dd], &[(&c, f32s(&[2], &[1.0, 1.0]))])));
    Ok(g)
}

fn fetch_structures(d: Device, out: &mut Steps) -> wgflow::Result<Graph> {
    let g = Graph::new();
    let a = g.constant(1.0f32)?;
    let b = g.constant(vec![2.0f32, 3.0])?;
    let c = (&a + &b)?;
    let s = new_session(&g, d);
    out.push(run(&s, &[&a, &b, &c]));
    out.push(run(&s, &[&a, &c]));
    out.push(run(&s, &[&a, &c])); // a dict {x: a, y: c}, flattened in key order
    out.push(run(&s, &[&a, &b, &c])); // [a, {k: [b, c]}], flattened
    out.push(run(&s, &[&c, &c]));
    out.push(run(&s, &["Const:0"]));
    out.push(run::<Fetch>(&s, &[]));
    Ok(g)
}

fn fetch_operation_returns_none(d: Device, out: &mut Steps) -> wgflow::Result<Graph> {
    let g = Graph::new();
    let v = g.variable(1.0f32, "Variable")?;
    let init = g.global_variables_initializer()?;
    let c = g.constant(5.0f32)?;
    let s = new_session(&g, d);
    out.push(run(&s, &[&init]));
    out.push(run(&s, &[Fetch::from(&init), Fetch::from(&c)]));
    out.push(run(&s, &["init"]));
    let noop = g.no_op()?;
    out.push(run(&s, &[&noop]));
    out.push(run(&s, &[v.initializer()]));
    Ok(g)
}

fn assign_add_sub(d: Device, out: &mut Steps) -> wgflow::Result<Graph> {
    let g = Graph::new();
    let v = g.variable(vec![1.0f32, 2.0], "Variable")?;
    let inc = g.assign_add(&v, vec![10.0f32, 10.0])?;
    let dec = g.assign_sub(&v, vec![1.0f32, 1.0])?;
    let init = g.global_variables_initializer()?;
    let s = new_session(&g, d);
    out.push(run(&s, &[&init]));
    out.push(run(&s, &[&inc]));
    out.push(run(&s, &[&inc]));
    out.push(run(&s, &[&dec]));
    out.push(run(&s, &[&v]));
    Ok(g)
}

fn subtract_variable_const(d: Device, out: &mut Steps) -> wgflow::Result<Graph> {
    let g = Graph::new();
    let x = g.variable(vec![1.0f32, 2.0], "Variable")?;
    let a = g.constant(vec![3.0f32, 3.0])?;
    let y = g.sub(&x, &a)?;
    let init = g.global_variables_initializer()?;
    let s = new_session(&g, d);
    out.push(run(&s, &[&init]));
    out.push(run(&s, &[&y]));
    Ok(g)
}

fn add_two_constants(d: Device, out: &mut Steps) -> wgflow::Result<Graph> {
    let g = Graph::new();
    let a = g.constant(vec![1.0f32, 2.0])?;
    let b = g.constant(vec![2.0f32, 3.0])?;
    let c = (&a + &b)?;
    let s = new_session(&g, d);
    out.push(run(&s, &[&c]));
    Ok(g)
}

#[path = "golden_session/graph_scenarios.rs"]
mod graph_scenarios;
use graph_scenarios::*;

/// Flattens a golden result (null, tensor, list, dict) into fetch order.
fn flatten(v: &Value, out: &mut Vec<Option<Tensor>>) {
    match v {
        Value::Null => out.push(None),
        Value::Object(m) if m.contains_key("dtype") => out.push(Some(common::tensor(v))),
        Value::Object(m) => m.values().for_each(|x| flatten(x, out)),
        Value::Array(a) => a.iter().for_each(|x| flatten(x, out)),
        other => panic!("unexpected result {other}"),
    }
}

fn check_step(step: &Value, outcome: &Outcome, values_only: bool) -> Result<(), String> {
    if let Some(e) = step.get("expect_error") {
        let class = e["error_class"].as_str().unwrap_or("?");
        let msg = e["message"].as_str().unwrap_or("?");
        let err = match outcome {
            Outcome::Run(Err(err)) | Outcome::Build(Err(err)) => err,
            _ => return Err("expected an error, got a value".into()),
        };
        if values_only {
            return (err.code == wgflow::Code::FailedPrecondition).then_some(()).ok_or(format!("{err}"));
        }
        return common::check_error(err, class, msg);
    }
    if let Some(v) = step.get("value") {
        return match outcome {
            Outcome::Record(_) if values_only => Ok(()),
            Outcome::Record(got) if got == v => Ok(()),
            Outcome::Record(got) => Err(format!("{got} != {v}")),
            _ => Err("expected a recorded value".into()),
        };
    }
    let mut want = Vec::new();
    flatten(&step["result"], &mut want);
    let got = match outcome {
        Outcome::Run(Ok(got)) => got,
        Outcome::Run(Err(e)) => return Err(format!("run failed: {e}")),
        _ => return Err("expected a run".into()),
    };
    if got.len() != want.len() {
        return Err(format!("{} values != {}", got.len(), want.len()));
    }
    for (g, w) in got.iter().zip(&want) {
        match (g, w) {
            (None, None) => {}
            (Some(g), Some(w)) => common::compare(g, w, Tol::Exact)?,
            _ => return Err("operation/tensor mismatch".into()),
        }
    }
    Ok(())
}

/// The graph's nodes as TF lists them: name, op type, inputs, control inputs.
fn nodes(g: &Graph) -> Vec<Value> {
    g.operations()
        .iter()
        .map(|op| {
            let mut n = BTreeMap::new();
            n.insert("name", json!(op.name()));
            n.insert("op", json!(op.op_type()));
            n.insert("inputs", json!(op.inputs().iter().map(|t| t.name()).collect::<Vec<_>>()));
            let c: Vec<String> = op.control_inputs().iter().map(|o| o.name()).collect();
            if !c.is_empty() {
                n.insert("control_inputs", json!(c));
            }
            json!(n)
        })
        .collect()
}

fn run_suite(device: Device) {
    type Scenario = fn(Device, &mut Steps) -> wgflow::Result<Graph>;
    let scenarios: &[(&str, Scenario)] = &[
        ("variable_assign_read", variable_assign_read),
        ("second_session_uninitialized", second_session_uninitialized),
        ("sessions_are_independent", sessions_are_independent),
        ("placeholder_feeding", placeholder_feeding),
        ("feed_overrides_constant_and_intermediate", feed_overrides_constant_and_intermediate),
        ("fetch_structures", fetch_structures),
        ("fetch_operation_returns_none", fetch_operation_returns_none),
        ("assign_add_sub", assign_add_sub),
        ("subtract_variable_const", subtract_variable_const),
        ("add_two_constants", add_two_constants),
        ("auto_naming", auto_naming),
        ("variable_node_names_ref", variable_node_names_ref),
        ("variable_node_names_resource", variable_node_names_resource),
        ("control_dependencies", control_dependencies),
        ("shape_and_graph_errors", shape_and_graph_errors),
    ];
    let golden = common::load("session.json");
    let cases = golden["cases"].as_array().expect("cases");
    let mut tally = common::Tally::new("session.json", device);
    for case in cases {
        let name = case["name"].as_str().unwrap_or("?");
        let Some((_, scenario)) = scenarios.iter().find(|(n, _)| *n == name) else {
            tally.record(name, Err("no scenario written".into()));
            continue;
        };
        let values_only = name == "variable_node_names_resource";
        let mut outcomes = Vec::new();
        let result = scenario(device, &mut outcomes).map_err(|e| format!("scenario failed: {e}")).and_then(|g| {
            let steps = case["steps"].as_array().ok_or("steps")?;
            if steps.len() != outcomes.len() {
                return Err(format!("{} outcomes for {} steps", outcomes.len(), steps.len()));
            }
            for (step, outcome) in steps.iter().zip(&outcomes) {
                check_step(step, outcome, values_only).map_err(|e| format!("step {:?}: {e}", step["step"]))?;
            }
            if !values_only {
                // TF builds report_uninitialized_variables from ten primitive ops; wgflow has one op.
                let keep = |n: &Value| !n["name"].as_str().unwrap_or("").starts_with("report_uninitialized_variables");
                let want: Vec<Value> =
                    case["graph"].as_array().ok_or("graph")?.iter().filter(|n| keep(n)).cloned().collect();
                let got: Vec<Value> = nodes(&g).into_iter().filter(keep).collect();
                let want: Vec<Value> = want
                    .into_iter()
                    .map(|mut n| {
                        if n["control_inputs"] == json!([]) {
                            n.as_object_mut().map(|o| o.remove("control_inputs"));
                        }
                        n
                    })
                    .collect();
                if got != want {
                    return Err(format!("graph nodes differ:\n got  {}\n want {}", json!(got), json!(want)));
                }
            }
            Ok(())
        });
        tally.record(name, result);
    }
    tally.finish(cases.len());
}

#[test]
fn golden_session_cpu() {
    run_suite(Device::Cpu);
}

#[test]
fn golden_session_gpu() {
    if common::gpu_ready() {
        run_suite(Device::Gpu);
    }
}
