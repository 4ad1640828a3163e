//! Kernels whose output or scratch buffer is too large to hold fail the run with TF's
//! `ResourceExhausted` ("OOM when allocating tensor with shape[...]") naming the node, and the
//! session lives on (issue 12, part 3): matmuls, convolutions and their patch matrices, conv
//! gradients, reductions, transposes, concats, pools, unary ops and softmax.
//!
//! The host allocation limit is process-wide and these tests run in parallel threads, so every
//! case runs under one limit, set once: 16 MiB, far above the small runs, below the outputs
//! that must be refused (fed inputs are made by the test and are not counted).

mod common;

use std::sync::OnceLock;

use wgflow::tensor::set_host_allocation_limit;
use wgflow::{Code, ConfigProto, DType, Error, Graph, Output, Padding, Session, Shape, Tensor};

/// The host allocation limit of this binary, in bytes (4 Mi float32).
const LIMIT: u64 = 16 << 20;
/// One more float32 than the limit holds.
const OVER: usize = (LIMIT as usize / 4) + 1;

fn limit() {
    static SET: OnceLock<()> = OnceLock::new();
    SET.get_or_init(|| set_host_allocation_limit(Some(LIMIT)));
}

fn cpu(g: &Graph) -> Session {
    limit();
    Session::new(g, ConfigProto::cpu_only()).unwrap()
}

/// TF's host out-of-memory error for `shape` (as `[a,b]`) and `dtype`, at `node`.
fn assert_oom(e: &Error, shape: &str, dtype: &str, node: &str) {
    assert_eq!(e.code, Code::ResourceExhausted, "{node}: {e}");
    let want = format!(
        "OOM when allocating tensor with shape{shape} and type {dtype} on \
         /job:localhost/replica:0/task:0/device:CPU:0 by allocator cpu"
    );
    assert!(e.message.contains(&want), "{node}: {e}");
    assert_eq!(e.node.as_deref(), Some(node), "{node}: {e}");
}

fn ph(g: &Graph, dtype: DType) -> Output {
    g.placeholder(dtype, Shape::unknown()).unwrap()
}

fn f32s(shape: &[usize], f: impl Fn(usize) -> f32) -> Tensor {
    Tensor::from_f32(shape, (0..shape.iter().product()).map(f).collect()).unwrap()
}

#[test]
fn an_outer_product_past_the_limit_is_resource_exhausted_on_every_device() {
    limit();
    let g = Graph::new();
    let (a, b) = (ph(&g, DType::F32), ph(&g, DType::F32));
    let mm = g.matmul(&a, &b, false, false).unwrap();
    // [65536,1] x [1,32768] is 2^31 float32 (8 GiB).
    let (fa, fb) = (f32s(&[65536, 1], |_| 1.0), f32s(&[1, 32768], |_| 2.0));
    let mut configs = vec![("cpu", ConfigProto::cpu_only())];
    if common::gpu_ready() {
        configs.push(("gpu", ConfigProto::default()));
    }
    for (dev, config) in configs {
        let s = Session::new(&g, config).unwrap();
        let e = s.eval_feed(&mm, &[(&a, fa.clone()), (&b, fb.clone())]).unwrap_err();
        if dev == "cpu" {
            assert_oom(&e, "[65536,32768]", "float", "MatMul");
        } else {
            // Over the GPU's binding limit.
            assert_eq!(e.code, Code::ResourceExhausted, "{dev}: {e}");
        }
        let got = s.eval_feed(&mm, &[(&a, f32s(&[2, 1], |i| i as f32 + 1.0)), (&b, f32s(&[1, 2], |_| 3.0))]).unwrap();
        assert_eq!(got, f32s(&[2, 2], |i| [3.0, 3.0, 6.0, 6.0][i]), "{dev}");
    }
}

#[test]
fn integer_and_double_matmuls_past_the_limit_are_resource_exhausted() {
    let g = Graph::new();
    let (a, b) = (ph(&g, DType::I32), ph(&g, DType::I32));
    let mm = g.matmul(&a, &b, false, false).unwrap();
    let (c, d) = (ph(&g, DType::F64), ph(&g, DType::F64));
    let md = g.matmul(&c, &d, false, false).unwrap();
    let s = cpu(&g);
    // 4096 x 4096 int32 is 64 MiB.
    let ia = Tensor::from_i32(&[4096, 1], vec![1; 4096]).unwrap();
    let e = s.eval_feed(&mm, &[(&a, ia.clone()), (&b, Tensor::from_i32(&[1, 4096], vec![2; 4096]).unwrap())]);
    assert_oom(&e.unwrap_err(), "[4096,4096]", "int32", "MatMul");
    let da = Tensor::F64(ndarray::ArrayD::from_elem(ndarray::IxDyn(&[4096, 1]), 1.0).into_shared());
    let db = Tensor::F64(ndarray::ArrayD::from_elem(ndarray::IxDyn(&[1, 4096]), 1.0).into_shared());
    let e = s.eval_feed(&md, &[(&c, da), (&d, db)]).unwrap_err();
    assert_oom(&e, "[4096,4096]", "double", "MatMul_1");
    let small = s.eval_feed(
        &mm,
        &[(&a, Tensor::from_i32(&[1, 2], vec![1, 2]).unwrap()), (&b, Tensor::from_i32(&[2, 1], vec![3, 4]).unwrap())],
    );
    assert_eq!(small.unwrap(), Tensor::from_i32(&[1, 1], vec![11]).unwrap());
}

