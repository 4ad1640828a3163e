//! Bad graphs that must fail with a typed error, at build or at run, on both devices, and
//! leave the process alive: constants too large to count or to hold, broadcasts too large to
//! hold, device functions that use the graph, invalid names, devices the session lacks, and
//! assignments of another dtype (issue 12, parts 3 and 4).

mod common;

use std::sync::mpsc;
use std::time::Duration;

use wgflow::tensor::set_host_allocation_limit;
use wgflow::{Code, ConfigProto, DType, Error, Graph, Session, Shape, Tensor};

/// The host allocation limit these tests run under: far above what any of them computes, far
/// below the outputs they must refuse, so that none takes the machine's memory.
const LIMIT: u64 = 1 << 30;

/// The sessions a case runs on: the CPU, and the GPU where there is one.
fn configs() -> Vec<(&'static str, ConfigProto)> {
    set_host_allocation_limit(Some(LIMIT));
    let mut v = vec![("cpu", ConfigProto::cpu_only())];
    if common::gpu_ready() {
        v.push(("gpu", ConfigProto::default()));
    }
    v
}

fn strict(config: &ConfigProto) -> ConfigProto {
    ConfigProto { allow_soft_placement: false, ..config.clone() }
}

fn assert_oom(e: &Error, shape: &str, what: &str) {
    assert_eq!(e.code, Code::ResourceExhausted, "{what}: {e}");
    assert!(e.message.contains(shape), "{what}: {e}");
}

#[test]
fn large_ones_and_zeros_are_fills_built_without_allocating() {
    let g = Graph::new();
    // 8 GiB and 4 TiB of float32: nothing is allocated at build.
    let big = g.zeros(&[1 << 31]).unwrap();
    assert_eq!(big.op().op_type(), "Fill");
    assert_eq!(big.name(), "zeros:0");
    assert_eq!(big.shape(), Shape::known(&[1 << 31]));
    assert_eq!(big.op().inputs()[0].name(), "zeros/Const:0");
    let huge = g.ones(&[1 << 40]).unwrap();
    assert_eq!((huge.op().op_type(), huge.name()), ("Fill".to_string(), "ones:0".to_string()));
    // Below 1,000 elements they stay constants, as in TF.
    let small = g.zeros(&[2, 3]).unwrap();
    assert_eq!(small.op().op_type(), "Const");
    // A fill of 1,000 elements and tf.fill compute their values on each device.
    let ones = g.ones(&[40, 25]).unwrap();
    assert_eq!(ones.op().op_type(), "Fill");
    let sevens = g.fill(&[3, 2], 7i32).unwrap();
    assert_eq!(sevens.op().op_type(), "Fill");
    let scaled = g.mul(&ones, 2.0f32).unwrap();
    for (dev, config) in configs() {
        let s = Session::new(&g, config).unwrap();
        assert_eq!(s.eval(&ones).unwrap(), Tensor::from_f32(&[40, 25], vec![1.0; 1000]).unwrap(), "{dev}");
        assert_eq!(s.eval(&scaled).unwrap(), Tensor::from_f32(&[40, 25], vec![2.0; 1000]).unwrap(), "{dev}");
        assert_eq!(s.eval(&sevens).unwrap(), Tensor::from_i32(&[3, 2], vec![7; 6]).unwrap(), "{dev}");
        assert_eq!(s.eval(&small).unwrap(), Tensor::from_f32(&[2, 3], vec![0.0; 6]).unwrap(), "{dev}");
        if dev == "gpu" {
            // The fill kernel runs on the GPU.
            let line = "ones_1: (Fill): /job:localhost/replica:0/task:0/device:GPU:0";
            assert!(s.placement_log().iter().any(|l| l == line), "{:?}", s.placement_log());
        }
    }
}

#[test]
fn zeros_whose_element_count_overflows_fail_at_build() {
    let g = Graph::new();
    let e = g.zeros(&[1 << 40, 1 << 40]).unwrap_err();
    assert_eq!(e.code, Code::InvalidArgument, "{e}");
    assert!(e.message.contains("overflow"), "{e}");
    assert!(e.message.contains("{{node zeros}}"), "{e}");
    let e = g.fill(&[usize::MAX, 2], 1.0f32).unwrap_err();
    assert_eq!(e.code, Code::InvalidArgument, "{e}");
    // The graph is still usable.
    let c = g.zeros(&[2]).unwrap();
    let s = Session::new(&g, ConfigProto::cpu_only()).unwrap();
    assert_eq!(s.eval(&c).unwrap(), Tensor::from(vec![0.0f32; 2]));
}

