//! The GPU NN kernels against the CPU ones, bit for bit, on cases the goldens leave out:
//! grouped convolutions with 4k channels per group, odd channel counts, dilations with SAME
//! padding, an empty batch, depthwise max pooling, NaN in max pooling, SAME average pooling,
//! both pool kernels (four channels per load or one) and a rank-3 `BiasAdd`. Values are
//! multiples of 1/4, so every summation order is exact. Softmax, whose sums the GPU adds in
//! another order, is compared within a tolerance, on every kernel it has.

mod common;

use common::{Device, Tol};
use wgflow::{Graph, Output, Padding, Session, Tensor};

fn data(n: usize, seed: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 7 + seed * 3) % 13) as f32 * 0.25 - 1.5).collect()
}

fn tensor(shape: &[usize], seed: usize) -> Tensor {
    Tensor::from_f32(shape, data(shape.iter().product(), seed)).expect("f32 tensor")
}

/// Runs `build` on both devices and compares the GPU result with the CPU's exactly.
fn same_on_both(what: &str, inputs: &[Tensor], build: impl Fn(&Graph, &[Output]) -> wgflow::Result<Output>) {
    close_on_both(what, inputs, Tol::Exact, build);
}

/// Runs `build` on both devices and compares the GPU result with the CPU's within `tol`.
fn close_on_both(what: &str, inputs: &[Tensor], tol: Tol, build: impl Fn(&Graph, &[Output]) -> wgflow::Result<Output>) {
    let run = |device: Device| -> Tensor {
        let g = Graph::new();
        let xs: Vec<Output> = inputs.iter().map(|t| g.constant(t.clone()).expect("constant")).collect();
        let y = build(&g, &xs).unwrap_or_else(|e| panic!("{what}: build: {e}"));
        let sess = Session::new(&g, device.config()).expect("session");
        let out = sess.eval(&y).unwrap_or_else(|e| panic!("{what} on {}: {e}", device.name()));
        device.check_ran_here(&sess).unwrap_or_else(|e| panic!("{what}: {e}"));
        out
    };
    let (cpu, gpu) = (run(Device::Cpu), run(Device::Gpu));
    common::compare(&gpu, &cpu, tol).unwrap_or_else(|e| panic!("{what}: gpu vs cpu: {e}"));
    println!("{what}: gpu == cpu, shape {:?}", gpu.shape());
}

/// Input shape, filter shape, strides, padding, dilations.
type ConvCase = (&'static [usize], &'static [usize], &'static [usize], Padding, &'static [usize]);

#[test]
fn conv2d_gpu_matches_cpu() {
    if !common::gpu_ready() {
        return;
    }
    let cases: &[ConvCase] = &[
        (&[2, 7, 6, 8], &[3, 2, 4, 8], &[2, 1], Padding::Same, &[1, 1]), // 2 groups of 4 channels
        (&[1, 6, 6, 6], &[2, 2, 2, 12], &[1], Padding::Valid, &[1]),     // 3 groups of 4
        (&[1, 6, 5, 6], &[3, 3, 2, 9], &[1], Padding::Same, &[2, 1]),    // 3 groups of 3, dilated
        (&[2, 5, 5, 3], &[3, 3, 3, 5], &[2], Padding::Same, &[1]),       // 5 channels: 4 + 1
        (&[1, 9, 8, 4], &[3, 2, 4, 16], &[1, 2], Padding::Same, &[2, 3]), // dilated SAME
        (&[0, 4, 4, 3], &[3, 3, 3, 4], &[1], Padding::Same, &[1]),       // empty batch
    ];
    for (x, f, s, p, d) in cases {
        let what = format!("conv2d {x:?} * {f:?} strides {s:?} {p:?} dilations {d:?}");
        same_on_both(&what, &[tensor(x, 1), tensor(f, 2)], |g, i| g.conv2d(&i[0], &i[1], s, *p, d));
    }
}

