//! The placement rules beyond scopes: colocation of variables, GPU refusals (no kernel, memory
//! budget) with and without soft placement, transfers inserted once, no round trips,
//! generators placed with their consumers, the cost-model policy, and the run metadata sums.

mod common;

use wgflow::{
    Code, ConfigProto, DType, Graph, Output, PlacementPolicy, RunMetadata, RunOptions, Session, Shape, Tensor,
    TraceLevel,
};

const CPU: &str = "/job:localhost/replica:0/task:0/device:CPU:0";
const GPU: &str = "/job:localhost/replica:0/task:0/device:GPU:0";

fn traced(s: &Session, fetch: &Output, feeds: &[(&Output, Tensor)]) -> (Tensor, RunMetadata) {
    let mut md = RunMetadata::default();
    let opts = RunOptions { trace_level: TraceLevel::FullTrace, ..Default::default() };
    let feeds: Vec<_> = feeds.iter().map(|(k, v)| ((*k).into(), v.clone())).collect();
    let out = s.run_with(&[fetch.into()], &feeds, &opts, Some(&mut md)).unwrap();
    (out[0].clone().unwrap(), md)
}

fn logged(s: &Session, line: &str) -> bool {
    s.placement_log().iter().any(|l| l == line)
}

fn transfers(md: &RunMetadata) -> Vec<String> {
    md.step_stats.iter().filter(|s| s.op.starts_with("Memcpy")).map(|s| s.name.clone()).collect()
}

#[test]
fn a_variable_is_colocated_with_its_assign_and_read_nodes() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let v = {
        let _d = g.device("/cpu:0");
        g.variable(Tensor::from(vec![1.0f32, 2.0, 3.0]), "v").unwrap()
    };
    let y = g.mul(&v, 2.0f32).unwrap();
    let bump = g.assign_add(&v, Tensor::from(vec![1.0f32; 3])).unwrap();
    let s = Session::new(&g, ConfigProto::default()).unwrap();
    s.run(&[v.initializer()]).unwrap();
    s.run(&[&bump]).unwrap();
    let (got, md) = traced(&s, &y, &[]);
    assert_eq!(got, Tensor::from(vec![4.0f32, 6.0, 8.0]));
    for line in
        [format!("v/Assign: (Assign): {CPU}"), format!("AssignAdd: (AssignAdd): {CPU}"), format!("Mul: (Mul): {GPU}")]
    {
        assert!(logged(&s, &line), "{line} not in {:?}", s.placement_log());
    }
    // The GPU multiply reads the CPU variable through one upload.
    assert_eq!(transfers(&md), ["v/read/MemcpyHtoD"]);
    // An AssignAdd created without a scope still joins the variable's group on the CPU.
    let bump2 = g.assign_add(&v, Tensor::from(vec![1.0f32; 3])).unwrap();
    s.run(&[&bump2]).unwrap();
    assert!(logged(&s, &format!("AssignAdd_1: (AssignAdd): {CPU}")), "{:?}", s.placement_log());
    assert_eq!(s.eval(&y).unwrap(), Tensor::from(vec![6.0f32, 8.0, 10.0]));
}

#[test]
fn conflicting_devices_in_a_colocation_group_need_soft_placement() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let v = {
        let _d = g.device("/cpu:0");
        g.variable(Tensor::from(vec![1.0f32]), "v").unwrap()
    };
    let set = {
        let _d = g.device("/gpu:0");
        g.assign(&v, Tensor::from(vec![5.0f32])).unwrap()
    };
    let strict = ConfigProto { allow_soft_placement: false, ..Default::default() };
    let e = Session::new(&g, strict).unwrap().run(&[&set]).unwrap_err();
    assert_eq!(e.code, Code::InvalidArgument);
    assert!(e.message.starts_with("Cannot colocate nodes"), "{}", e.message);
    let soft = Session::new(&g, ConfigProto::default()).unwrap();
    soft.run(&[&set]).unwrap();
    assert!(logged(&soft, &format!("Assign: (Assign): {CPU}")), "{:?}", soft.placement_log());
    assert_eq!(soft.eval(v.tensor()).unwrap(), Tensor::from(vec![5.0f32]));
}

