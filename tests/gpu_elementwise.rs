//! Every elementwise op on the GPU against the CPU kernel, on a vec4-friendly length (1024)
//! and an odd one (1023, the scalar path), with NaN, infinities and signed zeros mixed in.

mod common;

use wgflow::{BinaryKind, ConfigProto, Graph, Session, Tensor, UnaryKind};

fn values(n: usize, seed: f32) -> Vec<f32> {
    let special = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0, 1.0, -1.0, 0.5];
    (0..n)
        .map(|i| if i % 37 == 0 { special[(i / 37) % special.len()] } else { ((i as f32 + seed) * 0.731).sin() * 4.0 })
        .collect()
}

fn close(got: &Tensor, want: &Tensor, exact: bool) -> Result<(), String> {
    let (g, w) = (got.to_f32_vec().map_err(|e| e.to_string())?, want.to_f32_vec().map_err(|e| e.to_string())?);
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        let ok = (a.is_nan() && b.is_nan())
            || if exact || !b.is_finite() {
                a.to_bits() == b.to_bits() || a == b
            } else {
                (a - b).abs() <= 1e-6 + 4e-6 * b.abs()
            };
        if !ok {
            return Err(format!("element {i}: gpu {a:e}, cpu {b:e}"));
        }
    }
    Ok(())
}

fn eval(config: ConfigProto, build: &dyn Fn(&Graph) -> wgflow::Result<wgflow::Output>) -> (Tensor, Session) {
    let g = Graph::new();
    let y = build(&g).expect("build");
    let s = Session::new(&g, config).expect("session");
    (s.eval(&y).expect("run"), s)
}

#[test]
fn every_elementwise_op_matches_the_cpu_on_vec4_and_scalar_paths() {
    if !common::gpu_ready() {
        return;
    }
    let mut failures = Vec::new();
    for n in [1024usize, 1023] {
        let (a, b) = (Tensor::from(values(n, 0.0)), Tensor::from(values(n, 11.0)));
        for &k in BinaryKind::ALL {
            let build = |g: &Graph| g.binary(k, g.constant(a.clone())?, g.constant(b.clone())?);
            let (gpu, sess) = eval(ConfigProto::default(), &build);
            let (cpu, _) = eval(ConfigProto::cpu_only(), &build);
            let exact = matches!(
                k,
                BinaryKind::Add | BinaryKind::Sub | BinaryKind::Mul | BinaryKind::Maximum | BinaryKind::Minimum
            );
            if let Err(e) = close(&gpu, &cpu, exact).and(common::Device::Gpu.check_ran_here(&sess)) {
                failures.push(format!("{k:?} n={n}: {e}"));
            }
        }
        for &k in UnaryKind::ALL {
            let build = |g: &Graph| g.unary(k, g.constant(a.clone())?);
            let (gpu, sess) = eval(ConfigProto::default(), &build);
            let (cpu, _) = eval(ConfigProto::cpu_only(), &build);
            let exact = matches!(k, UnaryKind::Neg | UnaryKind::Abs | UnaryKind::Relu | UnaryKind::Square);
            if let Err(e) = close(&gpu, &cpu, exact).and(common::Device::Gpu.check_ran_here(&sess)) {
                failures.push(format!("{k:?} n={n}: {e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The vec4 kernels stride over a bounded grid (2^18 threads): a tensor of three grid strides
/// and five vec4s more gives some threads four vec4s and the others three, and every element
/// must come out.
#[test]
fn grid_stride_vec4_kernels_cover_every_element() {
    if !common::gpu_ready() {
        return;
    }
    let n = 4 * (3 * (1 << 18) + 5);
    let (a, b) = (Tensor::from(values(n, 3.0)), Tensor::from(values(n, 5.0)));
    type Build<'a> = Box<dyn Fn(&Graph) -> wgflow::Result<wgflow::Output> + 'a>;
    let builds: [Build; 2] = [
        Box::new(|g: &Graph| g.binary(BinaryKind::Add, g.constant(a.clone())?, g.constant(b.clone())?)),
        Box::new(|g: &Graph| g.unary(UnaryKind::Neg, g.constant(a.clone())?)),
    ];
    for build in &builds {
        let build = build.as_ref();
        let (gpu, sess) = eval(ConfigProto::default(), build);
        let (cpu, _) = eval(ConfigProto::cpu_only(), build);
        common::Device::Gpu.check_ran_here(&sess).expect("on the GPU");
        close(&gpu, &cpu, true).expect("every element");
    }
}
