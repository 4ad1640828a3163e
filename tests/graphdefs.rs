//! TF model files (`../shared/graphdefs/`): each case imported into a fresh graph and run on
//! the CPU, the GPU and mixed, against TF's outputs; the broken files give their errors.

mod common;

use std::path::PathBuf;

use common::{compare, tensor, Device, Tally, Tol};
use serde_json::Value;
use wgflow::{Code, Fetch, Graph, ImportOptions, RunOptions, Session, Tensor};

/// Cases whose op types wgflow cannot import yet; each must fail with `Unimplemented` (so
/// that the list is shortened as soon as one imports).
const NOT_YET: &[&str] = &[];

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/graphdefs")
}

fn cases() -> Value {
    let text = std::fs::read_to_string(dir().join("graphdefs.json")).expect("graphdefs.json");
    serde_json::from_str(&text).expect("graphdefs.json parses")
}

fn import(file: &str, device: Device) -> wgflow::Result<Graph> {
    let bytes = std::fs::read(dir().join(file)).expect("the .pb file");
    let g = Graph::new();
    let _scope = device.scope(&g);
    g.import_graph_def(&bytes, &ImportOptions::default())?;
    Ok(g)
}

fn feeds(g: &Graph, v: &Value) -> Vec<(wgflow::FeedKey, Tensor)> {
    let map = v.as_object().cloned().unwrap_or_default();
    map.iter().map(|(k, t)| (g.tensor_by_name(k).expect("fed tensor").into(), tensor(t))).collect()
}