#[test]
fn a_node_without_a_gpu_kernel_goes_to_the_cpu_and_refuses_a_hard_gpu_request() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let c = g.constant(Tensor::from(vec![1.0f64, 2.0])).unwrap();
    let free = g.neg(&c).unwrap();
    let asked = {
        let _d = g.device("/device:GPU:0");
        g.abs(&c).unwrap()
    };
    let s = Session::new(&g, ConfigProto::default()).unwrap();
    assert_eq!(s.eval(&free).unwrap(), Tensor::from(vec![-1.0f64, -2.0]));
    assert!(logged(&s, &format!("Neg: (Neg): {CPU}")), "{:?}", s.placement_log());
    assert_eq!(s.eval(&asked).unwrap(), Tensor::from(vec![1.0f64, 2.0]), "soft placement");
    assert!(logged(&s, &format!("Abs: (Abs): {CPU}")));
    assert_eq!(s.stats().cpu_fallbacks, 0, "placed on the CPU, not fallen back");
    let strict = ConfigProto { allow_soft_placement: false, ..Default::default() };
    let e = Session::new(&g, strict).unwrap().eval(&asked).unwrap_err();
    assert_eq!((e.code, e.node.as_deref()), (Code::InvalidArgument, Some("Abs")));
    assert!(
        e.message.starts_with("Cannot assign a device for operation Abs: ")
            && e.message.contains("no GPU kernel for Abs"),
        "{}",
        e.message
    );
}

fn budget(bytes: u64, soft: bool) -> ConfigProto {
    let mut c = ConfigProto { allow_soft_placement: soft, ..Default::default() };
    c.gpu_options.memory_limit_bytes = Some(bytes);
    c
}

#[test]
fn a_variable_over_the_memory_budget_goes_to_the_cpu_or_fails_without_soft_placement() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let big = g.variable(Tensor::filled(DType::F32, &[4096], 1.0), "big").unwrap();
    let small = g.variable(Tensor::from(vec![2.0f32; 4]), "small").unwrap();
    let total = g.add(g.reduce_sum(&big, None, false).unwrap(), g.reduce_sum(&small, None, false).unwrap()).unwrap();
    let init = g.global_variables_initializer().unwrap();
    let soft = Session::new(&g, budget(8192, true)).unwrap();
    assert_eq!(soft.gpu_memory_budget(), Some(8192));
    soft.run(&[&init]).unwrap();
    assert_eq!(soft.eval(&total).unwrap(), Tensor::from(4096.0f32 + 8.0));
    assert!(logged(&soft, &format!("big/Assign: (Assign): {CPU}")), "{:?}", soft.placement_log());
    assert!(logged(&soft, &format!("small/Assign: (Assign): {GPU}")), "{:?}", soft.placement_log());
    assert!(soft.stats().gpu_bytes_held <= 8192, "{:?}", soft.stats());
    let e = Session::new(&g, budget(8192, false)).unwrap().run(&[&init]).unwrap_err();
    assert_eq!((e.code, e.node.as_deref()), (Code::ResourceExhausted, Some("big")), "{e}");
    // The fraction applies to the adapter memory the config states.
    let mut fraction = ConfigProto::default();
    fraction.gpu_options.adapter_memory_bytes = Some(1 << 20);
    fraction.gpu_options.per_process_gpu_memory_fraction = 0.25;
    assert_eq!(Session::new(&g, fraction).unwrap().gpu_memory_budget(), Some(1 << 18));
}

#[test]
fn an_allocation_past_the_budget_at_run_time_is_resource_exhausted() {
    if !common::gpu_ready() {
        return;
    }
    // The shape is only known at run time, so placement cannot see the size.
    let g = Graph::new();
    let x = g.placeholder(DType::F32, Shape::unknown()).unwrap();
    let y = g.exp(&x).unwrap();
    let s = Session::new(&g, budget(4096, true)).unwrap();
    let small = Tensor::from(vec![0.0f32; 8]);
    assert_eq!(s.eval_feed(&y, &[(&x, small)]).unwrap(), Tensor::from(vec![1.0f32; 8]));
    let e = s.eval_feed(&y, &[(&x, Tensor::filled(DType::F32, &[4096], 0.0))]).unwrap_err();
    assert_eq!(e.code, Code::ResourceExhausted, "{e}");
    assert!(e.message.contains("budget"), "{}", e.message);
    assert!(e.node.is_some(), "the error names the node");
}

