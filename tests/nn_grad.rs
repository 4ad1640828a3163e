//! The backward NN ops: `Conv2DBackpropInput`, `Conv2DBackpropFilter`, `MaxPoolGrad`,
//! `AvgPoolGrad`, `BiasAddGrad` and the softmax cross-entropy losses with their backprops.
//!
//! - Each gradient equals the central finite difference of `sum(forward(x) * dy)`, computed
//!   with the forward CPU ops and summed in float64, on small random shapes.
//! - The GPU kernel of every op equals its CPU kernel (no CPU fallback).
//! - The `conv2d_relu_mean_*` cases of gradients.json: with dy = (conv > 0) / count, the conv
//!   gradients reproduce TF's gradients of x and of the filter.
//! - TF's depthwise convolution gradients (`tests/data/depthwise_grad.json`) on both devices.
//! - Bad shapes and labels give `InvalidArgument` with TF's text.

mod common;

use wgflow::{ConfigProto, DType, Graph, Output, Padding, Session, Shape, Tensor};

/// xorshift64*: a seeded generator of uniform values in [-1, 1).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
        bits as f64 / (1u64 << 52) as f64 - 1.0
    }
    fn vec(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.next()).collect()
    }
    /// `n` distinct values 0.1 apart, shuffled (no ties for max pooling).
    fn distinct(&mut self, n: usize) -> Vec<f64> {
        let mut v: Vec<f64> = (0..n).map(|i| i as f64 * 0.1 - 1.0).collect();
        for i in (1..n).rev() {
            let j = ((self.next() + 1.0) / 2.0 * (i + 1) as f64) as usize;
            v.swap(i, j.min(i));
        }
        v
    }
}

fn make(dtype: DType, shape: &[usize], v: &[f64]) -> Tensor {
    match dtype {
        DType::F32 => Tensor::from_f32(shape, v.iter().map(|&x| x as f32).collect()).expect("f32"),
        DType::F64 => ndarray::ArrayD::from_shape_vec(shape.to_vec(), v.to_vec()).expect("f64").into(),
        other => panic!("no {other} data"),
    }
}

fn vals(t: &Tensor) -> Vec<f64> {
    match t {
        Tensor::F32(a) => a.iter().map(|&x| f64::from(x)).collect(),
        Tensor::F64(a) => a.iter().copied().collect(),
        other => panic!("not a float tensor: {:?}", other.dtype()),
    }
}

/// Evaluates `build` on constants of `inputs` in a CPU session.
fn cpu_eval(inputs: &[Tensor], build: impl Fn(&Graph, &[Output]) -> wgflow::Result<Output>) -> wgflow::Result<Tensor> {
    let g = Graph::new();
    let xs: Vec<Output> = inputs.iter().map(|t| g.constant(t.clone()).expect("constant")).collect();
    let y = build(&g, &xs)?;
    Session::new(&g, ConfigProto::cpu_only())?.eval(&y)
}

/// The central difference of `sum(forward(x) * dy)` with respect to every element of `x`.
fn numeric_grad(
    x: &Tensor,
    eps: f64,
    dy: &[f64],
    forward: impl Fn(&Graph, &Output) -> wgflow::Result<Output>,
) -> Vec<f64> {
    let g = Graph::new();
    let p = g.placeholder(x.dtype(), Shape::known(x.shape())).expect("placeholder");
    let y = forward(&g, &p).expect("forward");
    let sess = Session::new(&g, ConfigProto::cpu_only()).expect("session");
    let f = |v: &[f64]| -> f64 {
        let out = sess.eval_feed(&y, &[(&p, make(x.dtype(), x.shape(), v))]).expect("forward run");
        let out = vals(&out);
        assert_eq!(out.len(), dy.len(), "dy has the forward output's size");
        out.iter().zip(dy).map(|(a, b)| a * b).sum()
    };
    let base = vals(x);
    (0..base.len())
        .map(|i| {
            let mut v = base.clone();
            v[i] += eps;
            let plus = f(&v);
            v[i] -= 2.0 * eps;
            (plus - f(&v)) / (2.0 * eps)
        })
        .collect()
}

fn assert_close(what: &str, got: &[f64], want: &[f64], atol: f64, rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= atol + rtol * w.abs(), "{what}: element {i}: got {g}, want {w}");
    }
}

/// Strides, padding, dilations of the convolution checks.
fn conv_configs() -> Vec<(Vec<usize>, Padding, usize)> {
    let mut v = Vec::new();
    for s in [vec![1], vec![2], vec![3], vec![2, 1]] {
        for p in [Padding::Same, Padding::Valid] {
            for d in [1, 2] {
                v.push((s.clone(), p, d));
            }
        }
    }
    v
}

