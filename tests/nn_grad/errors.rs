//! Wrong ranks, shapes and labels: `InvalidArgument` (or `Unimplemented`) with TF's text, at
//! build time when the shapes are known, at run time otherwise, never a panic.

use super::common::{self, Device};
use wgflow::{Code, DType, Graph, Output, Padding, Session, Shape, Tensor};

fn zeros(shape: &[usize]) -> Tensor {
    Tensor::filled(DType::F32, shape, 0.0)
}

/// The builder's error for `build` on constants of `inputs`.
fn build_err(inputs: &[Tensor], build: impl Fn(&Graph, &[Output]) -> wgflow::Result<Output>) -> wgflow::Error {
    let g = Graph::new();
    let xs: Vec<Output> = inputs.iter().map(|t| g.constant(t.clone()).expect("constant")).collect();
    match build(&g, &xs) {
        Ok(_) => panic!("the builder accepted known bad shapes"),
        Err(e) => e,
    }
}

/// The run-time error for `build` on placeholders of unknown shape fed with `inputs`.
fn run_err(
    device: Device,
    inputs: &[Tensor],
    build: impl Fn(&Graph, &[Output]) -> wgflow::Result<Output>,
) -> wgflow::Error {
    let g = Graph::new();
    let ps: Vec<Output> =
        inputs.iter().map(|t| g.placeholder(t.dtype(), Shape::unknown()).expect("placeholder")).collect();
    let y = build(&g, &ps).expect("unknown shapes build");
    let feeds: Vec<(&Output, Tensor)> = ps.iter().zip(inputs.iter().cloned()).collect();
    let sess = Session::new(&g, device.config()).expect("session");
    match sess.eval_feed(&y, &feeds) {
        Ok(t) => panic!("the run accepted bad shapes: {t:?}"),
        Err(e) => e,
    }
}

fn assert_err(e: &wgflow::Error, code: Code, message: &str) {
    assert_eq!((e.code, e.message.as_str()), (code, message), "{e}");
}

fn assert_prefix(e: &wgflow::Error, prefix: &str) {
    assert_eq!(e.code, Code::InvalidArgument, "{e}");
    assert!(e.message.starts_with(prefix), "{:?} does not start with {prefix:?}", e.message);
}

#[test]
fn conv_gradient_errors() {
    let s = [2usize];
    let input = |g: &Graph, i: &[Output]| g.conv2d_backprop_input(&[1, 5, 5, 1], &i[0], &i[1], &s, Padding::Same, &[1]);
    // Out_backprop 4 rows where the forward conv has 3.
    let bad = [zeros(&[3, 3, 1, 1]), zeros(&[1, 4, 3, 1])];
    let want = "Conv2DBackpropInput: Size of out_backprop doesn't match computed: actual = 4, computed = 3 \
                spatial_dim: 1 input: 5 filter: 3 output: 4 stride: 2 dilation: 1";
    assert_err(&build_err(&bad, input), Code::InvalidArgument, want);
    assert_err(&run_err(Device::Cpu, &bad, input), Code::InvalidArgument, want);
    if common::gpu_ready() {
        assert_err(&run_err(Device::Gpu, &bad, input), Code::InvalidArgument, want);
    }
    let e = build_err(&[zeros(&[3, 3, 1]), zeros(&[1, 3, 3, 1])], input);
    assert_prefix(&e, "Shape must be rank 4 but is rank 3 for '{{node Conv2DBackpropInput}} = Conv2DBackpropInput[");
    let e = run_err(Device::Cpu, &[zeros(&[3, 3, 1]), zeros(&[1, 3, 3, 1])], input);
    assert_err(&e, Code::InvalidArgument, "Conv2DBackpropInput: filter must be 4-dimensional: [3,3,1]");
    let e = build_err(&[zeros(&[3, 3, 1, 1]), zeros(&[1, 3, 3, 1])], |g, i| {
        g.conv2d_backprop_input(&[1, 5, 5], &i[0], &i[1], &s, Padding::Same, &[1])
    });
    assert_err(&e, Code::InvalidArgument, "input_sizes must have 4 elements (NHWC), got [1,5,5]");
    let filter =
        |g: &Graph, i: &[Output]| g.conv2d_backprop_filter(&i[0], &[3, 3, 2, 2], &i[1], &s, Padding::Same, &[1]);
    let e = run_err(Device::Cpu, &[zeros(&[1, 5, 5, 2]), zeros(&[1, 3, 3, 3])], filter);
    assert_err(&e, Code::InvalidArgument, "Conv2DBackpropFilter: filter and out_backprop must have the same out_depth");
    let e = run_err(Device::Cpu, &[zeros(&[2, 5, 5, 2]), zeros(&[1, 3, 3, 2])], filter);
    assert_err(
        &e,
        Code::InvalidArgument,
        "Conv2DBackpropFilter: input and out_backprop must have the same batch size, input batch: 2 outbackprop batch: 1",
    );
    let e = run_err(Device::Cpu, &[zeros(&[1, 5, 5, 3]), zeros(&[1, 3, 3, 2])], filter);
    assert_err(&e, Code::InvalidArgument, "Conv2DBackpropFilter: input depth must be evenly divisible by filter depth");
    // Two groups of two channels, but three output channels.
    let grouped =
        |g: &Graph, i: &[Output]| g.conv2d_backprop_filter(&i[0], &[3, 3, 2, 3], &i[1], &s, Padding::Same, &[1]);
    let e = run_err(Device::Cpu, &[zeros(&[1, 5, 5, 4]), zeros(&[1, 3, 3, 3])], grouped);
    assert_err(
        &e,
        Code::InvalidArgument,
        "Conv2DBackpropFilter: output depth must be evenly divisible by number of groups: 3 vs 2",
    );
}