#[test]
fn a_tensor_crosses_to_a_device_once_and_never_comes_back() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let x = g.placeholder(DType::F32, Shape::known(&[4])).unwrap();
    let a = g.exp(&x).unwrap();
    let (b, c) = {
        let _d = g.device("/cpu:0");
        (g.neg(&a).unwrap(), g.square(&a).unwrap())
    };
    // `a` is used on the GPU again after the CPU nodes: it is not uploaded back.
    let y = g.add(g.add(&a, &b).unwrap(), &c).unwrap();
    let s = Session::new(&g, ConfigProto::default()).unwrap();
    let feed = Tensor::from(vec![0.0f32; 4]);
    let before = s.stats();
    let (got, md) = traced(&s, &y, &[(&x, feed)]);
    let after = s.stats();
    assert_eq!(got, Tensor::from(vec![1.0f32; 4]), "1 - 1 + 1");
    let moved = transfers(&md);
    assert_eq!(moved.iter().filter(|n| n.starts_with("Exp/")).count(), 1, "{moved:?}");
    assert!(!moved.contains(&"Exp/MemcpyHtoD".to_string()), "no round trip: {moved:?}");
    // Up: the feed, the CPU results b and c; down: `a` once, and the fetch.
    assert_eq!(after.bytes_uploaded - before.bytes_uploaded, 16 * 3, "{moved:?}");
    assert_eq!(after.bytes_downloaded - before.bytes_downloaded, 16 * 2, "{moved:?}");
    assert_eq!(md.bytes_uploaded, 48);
    let submits = after.submits - before.submits;
    assert_eq!(submits, 2, "one mid-run readback for both CPU nodes, then the end");
}

#[test]
fn constants_go_where_their_consumers_are() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let k = g.constant(Tensor::from(vec![3.0f32; 4])).unwrap();
    let y = {
        let _d = g.device("/cpu:0");
        g.square(&k).unwrap()
    };
    let s = Session::new(&g, ConfigProto::default()).unwrap();
    assert_eq!(s.eval(&y).unwrap(), Tensor::from(vec![9.0f32; 4]));
    assert!(logged(&s, &format!("Const: (Const): {CPU}")), "{:?}", s.placement_log());
    assert_eq!(s.stats().bytes_uploaded, 0, "nothing went to the GPU");
}

#[test]
fn the_cost_model_keeps_tiny_work_off_a_software_gpu() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let x = g.placeholder(DType::F32, Shape::known(&[4])).unwrap();
    let y = g.relu(g.mul(&x, 2.0f32).unwrap()).unwrap();
    let policy = PlacementPolicy::CostModel { calibrate: false };
    let s = Session::new(&g, ConfigProto { placement_policy: policy, ..Default::default() }).unwrap();
    let feed = Tensor::from(vec![-1.0f32, 0.0, 1.0, 2.0]);
    let (got, _) = traced(&s, &y, &[(&x, feed)]);
    assert_eq!(got, Tensor::from(vec![0.0f32, 0.0, 2.0, 4.0]));
    // Four elements: the transfer alone costs more than the CPU kernels on any adapter.
    assert!(logged(&s, &format!("Relu: (Relu): {CPU}")), "{:?}", s.placement_log());
    assert!(logged(&s, &format!("Mul: (Mul): {CPU}")), "{:?}", s.placement_log());
    // TF's rule puts the same nodes on the GPU.
    let tf = Session::new(&g, ConfigProto::default()).unwrap();
    tf.eval_feed(&y, &[(&x, Tensor::from(vec![0.0f32; 4]))]).unwrap();
    assert!(logged(&tf, &format!("Relu: (Relu): {GPU}")), "{:?}", tf.placement_log());
}