#[test]
fn zeros_too_large_to_hold_fail_at_run_with_resource_exhausted() {
    let g = Graph::new();
    let huge = g.zeros(&[1 << 40]).unwrap();
    let big = g.ones(&[1 << 31]).unwrap();
    let plus = g.add(&big, 1.0f32).unwrap();
    for (dev, config) in configs() {
        let s = Session::new(&g, config).unwrap();
        let e = s.eval(&huge).unwrap_err();
        assert_oom(&e, "shape[1099511627776] and type float", dev);
        assert_eq!(e.node.as_deref(), Some("zeros"), "{dev}: {e}");
        // 8 GiB is over this test's host limit (and over any GPU binding).
        let e = s.eval(&big).unwrap_err();
        assert_oom(&e, "shape[2147483648]", dev);
        assert_oom(&s.eval(&plus).unwrap_err(), "shape[2147483648]", dev);
        // The session lives on.
        let ok = g.zeros(&[3]).unwrap();
        assert_eq!(s.eval(&ok).unwrap(), Tensor::from(vec![0.0f32; 3]), "{dev}");
    }
}

#[test]
fn tensor_constructors_check_sizes_before_allocating() {
    set_host_allocation_limit(Some(LIMIT));
    let e = Tensor::try_filled(DType::F32, &[1 << 40, 1 << 40], 0.0).unwrap_err();
    assert_eq!(e.code, Code::InvalidArgument, "{e}");
    let e = Tensor::try_filled(DType::F32, &[1 << 40], 0.0).unwrap_err();
    assert_oom(&e, "OOM when allocating tensor with shape[1099511627776] and type float", "try_filled");
    assert_eq!(Tensor::try_filled(DType::I32, &[2], 3.0).unwrap(), Tensor::from(vec![3i32, 3]));
}

#[test]
fn a_broadcast_to_2_31_elements_fails_with_resource_exhausted() {
    // [65536,1] + [1,32768] is 2^31 float32 (8 GiB): over the test's host limit on the CPU,
    // over the storage binding limit on the GPU.
    let g = Graph::new();
    let a = g.placeholder(DType::F32, Shape::unknown()).unwrap();
    let b = g.placeholder(DType::F32, Shape::unknown()).unwrap();
    let sum = g.add(&a, &b).unwrap();
    let fused = g.relu(g.mul(&sum, 2.0f32).unwrap()).unwrap();
    let sa = g.ones(&[65536, 1]).unwrap();
    let sb = g.ones(&[1, 32768]).unwrap();
    let static_sum = g.add(&sa, &sb).unwrap();
    let fa = Tensor::from_f32(&[65536, 1], vec![1.0; 65536]).unwrap();
    let fb = Tensor::from_f32(&[1, 32768], vec![2.0; 32768]).unwrap();
    for (dev, config) in configs() {
        let s = Session::new(&g, config).unwrap();
        let e = s.eval_feed(&sum, &[(&a, fa.clone()), (&b, fb.clone())]).unwrap_err();
        assert_eq!(e.code, Code::ResourceExhausted, "{dev}: {e}");
        assert_eq!(e.node.as_deref(), Some("Add"), "{dev}: {e}");
        let e = s.eval(&static_sum).unwrap_err();
        assert_oom(&e, "shape[65536,32768]", dev);
        // A fused chain falls back to the fallible kernels.
        let e = s.eval_feed(&fused, &[(&a, fa.clone()), (&b, fb.clone())]).unwrap_err();
        assert_eq!(e.code, Code::ResourceExhausted, "{dev}: {e}");
        // Small broadcasts still compute.
        let x = Tensor::from_f32(&[3, 1], vec![1.0, 2.0, 3.0]).unwrap();
        let y = Tensor::from_f32(&[1, 2], vec![10.0, 20.0]).unwrap();
        let got = s.eval_feed(&sum, &[(&a, x), (&b, y)]).unwrap();
        assert_eq!(got, Tensor::from_f32(&[3, 2], vec![11.0, 21.0, 12.0, 22.0, 13.0, 23.0]).unwrap(), "{dev}");
    }
}

