//! One session shared by several threads (`&Session` in scoped threads, `Arc<Session>`), on
//! the CPU and on the GPU: independent runs get their own results, concurrent assignments
//! lose no update, a run sees another run's assignments all or not at all, a plan is built
//! once, and closing from another thread stops the runs cleanly; in a GPU session, runs on the
//! host alone share the values' lock with each other and stay whole beside GPU runs.

mod common;

use std::sync::Arc;

use common::Device;
use wgflow::{Code, ConfigProto, DType, Graph, Session, Shape, Tensor};

const THREADS: usize = 4;

fn session(g: &Graph, device: Device) -> Option<Session> {
    if device == Device::Gpu && !common::gpu_ready() {
        return None;
    }
    Some(Session::new(g, device.config()).expect("session"))
}

/// Each device's tests, as one test per device.
macro_rules! on_every_device {
    ($($test:ident),*) => {
        mod cpu {
            $(#[test]
            fn $test() {
                super::$test(super::Device::Cpu);
            })*
        }
        mod gpu {
            $(#[test]
            fn $test() {
                super::$test(super::Device::Gpu);
            })*
        }
    };
}

on_every_device!(
    threads_sharing_a_session_get_their_own_results,
    concurrent_assign_adds_are_exact,
    a_run_sees_another_runs_assignments_all_or_none,
    a_new_signature_is_planned_once_by_racing_threads,
    close_from_another_thread_stops_the_runs
);

#[test]
fn a_session_is_send_and_sync() {
    fn shared<T: Send + Sync>() {}
    shared::<Session>();
    shared::<Arc<Session>>();
}

/// Every thread feeds its own input to the same fetches and gets its own answer, many times.
fn threads_sharing_a_session_get_their_own_results(device: Device) {
    let g = Graph::new();
    let x = g.placeholder(DType::F32, Shape::known(&[256])).expect("placeholder");
    let w = g.variable(Tensor::filled(DType::F32, &[256], 2.0), "w").expect("variable");
    let y = g.add(g.mul(&x, &w).expect("mul"), 1.0f32).expect("add");
    let Some(sess) = session(&g, device) else { return };
    sess.run(&[g.global_variables_initializer().expect("init")]).expect("initializes");
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (sess, x, y) = (&sess, &x, &y);
            s.spawn(move || {
                for i in 0..20 {
                    let k = (t * 100 + i) as f64;
                    let out = sess.eval_feed(y, &[(x, Tensor::filled(DType::F32, &[256], k))]).expect("runs");
                    let out = out.to_f32_vec().expect("f32");
                    assert!(out.iter().all(|&v| f64::from(v) == 2.0 * k + 1.0), "thread {t} run {i}: {}", out[0]);
                }
            });
        }
    });
    assert_eq!(sess.stats().runs, 1 + 20 * THREADS as u64);
    device.check_ran_here(&sess).expect("on its device");
    // The same through an `Arc`, with threads that outlive the borrow.
    let sess = Arc::new(sess);
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (sess, x, y) = (Arc::clone(&sess), x.clone(), y.clone());
            std::thread::spawn(move || sess.eval_feed(&y, &[(&x, Tensor::filled(DType::F32, &[256], t as f64))]))
        })
        .collect();
    for (t, h) in handles.into_iter().enumerate() {
        let out = h.join().expect("no panic").expect("runs");
        assert_eq!(out, Tensor::filled(DType::F32, &[256], 2.0 * t as f64 + 1.0));
    }
}

/// N threads each add one to a variable M times (with a reader alongside): the result is
/// N*M exactly, and every read sees all of the vector's elements equal.
fn concurrent_assign_adds_are_exact(device: Device) {
    const RUNS: usize = 30;
    let g = Graph::new();
    let v = g.variable(Tensor::filled(DType::F32, &[1024], 0.0), "v").expect("variable");
    let counter = g.variable(0i32, "counter").expect("int variable");
    let bump = g.assign_add(&v, Tensor::filled(DType::F32, &[1024], 1.0)).expect("assign_add");
    let count = g.assign_add(&counter, 1i32).expect("assign_add");
    let Some(sess) = session(&g, device) else { return };
    sess.run(&[g.global_variables_initializer().expect("init")]).expect("initializes");
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for _ in 0..RUNS {
                    sess.run(&[&bump, &count]).expect("updates");
                }
            });
        }
        s.spawn(|| {
            let mut last = 0.0f32;
            for _ in 0..RUNS {
                let seen = sess.eval(&v).expect("reads").to_f32_vec().expect("f32");
                assert!(
                    seen.iter().all(|&e| e == seen[0]),
                    "a read saw half an update: {} and {}",
                    seen[0],
                    seen[1023]
                );
                assert!(seen[0] >= last, "the value went back from {last} to {}", seen[0]);
                last = seen[0];
            }
        });
    });
    let total = (THREADS * RUNS) as f64;
    assert_eq!(sess.eval(&v).expect("reads"), Tensor::filled(DType::F32, &[1024], total));
    assert_eq!(sess.eval(&counter).expect("reads"), Tensor::from((THREADS * RUNS) as i32));
}

