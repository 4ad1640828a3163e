//! Criterion benchmarks of the suite's kernels, for development: the same graphs as
//! `wgflow-bench` at the shapes that matter, on the CPU and (when an adapter exists) the GPU.
//! Run with `cargo bench`; `cargo bench -- matmul` picks one group.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use wgflow::{ConfigProto, Fetch, Graph, Padding, Session, Tensor};

/// Deterministic values in [-1, 1).
fn values(shape: &[usize], seed: u32) -> Tensor {
    let n: usize = shape.iter().product();
    let v = (0..n).map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) as f32 / 8_388_608.0 - 1.0);
    Tensor::from_f32(shape, v.collect()).expect("shape matches the values")
}

/// The devices to compare: the CPU, and the GPU when one is found.
fn devices() -> Vec<(&'static str, ConfigProto)> {
    let mut out = vec![("cpu", ConfigProto::cpu_only())];
    let probe = Session::new(&Graph::new(), ConfigProto::default()).expect("a session opens");
    if probe.device().starts_with("GPU") {
        out.push(("gpu", ConfigProto::default()));
    }
    out
}

/// A session on `g` with its variables initialised, and the op to run.
fn session(g: &Graph, config: &ConfigProto) -> Session {
    let s = Session::new(g, config.clone()).expect("a session opens");
    s.run(&[g.global_variables_initializer().expect("init builds")]).expect("init runs");
    s
}

fn elementwise(c: &mut Criterion) {
    let mut group = c.benchmark_group("add resident");
    for n in [1usize << 16, 1 << 20] {
        group.throughput(Throughput::Bytes(12 * n as u64));
        for (name, config) in devices() {
            let g = Graph::new();
            let a = g.variable(values(&[n], 1), "a").expect("variable");
            let b = g.variable(values(&[n], 2), "b").expect("variable");
            let y = Fetch::from(g.add(a.value(), b.value()).expect("add").op());
            let s = session(&g, &config);
            group.bench_function(BenchmarkId::new(name, n), |bench| bench.iter(|| s.run(&[&y]).expect("runs")));
        }
    }
    group.finish();
}

/// `relu(a*b+c)` on resident variables, fused into one kernel or run as three.
fn chain(c: &mut Criterion) {
    let mut group = c.benchmark_group("relu(a*b+c) resident");
    group.sample_size(20);
    for (name, config) in devices() {
        for n in [1usize << 20, 1 << 24] {
            group.throughput(Throughput::Bytes(16 * n as u64));
            for fused in [true, false] {
                let g = Graph::new();
                let v = |k: u32| g.variable(values(&[n], k), &format!("v{k}")).expect("variable");
                let (a, b, cc) = (v(1), v(2), v(3));
                let prod = g.mul(a.value(), b.value()).expect("mul");
                let y = Fetch::from(g.relu(g.add(&prod, cc.value()).expect("add")).expect("relu").op());
                let mut config = config.clone();
                config.graph_options.remapping = fused;
                let s = session(&g, &config);
                let label = format!("{}M {}", n >> 20, if fused { "fused" } else { "unfused" });
                let id = BenchmarkId::new(name, label);
                group.bench_function(id, |bench| bench.iter(|| s.run(&[&y]).expect("runs")));
            }
        }
    }
    group.finish();
}

fn matmul(c: &mut Criterion) {
    let mut group = c.benchmark_group("matmul");
    group.sample_size(10);
    for n in [256usize, 1024] {
        group.throughput(Throughput::Elements(2 * (n * n * n) as u64));
        for (name, config) in devices() {
            let g = Graph::new();
            let a = g.variable(values(&[n, n], 1), "a").expect("variable");
            let b = g.variable(values(&[n, n], 2), "b").expect("variable");
            let y = Fetch::from(g.matmul(a.value(), b.value(), false, false).expect("matmul").op());
            let s = session(&g, &config);
            group.bench_function(BenchmarkId::new(name, n), |bench| bench.iter(|| s.run(&[&y]).expect("runs")));
        }
    }
    group.finish();
}

fn conv2d(c: &mut Criterion) {
    let mut group = c.benchmark_group("conv2d");
    group.sample_size(10);
    let shapes: [([usize; 4], [usize; 4], usize); 2] =
        [([8, 64, 64, 32], [3, 3, 32, 64], 1), ([1, 224, 224, 3], [7, 7, 3, 64], 2)];
    for (x, f, stride) in shapes {
        let out = x[0] * x[1].div_ceil(stride) * x[2].div_ceil(stride) * f[3];
        group.throughput(Throughput::Elements(2 * (out * f[0] * f[1] * f[2]) as u64));
        for (name, config) in devices() {
            let g = Graph::new();
            let input = g.variable(values(&x, 1), "x").expect("variable");
            let filter = g.variable(values(&f, 2), "f").expect("variable");
            let s4 = [1, stride, stride, 1];
            let y = g.conv2d(input.value(), filter.value(), &s4, Padding::Same, &[1, 1, 1, 1]).expect("conv2d");
            let y = Fetch::from(y.op());
            let s = session(&g, &config);
            let id = BenchmarkId::new(name, format!("{}x{}x{}x{} k{}", x[0], x[1], x[2], x[3], f[0]));
            group.bench_function(id, |bench| bench.iter(|| s.run(&[&y]).expect("runs")));
        }
    }
    group.finish();
}

fn run_overhead(c: &mut Criterion) {
    let mut group = c.benchmark_group("run overhead");
    for (name, config) in devices() {
        let g = Graph::new();
        let y = g.add(g.constant(1.0f32).expect("const"), g.constant(2.0f32).expect("const")).expect("add");
        let s = session(&g, &config);
        group.bench_function(name, |bench| bench.iter(|| s.run(&[&y]).expect("runs")));
    }
    group.finish();
}

criterion_group!(benches, elementwise, chain, matmul, conv2d, run_overhead);
criterion_main!(benches);
