//! Training: numerical gradient checks (central differences) of every op's gradient on both
//! devices, the optimizers' update rules, and the transfer promise of a training step.

mod common;

use wgflow::train::Optimizer;
use wgflow::{ConfigProto, DType, Fetch, Graph, Output, Padding, Session, Shape, Tensor};

/// A small deterministic generator (xorshift), for reproducible inputs.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        lo + (hi - lo) * ((self.0 >> 40) as f32 / (1u64 << 24) as f32)
    }
    fn tensor(&mut self, shape: &[usize], lo: f32, hi: f32) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_f32(shape, (0..n).map(|_| self.uniform(lo, hi)).collect()).unwrap()
    }
}

fn configs() -> Vec<ConfigProto> {
    let mut c = vec![ConfigProto::cpu_only()];
    if common::gpu_ready() {
        c.push(ConfigProto::default());
    }
    c
}

fn values(t: &Tensor) -> Vec<f32> {
    t.as_f32().unwrap().iter().copied().collect()
}

/// Checks the gradients of `sum(f(inputs) * weights)` against central differences, on every
/// device. `inputs` are fed through placeholders; `lo..hi` bounds the random values.
fn check(name: &str, shapes: &[&[usize]], lo: f32, hi: f32, f: impl Fn(&Graph, &[Output]) -> wgflow::Result<Output>) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ name.len() as u64);
    let values_in: Vec<Tensor> = shapes.iter().map(|s| rng.tensor(s, lo, hi)).collect();
    let g = Graph::new();
    let xs: Vec<Output> = shapes.iter().map(|s| g.placeholder(DType::F32, Shape::known(s)).unwrap()).collect();
    let y = f(&g, &xs).unwrap();
    let weights = rng.tensor(&y.shape().dims().unwrap().iter().map(|d| d.unwrap()).collect::<Vec<_>>(), 0.5, 1.5);
    let loss = g.reduce_sum(g.mul(&y, weights).unwrap(), None, false).unwrap();
    let grads = g.gradients(std::slice::from_ref(&loss), &xs, None).unwrap();
    for config in configs() {
        let s = Session::new(&g, config).unwrap();
        let feeds =
            |vals: &[Tensor]| -> Vec<(Output, Tensor)> { xs.iter().cloned().zip(vals.iter().cloned()).collect() };
        for (k, grad) in grads.iter().enumerate() {
            let grad = grad.as_ref().unwrap_or_else(|| panic!("{name}: no gradient for input {k}"));
            let analytic = values(&s.eval_feed(grad, &feeds(&values_in)).unwrap());
            let base = values(&values_in[k]);
            for (i, a) in analytic.iter().enumerate() {
                let eps = 1e-2f32 * base[i].abs().max(1.0);
                let at = |delta: f32| {
                    let mut v = base.clone();
                    v[i] += delta;
                    let mut vals = values_in.clone();
                    vals[k] = Tensor::from_f32(values_in[k].shape(), v).unwrap();
                    f64::from(values(&s.eval_feed(&loss, &feeds(&vals)).unwrap())[0])
                };
                let numeric = (at(eps) - at(-eps)) / (2.0 * f64::from(eps));
                let tol = 2e-2 * numeric.abs().max(1.0);
                assert!(
                    (f64::from(*a) - numeric).abs() <= tol,
                    "{name} on {}: d/dx{k}[{i}] analytic {a} numeric {numeric}",
                    s.device()
                );
            }
        }
        assert_eq!(s.stats().cpu_fallbacks, 0, "{name}: every gradient op has a GPU kernel");
    }
}

#[test]
fn elementwise_gradients_match_finite_differences() {
    check("add_broadcast", &[&[2, 3], &[3]], -1.0, 1.0, |g, x| g.add(&x[0], &x[1]));
    check("sub_broadcast", &[&[2, 1], &[1, 3]], -1.0, 1.0, |g, x| g.sub(&x[0], &x[1]));
    check("mul_broadcast", &[&[2, 3], &[2, 1]], -1.0, 1.0, |g, x| g.mul(&x[0], &x[1]));
    check("div", &[&[2, 3], &[2, 3]], 0.5, 2.0, |g, x| g.div(&x[0], &x[1]));
    check("maximum", &[&[2, 3], &[2, 3]], -1.0, 1.0, |g, x| g.maximum(&x[0], &x[1]));
    check("minimum", &[&[2, 3], &[2, 3]], -1.0, 1.0, |g, x| g.minimum(&x[0], &x[1]));
    check("pow", &[&[2, 2], &[2, 2]], 0.5, 1.5, |g, x| g.pow(&x[0], &x[1]));
    check("squared_difference", &[&[3], &[3]], -1.0, 1.0, |g, x| g.squared_difference(&x[0], &x[1]));
    check("neg", &[&[4]], -1.0, 1.0, |g, x| g.neg(&x[0]));
    check("abs", &[&[4]], 0.2, 1.0, |g, x| g.abs(g.neg(&x[0])?));
    check("exp", &[&[4]], -1.0, 1.0, |g, x| g.exp(&x[0]));
    check("log", &[&[4]], 0.5, 2.0, |g, x| g.log(&x[0]));
    check("sqrt", &[&[4]], 0.5, 2.0, |g, x| g.sqrt(&x[0]));
    check("rsqrt", &[&[4]], 0.5, 2.0, |g, x| g.rsqrt(&x[0]));
    check("tanh", &[&[4]], -1.0, 1.0, |g, x| g.tanh(&x[0]));
    check("sigmoid", &[&[4]], -1.0, 1.0, |g, x| g.sigmoid(&x[0]));
    check("relu", &[&[6]], 0.1, 1.0, |g, x| g.relu(g.sub(&x[0], 0.55f32)?));
    check("square", &[&[4]], -1.0, 1.0, |g, x| g.square(&x[0]));
}

