//! Kernels whose work per output is long (long reduced axes, long softmax rows, long-k matmuls,
//! the filter gradient of a large image, pools with huge windows) against the CPU. Drivers cut
//! long-looping invocations (lavapipe silently after about 65,535 loop trips), so these ran short
//! and returned wrong values; the kernels now keep to a loop budget (src/ops/reduce/passes.rs).
//! Integer-valued data keeps the f32 sums exact on both devices where the order differs. The
//! gradients (pool gradients over huge or many covering windows, `Conv2DBackpropInput` with a
//! long walk over taps and channels, cross-entropy over 30,000 classes) used to fall back to the
//! CPU there; they now run on the GPU in passes.

mod common;

use common::Device;
use wgflow::{Code, Graph, Output, Padding, Session, Tensor};

/// Deterministic integers in -2..=2 as f32 (sums of up to 2^22 of them are exact).
fn small_ints(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s % 5) as f32 - 2.0
        })
        .collect()
}

/// Deterministic values in [-1, 1).
fn reals(n: usize, seed: u32) -> Vec<f32> {
    small_ints(n, seed).iter().zip(small_ints(n, seed + 1)).map(|(a, b)| (a * 5.0 + b) / 12.5).collect()
}

fn constant(g: &Graph, shape: &[usize], data: Vec<f32>) -> Output {
    g.constant(Tensor::from_f32(shape, data).expect("tensor")).expect("constant")
}

fn ones(g: &Graph, shape: &[usize]) -> Output {
    constant(g, shape, vec![1.0; shape.iter().product()])
}

/// Checks that a GPU session ran everything on the GPU: no CPU fallback at run time, and no
/// node placed on the CPU (placement puts a node whose GPU lowering is `None` for its static
/// shapes on the CPU, which `check_ran_here` does not see).
fn all_on_gpu(sess: &Session) {
    Device::Gpu.check_ran_here(sess).expect("everything on the GPU");
    let on_cpu: Vec<String> = sess.placement_log().into_iter().filter(|l| !l.ends_with("device:GPU:0")).collect();
    assert!(on_cpu.is_empty(), "placed on the CPU: {on_cpu:?}");
}

/// Evaluates `ys` on the GPU (checking nothing ran on the CPU) and on the CPU.
fn both(g: &Graph, ys: &[Output]) -> Vec<(Vec<f32>, Vec<f32>)> {
    let cpu = Session::new(g, Device::Cpu.config()).expect("cpu session");
    let gpu = Session::new(g, Device::Gpu.config()).expect("gpu session");
    let got = gpu.run(ys).expect("gpu run");
    all_on_gpu(&gpu);
    let want = cpu.run(ys).expect("cpu run");
    got.into_iter()
        .zip(want)
        .zip(ys)
        .map(|((g, w), y)| {
            let (g, w) = (g.expect("gpu fetch"), w.expect("cpu fetch"));
            assert_eq!(g.shape(), w.shape(), "{}", y.op().name());
            (g.to_f32_vec().expect("f32"), w.to_f32_vec().expect("f32"))
        })
        .collect()
}

/// GPU within `rtol` (relative to the largest CPU magnitude, for f32 sums) of the CPU.
fn assert_close(what: &str, (got, want): &(Vec<f32>, Vec<f32>), rtol: f32) {
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-30);
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        let ok = a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= rtol * scale;
        assert!(ok, "{what} [{i}]: gpu {a} vs cpu {b}");
    }
}

