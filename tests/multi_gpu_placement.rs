//! TF's placement rules with several GPUs: requests for GPU ordinals, a GPU that does not
//! exist, colocation of a variable's group across GPUs, per-GPU memory budgets, and the config
//! that makes the GPUs (`visible_device_list`, `virtual_devices`), with TF's messages.

mod common;

use wgflow::{Code, ConfigProto, Graph, Output, Session, Tensor, VirtualDevices};

const GPU0: &str = "/job:localhost/replica:0/task:0/device:GPU:0";
const GPU1: &str = "/job:localhost/replica:0/task:0/device:GPU:1";
const CPU: &str = "/job:localhost/replica:0/task:0/device:CPU:0";

fn config(gpus: usize, soft: bool) -> ConfigProto {
    let mut c = ConfigProto { allow_soft_placement: soft, ..Default::default() };
    if gpus > 1 {
        c.gpu_options.virtual_devices = vec![VirtualDevices::split(gpus)];
    }
    c
}

fn line_of(s: &Session, name: &str) -> String {
    s.placement_log().iter().find(|l| l.starts_with(&format!("{name}: "))).cloned().unwrap_or_default()
}

/// `y = x * 3` with `y` built under `device`.
fn scaled(g: &Graph, device: &str) -> Output {
    let x = g.constant(Tensor::from(vec![1.0f32, 2.0])).unwrap();
    let three = g.constant(3.0f32).unwrap();
    let _d = g.device(device);
    g.named("y").mul(&x, &three).unwrap()
}

#[test]
fn a_gpu_the_session_lacks_fails_with_tf_message_or_goes_to_gpu0_with_soft_placement() {
    if !common::gpu_ready() {
        return;
    }
    for (gpus, request) in [(1, "/device:GPU:1"), (2, "/gpu:2")] {
        let g = Graph::new();
        let y = scaled(&g, request);
        let e = Session::new(&g, config(gpus, false)).unwrap().eval(&y).unwrap_err();
        let mut available = vec![CPU, GPU0];
        if gpus == 2 {
            available.push(GPU1);
        }
        let index = request.rsplit(':').next().unwrap();
        let want = format!(
            "Cannot assign a device for operation y: Could not satisfy explicit device specification \
             '/device:GPU:{index}' because no devices matching that specification are registered in this \
             process; available devices: {}",
            available.join(", ")
        );
        assert_eq!((e.code, e.message.as_str()), (Code::InvalidArgument, want.as_str()));
        let s = Session::new(&g, config(gpus, true)).unwrap();
        assert_eq!(s.eval(&y).unwrap(), Tensor::from(vec![3.0f32, 6.0]));
        assert_eq!(line_of(&s, "y"), format!("y: (Mul): {GPU0}"));
    }
    // GPU:1 of a two-GPU session is honoured, in every spelling.
    for request in ["/gpu:1", "/device:GPU:1", "/job:localhost/replica:0/task:0/device:GPU:1"] {
        let g = Graph::new();
        let y = scaled(&g, request);
        let s = Session::new(&g, config(2, false)).unwrap();
        assert_eq!(s.eval(&y).unwrap(), Tensor::from(vec![3.0f32, 6.0]));
        assert_eq!(line_of(&s, "y"), format!("y: (Mul): {GPU1}"), "{request}");
    }
}

#[test]
fn a_variable_group_asking_for_two_gpus_cannot_be_colocated_without_soft_placement() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let v = {
        let _d = g.device("/device:GPU:0");
        g.variable(Tensor::from(vec![1.0f32]), "v").unwrap()
    };
    let set = {
        let _d = g.device("/device:GPU:1");
        g.named("set").assign(&v, Tensor::from(vec![5.0f32])).unwrap()
    };
    let e = Session::new(&g, config(2, false)).unwrap().run(&[&set]).unwrap_err();
    assert_eq!(e.code, Code::InvalidArgument);
    assert_eq!(
        e.message,
        "Cannot colocate nodes {{colocation_node v}} and {{colocation_node set}}: Cannot merge devices with \
         incompatible ids: '/device:GPU:0' and '/device:GPU:1'"
    );
    // Soft placement merges the group onto GPU:0, as TF drops the id.
    let s = Session::new(&g, config(2, true)).unwrap();
    s.run(&[&set]).unwrap();
    assert_eq!(line_of(&s, "set"), format!("set: (Assign): {GPU0}"));
    assert_eq!(s.eval(v.tensor()).unwrap(), Tensor::from(vec![5.0f32]));
}