#[test]
fn pools_and_bias_add_gpu_match_cpu() {
    if !common::gpu_ready() {
        return;
    }
    let mut x = tensor(&[2, 5, 6, 4], 3);
    if let Tensor::F32(a) = &mut x {
        a[[0, 1, 1, 2]] = f32::NAN;
        a[[1, 4, 5, 0]] = f32::NAN;
    }
    for p in [Padding::Same, Padding::Valid] {
        for (k, s) in [(&[2usize, 2][..], &[2usize, 2][..]), (&[3, 2], &[2, 3]), (&[1, 1], &[1, 1])] {
            let what = format!("max_pool k {k:?} s {s:?} {p:?}");
            same_on_both(&what, std::slice::from_ref(&x), |g, i| g.max_pool(&i[0], k, s, p));
            let what = format!("avg_pool k {k:?} s {s:?} {p:?}");
            same_on_both(&what, &[tensor(&[2, 5, 6, 4], 4)], |g, i| g.avg_pool(&i[0], k, s, p));
        }
    }
    same_on_both("depthwise max_pool", std::slice::from_ref(&x), |g, i| {
        g.max_pool(&i[0], &[1, 1, 1, 2], &[1, 1, 1, 2], Padding::Valid)
    });
    same_on_both("bias_add rank 3", &[tensor(&[3, 4, 5], 5), tensor(&[5], 6)], |g, i| g.bias_add(&i[0], &i[1]));
}

/// Shapes on both sides of the subgroup conv2d kernel's conditions (one group, Cout a multiple
/// of 4; vec4 input loads when Cin is a multiple of 4; used where the device has 8-wide
/// subgroups): partial pixel and channel blocks, both block sizes, strides, dilations, padding.
#[test]
fn conv2d_subgroup_kernel_shapes() {
    if !common::gpu_ready() {
        return;
    }
    let cases: &[ConvCase] = &[
        (&[2, 9, 11, 8], &[3, 3, 8, 36], &[1], Padding::Same, &[1]), // vec4 in, 9 quads out
        (&[1, 20, 19, 3], &[5, 5, 3, 64], &[2], Padding::Same, &[1]), // scalar in, 64 out
        (&[3, 16, 16, 12], &[3, 3, 12, 8], &[2, 1], Padding::Valid, &[1, 2]), // strides, dilations
        (&[1, 70, 70, 4], &[2, 2, 4, 4], &[1], Padding::Valid, &[1]), // large pixel blocks
        (&[1, 66, 65, 5], &[4, 3, 5, 68], &[3, 2], Padding::Same, &[1]), // odd SAME pads
        (&[1, 5, 5, 4], &[3, 3, 4, 6], &[1], Padding::Same, &[1]),   // 6 out: old kernel
    ];
    for (x, f, s, p, d) in cases {
        let what = format!("conv2d {x:?} * {f:?} strides {s:?} {p:?} dilations {d:?}");
        same_on_both(&what, &[tensor(x, 1), tensor(f, 2)], |g, i| g.conv2d(&i[0], &i[1], s, *p, d));
    }
}

/// Whether this process built a kernel whose key starts with `prefix`.
fn built(prefix: &str) -> bool {
    wgflow::testing::kernels_built().iter().any(|k| k.starts_with(prefix))
}

/// The pool kernel reads four channels per load where the channel count is a multiple of 4 and
/// one otherwise; NaN wins per lane. 64x64x16 outputs are 16384 loads: more than a 4096-thread
/// grid (test.sh's regblock pass), so each thread there loops over several outputs.
#[test]
fn pool_kernels_per_channel_count() {
    if !common::gpu_ready() {
        return;
    }
    for shape in [[2, 9, 7, 3], [2, 9, 7, 8], [1, 64, 64, 16]] {
        let mut x = tensor(&shape, 7);
        if let Tensor::F32(a) = &mut x {
            a[[0, 2, 3, 1]] = f32::NAN;
            a[[shape[0] - 1, 0, 0, 2]] = f32::NEG_INFINITY;
        }
        for p in [Padding::Same, Padding::Valid] {
            let (k, s) = ([3usize, 2], [2usize, 1]);
            let what = format!("max_pool {shape:?} k {k:?} s {s:?} {p:?}");
            same_on_both(&what, std::slice::from_ref(&x), |g, i| g.max_pool(&i[0], &k, &s, p));
            let what = format!("avg_pool {shape:?} k {k:?} s {s:?} {p:?}");
            same_on_both(&what, &[tensor(&shape, 8)], |g, i| g.avg_pool(&i[0], &k, &s, p));
        }
    }
    assert!(built("nn pool vec4 true"), "no vec4 pool kernel ran: {:?}", wgflow::testing::kernels_built());
    assert!(built("nn pool vec4 false"), "no scalar pool kernel ran");
}

