//! Fusion (`graph_options.remapping`, on by default): a chain of elementwise ops runs as one
//! step, `Conv2D` / `MatMul` with their bias and activation as one kernel, on the CPU and on
//! the GPU, with the values and the errors of the unfused graph.

mod common;

use wgflow::{
    Code, ConfigProto, DType, Graph, Output, Padding, RunMetadata, RunOptions, Session, Shape, Tensor, TraceLevel,
};

fn config(gpu: bool, remapping: bool) -> ConfigProto {
    let mut c = if gpu { ConfigProto::default() } else { ConfigProto::cpu_only() };
    c.graph_options.remapping = remapping;
    c
}

/// The devices to run on: the CPU, and the GPU when there is one (CI=true insists).
fn devices() -> Vec<bool> {
    if common::gpu_ready() {
        vec![false, true]
    } else {
        vec![false]
    }
}

/// Values in [-1.1, 1.1] that are not all positive, different per `seed`.
fn ramp(shape: &[usize], seed: usize) -> Tensor {
    let n: usize = shape.iter().product();
    let data = (0..n).map(|i| (((i * 37 + seed * 11) % 23) as f32 - 11.0) * 0.1).collect();
    Tensor::from_f32(shape, data).unwrap()
}

/// Runs `fetches` traced: the values and the step stats.
fn run(g: &Graph, config: ConfigProto, fetches: &[&Output], feeds: &[(&Output, Tensor)]) -> (Vec<Tensor>, RunMetadata) {
    let s = Session::new(g, config).unwrap();
    let mut md = RunMetadata::default();
    let opts = RunOptions { trace_level: TraceLevel::FullTrace, ..Default::default() };
    let fetches: Vec<wgflow::Fetch> = fetches.iter().map(|&f| f.into()).collect();
    let feeds: Vec<(wgflow::FeedKey, Tensor)> = feeds.iter().map(|(k, v)| ((*k).into(), v.clone())).collect();
    let out = s.run_with(&fetches, &feeds, &opts, Some(&mut md)).unwrap();
    (out.into_iter().map(|t| t.unwrap()).collect(), md)
}

/// The op and the absorbed nodes of the step stats record named `name`.
fn record(md: &RunMetadata, name: &str) -> (String, Vec<String>) {
    let r = md.step_stats.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("no record for {name}"));
    (r.op.clone(), r.fused_nodes.clone())
}