#[test]
fn each_gpu_has_its_own_memory_budget() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let x = g.constant(Tensor::filled(wgflow::DType::F32, &[1024], 1.0)).unwrap();
    let small = {
        let _d = g.device("/gpu:1");
        g.named("small").exp(&x).unwrap()
    };
    let mut c = config(1, false);
    c.gpu_options.virtual_devices = vec![VirtualDevices { memory_limit_bytes: vec![None, Some(1024)] }];
    let s = Session::new(&g, c.clone()).unwrap();
    let limits: Vec<Option<u64>> = s.list_devices().iter().map(|d| d.memory_limit_bytes).collect();
    assert_eq!(limits, vec![None, None, Some(1024)]);
    let e = s.eval(&small).unwrap_err();
    assert_eq!(e.code, Code::ResourceExhausted, "{e}");
    assert!(e.message.starts_with("OOM when placing small on the GPU"), "{e}");
    c.allow_soft_placement = true;
    let s = Session::new(&g, c).unwrap();
    assert_eq!(s.eval(&small).unwrap(), Tensor::filled(wgflow::DType::F32, &[1024], f64::from(1f32.exp())));
    assert_eq!(line_of(&s, "small"), format!("small: (Exp): {CPU}"));
}

#[test]
fn visible_device_lists_select_adapters_with_tf_messages() {
    if !common::gpu_ready() {
        return;
    }
    let adapters = wgflow::gpu::adapters().len();
    let run = |list: &str, virtual_devices: Vec<VirtualDevices>| {
        let mut c = ConfigProto::default();
        c.gpu_options.visible_device_list = list.to_string();
        c.gpu_options.virtual_devices = virtual_devices;
        Session::new(&Graph::new(), c).map(|s| s.list_devices().len())
    };
    // The first adapter, split in two, and listed explicitly.
    assert_eq!(run("0", vec![VirtualDevices::split(2)]), Ok(3));
    let e = run(&format!("0,{adapters}"), Vec::new()).unwrap_err();
    assert_eq!(
        (e.code, e.message),
        (
            Code::InvalidArgument,
            format!(
                "'visible_device_list' listed an invalid Device id '{adapters}' but visible device count is {adapters}"
            )
        )
    );
    let e = run("0,0", Vec::new()).unwrap_err();
    assert_eq!(e.message, "visible_device_list contained a duplicate entry: 0,0");
    let e = run("0", vec![VirtualDevices::split(1), VirtualDevices::split(1)]).unwrap_err();
    assert_eq!(
        e.message,
        "The number of GPUs in visible_device_list doesn't match the number of elements in the virtual_devices \
         list. #GPUs in visible_device_list: 1 virtual_devices.size(): 2"
    );
    // `device_count {"GPU": 0}` still means no GPU at all.
    let mut c = ConfigProto::cpu_only();
    c.gpu_options.virtual_devices = vec![VirtualDevices::split(2)];
    assert_eq!(Session::new(&Graph::new(), c).unwrap().list_devices().len(), 1);
}

#[test]
fn free_nodes_and_the_cost_model_use_gpu0_and_requests_keep_gpu1() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let x = g.constant(Tensor::from(vec![1.0f32, -2.0])).unwrap();
    let a = g.named("a").abs(&x).unwrap();
    let b = {
        let _d = g.device("/gpu:1");
        g.named("b").neg(&a).unwrap()
    };
    for policy in [wgflow::PlacementPolicy::Tf, wgflow::PlacementPolicy::CostModel { calibrate: false }] {
        let mut c = config(2, false);
        c.placement_policy = policy;
        let s = Session::new(&g, c).unwrap();
        assert_eq!(s.eval(&b).unwrap(), Tensor::from(vec![-1.0f32, -2.0]));
        assert_eq!(line_of(&s, "b"), format!("b: (Neg): {GPU1}"), "{policy:?}");
        let a_line = line_of(&s, "a");
        assert!(a_line.ends_with(GPU0) || a_line.ends_with(CPU), "{policy:?}: {a_line}");
    }
}