/// Runs `fetches` (and the `targets`) once and compares each with `expected`.
fn step(
    s: &Session,
    g: &Graph,
    targets: &[Value],
    fetches: &[Value],
    feed: &Value,
    expected: &Value,
    tol: Tol,
) -> Result<(), String> {
    let mut list: Vec<Fetch> = Vec::new();
    for t in targets {
        list.push(g.operation_by_name(t.as_str().unwrap_or_default()).map_err(|e| e.to_string())?.into());
    }
    for f in fetches {
        list.push(g.tensor_by_name(f.as_str().unwrap_or_default()).map_err(|e| e.to_string())?.into());
    }
    let out = s.run_with(&list, &feeds(g, feed), &RunOptions::default(), None).map_err(|e| e.to_string())?;
    for (f, got) in fetches.iter().zip(&out[targets.len()..]) {
        let name = f.as_str().unwrap_or_default();
        let got = got.as_ref().ok_or_else(|| format!("{name}: no value"))?;
        compare(got, &tensor(&expected[name]), tol).map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(())
}

/// The graph exported by wgflow and imported again.
fn round_trip(g: &Graph, device: Device) -> Result<Graph, String> {
    let bytes = g.to_graph_def().map_err(|e| format!("export: {e}"))?;
    let again = Graph::new();
    let _scope = device.scope(&again);
    again.import_graph_def(&bytes, &ImportOptions::default()).map_err(|e| format!("import of the export: {e}"))?;
    Ok(again)
}

fn run_case(c: &Value, device: Device, exported: bool) -> Result<(), String> {
    let g = import(c["file"].as_str().unwrap_or_default(), device).map_err(|e| format!("import: {e}"))?;
    let g = if exported { round_trip(&g, device)? } else { g };
    let tol = Tol::Close {
        rtol: c["tolerance"]["rtol"].as_f64().unwrap_or(1e-4),
        atol: c["tolerance"]["atol"].as_f64().unwrap_or(1e-5),
    };
    let s = Session::new(&g, device.config()).map_err(|e| e.to_string())?;
    match c["steps"].as_array() {
        Some(steps) => {
            for (i, st) in steps.iter().enumerate() {
                let targets = st["run"].as_array().cloned().unwrap_or_default();
                let fetches = st["fetches"].as_array().cloned().unwrap_or_default();
                step(&s, &g, &targets, &fetches, &st["feeds"], &st["expected"], tol)
                    .map_err(|e| format!("step {i}: {e}"))?;
            }
        }
        None => {
            let fetches = c["fetches"].as_array().cloned().unwrap_or_default();
            step(&s, &g, &[], &fetches, &c["feeds"], &c["expected"], tol)?;
        }
    }
    device.check_ran_here(&s)
}

fn run_all(device: Device) {
    let all = cases();
    let list = all["cases"].as_array().expect("cases");
    let mut tally = Tally::new("graphdefs.json", device);
    let mut ran = 0;
    for c in list {
        let name = c["name"].as_str().unwrap_or_default();
        if NOT_YET.contains(&name) {
            let e = import(c["file"].as_str().unwrap_or_default(), device).err();
            assert!(
                e.as_ref().is_some_and(|e| e.code == Code::Unimplemented),
                "{name} was expected to miss an op type, got {e:?}: take it off NOT_YET"
            );
            println!("  not yet: {name} ({})", e.map(|e| e.message).unwrap_or_default());
            continue;
        }
        ran += 1;
        tally.record(name, run_case(c, device, false));
    }
    tally.finish(ran);
}

#[test]
fn graphdefs_on_cpu() {
    run_all(Device::Cpu);
}

#[test]
fn graphdefs_on_gpu_and_mixed() {
    if !common::gpu_ready() {
        return;
    }
    run_all(Device::Gpu);
    run_all(Device::Mixed);
}

/// Every sample exported by wgflow and imported again gives TF's outputs (on the CPU, and on
/// the GPU when there is one).
#[test]
fn exported_graphs_import_again_with_the_same_values() {
    let all = cases();
    let mut devices = vec![Device::Cpu];
    if common::gpu_ready() {
        devices.push(Device::Gpu);
    }
    for device in devices {
        let mut tally = Tally::new("graphdefs.json exported and imported again", device);
        let list = all["cases"].as_array().expect("cases");
        for c in list {
            tally.record(c["name"].as_str().unwrap_or_default(), run_case(c, device, true));
        }
        tally.finish(list.len());
    }
}

#[test]
fn broken_files_give_their_errors() {
    let all = cases();
    for e in all["meta"]["errors"].as_array().expect("errors") {
        let file = e["file"].as_str().unwrap_or_default();
        let err = match import(file, Device::Cpu) {
            Ok(_) => panic!("{file} imported"),
            Err(err) => err,
        };
        let want = e["want"].as_str().unwrap_or_default();
        let code_ok = match want {
            "Unimplemented" => err.code == Code::Unimplemented,
            _ => matches!(err.code, Code::InvalidArgument | Code::DataLoss),
        };
        assert!(code_ok, "{file}: want {want}, got {err}");
        if let Some(text) = e["message_contains"].as_str() {
            assert!(err.message.contains(text), "{file}: {err}");
        }
    }
}

#[test]
fn a_prefix_and_an_input_map_rename_and_rewire() {
    let bytes = std::fs::read(dir().join("mlp_frozen.pb")).expect("mlp_frozen.pb");
    let g = Graph::new();
    let x = g.placeholder(wgflow::DType::F32, wgflow::Shape::unknown()).expect("placeholder");
    let mut opts = ImportOptions { prefix: "net".into(), ..Default::default() };
    opts.input_map.insert("x:0".into(), x.clone());
    g.import_graph_def(&bytes, &opts).expect("imports");
    let probs = g.tensor_by_name("net/probs:0").expect("prefixed name");
    assert!(g.operation_by_name("probs").is_err(), "names are prefixed");
    let c = &cases()["cases"][0];
    assert_eq!(c["name"], "mlp_frozen");
    let s = Session::new(&g, wgflow::ConfigProto::cpu_only()).expect("session");
    let feed = tensor(&c["feeds"]["x:0"]);
    let out = s.run_with(&[(&probs).into()], &[((&x).into(), feed)], &RunOptions::default(), None).expect("runs");
    let got = out[0].as_ref().expect("value");
    compare(got, &tensor(&c["expected"]["probs:0"]), Tol::Close { rtol: 1e-4, atol: 1e-5 }).expect("TF's values");
}

/// TF's MobileNetV2 sample (untrained) predicts 0.1 for every class, which a broken network
/// could match: its activations shrink block by block (to about 1e-9 by block 16). So the
/// activations of early, middle and late blocks must not be constant, and the CPU and the GPU
/// must agree on each, relative to its own scale.
#[test]
fn mobilenet_activations_vary_and_agree_across_devices() {
    const LAYERS: [&str; 3] = ["Conv1_relu_1", "block_2_expand_relu_1", "block_12_expand_relu_1"];
    let all = cases();
    let c = all["cases"].as_array().expect("cases").iter().find(|c| c["name"] == "mobilenet_v2_frozen").expect("case");
    let mut devices = vec![Device::Cpu];
    if common::gpu_ready() {
        devices.push(Device::Gpu);
    }
    let mut results = Vec::new();
    for device in devices {
        let g = import("mobilenet_v2_frozen.pb", device).expect("imports");
        let fetches: Vec<Fetch> = LAYERS
            .iter()
            .map(|l| g.tensor_by_name(&format!("mobilenetv2_0.35_96_1/{l}/Relu6:0")).expect("layer").into())
            .collect();
        let s = Session::new(&g, device.config()).expect("session");
        let out = s.run_with(&fetches, &feeds(&g, &c["feeds"]), &RunOptions::default(), None).expect("runs");
        let values: Vec<Vec<f32>> = out.iter().map(|t| t.as_ref().expect("value").to_f32_vec().expect("f32")).collect();
        for (l, v) in LAYERS.iter().zip(&values) {
            let (lo, hi) = v.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
            assert!(hi > lo, "{device:?}: {l} is constant ({lo})");
        }
        results.push(values);
    }
    if let [cpu, gpu] = &results[..] {
        for ((l, a), b) in LAYERS.iter().zip(cpu).zip(gpu) {
            let scale = a.iter().fold(0f32, |m, x| m.max(x.abs()));
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert!((x - y).abs() <= 1e-3 * scale, "{l}[{i}]: cpu {x}, gpu {y} (scale {scale})");
            }
        }
    }
}