#[test]
fn linalg_reduce_and_shape_gradients_match_finite_differences() {
    check("matmul", &[&[2, 3], &[3, 4]], -1.0, 1.0, |g, x| g.matmul(&x[0], &x[1], false, false));
    check("matmul_ta", &[&[3, 2], &[3, 4]], -1.0, 1.0, |g, x| g.matmul(&x[0], &x[1], true, false));
    check("matmul_tb", &[&[2, 3], &[4, 3]], -1.0, 1.0, |g, x| g.matmul(&x[0], &x[1], false, true));
    check("matmul_tab", &[&[3, 2], &[4, 3]], -1.0, 1.0, |g, x| g.matmul(&x[0], &x[1], true, true));
    check("sum_axis", &[&[2, 3]], -1.0, 1.0, |g, x| g.reduce_sum(&x[0], Some(&[1]), false));
    check("mean_keepdims", &[&[2, 3]], -1.0, 1.0, |g, x| g.reduce_mean(&x[0], Some(&[0]), true));
    check("max_axis", &[&[2, 3]], -1.0, 1.0, |g, x| g.reduce_max(&x[0], Some(&[-1]), false));
    check("softmax", &[&[2, 4]], -1.0, 1.0, |g, x| g.softmax(&x[0], -1));
    check("bias_add", &[&[2, 3], &[3]], -1.0, 1.0, |g, x| g.bias_add(&x[0], &x[1]));
    check("reshape", &[&[2, 3]], -1.0, 1.0, |g, x| g.reshape(&x[0], &[3, 2]));
    check("transpose", &[&[2, 3, 2]], -1.0, 1.0, |g, x| g.transpose(&x[0], Some(&[2, 0, 1])));
    check("concat", &[&[2, 3], &[2, 1], &[2, 2]], -1.0, 1.0, |g, x| g.concat(x, -1));
    check("slice_of_concat", &[&[3, 2], &[1, 2]], -1.0, 1.0, |g, x| g.slice(g.concat(x, 0)?, &[1, 0], &[3, 2]));
}

#[test]
fn conv_and_pool_gradients_match_finite_differences() {
    for (stride, padding) in [(1, Padding::Same), (2, Padding::Valid), (2, Padding::Same)] {
        check("conv2d", &[&[1, 5, 5, 2], &[3, 3, 2, 2]], -1.0, 1.0, move |g, x| {
            g.conv2d(&x[0], &x[1], &[1, stride, stride, 1], padding, &[1, 1, 1, 1])
        });
        check("avg_pool", &[&[1, 4, 5, 2]], -1.0, 1.0, move |g, x| {
            g.avg_pool(&x[0], &[1, 2, 2, 1], &[1, stride, stride, 1], padding)
        });
    }
    check("max_pool", &[&[1, 4, 4, 2]], -1.0, 1.0, |g, x| {
        g.max_pool(&x[0], &[1, 2, 2, 1], &[1, 2, 2, 1], Padding::Valid)
    });
    // Grouped convolutions: depthwise (multiplier 2, through the filter's reshape) and two
    // groups of two channels.
    check("depthwise", &[&[1, 5, 4, 3], &[3, 2, 3, 2]], -1.0, 1.0, |g, x| {
        g.depthwise_conv2d(&x[0], &x[1], &[1, 2, 1, 1], Padding::Same, &[1, 1, 1, 1])
    });
    check("grouped_conv2d", &[&[1, 4, 5, 4], &[2, 3, 2, 6]], -1.0, 1.0, |g, x| {
        g.conv2d(&x[0], &x[1], &[1, 1, 2, 1], Padding::Valid, &[1, 1, 1, 1])
    });
}