#[test]
fn a_weight_read_through_an_identity_stays_with_its_cpu_consumer() {
    if !common::gpu_ready() {
        return;
    }
    // As in frozen TF graphs: Const -> Identity -> MatMul. With the matmul on the CPU, the
    // weight and its Identity must be there too (they went to the GPU and crossed every run).
    let g = Graph::new();
    let x = g.placeholder(DType::F32, Shape::known(&[1, 4])).unwrap();
    let w = g.named("w").constant(Tensor::from_f32(&[4, 2], vec![1.0; 8]).unwrap()).unwrap();
    let read = g.named("w_read").identity(&w).unwrap();
    let y = g.named("y").matmul(&x, &read, false, false).unwrap();
    let policy = PlacementPolicy::CostModel { calibrate: false };
    let s = Session::new(&g, ConfigProto { placement_policy: policy, ..Default::default() }).unwrap();
    let (got, _) = traced(&s, &y, &[(&x, Tensor::from_f32(&[1, 4], vec![1.0, 2.0, 3.0, 4.0]).unwrap())]);
    assert_eq!(got, Tensor::from_f32(&[1, 2], vec![10.0, 10.0]).unwrap());
    for line in ["y: (MatMul)", "w_read: (Identity)", "w: (Const)"] {
        assert!(logged(&s, &format!("{line}: {CPU}")), "{line}: {:?}", s.placement_log());
    }
    assert_eq!(s.stats().bytes_uploaded + s.stats().bytes_downloaded, 0, "nothing crossed");
}

#[test]
fn the_cost_model_keeps_variables_where_their_work_is_cheaper() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let a = g.variable(Tensor::filled(DType::F32, &[64, 64], 0.5), "a").unwrap();
    let y = g.matmul(a.value(), a.value(), false, false).unwrap();
    let policy = PlacementPolicy::CostModel { calibrate: false };
    let s = Session::new(&g, ConfigProto { placement_policy: policy, ..Default::default() }).unwrap();
    s.run(&[g.global_variables_initializer().unwrap()]).unwrap();
    // The model's verdict on the graph's one kernel decides where the weights live.
    let m = s.cost_model().unwrap();
    let (flops, bytes) = (2.0 * 64f64.powi(3), 3.0 * 64.0 * 64.0 * 4.0);
    let (want, other) = if m.cpu.time(flops, bytes) < m.gpu.time(flops, bytes) { (CPU, GPU) } else { (GPU, CPU) };
    let before = s.stats();
    let got = s.eval(&y).unwrap();
    assert_eq!(got, Tensor::filled(DType::F32, &[64, 64], 16.0));
    assert!(logged(&s, &format!("a/Assign: (Assign): {want}")), "{:?}", s.placement_log());
    assert!(logged(&s, &format!("a/read: (Identity): {want}")), "{:?}", s.placement_log());
    assert!(logged(&s, &format!("MatMul: (MatMul): {want}")), "{:?}", s.placement_log());
    assert!(!logged(&s, &format!("MatMul: (MatMul): {other}")), "{:?}", s.placement_log());
    let after = s.stats();
    if want == CPU {
        // A run with nothing for the GPU neither submits nor moves bytes.
        assert_eq!(after.submits, before.submits, "{after:?}");
        assert_eq!(after.bytes_uploaded + after.bytes_downloaded, before.bytes_uploaded + before.bytes_downloaded);
    } else {
        assert_eq!(after.submits, before.submits + 1, "{after:?}");
    }
}

#[test]
fn calibration_measures_both_devices() {
    if !common::gpu_ready() {
        return;
    }
    let policy = PlacementPolicy::CostModel { calibrate: true };
    let s = Session::new(&Graph::new(), ConfigProto { placement_policy: policy, ..Default::default() }).unwrap();
    let m = s.cost_model().unwrap();
    for d in [m.cpu, m.gpu] {
        assert!(d.flops_per_s.is_finite() && d.flops_per_s > 1e6, "{m:?}");
        assert!(d.bytes_per_s.is_finite() && d.bytes_per_s > 1e6, "{m:?}");
        assert!(d.launch_s > 0.0 && d.launch_s < 0.1, "{m:?}");
    }
    assert!(m.transfer_bytes_per_s > 1e6 && m.transfer_latency_s > 0.0, "{m:?}");
}

