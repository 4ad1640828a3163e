//! The GPU kernels against the CPU ones, and the golden conv2d gradients on both devices.

use super::common::{self, Device, Tol};
use super::{make, Rng};
use wgflow::{DType, Graph, Output, Padding, Session, Tensor};

/// Runs `build` on constants of `inputs` in a session on `device` (nothing falling back).
fn run(
    device: Device,
    what: &str,
    inputs: &[Tensor],
    build: &dyn Fn(&Graph, &[Output]) -> wgflow::Result<Output>,
) -> Tensor {
    let g = Graph::new();
    let xs: Vec<Output> = inputs.iter().map(|t| g.constant(t.clone()).expect("constant")).collect();
    let y = build(&g, &xs).unwrap_or_else(|e| panic!("{what}: build: {e}"));
    let sess = Session::new(&g, device.config()).expect("session");
    let out = sess.eval(&y).unwrap_or_else(|e| panic!("{what} on {}: {e}", device.name()));
    device.check_ran_here(&sess).unwrap_or_else(|e| panic!("{what}: {e}"));
    out
}

/// The GPU result of `build` against the CPU's.
fn same_on_both(what: &str, inputs: &[Tensor], tol: Tol, build: impl Fn(&Graph, &[Output]) -> wgflow::Result<Output>) {
    let cpu = run(Device::Cpu, what, inputs, &build);
    let gpu = run(Device::Gpu, what, inputs, &build);
    common::compare(&gpu, &cpu, tol).unwrap_or_else(|e| panic!("{what}: gpu vs cpu: {e}"));
    println!("{what}: gpu == cpu, shape {:?}", gpu.shape());
}

fn random(rng: &mut Rng, shape: &[usize]) -> Tensor {
    make(DType::F32, shape, &rng.vec(shape.iter().product()))
}