#[test]
fn the_issue_table_rows() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let _gpu = g.device("/gpu:0");
    let sum_21846 = g.reduce_sum(ones(&g, &[21846]), None, false).expect("sum");
    let sum_axis0 = g.reduce_sum(ones(&g, &[30000, 2]), Some(&[0]), false).expect("sum");
    let bias_grad = g.bias_add_grad(ones(&g, &[70000, 2])).expect("bias_add_grad");
    let mm = g.matmul(ones(&g, &[1, 70000]), ones(&g, &[70000, 1]), false, false).expect("matmul");
    let soft = g.softmax(ones(&g, &[1, 30000]), -1).expect("softmax");
    let soft_sum = g.reduce_sum(&soft, None, false).expect("sum");
    let filter_grad = g
        .conv2d_backprop_filter(
            ones(&g, &[1, 300, 300, 1]),
            &[3, 3, 1, 1],
            ones(&g, &[1, 300, 300, 1]),
            &[1],
            Padding::Same,
            &[1],
        )
        .expect("filter gradient");
    let r = both(&g, &[sum_21846, sum_axis0, bias_grad, mm, soft_sum, filter_grad]);
    assert_eq!(r[0].0, vec![21846.0]);
    assert_eq!(r[1].0, vec![30000.0; 2]);
    assert_eq!(r[2].0, vec![70000.0; 2]);
    assert_eq!(r[3].0, vec![70000.0]);
    assert!((r[4].0[0] - 1.0).abs() < 1e-4, "sum of softmax {}", r[4].0[0]);
    // Counts of the taps inside the image: exact, as on the CPU.
    assert_eq!(r[5].0, r[5].1);
    assert_eq!(r[5].0[4], 90000.0);
    assert_eq!(r[5].0[0], 299.0 * 299.0);
}

#[test]
fn reductions_up_to_2_pow_22_elements() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let _gpu = g.device("/gpu:0");
    let dims = [4, 1024, 1024];
    let x = constant(&g, &dims, small_ints(1 << 22, 3));
    let mut ys = Vec::new();
    for axes in [None, Some(&[0][..]), Some(&[1, 2][..]), Some(&[1][..]), Some(&[0, 1][..]), Some(&[2][..])] {
        ys.push(g.reduce_sum(&x, axes, false).expect("sum"));
        ys.push(g.reduce_max(&x, axes, false).expect("max"));
        ys.push(g.reduce_mean(&x, axes, false).expect("mean"));
    }
    // A long axis 0 with two columns.
    let y = constant(&g, &[1 << 21, 2], small_ints(1 << 22, 4));
    ys.push(g.reduce_sum(&y, Some(&[0]), false).expect("sum"));
    ys.push(g.reduce_max(&y, Some(&[0]), false).expect("max"));
    let r = both(&g, &ys);
    for (k, pair) in r.iter().enumerate() {
        let what = ys[k].op().name().to_string();
        if k % 3 == 2 && k < 18 {
            assert_close(&what, pair, 1e-6);
        } else {
            // Integer sums and maxima: exact.
            assert_eq!(pair.0, pair.1, "{what}");
        }
    }
}

#[test]
fn long_softmax_rows_are_right_and_repeatable() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let _gpu = g.device("/gpu:0");
    let a = g.softmax(constant(&g, &[2, 30000], reals(60000, 5)), -1).expect("softmax");
    let b = g.softmax(constant(&g, &[1, 52173], reals(52173, 6)), -1).expect("softmax");
    // Along axis 0 (rows `inner` apart).
    let c = g.softmax(constant(&g, &[30000, 3], reals(90000, 7)), 0).expect("softmax");
    let ys = [a, b, c];
    let first = both(&g, &ys);
    let second = both(&g, &ys);
    for (k, (one, two)) in first.iter().zip(&second).enumerate() {
        assert_eq!(one.0, two.0, "softmax {k}: two GPU runs differ");
        // Each element against the CPU's, whose serial f32 row sum is the less accurate.
        for (i, (a, b)) in one.0.iter().zip(&one.1).enumerate() {
            assert!((a - b).abs() <= 2e-4 * b.abs(), "softmax {k} [{i}]: gpu {a} vs cpu {b}");
        }
        let rows_sum: f32 = one.0.iter().sum();
        assert!(rows_sum > 0.0);
    }
}

