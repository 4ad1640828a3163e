//! Session and graph behaviours beyond the goldens: plan caching, a growing graph, threads,
//! cycles, feeding rules, scopes, DOT output.

use wgflow::{Code, ConfigProto, DType, Graph, Session, Shape, Tensor};

fn f32s(v: &[f32]) -> Tensor {
    Tensor::from(v.to_vec())
}

#[test]
fn second_run_of_a_signature_builds_no_plan() {
    let g = Graph::new();
    let p = g.placeholder(DType::F32, Shape::known(&[2])).unwrap();
    let y = (&p * 3.0f32).unwrap();
    let s = Session::new(&g, ConfigProto::cpu_only()).unwrap();
    for i in 0..3 {
        let out = s.eval_feed(&y, &[(&p, f32s(&[1.0, i as f32]))]).unwrap();
        assert_eq!(out, f32s(&[3.0, 3.0 * i as f32]));
    }
    assert_eq!(s.stats().plans_built, 1);
    assert_eq!(s.stats().runs, 3);
    // A new signature (a different fetch) builds one more plan.
    s.eval_feed(&p, &[(&p, f32s(&[1.0, 2.0]))]).unwrap();
    assert_eq!(s.stats().plans_built, 2);
}

#[test]
fn session_sees_nodes_added_after_it_was_created() {
    let g = Graph::new();
    let a = g.constant(2.0f32).unwrap();
    let s = Session::new(&g, ConfigProto::cpu_only()).unwrap();
    assert_eq!(s.eval(&a).unwrap(), Tensor::from(2.0f32));
    let b = (&a * 5.0f32).unwrap();
    assert_eq!(s.eval(&b).unwrap(), Tensor::from(10.0f32));
}

#[test]
fn two_sessions_run_at_once_on_two_threads() {
    let g = Graph::new();
    let v = g.variable(0.0f32, "counter").unwrap();
    let inc = g.assign_add(&v, 1.0f32).unwrap();
    let init = g.global_variables_initializer().unwrap();
    let handles: Vec<_> = (0..2)
        .map(|t| {
            let (g, inc, init, v) = (g.clone(), inc.clone(), init.clone(), v.clone());
            std::thread::spawn(move || {
                let s = Session::new(&g, ConfigProto::cpu_only()).unwrap();
                s.run(&[&init]).unwrap();
                for _ in 0..(10 + t * 5) {
                    s.run(&[&inc]).unwrap();
                }
                s.eval(&v).unwrap()
            })
        })
        .collect();
    let got: Vec<Tensor> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(got, vec![Tensor::from(10.0f32), Tensor::from(15.0f32)]);
}

#[test]
fn a_cycle_through_control_inputs_is_an_error_not_a_hang() {
    let g = Graph::new();
    let a = g.constant(1.0f32).unwrap();
    let b = (&a + 1.0f32).unwrap();
    let c = (&b * 2.0f32).unwrap();
    g.add_control_input(&b.op(), &c.op()).unwrap();
    let s = Session::new(&g, ConfigProto::cpu_only()).unwrap();
    let err = s.eval(&c).unwrap_err();
    assert_eq!(err.code, Code::InvalidArgument);
    assert!(err.message.starts_with("Graph is invalid, contains a cycle"), "{}", err.message);
}

#[test]
fn feeding_rules() {
    let g = Graph::new();
    let v = g.variable(1.0f32, "v").unwrap();
    let p = g.placeholder(DType::F32, Shape::partial(&[None, Some(2)])).unwrap();
    let y = (&p * 2.0f32).unwrap();
    let s = Session::new(&g, ConfigProto::cpu_only()).unwrap();
    // A partial shape accepts any size in its unknown dimension.
    let ok = s.eval_feed(&y, &[(&p, Tensor::from_f32(&[3, 2], vec![1.0; 6]).unwrap())]).unwrap();
    assert_eq!(ok.shape(), &[3, 2]);
    let e = s.eval_feed(&y, &[(&p, f32s(&[1.0, 2.0]))]).unwrap_err();
    assert_eq!(e.message, "Cannot feed value of shape (2,) for Tensor Placeholder:0, which has shape (None, 2)");
    let e = s.eval_feed(&y, &[(&p, Tensor::from_i32(&[1, 2], vec![1, 2]).unwrap())]).unwrap_err();
    assert_eq!(e.code, Code::InvalidArgument);
    // A variable's ref tensor and a tensor marked with prevent_feeding may not be fed.
    let e = s.eval_feed(v.value(), &[(v.tensor(), Tensor::from(3.0f32))]).unwrap_err();
    assert_eq!(e.message, "Tensor v:0 may not be fed.");
    g.prevent_feeding(&y).unwrap();
    let e = s.eval_feed(&y, &[(&y, f32s(&[0.0, 0.0]))]).unwrap_err();
    assert_eq!(e.message, "Tensor mul:0 may not be fed.");
    // Unknown names are NotFound, for fetches and feeds alike.
    assert_eq!(s.eval("nope:0").unwrap_err().code, Code::NotFound);
    assert_eq!(s.run(&["nope"]).unwrap_err().code, Code::NotFound);
}