/// One run assigns two variables; other runs read both: they are always equal.
fn a_run_sees_another_runs_assignments_all_or_none(device: Device) {
    let g = Graph::new();
    let a = g.variable(Tensor::filled(DType::F32, &[512], 0.0), "a").expect("variable");
    let b = g.variable(Tensor::filled(DType::F32, &[512], 0.0), "b").expect("variable");
    let up_a = g.assign_add(&a, Tensor::filled(DType::F32, &[512], 1.0)).expect("assign_add");
    let up_b = g.assign_add(&b, &a).expect("assign_add"); // b += a, after a is read
    let step = g.group(&[&up_a.op(), &up_b.op()]).expect("group");
    let diff = g.sub(&a, &b).expect("sub");
    let Some(sess) = session(&g, device) else { return };
    sess.run(&[g.global_variables_initializer().expect("init")]).expect("initializes");
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..40 {
                sess.run(&[&step]).expect("steps");
            }
        });
        for _ in 0..THREADS - 1 {
            s.spawn(|| {
                for _ in 0..40 {
                    let out = sess.run(&[&a, &b]).expect("reads");
                    let (a, b) = (out[0].clone().expect("a"), out[1].clone().expect("b"));
                    let (a, b) = (a.to_f32_vec().expect("f32"), b.to_f32_vec().expect("f32"));
                    // After k whole steps: a = k and b = k(k+1)/2 or, read before its
                    // update in the same step, k(k-1)/2; never anything between.
                    let k = a[0];
                    assert!(a.iter().all(|&x| x == k), "a torn: {a:?}");
                    let whole = [k * (k + 1.0) / 2.0, k * (k - 1.0) / 2.0];
                    assert!(b.iter().all(|&x| whole.contains(&x) && x == b[0]), "k = {k}, b = {}", b[0]);
                    sess.eval(&diff).expect("computes");
                }
            });
        }
    });
    assert_eq!(sess.eval(&a).expect("a"), Tensor::filled(DType::F32, &[512], 40.0));
}

/// In a GPU session, runs on the host alone that assign nothing share the values' lock: here
/// the variables live on the CPU, readers fetch them (host-only runs) while a writer steps them
/// and other runs compute on the GPU from them; every read is still all or none.
#[test]
fn a_gpu_session_runs_host_plans_side_by_side_and_whole() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let (a, b, step) = {
        let _cpu = g.device("/cpu:0");
        let a = g.variable(Tensor::filled(DType::F32, &[512], 0.0), "a").expect("variable");
        let b = g.variable(Tensor::filled(DType::F32, &[512], 0.0), "b").expect("variable");
        let up_a = g.assign_add(&a, Tensor::filled(DType::F32, &[512], 1.0)).expect("assign_add");
        let up_b = g.assign_add(&b, &a).expect("assign_add");
        let step = g.group(&[&up_a.op(), &up_b.op()]).expect("group");
        (a, b, step)
    };
    let on_gpu = {
        let _gpu = g.device("/gpu:0");
        g.reduce_sum(g.sub(&a, &b).expect("sub"), None, false).expect("sum")
    };
    let sess = Session::new(&g, ConfigProto::default()).expect("session");
    sess.run(&[g.global_variables_initializer().expect("init")]).expect("initializes");
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..40 {
                sess.run(&[&step]).expect("steps");
            }
        });
        for t in 0..THREADS - 1 {
            let (sess, a, b, on_gpu) = (&sess, &a, &b, &on_gpu);
            s.spawn(move || {
                for i in 0..40 {
                    let out = sess.run(&[a.value(), b.value()]).expect("reads");
                    let a = out[0].clone().expect("a").to_f32_vec().expect("f32");
                    let b = out[1].clone().expect("b").to_f32_vec().expect("f32");
                    let k = a[0];
                    assert!(a.iter().all(|&x| x == k), "a torn: {a:?}");
                    let whole = [k * (k + 1.0) / 2.0, k * (k - 1.0) / 2.0];
                    assert!(b.iter().all(|&x| whole.contains(&x) && x == b[0]), "k = {k}, b = {}", b[0]);
                    if (i + t) % 4 == 0 {
                        let d = sess.eval(on_gpu).expect("computes on the GPU").to_f32_vec().expect("f32");
                        let k = d[0] / 512.0;
                        assert!(k.fract() == 0.0, "a - b summed on the GPU: {}", d[0]);
                    }
                }
            });
        }
    });
    assert_eq!(sess.eval(a.value()).expect("a"), Tensor::filled(DType::F32, &[512], 40.0));
    // b took a's value from before or after a's update in each step, as the step's order says.
    let b = sess.eval(b.value()).expect("b");
    assert!([780.0, 820.0].iter().any(|&v| b == Tensor::filled(DType::F32, &[512], v)), "{b:?}");
}