#[test]
fn long_k_matmuls() {
    if !common::gpu_ready() {
        return;
    }
    let k = 70000;
    let g = Graph::new();
    let _gpu = g.device("/gpu:0");
    let a = constant(&g, &[3, k], small_ints(3 * k, 8));
    let b = constant(&g, &[k, 5], small_ints(5 * k, 9));
    let at = constant(&g, &[k, 3], small_ints(3 * k, 10));
    let bt = constant(&g, &[4, k], small_ints(4 * k, 11));
    let plain = g.matmul(&a, &b, false, false).expect("matmul");
    let trans = g.matmul(&at, &bt, true, true).expect("matmul");
    // Batched, n and k multiples of 4 (the subgroup kernel where the adapter has it).
    let ba = constant(&g, &[2, 3, k], small_ints(6 * k, 12));
    let bb = constant(&g, &[2, k, 4], small_ints(8 * k, 13));
    let batched = g.matmul(&ba, &bb, false, false).expect("batch matmul");
    // MatMul + BiasAdd + Relu: fused (remapping is on), the epilogue applied once.
    let bias = constant(&g, &[5], vec![-3.0, 2.0, 0.5, -1.0, 100.0]);
    let fused = g.relu(g.bias_add(&plain, &bias).expect("bias_add")).expect("relu");
    let r = both(&g, &[plain, trans, batched, fused]);
    for (k, pair) in r.iter().enumerate() {
        assert_eq!(pair.0, pair.1, "matmul {k}");
    }
    assert!(r[3].0.contains(&0.0) || r[3].0.iter().all(|&v| v > 0.0));
}

#[test]
fn pools_with_huge_windows() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let _gpu = g.device("/gpu:0");
    let x = constant(&g, &[1, 300, 300, 2], reals(180000, 14));
    let max = g.max_pool(&x, &[1, 300, 300, 1], &[1, 1, 1, 1], Padding::Valid).expect("max_pool");
    let avg = g.avg_pool(&x, &[1, 300, 300, 1], &[1, 1, 1, 1], Padding::Valid).expect("avg_pool");
    // SAME with a stride: windows clipped by the padding.
    let avg_same = g.avg_pool(&x, &[1, 250, 250, 1], &[1, 100, 100, 1], Padding::Same).expect("avg_pool");
    let r = both(&g, &[max, avg, avg_same]);
    assert_eq!(r[0].0, r[0].1, "max_pool");
    assert_close("avg_pool", &r[1], 1e-4);
    assert_close("avg_pool SAME", &r[2], 1e-4);
}

#[test]
fn conv2d_with_a_long_receptive_field() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let _gpu = g.device("/gpu:0");
    // 5x5 taps of 700 channels: 17,500 terms per output, over several dispatches.
    let x = constant(&g, &[1, 6, 6, 700], small_ints(6 * 6 * 700, 15));
    let f = constant(&g, &[5, 5, 700, 6], small_ints(5 * 5 * 700 * 6, 16));
    let y = g.conv2d(&x, &f, &[1], Padding::Same, &[1]).expect("conv2d");
    // With a fused epilogue (bias and relu), applied once after the last slice.
    let bias = constant(&g, &[6], vec![-5.0, 3.0, 0.0, 1.0, -100.0, 7.0]);
    let fused = g.relu(g.bias_add(&y, &bias).expect("bias_add")).expect("relu");
    let r = both(&g, &[y, fused]);
    assert_eq!(r[0].0, r[0].1, "conv2d");
    assert_eq!(r[1].0, r[1].1, "conv2d + bias + relu");
}