#[test]
fn assign_add_on_an_uninitialized_variable_fails_cleanly() {
    let g = Graph::new();
    let v = g.variable(vec![1.0f32, 2.0], "w").unwrap();
    let inc = g.assign_add(&v, vec![1.0f32, 1.0]).unwrap();
    let s = Session::new(&g, ConfigProto::cpu_only()).unwrap();
    let e = s.eval(&inc).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (Code::FailedPrecondition, "Attempting to use uninitialized value w"));
    assert_eq!(e.node.as_deref(), Some("AssignAdd"));
    // A static shape mismatch is refused when the graph is built.
    assert_eq!(g.assign(&v, vec![1.0f32, 2.0, 3.0]).unwrap_err().code, Code::InvalidArgument);
}

#[test]
fn nested_and_reentered_name_scopes_and_device_scopes() {
    let g = Graph::new();
    let c = {
        let _outer = g.name_scope("outer");
        let _inner = g.name_scope("inner");
        g.named("c").constant(1.0f32).unwrap()
    };
    assert_eq!(c.name(), "outer/inner/c:0");
    let again = {
        let _s = g.name_scope("outer/inner/");
        g.named("d").constant(1.0f32).unwrap()
    };
    assert_eq!(again.name(), "outer/inner/d:0");
    let on_cpu = {
        let _d = g.device("/cpu:0");
        g.constant(2.0f32).unwrap()
    };
    assert_eq!(on_cpu.op().device(), "/cpu:0");
    assert_eq!(c.op().device(), "");
    assert_eq!(g.operation_by_name("outer/inner/c").unwrap().op_type(), "Const");
    assert_eq!(g.tensor_by_name("outer/inner/c:0").unwrap(), c);
    assert_eq!(g.tensor_by_name("outer/inner/c:1").unwrap_err().code, Code::NotFound);
}

#[test]
fn closed_session_refuses_and_eval_conveniences_work() {
    let g = Graph::new();
    let v = g.variable(3.0f32, "v").unwrap();
    let init = g.global_variables_initializer().unwrap();
    let s = Session::new(&g, ConfigProto::cpu_only()).unwrap();
    init.run(&s).unwrap();
    assert_eq!(v.tensor().eval(&s).unwrap(), Tensor::from(3.0f32));
    s.close();
    let e = s.run(&[&init]).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (Code::FailedPrecondition, "Attempted to use a closed Session."));
}

#[test]
fn dot_output_names_every_node_and_edge() {
    let g = Graph::new();
    let a = g.constant(vec![1.0f32, 2.0]).unwrap();
    let _b = (&a + 1.0f32).unwrap();
    let dot = g.to_dot();
    assert!(dot.starts_with("digraph wgflow {"));
    assert!(dot.contains("n0 [label=\"Const\\n(Const)\"];"), "{dot}");
    assert!(dot.contains("n2 [label=\"add\\n(AddV2)\"];"), "{dot}");
    assert!(dot.contains("n0 -> n2 [label=\"float32 [2]\"];"), "{dot}");
}

#[test]
fn int32_division_is_float64_as_in_tf() {
    let g = Graph::new();
    let a = g.constant(vec![7i32, -7]).unwrap();
    let b = g.constant(vec![2i32, 2]).unwrap();
    let q = g.div(&a, &b).unwrap();
    assert_eq!(q.op().op_type(), "RealDiv");
    let s = Session::new(&g, ConfigProto::cpu_only()).unwrap();
    let got = s.eval(&q).unwrap();
    assert_eq!(got.dtype(), DType::F64);
    assert_eq!(got.as_f64().unwrap().iter().copied().collect::<Vec<_>>(), vec![3.5, -3.5]);
}

#[test]
fn sessions_and_graphs_are_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Session>();
    assert_send::<Graph>();
    // A session made on one thread runs on another.
    let g = Graph::new();
    let c = g.constant(vec![1.0f32, 2.0]).unwrap();
    let y = (&c * 3.0f32).unwrap();
    let s = Session::new(&g, ConfigProto::cpu_only()).unwrap();
    let got = std::thread::spawn(move || s.eval(&y).unwrap()).join().unwrap();
    assert_eq!(got, f32s(&[3.0, 6.0]));
}

#[test]
fn mismatched_input_dtypes_fail_at_build_time_in_tf_words() {
    let g = Graph::new();
    let f = g.constant(vec![1.0f32, 2.0]).unwrap();
    let i = g.constant(vec![1i32, 2]).unwrap();
    let e = g.add(&f, &i).unwrap_err();
    assert_eq!(e.message, "Input 'y' of 'AddV2' Op has type int32 that does not match type float32 of argument 'x'.");
    let e = g.bias_add(&f, &i).unwrap_err();
    assert_eq!(
        e.message,
        "Input 'bias' of 'BiasAdd' Op has type int32 that does not match type float32 of argument 'value'."
    );
}
