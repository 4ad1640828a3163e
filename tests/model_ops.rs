//! Ops added for TF model files (Pad, Relu6, Elu): values on the CPU and on the GPU against
//! their definitions, and the gradients of the activations.

mod common;

use wgflow::{ConfigProto, Graph, Output, Session, Tensor};

fn devices() -> Vec<ConfigProto> {
    let mut d = vec![ConfigProto::cpu_only()];
    if common::gpu_ready() {
        d.push(ConfigProto::default());
    }
    d
}

fn run(g: &Graph, config: &ConfigProto, fetches: &[&Output]) -> Vec<Vec<f32>> {
    let s = Session::new(g, config.clone()).unwrap();
    let fetches: Vec<wgflow::Fetch> = fetches.iter().map(|&f| f.into()).collect();
    let out = s.run(&fetches).unwrap();
    out.into_iter().map(|t| t.unwrap().to_f32_vec().unwrap()).collect()
}

#[test]
fn pad_puts_zeros_around_each_dimension() {
    let g = Graph::new();
    let x = g.constant(Tensor::from_f32(&[1, 2, 3, 1], (1..=6).map(|v| v as f32).collect()).unwrap()).unwrap();
    let y = g.pad(&x, &[[0, 0], [1, 2], [0, 1], [0, 0]]).unwrap();
    assert_eq!(y.shape().to_vec(), Some(vec![1, 5, 4, 1]));
    #[rustfmt::skip]
    let want = vec![
        0.0, 0.0, 0.0, 0.0,
        1.0, 2.0, 3.0, 0.0,
        4.0, 5.0, 6.0, 0.0,
        0.0, 0.0, 0.0, 0.0,
        0.0, 0.0, 0.0, 0.0,
    ];
    for config in devices() {
        assert_eq!(run(&g, &config, &[&y])[0], want);
    }
    assert!(g.pad(&x, &[[0, 0]]).is_err(), "one [before, after] pair per dimension");
}

#[test]
fn relu6_and_elu_match_their_definitions_and_gradients() {
    let xs: Vec<f32> = vec![-3.0, -0.5, 0.0, 0.25, 5.5, 6.0, 7.5, f32::NAN];
    let g = Graph::new();
    let x = g.constant(Tensor::from(xs.clone())).unwrap();
    let (r6, elu) = (g.relu6(&x).unwrap(), g.elu(&x).unwrap());
    let sum = g
        .add(g.reduce_sum(&r6, None, false).unwrap(), g.reduce_sum(g.mul(&elu, 1.0f32).unwrap(), None, false).unwrap())
        .unwrap();
    let grad = g.gradients(&[sum], std::slice::from_ref(&x), None).unwrap().remove(0).unwrap();
    let want_r6: Vec<f32> = xs.iter().map(|&v| if v.is_nan() { v } else { v.clamp(0.0, 6.0) }).collect();
    let want_elu: Vec<f32> = xs.iter().map(|&v| if v < 0.0 { v.exp_m1() } else { v }).collect();
    let want_grad: Vec<f32> = xs
        .iter()
        .map(|&v| (if v > 0.0 && v < 6.0 { 1.0 } else { 0.0 }) + if v < 0.0 { v.exp() } else { 1.0 })
        .collect();
    for config in devices() {
        let out = run(&g, &config, &[&r6, &elu, &grad]);
        for (got, want, what) in
            [(&out[0], &want_r6, "relu6"), (&out[1], &want_elu, "elu"), (&out[2], &want_grad, "gradient")]
        {
            for (i, (a, b)) in got.iter().zip(want.iter()).enumerate() {
                let ok = (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-6 + 1e-5 * b.abs();
                assert!(ok || (what == "gradient" && xs[i].is_nan()), "{what}[{i}]: {a} vs {b}");
            }
        }
    }
}