#[test]
fn a_batched_matmul_past_the_limit_is_resource_exhausted() {
    let g = Graph::new();
    let (a, b) = (ph(&g, DType::F32), ph(&g, DType::F32));
    let mm = g.matmul(&a, &b, false, false).unwrap();
    let s = cpu(&g);
    // Batches broadcast to [64,64] of 256 x 256: 2^28 float32 (1 GiB).
    let (fa, fb) = (f32s(&[64, 1, 256, 1], |_| 1.0), f32s(&[1, 64, 1, 256], |_| 1.0));
    let e = s.eval_feed(&mm, &[(&a, fa), (&b, fb)]).unwrap_err();
    assert_oom(&e, "[64,64,256,256]", "float", "MatMul");
    // Broadcast batches still multiply the right matrices.
    let x = f32s(&[2, 1, 1, 2], |i| i as f32); // [[0,1]], [[2,3]]
    let y = f32s(&[1, 3, 2, 1], |i| i as f32); // [[0],[1]], [[2],[3]], [[4],[5]]
    let got = s.eval_feed(&mm, &[(&a, x), (&b, y)]).unwrap();
    assert_eq!(got, f32s(&[2, 3, 1, 1], |i| [1.0, 3.0, 5.0, 3.0, 13.0, 23.0][i]));
}

#[test]
fn a_conv2d_whose_output_or_patch_matrix_is_past_the_limit_is_resource_exhausted() {
    let g = Graph::new();
    let (x, f) = (ph(&g, DType::F32), ph(&g, DType::F32));
    let conv = g.conv2d(&x, &f, &[1, 1, 1, 1], Padding::Valid, &[1, 1, 1, 1]).unwrap();
    let s = cpu(&g);
    // A 1x1 filter of 64 channels over 1024 x 1024: an output of 2^26 float32 (256 MiB).
    let e = s.eval_feed(&conv, &[(&x, f32s(&[1, 1024, 1024, 1], |_| 1.0)), (&f, f32s(&[1, 1, 1, 64], |_| 1.0))]);
    assert_oom(&e.unwrap_err(), "[1,1024,1024,64]", "float", "Conv2D");
    // A 512 x 512 filter over 515 x 519: 32 output pixels, but 32 patch rows of 2^18 taps
    // (32 MiB) for the patch matrix.
    let e = s.eval_feed(&conv, &[(&x, f32s(&[1, 515, 519, 1], |_| 1.0)), (&f, f32s(&[512, 512, 1, 1], |_| 1.0))]);
    assert_oom(&e.unwrap_err(), "[32,262144]", "float", "Conv2D");
    // A small convolution still computes: a 2x2 box sum over 3x3.
    let got = s.eval_feed(&conv, &[(&x, f32s(&[1, 3, 3, 1], |i| i as f32)), (&f, f32s(&[2, 2, 1, 1], |_| 1.0))]);
    assert_eq!(got.unwrap(), f32s(&[1, 2, 2, 1], |i| [8.0, 12.0, 20.0, 24.0][i]));
}

#[test]
fn a_conv_gradient_of_sizes_past_the_limit_is_resource_exhausted() {
    let g = Graph::new();
    let (f, dy) = (ph(&g, DType::F32), ph(&g, DType::F32));
    // input_sizes [1,4096,4096,1] with a stride of 4096: 64 MiB of gradient from a 1x1x1x1 out_backprop.
    let dx = g.conv2d_backprop_input(&[1, 4096, 4096, 1], &f, &dy, &[4096, 4096], Padding::Valid, &[1, 1]).unwrap();
    let s = cpu(&g);
    let e = s.eval_feed(&dx, &[(&f, f32s(&[1, 1, 1, 1], |_| 2.0)), (&dy, f32s(&[1, 1, 1, 1], |_| 3.0))]);
    assert_oom(&e.unwrap_err(), "[1,4096,4096,1]", "float", "Conv2DBackpropInput");
    let small = g.conv2d_backprop_input(&[1, 2, 2, 1], &f, &dy, &[2, 2], Padding::Valid, &[1, 1]).unwrap();
    let got = s.eval_feed(&small, &[(&f, f32s(&[1, 1, 1, 1], |_| 2.0)), (&dy, f32s(&[1, 1, 1, 1], |_| 3.0))]);
    assert_eq!(got.unwrap(), f32s(&[1, 2, 2, 1], |i| [6.0, 0.0, 0.0, 0.0][i]));
}