#[test]
fn pool_gradients_with_huge_windows() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let _gpu = g.device("/gpu:0");
    // 25 distinct values: many ties, the first max taking the gradient.
    let x = constant(&g, &[1, 300, 300, 1], reals(90000, 20));
    let whole = [1, 300, 300, 1];
    let y = g.max_pool(&x, &whole, &[1, 1, 1, 1], Padding::Valid).expect("max_pool");
    let max_grad = g
        .max_pool_grad(&x, &y, constant(&g, &[1, 1, 1, 1], vec![3.0]), &whole, &[1, 1, 1, 1], Padding::Valid)
        .expect("max_pool_grad");
    // SAME with a stride: 3x3 windows clipped by the padding.
    let (k, s) = ([1, 250, 250, 1], [1, 100, 100, 1]);
    let y_same = g.max_pool(&x, &k, &s, Padding::Same).expect("max_pool");
    let dy = constant(&g, &[1, 3, 3, 1], small_ints(9, 21));
    let max_same = g.max_pool_grad(&x, &y_same, &dy, &k, &s, Padding::Same).expect("max_pool_grad");
    let avg_same = g.avg_pool_grad(&[1, 300, 300, 1], &dy, &k, &s, Padding::Same).expect("avg_pool_grad");
    let r = both(&g, &[max_grad, max_same, avg_same]);
    assert_eq!(r[0].0, r[0].1, "max_pool_grad");
    assert_eq!(r[0].0.iter().sum::<f32>(), 3.0);
    assert_eq!(r[1].0, r[1].1, "max_pool_grad SAME");
    assert_close("avg_pool_grad SAME", &r[2], 1e-5);
}

#[test]
fn pool_gradients_with_many_covering_windows() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let _gpu = g.device("/gpu:0");
    // Windows of 80x80 at stride 1 over 150x150: 71x71 windows cover the middle positions.
    let mut data = reals(2 * 150 * 150, 22);
    data[(100 * 150 + 100) * 2] = f32::NAN;
    let x = constant(&g, &[1, 150, 150, 2], data);
    let (k, s) = ([1, 80, 80, 1], [1, 1, 1, 1]);
    let y = g.max_pool(&x, &k, &s, Padding::Valid).expect("max_pool");
    let dy = constant(&g, &[1, 71, 71, 2], small_ints(71 * 71 * 2, 23));
    let max_grad = g.max_pool_grad(&x, &y, &dy, &k, &s, Padding::Valid).expect("max_pool_grad");
    let avg_grad = g.avg_pool_grad(&[1, 150, 150, 2], &dy, &k, &s, Padding::Valid).expect("avg_pool_grad");
    let r = both(&g, &[max_grad, avg_grad]);
    assert_eq!(r[0].0, r[0].1, "max_pool_grad");
    // The NaN is the max of every window over it.
    let nan_windows: f32 =
        (21..71).flat_map(|h| (21..71).map(move |w| (h * 71 + w) * 2)).map(|o| small_ints(71 * 71 * 2, 23)[o]).sum();
    assert_eq!(r[0].0[(100 * 150 + 100) * 2], nan_windows);
    assert_close("avg_pool_grad", &r[1], 1e-5);
}

#[test]
fn conv2d_backprop_input_with_a_long_walk() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let _gpu = g.device("/gpu:0");
    // 1x1 taps of 8192 output channels: the channels in slices.
    let f1 = constant(&g, &[1, 1, 2, 8192], small_ints(2 * 8192, 24));
    let dy1 = constant(&g, &[1, 3, 3, 8192], small_ints(9 * 8192, 25));
    let wide = g.conv2d_backprop_input(&[1, 3, 3, 2], &f1, &dy1, &[1], Padding::Valid, &[1]).expect("backprop");
    // 5x5 taps of 512 output channels, SAME: the taps in slices.
    let f2 = constant(&g, &[5, 5, 3, 512], small_ints(25 * 3 * 512, 26));
    let dy2 = constant(&g, &[1, 6, 6, 512], small_ints(36 * 512, 27));
    let taps = g.conv2d_backprop_input(&[1, 6, 6, 3], &f2, &dy2, &[1], Padding::Same, &[1]).expect("backprop");
    let r = both(&g, &[wide, taps]);
    assert_eq!(r[0].0, r[0].1, "1x1 filter, 8192 channels");
    assert_eq!(r[1].0, r[1].1, "5x5 filter, 512 channels");
    assert!(r[1].0.iter().any(|&v| v != 0.0));
}