#[test]
fn pool_and_bias_gradient_errors() {
    let max = |g: &Graph, i: &[Output]| g.max_pool_grad(&i[0], &i[1], &i[2], &[2], &[2], Padding::Valid);
    let bad = [zeros(&[1, 4, 4, 1]), zeros(&[1, 2, 2, 1]), zeros(&[1, 3, 3, 1])];
    let want = "Expected grad shape to be [1,2,2,1], but got [1,3,3,1]";
    assert_err(&run_err(Device::Cpu, &bad, max), Code::InvalidArgument, want);
    assert_err(&build_err(&bad, max), Code::InvalidArgument, want);
    let bad = [zeros(&[1, 4, 4, 1]), zeros(&[1, 2, 1]), zeros(&[1, 2, 2, 1])];
    assert_err(&run_err(Device::Cpu, &bad, max), Code::InvalidArgument, "orig_output must be 4-dimensional");
    let e = build_err(&[zeros(&[1, 2, 2])], |g, i| g.avg_pool_grad(&[1, 4, 4, 1], &i[0], &[2], &[2], Padding::Valid));
    assert_prefix(&e, "Shape must be rank 4 but is rank 3 for '{{node AvgPoolGrad}}");
    let avg = |g: &Graph, i: &[Output]| g.avg_pool_grad(&[1, 4, 4, 1], &i[0], &[2], &[2], Padding::Same);
    let e = run_err(Device::Cpu, &[zeros(&[1, 3, 2, 1])], avg);
    assert_err(&e, Code::InvalidArgument, "Expected grad shape to be [1,2,2,1], but got [1,3,2,1]");
    let e = run_err(Device::Cpu, &[zeros(&[3])], |g, i| g.bias_add_grad(&i[0]));
    assert_err(&e, Code::InvalidArgument, "Input tensor must be at least 2D: [3]");
    let e = build_err(&[zeros(&[3])], |g, i| g.bias_add_grad(&i[0]));
    assert_prefix(&e, "Shape must be at least rank 2 but is rank 1 for '{{node BiasAddGrad}}");
}

#[test]
fn xent_errors() {
    let labels = Tensor::from_i32(&[3], vec![0, 5, 1]).expect("labels");
    let sparse = |g: &Graph, i: &[Output]| g.sparse_softmax_cross_entropy_with_logits(&i[0], &i[1]);
    let e = run_err(Device::Cpu, &[labels, zeros(&[3, 3])], sparse);
    let want = "Received a label value of 5 which is outside the valid range of [0, 3).  Label values: 0 5 1";
    assert_err(&e, Code::InvalidArgument, want);
    let labels = Tensor::from_i32(&[2], vec![-1, 0]).expect("labels");
    let grad = |g: &Graph, i: &[Output]| g.sparse_softmax_cross_entropy_with_logits_grad(&i[0], &i[1]);
    let e = run_err(Device::Cpu, &[labels, zeros(&[2, 3])], grad);
    assert_prefix(&e, "Received a label value of -1 which is outside the valid range of [0, 3).");
    let labels = Tensor::from_i32(&[2], vec![0, 0]).expect("labels");
    let e = run_err(Device::Cpu, &[labels.clone(), zeros(&[3, 3])], sparse);
    let want = "logits and labels must have the same first dimension, got logits shape [3,3] and labels shape [2]";
    assert_err(&e, Code::InvalidArgument, want);
    assert_prefix(&build_err(&[labels, zeros(&[3, 3])], sparse), "Dimensions must be equal, but are 3 and 2");
    let e = build_err(&[zeros(&[2]), zeros(&[2, 3])], sparse);
    let want = "Value passed to parameter 'labels' has DataType float32 not in list of allowed values: int32, int64";
    assert_err(&e, Code::InvalidArgument, want);
    let dense = |g: &Graph, i: &[Output]| g.softmax_cross_entropy_with_logits(&i[0], &i[1]);
    let e = run_err(Device::Cpu, &[zeros(&[2, 4]), zeros(&[2, 3])], dense);
    assert_err(
        &e,
        Code::InvalidArgument,
        "logits and labels must be broadcastable: logits_size=[2,3] labels_size=[2,4]",
    );
    assert_prefix(&build_err(&[zeros(&[2, 4]), zeros(&[2, 3])], dense), "Dimensions must be equal, but are 3 and 4");
    let e = run_err(Device::Cpu, &[zeros(&[2, 3, 1]), zeros(&[2, 3, 1])], dense);
    let want = "logits and labels must be either 2-dimensional, or broadcasted to be 2-dimensional";
    assert_err(&e, Code::InvalidArgument, want);
}