#[test]
fn reductions_transposes_and_concats_past_the_limit_are_resource_exhausted() {
    let g = Graph::new();
    let x = ph(&g, DType::F32);
    let y = ph(&g, DType::F32);
    let sum = g.reduce_sum(&x, Some(&[0]), false).unwrap();
    let max = g.reduce_max(&x, Some(&[0]), true).unwrap();
    let t = g.transpose(&x, None).unwrap();
    let cat = g.concat(&[x.clone(), y.clone()], 0).unwrap();
    let s = cpu(&g);
    // Fed inputs of 2 x OVER float32: each output row is past the limit.
    let big = f32s(&[2, OVER], |i| (i % 7) as f32);
    let feed = |t: &Tensor| vec![(&x, t.clone()), (&y, t.clone())];
    assert_oom(&s.eval_feed(&sum, &feed(&big)[..1]).unwrap_err(), &format!("[{OVER}]"), "float", "Sum");
    assert_oom(&s.eval_feed(&max, &feed(&big)[..1]).unwrap_err(), &format!("[1,{OVER}]"), "float", "Max");
    assert_oom(&s.eval_feed(&t, &feed(&big)[..1]).unwrap_err(), &format!("[{OVER},2]"), "float", "transpose");
    let half = f32s(&[OVER / 2 + 1], |_| 1.0);
    let e = s.eval_feed(&cat, &feed(&half)).unwrap_err();
    assert_oom(&e, &format!("[{}]", 2 * (OVER / 2 + 1)), "float", "concat");
    // Small runs of each.
    let m = f32s(&[2, 3], |i| i as f32);
    assert_eq!(s.eval_feed(&sum, &feed(&m)[..1]).unwrap(), f32s(&[3], |i| [3.0, 5.0, 7.0][i]));
    assert_eq!(s.eval_feed(&max, &feed(&m)[..1]).unwrap(), f32s(&[1, 3], |i| [3.0, 4.0, 5.0][i]));
    assert_eq!(s.eval_feed(&t, &feed(&m)[..1]).unwrap(), f32s(&[3, 2], |i| [0.0, 3.0, 1.0, 4.0, 2.0, 5.0][i]));
    assert_eq!(s.eval_feed(&cat, &feed(&m)).unwrap(), f32s(&[4, 3], |i| (i % 6) as f32));
}

#[test]
fn pools_unary_ops_casts_and_softmax_past_the_limit_are_resource_exhausted() {
    let g = Graph::new();
    let x = ph(&g, DType::F32);
    let pool = g.max_pool(&x, &[1, 2, 2, 1], &[1, 1, 1, 1], Padding::Same).unwrap();
    let exp = g.exp(&x).unwrap();
    let soft = g.softmax(&x, 0).unwrap();
    let double = g.cast(&x, DType::F64).unwrap();
    let bias = ph(&g, DType::F32);
    let biased = g.bias_add(&x, &bias).unwrap();
    let s = cpu(&g);
    let img = f32s(&[1, OVER, 1, 1], |i| (i % 5) as f32);
    assert_oom(&s.eval_feed(&pool, &[(&x, img)]).unwrap_err(), &format!("[1,{OVER},1,1]"), "float", "MaxPool");
    let flat = f32s(&[OVER], |i| (i % 3) as f32);
    assert_oom(&s.eval_feed(&exp, &[(&x, flat.clone())]).unwrap_err(), &format!("[{OVER}]"), "float", "Exp");
    assert_oom(&s.eval_feed(&soft, &[(&x, flat.clone())]).unwrap_err(), &format!("[{OVER}]"), "float", "Softmax");
    let row = f32s(&[1, OVER], |_| 1.0);
    let e = s.eval_feed(&biased, &[(&x, row), (&bias, f32s(&[OVER], |_| 1.0))]).unwrap_err();
    assert_oom(&e, &format!("[1,{OVER}]"), "float", "BiasAdd");
    // Half the float32 count in float64 is already over.
    let e = s.eval_feed(&double, &[(&x, f32s(&[OVER / 2 + 1], |_| 1.0))]).unwrap_err();
    assert_oom(&e, &format!("[{}]", OVER / 2 + 1), "double", "Cast");
    // Small runs.
    let m = f32s(&[1, 2, 2, 1], |i| i as f32);
    assert_eq!(s.eval_feed(&pool, &[(&x, m)]).unwrap(), f32s(&[1, 2, 2, 1], |i| [3.0, 3.0, 3.0, 3.0][i]));
    let v = f32s(&[2], |i| i as f32);
    assert_eq!(s.eval_feed(&exp, &[(&x, v.clone())]).unwrap(), f32s(&[2], |i| [1.0, 1f32.exp()][i]));
    let sm = s.eval_feed(&soft, &[(&x, f32s(&[2], |_| 5.0))]).unwrap();
    assert_eq!(sm, f32s(&[2], |_| 0.5));
    let d = s.eval_feed(&double, &[(&x, v)]).unwrap();
    assert_eq!(
        d,
        Tensor::F64(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[2]), vec![0.0, 1.0]).unwrap().into_shared())
    );
}