#[test]
fn a_device_function_may_call_back_into_the_graph() {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let g = Graph::new();
        let seen = {
            let inner = g.clone();
            let _scope = g.device_fn(move |name, _| {
                // Reads the graph while an op is being added to it.
                let n = inner.len();
                let _ = inner.operation_by_name(name);
                if n.is_multiple_of(2) {
                    "/cpu:0".to_string()
                } else {
                    String::new()
                }
            });
            let x = g.constant(Tensor::from(vec![1.0f32, 2.0])).unwrap();
            let y = g.add(&x, 1.0f32).unwrap();
            let v = g.variable(Tensor::from(vec![0.0f32]), "v").unwrap();
            (y, v)
        };
        let devices: Vec<String> = g.operations().iter().map(|op| op.device()).collect();
        let s = Session::new(&g, ConfigProto::cpu_only()).unwrap();
        let got = s.eval(&seen.0).unwrap();
        let _ = tx.send((got, devices, seen.1.name()));
    });
    let (got, devices, var) = rx.recv_timeout(Duration::from_secs(60)).expect("the device function deadlocked");
    assert_eq!(got, Tensor::from(vec![2.0f32, 3.0]));
    // Const (0 ops before it), Add/y (1), Add (2), v/initial_value (3), v (4), ...
    assert_eq!(&devices[..5], ["/cpu:0", "", "/cpu:0", "", "/cpu:0"]);
    assert_eq!(var, "v");
}

#[test]
fn invalid_node_names_fail_at_build_with_invalid_argument() {
    let g = Graph::new();
    let bad = |e: Error, name: &str| {
        assert_eq!(e.code, Code::InvalidArgument, "{e}");
        assert!(e.message.contains(&format!("'{name}")), "{name}: {e}");
        assert!(e.message.contains("is not a valid node name"), "{e}");
    };
    bad(g.named("bad name!").constant(1.0f32).unwrap_err(), "bad name!");
    bad(g.named("_hidden").constant(1.0f32).unwrap_err(), "_hidden");
    bad(g.named("a:0").placeholder(DType::F32, Shape::unknown()).unwrap_err(), "a:0");
    bad(g.variable(Tensor::from(1.0f32), "my var").unwrap_err(), "my var");
    {
        let _s = g.name_scope("bad scope!");
        bad(g.constant(1.0f32).unwrap_err(), "bad scope!");
    }
    // The pending name does not leak into the next op, and TF's valid forms still work.
    let c = g.constant(1.0f32).unwrap();
    assert_eq!(c.name(), "Const:0");
    let d = g.named("x.y-z>w").constant(2.0f32).unwrap();
    assert_eq!(d.name(), "x.y-z>w:0");
    let inner = {
        let _a = g.name_scope("layer");
        let _b = g.name_scope("_inner");
        g.named("out").add(&c, &d).unwrap()
    };
    assert_eq!(inner.name(), "layer/_inner/out:0");
    // Names wgflow makes itself (gradients, variables, initializers) are valid.
    let w = g.variable(Tensor::from(vec![1.0f32, 2.0]), "w").unwrap();
    let loss = g.reduce_sum(g.square(&w).unwrap(), None, false).unwrap();
    let grads = g.gradients(&[loss], &[w.value().clone()], None).unwrap();
    let init = g.global_variables_initializer().unwrap();
    let s = Session::new(&g, ConfigProto::cpu_only()).unwrap();
    s.run(&[&init]).unwrap();
    assert_eq!(s.eval(grads[0].as_ref().unwrap()).unwrap(), Tensor::from(vec![2.0f32, 4.0]));
    assert_eq!(s.eval(&inner).unwrap(), Tensor::from(3.0f32));
}

