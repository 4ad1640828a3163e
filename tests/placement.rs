//! Device placement so far: explicit device scopes, `device_count {"GPU": 0}`, soft placement
//! and its refusal, and TF's placement log format.

mod common;

use wgflow::{Code, ConfigProto, DType, Graph, RunMetadata, RunOptions, Session, Shape, Tensor, TraceLevel};

const CPU: &str = "/job:localhost/replica:0/task:0/device:CPU:0";
const GPU: &str = "/job:localhost/replica:0/task:0/device:GPU:0";

/// x + 1 on the default device, then square under a `/cpu:0` scope.
fn graph() -> (Graph, wgflow::Output, wgflow::Output) {
    let g = Graph::new();
    let x = g.placeholder(DType::F32, Shape::known(&[4])).unwrap();
    let a = (&x + 1.0f32).unwrap();
    let y = {
        let _d = g.device("/cpu:0");
        g.square(&a).unwrap()
    };
    (g, x, y)
}

fn traced_run(s: &Session, x: &wgflow::Output, y: &wgflow::Output) -> (Tensor, RunMetadata) {
    let mut md = RunMetadata::default();
    let opts = RunOptions { trace_level: TraceLevel::FullTrace, ..Default::default() };
    let out = s
        .run_with(&[y.into()], &[(x.into(), Tensor::from(vec![0.0f32, 1.0, 2.0, -3.0]))], &opts, Some(&mut md))
        .unwrap();
    (out[0].clone().unwrap(), md)
}

fn device_of<'a>(md: &'a RunMetadata, node: &str) -> &'a str {
    &md.step_stats.iter().find(|s| s.name == node).unwrap_or_else(|| panic!("no stats for {node}")).device
}

#[test]
fn an_explicit_cpu_scope_is_honoured_in_a_gpu_session() {
    if !common::gpu_ready() {
        return;
    }
    let (g, x, y) = graph();
    let s = Session::new(&g, ConfigProto { log_device_placement: true, ..Default::default() }).unwrap();
    let (got, md) = traced_run(&s, &x, &y);
    assert_eq!(got, Tensor::from(vec![1.0f32, 4.0, 9.0, 4.0]));
    assert_eq!(device_of(&md, "add"), GPU);
    assert_eq!(device_of(&md, "Square"), CPU);
    assert_eq!(s.stats().cpu_fallbacks, 0, "a node placed on the CPU is not a fallback");
    let log = s.placement_log();
    assert!(log.contains(&format!("add: (AddV2): {GPU}")), "{log:?}");
    assert!(log.contains(&format!("Square: (Square): {CPU}")), "{log:?}");
    assert!(log.contains(&format!("add/y: (Const): {GPU}")), "{log:?}");
}

#[test]
fn device_count_gpu_zero_puts_every_node_on_the_cpu() {
    let (g, x, y) = graph();
    let s = Session::new(&g, ConfigProto::cpu_only()).unwrap();
    let (got, md) = traced_run(&s, &x, &y);
    assert_eq!(got, Tensor::from(vec![1.0f32, 4.0, 9.0, 4.0]));
    assert!(md.step_stats.iter().all(|st| st.device == CPU), "{:?}", md.step_stats);
    assert!(s.placement_log().iter().all(|l| l.ends_with(CPU)), "{:?}", s.placement_log());
    // On one device, `add` and `Square` run as one fused step, named after its last node.
    let fused = md.step_stats.iter().find(|st| st.name == "Square").expect("a record for Square");
    assert_eq!((fused.op.as_str(), fused.fused_nodes.clone()), ("_FusedElementwise", vec!["add".to_string()]));
    let executed: usize = md.step_stats.iter().map(|st| 1 + st.fused_nodes.len()).sum();
    assert_eq!(s.placement_log().len(), executed, "every executed node is logged");
}

#[test]
fn a_gpu_request_without_a_gpu_needs_soft_placement() {
    let g = Graph::new();
    let c = g.constant(vec![1.0f32, 2.0]).unwrap();
    let y = {
        let _d = g.device("/device:GPU:0");
        g.neg(&c).unwrap()
    };
    let soft = Session::new(&g, ConfigProto::cpu_only()).unwrap();
    assert_eq!(soft.eval(&y).unwrap(), Tensor::from(vec![-1.0f32, -2.0]));
    assert!(soft.placement_log().contains(&format!("Neg: (Neg): {CPU}")));
    let strict = ConfigProto { allow_soft_placement: false, ..ConfigProto::cpu_only() };
    let e = Session::new(&g, strict).unwrap().eval(&y).unwrap_err();
    assert_eq!(e.code, Code::InvalidArgument);
    assert!(e.message.starts_with("Cannot assign a device for operation Neg: "), "{}", e.message);
    assert_eq!(e.node.as_deref(), Some("Neg"));
}