/// Threads that race to run one new signature build its plan once.
fn a_new_signature_is_planned_once_by_racing_threads(device: Device) {
    let g = Graph::new();
    let x = g.constant(Tensor::filled(DType::F32, &[64], 3.0)).expect("constant");
    let y = g.relu(g.mul(&x, -2.0f32).expect("mul")).expect("relu");
    let z = g.reduce_sum(&x, None, false).expect("sum");
    let Some(sess) = session(&g, device) else { return };
    let barrier = std::sync::Barrier::new(THREADS);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (sess, barrier, y, z) = (&sess, &barrier, &y, &z);
            s.spawn(move || {
                barrier.wait();
                let fetch = if t % 2 == 0 { y } else { z };
                sess.eval(fetch).expect("runs")
            });
        }
    });
    assert_eq!(sess.stats().plans_built, 2, "one plan per signature");
    assert_eq!(sess.eval(&z).expect("sum"), Tensor::from(192.0f32));
}

/// A thread runs until the session is closed under it: its runs succeed, then fail with TF's
/// `FailedPrecondition`; nothing hangs and nothing panics.
fn close_from_another_thread_stops_the_runs(device: Device) {
    let g = Graph::new();
    let v = g.variable(Tensor::filled(DType::F32, &[128], 0.0), "v").expect("variable");
    let bump = g.assign_add(&v, Tensor::filled(DType::F32, &[128], 1.0)).expect("assign_add");
    let Some(sess) = session(&g, device) else { return };
    sess.run(&[g.global_variables_initializer().expect("init")]).expect("initializes");
    let started = std::sync::Barrier::new(2);
    std::thread::scope(|s| {
        let runner = s.spawn(|| {
            started.wait();
            let mut ok = 0u32;
            loop {
                match sess.run(&[&bump]) {
                    Ok(_) => ok += 1,
                    Err(e) => {
                        assert_eq!(e.code, Code::FailedPrecondition, "{e}");
                        return ok;
                    }
                }
            }
        });
        started.wait();
        sess.run(&[&bump]).expect("runs before the close");
        sess.close();
        runner.join().expect("no panic");
    });
    assert!(sess.is_closed());
    let e = sess.eval(&v).expect_err("closed");
    assert_eq!(e.code, Code::FailedPrecondition);
    assert_eq!(e.message, "Attempted to use a closed Session.");
}

/// A CPU session with its own thread pool serves threads too.
#[test]
fn a_session_with_its_own_pool_serves_threads() {
    let g = Graph::new();
    let a = g.constant(Tensor::filled(DType::F32, &[64, 64], 0.5)).expect("constant");
    let p = g.placeholder(DType::F32, Shape::known(&[64, 64])).expect("placeholder");
    let y = g.matmul(&p, &a, false, false).expect("matmul");
    let config = ConfigProto { intra_op_parallelism_threads: 2, ..ConfigProto::cpu_only() };
    let sess = Session::new(&g, config).expect("session");
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (sess, p, y) = (&sess, &p, &y);
            s.spawn(move || {
                let out = sess.eval_feed(y, &[(p, Tensor::filled(DType::F32, &[64, 64], t as f64))]).expect("runs");
                assert_eq!(out, Tensor::filled(DType::F32, &[64, 64], 32.0 * t as f64));
            });
        }
    });
}