/// Minimizes sum((w - target)²) from w = 0 with `opt`, returning w after each of 3 steps.
fn run_optimizer(opt: Optimizer, config: ConfigProto) -> Vec<Vec<f32>> {
    let g = Graph::new();
    let w = g.variable(Tensor::from(vec![0.0f32, 0.0]), "w").unwrap();
    let loss =
        g.reduce_sum(g.square(g.sub(&w, Tensor::from(vec![1.0f32, -2.0])).unwrap()).unwrap(), None, false).unwrap();
    let train = opt.minimize(&loss, None, None).unwrap();
    let s = Session::new(&g, config).unwrap();
    s.run(&[g.global_variables_initializer().unwrap()]).unwrap();
    (0..3)
        .map(|_| {
            s.run(&[&train]).unwrap();
            values(&s.eval(w.tensor()).unwrap())
        })
        .collect()
}

/// The same three steps in f64 by TF's formulas.
fn reference(rule: &str, lr: f64) -> Vec<Vec<f32>> {
    let target = [1.0f64, -2.0];
    let (mut w, mut m, mut v) = ([0.0f64; 2], [0.0f64; 2], [0.0f64; 2]);
    let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8f64);
    (1..=3)
        .map(|t| {
            for i in 0..2 {
                let grad = 2.0 * (w[i] - target[i]);
                match rule {
                    "sgd" => w[i] -= lr * grad,
                    "momentum" => {
                        m[i] = 0.9 * m[i] + grad;
                        w[i] -= lr * m[i];
                    }
                    _ => {
                        let lr_t = lr * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t));
                        m[i] = b1 * m[i] + (1.0 - b1) * grad;
                        v[i] = b2 * v[i] + (1.0 - b2) * grad * grad;
                        w[i] -= lr_t * m[i] / (v[i].sqrt() + eps);
                    }
                }
            }
            w.iter().map(|&x| x as f32).collect()
        })
        .collect()
}

#[test]
fn optimizers_follow_tf_update_rules_on_every_device() {
    for config in configs() {
        for (opt, rule) in [
            (Optimizer::gradient_descent(0.1), "sgd"),
            (Optimizer::momentum(0.1, 0.9), "momentum"),
            (Optimizer::adam(0.1), "adam"),
        ] {
            let got = run_optimizer(opt, config.clone());
            for (step, (g, w)) in got.iter().zip(reference(rule, 0.1)).enumerate() {
                for (a, b) in g.iter().zip(&w) {
                    assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{rule} step {step}: {g:?} vs {w:?}");
                }
            }
        }
    }
}

#[test]
fn a_training_step_moves_only_the_batch_and_the_loss() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let x = g.placeholder(DType::F32, Shape::partial(&[None, Some(3)])).unwrap();
    let y = g.placeholder(DType::F32, Shape::partial(&[None, Some(1)])).unwrap();
    let w = g.variable(Tensor::filled(DType::F32, &[3, 1], 0.1), "W").unwrap();
    let b = g.variable(Tensor::from(vec![0.0f32]), "b").unwrap();
    let pred = g.add(g.matmul(&x, &w, false, false).unwrap(), &b).unwrap();
    let loss = g.reduce_mean(g.square(g.sub(&pred, &y).unwrap()).unwrap(), None, false).unwrap();
    let step = g.variable(Tensor::from(0i32), "global_step").unwrap();
    let train = Optimizer::adam(0.01).minimize(&loss, Some(&step), None).unwrap();
    let s = Session::new(&g, ConfigProto::default()).unwrap();
    s.run(&[g.global_variables_initializer().unwrap()]).unwrap();
    let mut rng = Rng(7);
    let batch = [(x.clone(), rng.tensor(&[8, 3], -1.0, 1.0)), (y.clone(), rng.tensor(&[8, 1], -1.0, 1.0))];
    let fetches = [Fetch::from(&train), (&loss).into()];
    s.run_feed(&fetches, &batch).unwrap();
    let before = s.stats();
    let mut losses = Vec::new();
    for _ in 0..3 {
        losses.push(values(&s.run_feed(&fetches, &batch).unwrap()[1].clone().unwrap())[0]);
    }
    let after = s.stats();
    assert_eq!(after.bytes_uploaded - before.bytes_uploaded, 3 * (8 * 3 + 8) * 4, "only the batch goes up");
    assert_eq!(after.bytes_downloaded - before.bytes_downloaded, 3 * 4, "only the loss comes down");
    assert_eq!(after.submits - before.submits, 3, "one submit per step");
    assert_eq!(after.cpu_fallbacks, 0);
    assert!(losses[2] < losses[0], "the loss goes down: {losses:?}");
    assert_eq!(s.eval(step.tensor()).unwrap(), Tensor::from(4i32), "global_step counts the steps");
}

#[test]
fn cross_entropy_gradients_match_finite_differences() {
    check("softmax_xent", &[&[3, 4], &[3, 4]], 0.1, 1.0, |g, x| {
        g.softmax_cross_entropy_with_logits(g.softmax(&x[1], -1)?, &x[0])
    });
    check("sparse_xent", &[&[3, 4]], -1.0, 1.0, |g, x| {
        g.sparse_softmax_cross_entropy_with_logits(g.constant(Tensor::from(vec![0i32, 3, 1]))?, &x[0])
    });
}