fn assert_close(got: &Tensor, want: &Tensor, tol: f32, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    let (a, b) = (got.to_f32_vec().unwrap(), want.to_f32_vec().unwrap());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{what}: element {i} is {x}, unfused {y}");
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn an_elementwise_chain_with_broadcasts_runs_as_one_step_with_the_unfused_values() {
    let g = Graph::new();
    let a = g.placeholder(DType::F32, Shape::known(&[2, 3, 4])).unwrap();
    let scale = g.constant(ramp(&[4], 1)).unwrap(); // a suffix of the output's shape
    let shift = g.constant(ramp(&[3, 1], 2)).unwrap(); // any other broadcast
    let y = g.tanh(((g.relu(((&a * &scale).unwrap() + &shift).unwrap()).unwrap()) * 0.5f32).unwrap()).unwrap();
    let feed = ramp(&[2, 3, 4], 3);
    for gpu in devices() {
        let (fused, md) = run(&g, config(gpu, true), &[&y], &[(&a, feed.clone())]);
        let (plain, md_plain) = run(&g, config(gpu, false), &[&y], &[(&a, feed.clone())]);
        assert_eq!(record(&md, "Tanh"), ("_FusedElementwise".into(), strings(&["mul", "add", "Relu", "mul_1"])));
        assert_eq!(record(&md_plain, "Tanh").0, "Tanh");
        assert!(md_plain.step_stats.iter().any(|r| r.name == "mul_1"), "unfused, every node is a step");
        if gpu {
            assert_close(&fused[0], &plain[0], 1e-6, "gpu");
        } else {
            assert_eq!(fused[0], plain[0], "the CPU twin computes exactly what the ops do");
        }
    }
}

#[test]
fn a_large_chain_on_the_cpu_crosses_blocks_and_tasks() {
    // More elements than one parallel task, not a multiple of the block, with a bias.
    let g = Graph::new();
    let a = g.placeholder(DType::F32, Shape::known(&[70001, 3])).unwrap();
    let b = g.constant(ramp(&[3], 4)).unwrap();
    let y = g.relu(((&a * &a).unwrap() - &b).unwrap()).unwrap();
    let feed = ramp(&[70001, 3], 5);
    let (fused, md) = run(&g, config(false, true), &[&y], &[(&a, feed.clone())]);
    let (plain, _) = run(&g, config(false, false), &[&y], &[(&a, feed)]);
    assert_eq!(record(&md, "Relu").0, "_FusedElementwise");
    assert_eq!(fused[0], plain[0]);
}

#[test]
fn outputs_large_enough_to_stream_hold_the_values() {
    // Past the size at which the CPU streams its outputs (4M floats, into a recycled buffer:
    // the second and third runs get the one the first freed), at an odd length. Values in
    // {-1, 0, 1} keep every partial sum an exact integer.
    let n = (1 << 22) + 7;
    let unit = |seed: usize| -> Vec<f32> { (0..n).map(|i| ((i * 7 + seed) % 3) as f32 - 1.0).collect() };
    let (x, w) = (unit(1), unit(2));
    let g = Graph::new();
    let a = g.placeholder(DType::F32, Shape::known(&[n])).unwrap();
    let b = g.constant(Tensor::from_f32(&[n], w.clone()).unwrap()).unwrap();
    let chain = g.reduce_sum(g.relu(((&a * &b).unwrap() + &a).unwrap()).unwrap(), None, false).unwrap();
    let sum = g.reduce_sum((&a + &b).unwrap(), None, false).unwrap();
    let want_chain: f32 = x.iter().zip(&w).map(|(x, w)| (x * w + x).max(0.0)).sum();
    let want_sum: f32 = x.iter().zip(&w).map(|(x, w)| x + w).sum();
    let feed = Tensor::from_f32(&[n], x).unwrap();
    for remapping in [true, false] {
        let s = Session::new(&g, config(false, remapping)).unwrap();
        for step in 0..3 {
            let got = s.run_with(
                &[(&chain).into(), (&sum).into()],
                &[((&a).into(), feed.clone())],
                &RunOptions::default(),
                None,
            );
            let got: Vec<f32> = got.unwrap().into_iter().map(|t| t.unwrap().to_f32_vec().unwrap()[0]).collect();
            assert_eq!(got, vec![want_chain, want_sum], "remapping {remapping}, run {step}");
        }
    }
}

#[test]
fn a_value_read_twice_or_fetched_is_not_fused_away() {
    let g = Graph::new();
    let a = g.placeholder(DType::F32, Shape::known(&[8])).unwrap();
    let x = (&a * 3.0f32).unwrap();
    let twice = (g.relu(&x).unwrap() + &x).unwrap();
    let y = g.square(&x).unwrap();
    let feed = ramp(&[8], 6);
    for gpu in devices() {
        let (got, md) = run(&g, config(gpu, true), &[&twice], &[(&a, feed.clone())]);
        assert_eq!(record(&md, "mul").0, "Mul", "read by two nodes");
        assert_eq!(record(&md, "add"), ("_FusedElementwise".into(), strings(&["Relu"])));
        let (plain, _) = run(&g, config(gpu, false), &[&twice], &[(&a, feed.clone())]);
        assert_close(&got[0], &plain[0], 1e-6, "read twice");

        let (got, md) = run(&g, config(gpu, true), &[&x, &y], &[(&a, feed.clone())]);
        assert_eq!(record(&md, "mul").0, "Mul", "fetched");
        assert_eq!(record(&md, "Square").0, "Square");
        let (plain, _) = run(&g, config(gpu, false), &[&x, &y], &[(&a, feed.clone())]);
        assert_eq!(got, plain);
    }
}

#[test]
fn conv2d_with_bias_and_relu_runs_as_one_fused_conv() {
    // Cout 8 (the vec4 and subgroup kernels) and Cout 6 (the generic kernel).
    for (cout, stride) in [(8, 1), (6, 2)] {
        let g = Graph::new();
        let x = g.placeholder(DType::F32, Shape::known(&[2, 6, 5, 4])).unwrap();
        let f = g.constant(ramp(&[3, 3, 4, cout], 7)).unwrap();
        let b = g.constant(ramp(&[cout], 8)).unwrap();
        let conv = g.conv2d(&x, &f, &[stride], Padding::Same, &[1]).unwrap();
        let y = g.relu(g.bias_add(&conv, &b).unwrap()).unwrap();
        let feed = ramp(&[2, 6, 5, 4], 9);
        let (cpu, _) = run(&g, config(false, false), &[&y], &[(&x, feed.clone())]);
        for gpu in devices() {
            let (got, md) = run(&g, config(gpu, true), &[&y], &[(&x, feed.clone())]);
            assert_eq!(record(&md, "Relu"), ("_FusedConv2D".into(), strings(&["Conv2D", "BiasAdd"])));
            let kernels = md.step_stats.iter().filter(|r| !matches!(r.op.as_str(), "Const" | "Submit" | "MemcpyHtoD"));
            assert_eq!(kernels.count(), 1, "{:?}", md.step_stats);
            assert_close(&got[0], &cpu[0], 1e-5, &format!("cout {cout}, gpu {gpu}"));
            assert!(got[0].to_f32_vec().unwrap().contains(&0.0), "relu clipped something");
        }
    }
}

#[test]
fn matmul_with_bias_and_tanh_runs_as_one_fused_matmul() {
    // n, k multiples of 4 (the subgroup kernel) and not (the tiled kernel); a transpose.
    for (m, k, n, tb) in [(5, 8, 12, false), (3, 5, 6, true)] {
        let g = Graph::new();
        let a = g.placeholder(DType::F32, Shape::known(&[m, k])).unwrap();
        let w_shape = if tb { [n, k] } else { [k, n] };
        let w = g.constant(ramp(&w_shape, 10)).unwrap();
        let b = g.constant(ramp(&[n], 11)).unwrap();
        let y = g.tanh(g.bias_add(g.matmul(&a, &w, false, tb).unwrap(), &b).unwrap()).unwrap();
        let feed = ramp(&[m, k], 12);
        let (cpu, _) = run(&g, config(false, false), &[&y], &[(&a, feed.clone())]);
        for gpu in devices() {
            let (got, md) = run(&g, config(gpu, true), &[&y], &[(&a, feed.clone())]);
            assert_eq!(record(&md, "Tanh"), ("_FusedMatMul".into(), strings(&["MatMul", "BiasAdd"])));
            assert_close(&got[0], &cpu[0], 1e-5, &format!("{m}x{k}x{n}, gpu {gpu}"));
        }
    }
}

#[test]
fn an_epilogue_that_would_grow_the_output_is_not_fused() {
    // [4, 1] x [1, 3] then + [2, 1, 3]: the sum is bigger than the product, so the add stays.
    let g = Graph::new();
    let a = g.constant(ramp(&[4, 1], 13)).unwrap();
    let w = g.constant(ramp(&[1, 3], 14)).unwrap();
    let c = g.constant(ramp(&[2, 1, 3], 15)).unwrap();
    let y = g.relu((g.matmul(&a, &w, false, false).unwrap() + &c).unwrap()).unwrap();
    for gpu in devices() {
        let (got, md) = run(&g, config(gpu, true), &[&y], &[]);
        assert_eq!(record(&md, "MatMul").0, "MatMul");
        assert_eq!(record(&md, "Relu"), ("_FusedElementwise".into(), strings(&["add"])));
        let (plain, _) = run(&g, config(gpu, false), &[&y], &[]);
        assert_close(&got[0], &plain[0], 1e-6, "grown");
        assert_eq!(got[0].shape(), &[2, 4, 3]);
    }
}

#[test]
fn a_broadcast_error_in_a_fused_chain_is_the_unfused_error() {
    let g = Graph::new();
    let a = g.placeholder(DType::F32, Shape::unknown()).unwrap();
    let b = g.placeholder(DType::F32, Shape::unknown()).unwrap();
    let y = (g.relu((&a + &b).unwrap()).unwrap() * 2.0f32).unwrap();
    for gpu in devices() {
        let mut errors = Vec::new();
        for remapping in [true, false] {
            let s = Session::new(&g, config(gpu, remapping)).unwrap();
            let feeds = [((&a).into(), ramp(&[2, 3], 1)), ((&b).into(), ramp(&[4], 2))];
            let e = s.run_with(&[(&y).into()], &feeds, &RunOptions::default(), None).unwrap_err();
            errors.push((e.code, e.message));
        }
        assert_eq!(errors[0], errors[1]);
        assert_eq!(errors[0], (Code::InvalidArgument, "Incompatible shapes: [2,3] vs. [4]".to_string()));
    }
}

#[test]
fn a_fused_chain_of_integers_runs_op_by_op() {
    // Only float32 chains fuse; an int32 chain keeps its nodes.
    let g = Graph::new();
    let a = g.constant(Tensor::from_i32(&[3], vec![-2, 0, 5]).unwrap()).unwrap();
    let y = g.relu((&a * 3i32).unwrap()).unwrap();
    let (got, md) = run(&g, config(false, true), &[&y], &[]);
    assert_eq!(record(&md, "Relu").0, "Relu");
    assert_eq!(got[0], Tensor::from_i32(&[3], vec![0, 0, 15]).unwrap());
}