/// Softmax rows of every kernel: a workgroup per row along the last axis (vec4 loads for
/// lengths that are multiples of 4, scalar ones else, up to 200,000 elements), a thread per row
/// (short rows, other axes), passes past the loop budget; rows with a NaN, with -inf, with +inf;
/// empty batches and rows.
#[test]
fn softmax_kernels_match_cpu() {
    if !common::gpu_ready() {
        return;
    }
    let cases: &[(&[usize], i64)] = &[
        (&[3, 1000], -1),
        (&[5, 1003], -1),
        (&[4100, 40], -1),
        (&[3, 100], -1),
        (&[2, 31], -1),
        (&[2, 30001], -1),
        (&[1, 200_000], -1),
        (&[1, 300_001], -1),
        (&[7, 100, 3], 1),
        (&[0, 1000], -1),
        (&[2, 0], -1),
    ];
    for (shape, axis) in cases {
        let n: usize = shape.iter().product();
        let mut values = common::random_values(n, 11);
        let row = shape[shape.len() - 1];
        if shape[0] > 1 && *axis == -1 && row > 7 {
            values[row + 5] = f32::NAN;
            values[row..2 * row].iter_mut().skip(7).step_by(3).for_each(|v| *v = f32::NEG_INFINITY);
            if shape[0] > 2 {
                values[2 * row + 1] = f32::INFINITY;
            }
        }
        let x = Tensor::from_f32(shape, values).expect("f32 tensor");
        let what = format!("softmax {shape:?} axis {axis}");
        let tol = Tol::Close { rtol: 1e-4, atol: 1e-9 };
        close_on_both(&what, &[x], tol, |g, i| g.softmax(&i[0], *axis));
    }
    for key in ["softmax rows f32 vec4 true", "softmax rows f32 vec4 false", "softmax f32", "softmax norm f32"] {
        assert!(built(key), "the {key} kernel did not run: {:?}", wgflow::testing::kernels_built());
    }
}

/// The cross-entropy losses (dense and sparse labels, loss and backprop) on every kernel: a
/// thread per row (10 and 300 classes; on GPUs a workgroup takes 300), a workgroup per row
/// (1,500 and 5,001 classes: past one thread's loop budget; NaN and -inf logits), passes past
/// the workgroup's (70,000 classes).
#[test]
fn cross_entropy_kernels_match_cpu() {
    if !common::gpu_ready() {
        return;
    }
    for (batch, classes) in [(5usize, 10usize), (3, 300), (4, 1500), (3, 5001), (2, 70_000)] {
        let mut logits = common::random_values(batch * classes, 21);
        logits.iter_mut().for_each(|v| *v *= 6.0);
        if batch > 2 && classes > 100 {
            logits[classes + 17] = f32::NAN;
            logits[2 * classes + 3] = f32::NEG_INFINITY;
        }
        let weights: Vec<f32> = common::random_values(batch * classes, 22).iter().map(|v| v.abs()).collect();
        let dense: Vec<f32> = weights
            .chunks(classes)
            .flat_map(|row| {
                let total: f32 = row.iter().sum();
                row.iter().map(move |w| w / total).collect::<Vec<_>>()
            })
            .collect();
        let sparse: Vec<i32> = (0..batch).map(|r| ((r * 7919 + 3) % classes) as i32).collect();
        let inputs = [
            Tensor::from_f32(&[batch, classes], logits).expect("logits"),
            Tensor::from_f32(&[batch, classes], dense).expect("dense labels"),
            Tensor::from_i32(&[batch], sparse).expect("sparse labels"),
        ];
        let tol = Tol::Close { rtol: 1e-4, atol: 1e-6 };
        let what = format!("dense cross-entropy {batch}x{classes}");
        close_on_both(&what, &inputs, tol, |g, i| g.softmax_cross_entropy_with_logits(&i[1], &i[0]));
        let what = format!("dense cross-entropy backprop {batch}x{classes}");
        close_on_both(&what, &inputs, tol, |g, i| g.softmax_cross_entropy_with_logits_grad(&i[1], &i[0]));
        let what = format!("sparse cross-entropy {batch}x{classes}");
        close_on_both(&what, &inputs, tol, |g, i| g.sparse_softmax_cross_entropy_with_logits(&i[2], &i[0]));
        let what = format!("sparse cross-entropy backprop {batch}x{classes}");
        close_on_both(&what, &inputs, tol, |g, i| g.sparse_softmax_cross_entropy_with_logits_grad(&i[2], &i[0]));
    }
    for key in ["nn xent_wg", "nn xent dense", "nn xent_rows"] {
        assert!(built(key), "the {key} kernel did not run: {:?}", wgflow::testing::kernels_built());
    }
}