#[test]
fn conv_gradients_match_finite_differences() {
    let mut rng = Rng(7);
    for (i, (s, p, d)) in conv_configs().into_iter().enumerate() {
        let xs = [1 + i % 2, 7, 6, 2];
        let fs = [3, 2, 2, 3];
        let x = make(DType::F32, &xs, &rng.vec(xs.iter().product()));
        let f = make(DType::F32, &fs, &rng.vec(fs.iter().product()));
        let what = format!("conv2d x {xs:?} f {fs:?} strides {s:?} {p:?} dilations {d}");
        let y = cpu_eval(&[x.clone(), f.clone()], |g, i| g.conv2d(&i[0], &i[1], &s, p, &[d])).expect("conv2d");
        let dy_vals = rng.vec(y.len());
        let dy = make(DType::F32, y.shape(), &dy_vals);
        // The forward op is linear in each argument: a large step is exact up to rounding.
        let want_dx = numeric_grad(&x, 1.0, &dy_vals, |g, x| g.conv2d(x, g.constant(f.clone())?, &s, p, &[d]));
        let dx = cpu_eval(&[f.clone(), dy.clone()], |g, i| g.conv2d_backprop_input(&xs, &i[0], &i[1], &s, p, &[d]))
            .expect("backprop input");
        assert_eq!(dx.shape(), xs, "{what}");
        assert_close(&format!("{what}: dx"), &vals(&dx), &want_dx, 1e-4, 1e-4);
        let want_df = numeric_grad(&f, 1.0, &dy_vals, |g, f| g.conv2d(g.constant(x.clone())?, f, &s, p, &[d]));
        let df = cpu_eval(&[x.clone(), dy], |g, i| g.conv2d_backprop_filter(&i[0], &fs, &i[1], &s, p, &[d]))
            .expect("backprop filter");
        assert_close(&format!("{what}: dfilter"), &vals(&df), &want_df, 1e-4, 1e-4);
    }
}

/// Window, strides, padding of the pool checks.
fn pool_configs() -> Vec<(usize, usize, Padding)> {
    let mut v = Vec::new();
    for (k, s) in [(2, 1), (2, 2), (3, 2), (3, 3), (1, 2)] {
        for p in [Padding::Same, Padding::Valid] {
            v.push((k, s, p));
        }
    }
    v
}

#[test]
fn pool_gradients_match_finite_differences() {
    let mut rng = Rng(11);
    let xs = [2, 7, 6, 2];
    for (k, s, p) in pool_configs() {
        let what = format!("pool k {k} s {s} {p:?}");
        let x = make(DType::F64, &xs, &rng.distinct(xs.iter().product()));
        let y = cpu_eval(std::slice::from_ref(&x), |g, i| g.max_pool(&i[0], &[k], &[s], p)).expect("max_pool");
        let dy_vals = rng.vec(y.len());
        let dy = make(DType::F64, y.shape(), &dy_vals);
        let want = numeric_grad(&x, 1e-3, &dy_vals, |g, x| g.max_pool(x, &[k], &[s], p));
        let got =
            cpu_eval(&[x.clone(), y.clone(), dy.clone()], |g, i| g.max_pool_grad(&i[0], &i[1], &i[2], &[k], &[s], p))
                .expect("max_pool_grad");
        assert_close(&format!("{what}: max"), &vals(&got), &want, 1e-9, 1e-9);
        let want = numeric_grad(&x, 1.0, &dy_vals, |g, x| g.avg_pool(x, &[k], &[s], p));
        let got = cpu_eval(&[dy], |g, i| g.avg_pool_grad(&xs, &i[0], &[k], &[s], p)).expect("avg_pool_grad");
        assert_close(&format!("{what}: avg"), &vals(&got), &want, 1e-9, 1e-9);
    }
}

#[test]
fn bias_add_grad_matches_finite_differences() {
    let mut rng = Rng(3);
    for xs in [&[4, 3][..], &[2, 3, 2, 5]] {
        let c = xs[xs.len() - 1];
        let x = make(DType::F64, xs, &rng.vec(xs.iter().product()));
        let b = make(DType::F64, &[c], &rng.vec(c));
        let dy_vals = rng.vec(x.len());
        let want = numeric_grad(&b, 1.0, &dy_vals, |g, b| g.bias_add(g.constant(x.clone())?, b));
        let got = cpu_eval(&[make(DType::F64, xs, &dy_vals)], |g, i| g.bias_add_grad(&i[0])).expect("bias_add_grad");
        assert_eq!(got.shape(), [c]);
        assert_close(&format!("bias_add_grad {xs:?}"), &vals(&got), &want, 1e-12, 1e-12);
    }
}