/// Input shape, filter shape, strides, padding, dilation.
type ConvCase = (&'static [usize], &'static [usize], &'static [usize], Padding, usize);

const CONV_TOL: Tol = Tol::Close { rtol: 1e-5, atol: 1e-5 };

#[test]
fn conv_gradients_gpu_match_cpu() {
    if !common::gpu_ready() {
        return;
    }
    let mut rng = Rng(17);
    let cases: &[ConvCase] = &[
        (&[2, 7, 6, 3], &[3, 2, 3, 5], &[1], Padding::Same, 1),
        (&[1, 8, 8, 2], &[3, 3, 2, 4], &[2], Padding::Same, 1),
        (&[2, 7, 7, 1], &[2, 2, 1, 3], &[3], Padding::Valid, 1),
        (&[1, 9, 8, 2], &[3, 2, 2, 2], &[2, 1], Padding::Same, 2),
        (&[1, 9, 9, 2], &[2, 3, 2, 6], &[1], Padding::Valid, 2),
        (&[0, 5, 5, 2], &[3, 3, 2, 2], &[1], Padding::Same, 1),
        // Grouped: depthwise (one input channel per group, multipliers 1 and 3), two groups.
        (&[1, 9, 8, 6], &[3, 3, 1, 6], &[1], Padding::Same, 1),
        (&[2, 7, 6, 2], &[2, 3, 1, 6], &[2], Padding::Valid, 1),
        (&[2, 7, 6, 4], &[3, 2, 2, 6], &[2, 1], Padding::Same, 2),
        (&[1, 24, 24, 96], &[3, 3, 1, 96], &[2], Padding::Same, 1),
    ];
    for &(xs, fs, s, p, d) in cases {
        let what = format!("x {xs:?} f {fs:?} strides {s:?} {p:?} dilation {d}");
        let (x, f) = (random(&mut rng, xs), random(&mut rng, fs));
        let y = run(Device::Cpu, &what, &[x.clone(), f.clone()], &|g, i| g.conv2d(&i[0], &i[1], s, p, &[d]));
        let dy = random(&mut rng, y.shape());
        same_on_both(&format!("conv2d_backprop_input {what}"), &[f, dy.clone()], CONV_TOL, |g, i| {
            g.conv2d_backprop_input(xs, &i[0], &i[1], s, p, &[d])
        });
        same_on_both(&format!("conv2d_backprop_filter {what}"), &[x, dy], CONV_TOL, |g, i| {
            g.conv2d_backprop_filter(&i[0], fs, &i[1], s, p, &[d])
        });
    }
}

#[test]
fn pool_and_bias_gradients_gpu_match_cpu() {
    if !common::gpu_ready() {
        return;
    }
    let mut rng = Rng(19);
    // Values in steps of 1/8 over a small range: ties between window cells, and a NaN.
    let xs = [2, 7, 6, 3];
    let mut x: Vec<f64> = rng.vec(xs.iter().product()).iter().map(|v| (v * 8.0).round() / 8.0).collect();
    x[10] = f64::NAN;
    let x = make(DType::F32, &xs, &x);
    for (k, s) in [(2, 2), (3, 2), (3, 1), (2, 3)] {
        for p in [Padding::Same, Padding::Valid] {
            let y = run(Device::Cpu, "max_pool", std::slice::from_ref(&x), &|g, i| g.max_pool(&i[0], &[k], &[s], p));
            let dy = random(&mut rng, y.shape());
            same_on_both(
                &format!("max_pool_grad k {k} s {s} {p:?}"),
                &[x.clone(), y, dy.clone()],
                Tol::Exact,
                |g, i| g.max_pool_grad(&i[0], &i[1], &i[2], &[k], &[s], p),
            );
            // Division by the window's count may round differently on a GPU.
            let tol = Tol::Close { rtol: 1e-6, atol: 1e-7 };
            same_on_both(&format!("avg_pool_grad k {k} s {s} {p:?}"), &[dy], tol, |g, i| {
                g.avg_pool_grad(&xs, &i[0], &[k], &[s], p)
            });
        }
    }
    for shape in [&[5, 3][..], &[2, 3, 4, 7], &[0, 4]] {
        same_on_both(&format!("bias_add_grad {shape:?}"), &[random(&mut rng, shape)], Tol::Exact, |g, i| {
            g.bias_add_grad(&i[0])
        });
    }
}

#[test]
fn xent_gpu_matches_cpu() {
    if !common::gpu_ready() {
        return;
    }
    let mut rng = Rng(23);
    let (batch, classes) = (6, 10);
    let logits =
        make(DType::F32, &[batch, classes], &rng.vec(batch * classes).iter().map(|v| v * 20.0).collect::<Vec<_>>());
    let labels = make(DType::F32, &[batch, classes], &super::distributions(&mut rng, batch, classes));
    let sparse = Tensor::from_i32(&[batch], vec![0, 9, 3, 3, 7, 1]).expect("labels");
    let tol = Tol::Close { rtol: 1e-5, atol: 1e-6 };
    let ins = [labels, logits.clone()];
    same_on_both("softmax_cross_entropy_with_logits", &ins, tol, |g, i| {
        g.softmax_cross_entropy_with_logits(&i[0], &i[1])
    });
    same_on_both("softmax_cross_entropy_with_logits_grad", &ins, tol, |g, i| {
        g.softmax_cross_entropy_with_logits_grad(&i[0], &i[1])
    });
    let ins = [sparse, logits.clone()];
    same_on_both("sparse_softmax_cross_entropy_with_logits", &ins, tol, |g, i| {
        g.sparse_softmax_cross_entropy_with_logits(&i[0], &i[1])
    });
    same_on_both("sparse_softmax_cross_entropy_with_logits_grad", &ins, tol, |g, i| {
        g.sparse_softmax_cross_entropy_with_logits_grad(&i[0], &i[1])
    });
    // An out-of-range label fails the GPU run as it fails the CPU's (the kernel's error flag),
    // naming the label TF names: the most negative one.
    let bad = Tensor::from_i32(&[batch], vec![0, 10, 3, -1, 7, 1]).expect("labels");
    for grad in [false, true] {
        let g = Graph::new();
        let labels = g.constant(bad.clone()).expect("labels");
        let x = g.constant(logits.clone()).expect("logits");
        let y = match grad {
            false => g.sparse_softmax_cross_entropy_with_logits(&labels, &x),
            true => g.sparse_softmax_cross_entropy_with_logits_grad(&labels, &x),
        }
        .expect("build");
        let sess = Session::new(&g, Device::Gpu.config()).expect("session");
        let e = sess.eval(&y).expect_err("bad labels must fail on the GPU");
        assert_eq!(e.code, wgflow::Code::InvalidArgument, "{e}");
        assert_eq!(e.message, "Received a label value of -1 which is outside the valid range of [0, 10).", "{e}");
        Device::Gpu.check_ran_here(&sess).unwrap_or_else(|e| panic!("bad labels: {e}"));
    }
}

/// The conv2d_relu_mean cases of gradients.json: dy = (conv(x, filter) > 0) / count.
fn golden_conv_gradients(device: Device) {
    let golden = common::load("gradients.json");
    let cases: Vec<_> = golden["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter(|c| c["name"].as_str().is_some_and(|n| n.starts_with("conv2d_relu_mean_")))
        .collect();
    assert_eq!(cases.len(), 4, "conv2d_relu_mean cases in gradients.json");
    let tol = Tol::Close { rtol: 1e-5, atol: 1e-6 };
    for case in cases {
        let name = case["name"].as_str().expect("name");
        // The name ends in _s<stride>_<padding>.
        let mut parts = name.rsplit('_');
        let padding = match parts.next() {
            Some("same") => Padding::Same,
            Some("valid") => Padding::Valid,
            other => panic!("{name}: padding {other:?}"),
        };
        let stride: usize =
            parts.next().and_then(|s| s.strip_prefix('s')).and_then(|s| s.parse().ok()).expect("stride");
        let x = common::tensor(&case["inputs"]["x"]);
        let f = common::tensor(&case["inputs"]["filter_init"]);
        let conv = common::tensor(&case["outputs"]["conv"]).to_f32_vec().expect("conv");
        let count = conv.len() as f32;
        let dy: Vec<f32> = conv.iter().map(|&v| if v > 0.0 { 1.0 / count } else { 0.0 }).collect();
        let conv_shape = common::tensor(&case["outputs"]["conv"]).shape().to_vec();
        let dy = Tensor::from_f32(&conv_shape, dy).expect("dy");
        let (xs, fs) = (x.shape().to_vec(), f.shape().to_vec());
        let dx = run(device, name, &[f, dy.clone()], &|g, i| {
            g.conv2d_backprop_input(&xs, &i[0], &i[1], &[stride], padding, &[1])
        });
        common::compare(&dx, &common::tensor(&case["outputs"]["grad_x"]), tol)
            .unwrap_or_else(|e| panic!("{name} on {}: grad_x: {e}", device.name()));
        let df =
            run(device, name, &[x, dy], &|g, i| g.conv2d_backprop_filter(&i[0], &fs, &i[1], &[stride], padding, &[1]));
        common::compare(&df, &common::tensor(&case["outputs"]["grad_filter"]), tol)
            .unwrap_or_else(|e| panic!("{name} on {}: grad_filter: {e}", device.name()));
        println!("golden {name} on {}: grad_x and grad_filter match", device.name());
    }
}

#[test]
fn golden_conv_gradients_cpu() {
    golden_conv_gradients(Device::Cpu);
}

#[test]
fn golden_conv_gradients_gpu() {
    if common::gpu_ready() {
        golden_conv_gradients(Device::Gpu);
    }
}