/// Two rows of 30,000 classes (one with a NaN): losses and their gradients.
#[test]
fn cross_entropy_over_30000_classes() {
    if !common::gpu_ready() {
        return;
    }
    let classes = 30000;
    let g = Graph::new();
    let _gpu = g.device("/gpu:0");
    let logits = constant(&g, &[2, classes], reals(2 * classes, 28).iter().map(|v| v * 8.0).collect());
    let mut nan_logits = reals(3 * classes, 29);
    nan_logits[2 * classes + 5] = f32::NAN;
    let nan_logits = constant(&g, &[3, classes], nan_logits);
    // Dense labels: a distribution per row.
    let weights: Vec<f32> = small_ints(2 * classes, 30).iter().map(|v| v.abs()).collect();
    let labels: Vec<f32> = weights
        .chunks(classes)
        .flat_map(|row| {
            let total: f32 = row.iter().sum();
            row.iter().map(move |w| w / total).collect::<Vec<_>>()
        })
        .collect();
    let labels = constant(&g, &[2, classes], labels);
    let dense = g.softmax_cross_entropy_with_logits(&labels, &logits).expect("xent");
    let sparse_labels = g.constant(Tensor::from_i32(&[2], vec![7, 29999]).expect("labels")).expect("constant");
    let sparse = g.sparse_softmax_cross_entropy_with_logits(&sparse_labels, &logits).expect("sparse xent");
    let nan_labels = g.constant(Tensor::from_i32(&[3], vec![0, 1, 2]).expect("labels")).expect("constant");
    let sparse_nan = g.sparse_softmax_cross_entropy_with_logits(&nan_labels, &nan_logits).expect("sparse xent");
    let (dense_sum, sparse_sum) =
        (g.reduce_sum(&dense, None, false).expect("sum"), g.reduce_sum(&sparse, None, false).expect("sum"));
    let loss = g.add(&dense_sum, &sparse_sum).expect("add");
    let grad = g.gradients(&[loss], std::slice::from_ref(&logits), None).expect("gradients");
    let grad = grad[0].clone().expect("a gradient of the logits");
    let nan_grad = g.sparse_softmax_cross_entropy_with_logits_grad(&nan_labels, &nan_logits).expect("backprop");
    let r = both(&g, &[dense, sparse, grad, sparse_nan, nan_grad]);
    // 30,000 f32 terms summed serially (CPU) or as a tree (GPU): they differ by ~1e-5.
    assert_close("dense loss", &r[0], 1e-4);
    assert_close("sparse loss", &r[1], 1e-5);
    assert_close("gradient of both losses", &r[2], 1e-5);
    assert!(r[3].0[2].is_nan() && r[3].0[..2].iter().all(|v| v.is_finite()), "{:?}", r[3].0);
    assert_close("sparse loss with a NaN", &r[3], 1e-5);
    assert!(r[4].0[2 * classes..].iter().all(|v| v.is_nan()));
    assert_close("sparse backprop with a NaN", &r[4], 1e-5);
}

#[test]
fn sparse_label_out_of_range_over_30000_classes() {
    if !common::gpu_ready() {
        return;
    }
    let classes = 30000;
    let g = Graph::new();
    let _gpu = g.device("/gpu:0");
    let logits = constant(&g, &[2, classes], reals(2 * classes, 31));
    let labels = g.constant(Tensor::from_i32(&[2], vec![3, 30000]).expect("labels")).expect("constant");
    let loss = g.sparse_softmax_cross_entropy_with_logits(&labels, &logits).expect("sparse xent");
    let backprop = g.sparse_softmax_cross_entropy_with_logits_grad(&labels, &logits).expect("backprop");
    for y in [loss, backprop] {
        let gpu = Session::new(&g, Device::Gpu.config()).expect("gpu session");
        let err = gpu.run(std::slice::from_ref(&y)).expect_err("a label out of range");
        assert_eq!(err.code, Code::InvalidArgument, "{err}");
        assert_eq!(err.message, "Received a label value of 30000 which is outside the valid range of [0, 30000).");
        assert_eq!(err.node.as_deref(), Some(y.op().name().as_str()));
        all_on_gpu(&gpu);
    }
}