#[test]
fn gpu_step_stats_come_from_timestamp_queries() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let a = g.constant(Tensor::filled(DType::F32, &[128, 128], 0.5)).unwrap();
    let y = g.reduce_sum(g.matmul(&a, &a, false, false).unwrap(), None, false).unwrap();
    let s = Session::new(&g, ConfigProto::default()).unwrap();
    s.eval(&y).unwrap();
    let (got, md) = traced(&s, &y, &[]);
    assert_eq!(got, Tensor::from(128.0f32 * 128.0 * 128.0 * 0.25));
    let adapter = s.device();
    if adapter.contains("llvmpipe") {
        // lavapipe has TIMESTAMP_QUERY: the kernels are timed on the GPU.
        assert!(md.gpu_kernel_timestamps, "{adapter}");
    }
    if md.gpu_kernel_timestamps {
        let submit = md.step_stats.iter().find(|r| r.name == "gpu_submit").expect("the submit record");
        for name in ["MatMul", "Sum"] {
            let r = md.step_stats.iter().find(|r| r.name == name).expect("a node record");
            assert_eq!(r.device, GPU);
            assert!(r.duration_us > 0.0 && r.duration_us <= submit.duration_us, "{r:?} vs {submit:?}");
            assert!(r.start_us >= submit.start_us, "{r:?} starts after the submit {submit:?}");
        }
    }
}

#[test]
fn run_metadata_has_peak_memory_per_device() {
    let mut configs = vec![ConfigProto::cpu_only()];
    if common::gpu_ready() {
        configs.push(ConfigProto::default());
    }
    for config in configs {
        let g = Graph::new();
        let x = g.placeholder(DType::F32, Shape::known(&[256])).unwrap();
        let y = g.reduce_sum(g.exp(&x).unwrap(), None, false).unwrap();
        let s = Session::new(&g, config).unwrap();
        let (got, md) = traced(&s, &y, &[(&x, Tensor::filled(DType::F32, &[256], 0.0))]);
        assert_eq!(got, Tensor::from(256.0f32));
        let cpu = md.peak_bytes[CPU];
        assert!(cpu >= 1024, "the fed tensor is held on the host: {:?}", md.peak_bytes);
        if s.device().starts_with("GPU") {
            let gpu = md.peak_bytes[GPU];
            assert!(gpu >= 2048, "the uploaded feed and exp's output: {:?}", md.peak_bytes);
            assert!(gpu <= s.stats().gpu_bytes_held.max(gpu), "{:?}", md.peak_bytes);
        } else {
            assert!(cpu >= 2048, "the feed and exp's output: {:?}", md.peak_bytes);
        }
    }
}

#[test]
fn nodes_on_cpu_counts_what_the_placer_put_on_the_cpu() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let x = g.placeholder(DType::F32, Shape::known(&[4])).unwrap();
    let on_gpu = g.add(&x, 1.0f32).unwrap();
    let on_cpu = {
        let _d = g.device("/cpu:0");
        g.square(&on_gpu).unwrap()
    };
    let s = Session::new(&g, ConfigProto::default()).unwrap();
    let feed = [(&x, Tensor::from(vec![1.0f32, 2.0, 3.0, 4.0]))];
    assert_eq!(s.eval_feed(&on_gpu, &feed).unwrap(), Tensor::from(vec![2.0f32, 3.0, 4.0, 5.0]));
    assert_eq!((s.stats().nodes_on_cpu, s.stats().cpu_fallbacks), (0, 0), "the run stayed on the GPU");
    assert_eq!(s.eval_feed(&on_cpu, &feed).unwrap(), Tensor::from(vec![4.0f32, 9.0, 16.0, 25.0]));
    assert_eq!(s.stats().nodes_on_cpu, 1, "the square, by its device scope");
    assert_eq!(s.stats().cpu_fallbacks, 0, "placed, not fallen back");
    let cpu = Session::new(&g, ConfigProto::cpu_only()).unwrap();
    cpu.eval_feed(&on_cpu, &feed).unwrap();
    assert_eq!(cpu.stats().nodes_on_cpu, 0, "a CPU session counts none");
}