#[test]
fn devices_the_session_lacks_need_soft_placement() {
    for (dev, config) in configs() {
        for request in ["/gpu:7", "/device:GPU:7", "/cpu:3", "/device:CPU:1"] {
            let g = Graph::new();
            let x = g.constant(Tensor::from(vec![1.0f32, 2.0])).unwrap();
            let three = g.constant(3.0f32).unwrap();
            let y = {
                let _d = g.device(request);
                g.named("y").mul(&x, &three).unwrap()
            };
            let e = Session::new(&g, strict(&config)).unwrap().eval(&y).unwrap_err();
            assert_eq!(e.code, Code::InvalidArgument, "{dev} {request}: {e}");
            assert!(e.message.starts_with("Cannot assign a device for operation y: "), "{dev} {request}: {e}");
            let no_gpu = dev == "cpu" && request.to_ascii_lowercase().contains("gpu");
            if no_gpu {
                // As `/gpu:0` without a GPU: the available devices are listed.
                assert!(e.message.contains("available devices are [ "), "{dev} {request}: {e}");
            } else {
                let canonical = request.replace("/gpu:", "/device:GPU:").replace("/cpu:", "/device:CPU:");
                let want = format!("Could not satisfy explicit device specification '{canonical}'");
                assert!(e.message.contains(&want), "{dev} {request}: {e}");
            }
            // Soft placement runs it on index 0 of that kind (the CPU when there is no GPU).
            let s = Session::new(&g, config.clone()).unwrap();
            assert_eq!(s.eval(&y).unwrap(), Tensor::from(vec![3.0f32, 6.0]), "{dev} {request}");
            let gpu = dev == "gpu" && request.to_ascii_lowercase().contains("gpu");
            let want = if gpu { "GPU:0" } else { "CPU:0" };
            let line = s.placement_log().iter().find(|l| l.starts_with("y: ")).cloned().unwrap_or_default();
            assert!(line.ends_with(want), "{dev} {request}: {line}");
        }
    }
    // Index 0 is unchanged: `/gpu:0` without a GPU and without soft placement fails as before.
    let g = Graph::new();
    let y = {
        let _d = g.device("/gpu:0");
        g.named("y").constant(1.0f32).unwrap()
    };
    let e = Session::new(&g, strict(&ConfigProto::cpu_only())).unwrap().eval(&y).unwrap_err();
    assert_eq!(e.code, Code::InvalidArgument, "{e}");
    assert!(e.message.contains("was explicitly assigned to /gpu:0 but available devices are"), "{e}");
}

#[test]
fn assigning_another_dtype_fails_at_build() {
    let g = Graph::new();
    let v = g.variable(Tensor::from(vec![1.0f32, 2.0]), "v").unwrap();
    let ints = g.constant(Tensor::from(vec![3i32, 4])).unwrap();
    let e = g.assign(&v, &ints).unwrap_err();
    assert_eq!(e.code, Code::InvalidArgument, "{e}");
    assert_eq!(
        e.message,
        "Input 'value' of 'Assign' Op has type int32 that does not match type float32 of argument 'ref'."
    );
    let e = g.assign_add(&v, &ints).unwrap_err();
    assert!(e.message.starts_with("Input 'value' of 'AssignAdd' Op has type int32"), "{e}");
    let e = g.assign_sub(&v, &ints).unwrap_err();
    assert!(e.message.starts_with("Input 'value' of 'AssignSub' Op"), "{e}");
    let e = g.apply_gradient_descent(&v, 0.1f32, &ints).unwrap_err();
    assert_eq!(
        e.message,
        "Input 'delta' of 'ApplyGradientDescent' Op has type int32 that does not match type float32 of argument 'var'."
    );
    let iv = g.variable(Tensor::from(vec![1i32]), "iv").unwrap();
    let e = g.assign(&iv, g.constant(Tensor::from(vec![1.5f32])).unwrap()).unwrap_err();
    assert!(e.message.contains("has type float32 that does not match type int32"), "{e}");
    // A Python-style literal is converted to the variable's dtype, as TF converts lists.
    let set = g.assign(&v, Tensor::from(vec![5i32, 6])).unwrap();
    let twice = g.mul(v.value(), 2.0f32).unwrap();
    for (dev, config) in configs() {
        let s = Session::new(&g, config).unwrap();
        s.run(&[v.initializer()]).unwrap();
        s.run(&[&set]).unwrap();
        assert_eq!(s.eval(&twice).unwrap(), Tensor::from(vec![10.0f32, 12.0]), "{dev}");
    }
}
