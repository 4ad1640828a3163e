//! GPU memory stays flat over long loops: no run keeps a buffer it took (issue 12, part 1:
//! every `assign_add` / `assign_sub` used to keep the sum's buffer until the session died,
//! so every training step leaked).

mod common;

use wgflow::train::Optimizer;
use wgflow::{ConfigProto, DType, Graph, Session, Shape, Tensor};

const N: usize = 1 << 16;

fn gpu_session(g: &Graph) -> Session {
    Session::new(g, ConfigProto::default()).expect("session")
}

/// Runs `step` `n` times after `warmup` runs and checks that GPU bytes held and buffers
/// allocated did not grow after the warm-up.
fn assert_flat(s: &Session, warmup: usize, n: usize, mut step: impl FnMut(&Session)) {
    for _ in 0..warmup {
        step(s);
    }
    let before = s.stats();
    for _ in 0..n {
        step(s);
    }
    let after = s.stats();
    assert_eq!(
        after.gpu_bytes_held, before.gpu_bytes_held,
        "GPU bytes held grew from {} to {} over {n} runs",
        before.gpu_bytes_held, after.gpu_bytes_held
    );
    assert_eq!(after.gpu_buffers_allocated, before.gpu_buffers_allocated, "buffers were allocated in the loop");
}

#[test]
fn assign_add_and_assign_sub_loops_hold_constant_gpu_memory() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let _gpu = g.device("/gpu:0");
    let v = g.variable(Tensor::filled(DType::F32, &[N], 0.0), "v").unwrap();
    let add = g.assign_add(&v, Tensor::filled(DType::F32, &[N], 3.0)).unwrap();
    let sub = g.assign_sub(&v, Tensor::filled(DType::F32, &[N], 1.0)).unwrap();
    let init = g.global_variables_initializer().unwrap();
    let s = gpu_session(&g);
    s.run(&[&init]).unwrap();
    assert_flat(&s, 3, 1000, |s| {
        s.run(&[add.op()]).unwrap();
        s.run(&[sub.op()]).unwrap();
    });
    let got = s.eval(&v).unwrap().to_f32_vec().unwrap();
    assert!(got.iter().all(|&x| x == 2.0 * 1003.0), "got {}", got[0]);
    assert!(common::Device::Gpu.check_ran_here(&s).is_ok());
}

#[test]
fn assign_add_of_a_fed_value_holds_constant_gpu_memory() {
    if !common::gpu_ready() {
        return;
    }
    // A fed increment is uploaded each run: its buffer must go back too.
    let g = Graph::new();
    let _gpu = g.device("/gpu:0");
    let v = g.variable(Tensor::filled(DType::F32, &[N], 0.0), "v").unwrap();
    let inc = g.placeholder(DType::F32, Shape::known(&[N])).unwrap();
    let add = g.assign_add(&v, &inc).unwrap();
    let init = g.global_variables_initializer().unwrap();
    let s = gpu_session(&g);
    s.run(&[&init]).unwrap();
    let one = Tensor::filled(DType::F32, &[N], 1.0);
    assert_flat(&s, 3, 200, |s| {
        s.run_feed(&[add.op()], &[(&inc, one.clone())]).unwrap();
    });
    assert_eq!(s.eval(&v).unwrap().to_f32_vec().unwrap()[N - 1], 203.0);
}

#[test]
fn adam_training_steps_hold_constant_gpu_memory() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let _gpu = g.device("/gpu:0");
    let x = g.constant(Tensor::from_f32(&[4, 8], (0..32).map(|i| (i % 7) as f32 * 0.1).collect()).unwrap()).unwrap();
    let w = g.variable(Tensor::filled(DType::F32, &[8, 16], 0.05), "w").unwrap();
    let b = g.variable(Tensor::filled(DType::F32, &[16], 0.0), "b").unwrap();
    let y = g.relu(g.bias_add(g.matmul(&x, w.value(), false, false).unwrap(), b.value()).unwrap()).unwrap();
    let loss = g.reduce_mean(g.square(&y).unwrap(), None, false).unwrap();
    let train = Optimizer::adam(0.01).minimize(&loss, None, None).unwrap();
    let init = g.global_variables_initializer().unwrap();
    let s = gpu_session(&g);
    s.run(&[&init]).unwrap();
    let first = s.eval(&loss).unwrap().to_f32_vec().unwrap()[0];
    assert_flat(&s, 5, 300, |s| {
        s.run(&[&train]).unwrap();
    });
    let last = s.eval(&loss).unwrap().to_f32_vec().unwrap()[0];
    assert!(last < first, "the loss did not fall: {first} -> {last}");
}

#[test]
fn sessions_on_several_threads_hold_constant_gpu_memory() {
    if !common::gpu_ready() {
        return;
    }
    // A small soak: four threads, each with its own GPU session on one shared graph, run
    // assignments, a matmul and a fetch in a loop; each session's memory stays flat.
    let g = Graph::new();
    let _gpu = g.device("/gpu:0");
    let v = g.variable(Tensor::filled(DType::F32, &[64, 64], 0.0), "v").unwrap();
    let x = g.placeholder(DType::F32, Shape::known(&[64, 64])).unwrap();
    let step = g.assign_add(&v, g.matmul(&x, v.value(), false, false).unwrap()).unwrap();
    let reset = g.assign(&v, Tensor::filled(DType::F32, &[64, 64], 0.5)).unwrap();
    let total = g.reduce_sum(v.value(), None, false).unwrap();
    let init = g.global_variables_initializer().unwrap();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let (g, x, step, reset, total, init) = (&g, &x, &step, &reset, &total, &init);
            scope.spawn(move || {
                let s = gpu_session(g);
                s.run(&[init]).unwrap();
                let feed = Tensor::filled(DType::F32, &[64, 64], 0.0);
                assert_flat(&s, 3, 150, |s| {
                    s.run(&[reset.op()]).unwrap();
                    s.run_feed(&[step.op()], &[(x, feed.clone())]).unwrap();
                    let sum = s.eval(total).unwrap().to_f32_vec().unwrap()[0];
                    // x is zero, so the step adds nothing: 64 * 64 * 0.5.
                    assert_eq!(sum, 2048.0, "thread {t}");
                });
            });
        }
    });
}