#[test]
fn a_malformed_device_is_an_error_naming_the_node() {
    let g = Graph::new();
    let y = {
        let _d = g.device("/tpu:0");
        g.constant(1.0f32).unwrap()
    };
    let e = Session::new(&g, ConfigProto::cpu_only()).unwrap().eval(&y).unwrap_err();
    assert_eq!((e.code, e.node.as_deref()), (Code::InvalidArgument, Some("Const")));
}

#[test]
fn run_metadata_covers_every_node_and_its_bytes_match_the_counters() {
    let gpu = common::gpu_ready();
    let (g, x, y) = graph();
    let config = if gpu { ConfigProto::default() } else { ConfigProto::cpu_only() };
    let s = Session::new(&g, config).unwrap();
    let before = s.stats();
    let (_, md) = traced_run(&s, &x, &y);
    let after = s.stats();
    // Every node of the plan has a record, and every record is a node of the plan.
    let mut logged: Vec<String> = s.placement_log().iter().map(|l| l.split(':').next().unwrap().to_string()).collect();
    let submits = md.step_stats.iter().filter(|st| st.op == "Submit").count();
    assert_eq!(submits, usize::from(gpu), "the GPU's work shows as one submit record");
    let (transfers, nodes): (Vec<_>, Vec<_>) =
        md.step_stats.iter().filter(|st| st.op != "Submit").partition(|st| st.op.starts_with("Memcpy"));
    let mut stepped: Vec<String> =
        nodes.iter().flat_map(|st| st.fused_nodes.iter().chain([&st.name])).cloned().collect();
    logged.sort();
    stepped.sort();
    assert_eq!(logged, stepped);
    let transfers: Vec<&str> = transfers.iter().map(|st| st.name.as_str()).collect();
    let partition: usize = md.partition.values().map(Vec::len).sum();
    assert_eq!(partition + submits, md.step_stats.len(), "the partition lists every step");
    assert_eq!(md.bytes_uploaded, after.bytes_uploaded - before.bytes_uploaded);
    assert_eq!(md.bytes_downloaded, after.bytes_downloaded - before.bytes_downloaded);
    if gpu {
        // The feed goes up; the CPU-placed square reads `add` back; the fetch is on the host.
        assert_eq!(md.bytes_uploaded, 16 + 4, "the feed and the constant 1.0");
        assert_eq!(md.bytes_downloaded, 16, "add, read back for the CPU node");
        assert_eq!(transfers, ["Placeholder/MemcpyHtoD", "add/MemcpyDtoH"], "one transfer per crossing edge");
        let parts = md.nodes_by_device();
        assert_eq!(parts[CPU], vec!["add/MemcpyDtoH".to_string(), "Square".to_string()]);
        assert!(parts[GPU].contains(&"add".to_string()));
    }
    let trace: serde_json::Value = serde_json::from_str(&md.to_chrome_trace()).unwrap();
    let events = trace["traceEvents"].as_array().unwrap();
    let complete: Vec<&serde_json::Value> = events.iter().filter(|e| e["ph"] == "X").collect();
    assert_eq!(complete.len(), md.step_stats.len());
    assert!(complete.iter().any(|e| e["name"] == "Square" && e["cat"] == "Square"));
    assert!(events.iter().any(|e| e["ph"] == "M" && e["args"]["name"] == CPU));
}

#[test]
fn a_run_past_its_timeout_is_deadline_exceeded_on_every_device() {
    let mut configs = vec![ConfigProto::cpu_only()];
    if common::gpu_ready() {
        configs.push(ConfigProto::default());
    }
    for config in configs {
        let (g, x, y) = graph();
        let s = Session::new(&g, config).unwrap();
        let opts = RunOptions { timeout: Some(std::time::Duration::ZERO), ..Default::default() };
        let feed = Tensor::from(vec![0.0f32; 4]);
        let e = s.run_with(&[(&y).into()], &[((&x).into(), feed.clone())], &opts, None).unwrap_err();
        assert_eq!(e.code, Code::DeadlineExceeded, "{} {e}", s.device());
        // The session is still usable afterwards.
        assert_eq!(s.eval_feed(&y, &[(&x, feed)]).unwrap(), Tensor::from(vec![1.0f32; 4]));
    }
}