/// Op types beyond the shared samples (FusedBatchNormV3 in inference mode, Shape, Fill, Split,
/// SplitV with a -1 size, Unpack, IdentityN, Tile, GatherV2 along axes 0 and 1, and a
/// StridedSlice of a Cast of a Shape), in a file written by TF 2.21 with its outputs
/// (`scripts/make_more_ops_pb.py`, `tests/data/`).
#[test]
fn more_op_types_match_tf_on_every_device() {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let bytes = std::fs::read(data.join("more_ops.pb")).expect("more_ops.pb");
    let want: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("more_ops.json")).expect("json")).expect("parses");
    let mut devices = vec![Device::Cpu];
    if common::gpu_ready() {
        devices.extend([Device::Gpu, Device::Mixed]);
    }
    for device in devices {
        let g = Graph::new();
        {
            let _scope = device.scope(&g);
            g.import_graph_def(&bytes, &ImportOptions::default()).expect("imports");
        }
        let s = Session::new(&g, device.config()).expect("session");
        let fetches: Vec<Value> =
            want["expected"].as_object().expect("expected").keys().map(|k| Value::from(k.as_str())).collect();
        let tol = Tol::Close { rtol: 1e-5, atol: 1e-5 };
        step(&s, &g, &[], &fetches, &want["feeds"], &want["expected"], tol)
            .unwrap_or_else(|e| panic!("{device:?}: {e}"));
        // The other outputs of nodes imported as several ops answer to TF's tensor names.
        let x = (g.tensor_by_name("x:0").expect("x"), common::tensor(&want["feeds"]["x:0"]));
        for (alias, same) in
            [("split3:1", "split_mid:0"), ("unpack:2", "unpack_last:0"), ("identity_n:1", "identity_n_second:0")]
        {
            let pair = [g.tensor_by_name(alias).expect(alias), g.tensor_by_name(same).expect(same)];
            let out = s.run_feed(&pair, std::slice::from_ref(&x)).expect("runs");
            assert_eq!(out[0], out[1], "{alias} on {device:?}");
        }
        assert!(g.tensor_by_name("split3:3").is_err(), "split3 has three outputs");
        // FusedBatchNormV3 in inference mode: outputs 1 and 3 are its mean input, 2 and 4 its
        // variance input (read here through the import's own mean * inv and variance + eps).
        let mean = g.operation_by_name("bn/mean_inv").expect("mean_inv").inputs()[0].clone();
        let var = g.operation_by_name("bn/add_epsilon").expect("add_epsilon").inputs()[0].clone();
        let names = ["bn:1", "bn:2", "bn:3", "bn:4"].map(|n| g.tensor_by_name(n).expect(n));
        let out =
            s.run(&[names[0].clone(), names[1].clone(), names[2].clone(), names[3].clone(), mean, var]).expect("runs");
        assert_eq!((&out[0], &out[1]), (&out[4], &out[5]), "bn:1 and bn:2 on {device:?}");
        assert_eq!((&out[2], &out[3]), (&out[4], &out[5]), "bn:3 and bn:4 on {device:?}");
    }
}

/// `freeze` keeps what the outputs need, with each variable a constant of its value in the
/// session (after an update), and the frozen file imports and computes the same.
#[test]
fn a_frozen_graph_holds_the_session_values_as_constants() {
    let g = Graph::new();
    let x = g.placeholder(wgflow::DType::F32, wgflow::Shape::partial(&[None, Some(2)])).expect("placeholder");
    let w = g.variable(Tensor::from_f32(&[2, 2], vec![1.0, 2.0, 3.0, 4.0]).expect("w"), "w").expect("variable");
    let y = g.named("y").matmul(&x, w.value(), false, false).expect("matmul");
    let bump = g.assign_add(&w, Tensor::from_f32(&[2, 2], vec![0.5; 4]).expect("delta")).expect("assign_add");
    let s = Session::new(&g, wgflow::ConfigProto::cpu_only()).expect("session");
    s.run(&[g.global_variables_initializer().expect("init")]).expect("init runs");
    s.run(&[&bump]).expect("update runs");
    let bytes = g.freeze(&s, &["y"]).expect("freezes");
    let frozen = Graph::new();
    frozen.import_graph_def(&bytes, &ImportOptions::default()).expect("imports");
    let types: Vec<String> = frozen.operations().iter().map(|o| o.op_type()).collect();
    assert!(!types.iter().any(|t| t == "VariableV2" || t == "AssignAdd" || t == "Assign"), "{types:?}");
    let feed = Tensor::from_f32(&[1, 2], vec![1.0, 1.0]).expect("feed");
    let (fx, fy) = (frozen.tensor_by_name("Placeholder:0").expect("x"), frozen.tensor_by_name("y:0").expect("y"));
    let fs = Session::new(&frozen, wgflow::ConfigProto::cpu_only()).expect("session");
    let out = fs.run_feed(&[fy], &[(fx, feed.clone())]).expect("runs");
    let want = s.run_feed(&[y], &[(x, feed)]).expect("runs");
    assert_eq!(out[0], want[0]);
    assert_eq!(out[0].as_ref().expect("value").to_f32_vec().expect("f32"), vec![5.0, 7.0]);
}