/// Rows of non-negative labels summing to one.
fn distributions(rng: &mut Rng, batch: usize, classes: usize) -> Vec<f64> {
    let mut v: Vec<f64> = rng.vec(batch * classes).iter().map(|x| x + 1.0).collect();
    for row in v.chunks_mut(classes) {
        let s: f64 = row.iter().sum();
        row.iter_mut().for_each(|x| *x /= s);
    }
    v
}

#[test]
fn xent_losses_and_backprops_match_definitions() {
    let mut rng = Rng(5);
    let (batch, classes) = (3, 5);
    let logits_vals: Vec<f64> = rng.vec(batch * classes).iter().map(|x| x * 4.0).collect();
    let logits = make(DType::F64, &[batch, classes], &logits_vals);
    let labels_vals = distributions(&mut rng, batch, classes);
    let labels = make(DType::F64, &[batch, classes], &labels_vals);
    let classes_i = [4, 0, 2];
    let sparse = Tensor::from_i32(&[batch], classes_i.to_vec()).expect("labels");
    let w = rng.vec(batch);
    // Losses from the definition, -sum(labels * log(softmax)).
    let mut want_dense = Vec::new();
    let mut want_sparse = Vec::new();
    for (r, row) in logits_vals.chunks(classes).enumerate() {
        let z: f64 = row.iter().map(|v| v.exp()).sum();
        let logp: Vec<f64> = row.iter().map(|v| v - z.ln()).collect();
        want_dense.push(-(0..classes).map(|j| labels_vals[r * classes + j] * logp[j]).sum::<f64>());
        want_sparse.push(-logp[classes_i[r] as usize]);
    }
    let dense = cpu_eval(&[labels.clone(), logits.clone()], |g, i| g.softmax_cross_entropy_with_logits(&i[0], &i[1]))
        .expect("dense loss");
    assert_close("dense loss", &vals(&dense), &want_dense, 1e-12, 1e-12);
    let got =
        cpu_eval(&[sparse.clone(), logits.clone()], |g, i| g.sparse_softmax_cross_entropy_with_logits(&i[0], &i[1]))
            .expect("sparse loss");
    assert_close("sparse loss", &vals(&got), &want_sparse, 1e-12, 1e-12);
    // Backprops: the derivative of sum(loss * w), row b scaled by w[b].
    let weighted = |g: &[f64]| -> Vec<f64> { g.iter().enumerate().map(|(i, v)| v * w[i / classes]).collect() };
    let num =
        numeric_grad(&logits, 1e-5, &w, |g, x| g.softmax_cross_entropy_with_logits(g.constant(labels.clone())?, x));
    let got =
        cpu_eval(&[labels.clone(), logits.clone()], |g, i| g.softmax_cross_entropy_with_logits_grad(&i[0], &i[1]))
            .expect("dense backprop");
    assert_eq!(got.shape(), [batch, classes]);
    assert_close("dense backprop", &weighted(&vals(&got)), &num, 1e-8, 1e-7);
    let num = numeric_grad(&logits, 1e-5, &w, |g, x| {
        g.sparse_softmax_cross_entropy_with_logits(g.constant(sparse.clone())?, x)
    });
    let got = cpu_eval(&[sparse, logits], |g, i| g.sparse_softmax_cross_entropy_with_logits_grad(&i[0], &i[1]))
        .expect("sparse backprop");
    assert_close("sparse backprop", &weighted(&vals(&got)), &num, 1e-8, 1e-7);
    // Stable for large logits: exp(1000) would overflow.
    let big = Tensor::from_f32(&[1, 3], vec![1000.0, 0.0, -1000.0]).expect("logits");
    let one_hot = Tensor::from_f32(&[1, 3], vec![0.0, 1.0, 0.0]).expect("labels");
    let loss = cpu_eval(&[one_hot, big], |g, i| g.softmax_cross_entropy_with_logits(&i[0], &i[1])).expect("loss");
    assert_eq!(vals(&loss), [1000.0]);
}

#[path = "nn_grad/depthwise.rs"]
mod depthwise;
#[path = "nn_grad/devices.rs"]
mod devices;
#[path = "nn_grad/errors.rs"]
mod errors;
