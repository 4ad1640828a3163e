//! A lost GPU, and a run past its deadline: every session's next run fails with a typed error
//! (`Unavailable` for a lost device, `DeadlineExceeded` for a run past its
//! `RunOptions::timeout`), never a hang or a panic, and work goes on afterwards: a new session
//! opens a fresh device after a loss; a session whose run timed out runs again.
//!
//! Its own test binary: it destroys the process's shared device. Its tests run one at a time
//! (`SERIAL`): a destroy under another test's run would fail that run.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use wgflow::testing::GpuContext;
use wgflow::{Code, ConfigProto, Graph, Output, RunOptions, Session, Tensor, Variable};

/// Held by each test for its whole run.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `f` on a thread; panics if it takes longer than a minute (a hang).
fn within_a_minute<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| panic!("{what} hung"))
}

/// A counter variable, its `assign_add(1)`, and a read of `v * 2`.
fn counter(g: &Graph) -> (Variable, Output, Output) {
    let v = g.variable(Tensor::from(vec![0.0f32; 4]), "count").expect("variable");
    let bump = g.assign_add(&v, Tensor::from(vec![1.0f32; 4])).expect("assign_add");
    let twice = g.mul(v.value(), 2.0f32).expect("mul");
    (v, bump, twice)
}

#[test]
fn a_destroyed_device_fails_every_session_then_a_new_session_opens_a_fresh_one() {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let (_, bump, twice) = counter(&g);
    let mut sessions: Vec<Session> =
        (0..4).map(|_| Session::new(&g, ConfigProto::default()).expect("session")).collect();
    for s in &mut sessions {
        assert!(s.device().starts_with("GPU"), "{}", s.device());
        s.run(&[g.global_variables_initializer().expect("init")]).expect("init");
        s.run(std::slice::from_ref(&bump)).expect("bump");
    }
    GpuContext::get(None).expect("the shared context").destroy_device();
    let (g2, bump2, twice2) = (g.clone(), bump.clone(), twice.clone());
    let sessions = within_a_minute("runs on a lost device", move || {
        for (k, s) in sessions.iter_mut().enumerate() {
            let e = s.run(std::slice::from_ref(&bump2)).expect_err("the device is gone");
            assert_eq!(e.code, Code::Unavailable, "session {k}: {e}");
            let e = s.eval(&twice2).expect_err("still gone");
            assert_eq!(e.code, Code::Unavailable, "session {k}: {e}");
            println!("session {k} after the loss: {e}");
        }
        drop(g2);
        sessions
    });
    drop(sessions);
    // A new session opens a fresh device and computes.
    let fresh = Session::new(&g, ConfigProto::default()).expect("a session on a fresh device");
    assert!(fresh.device().starts_with("GPU"), "{}", fresh.device());
    fresh.run(&[g.global_variables_initializer().expect("init")]).expect("init");
    for _ in 0..3 {
        fresh.run(std::slice::from_ref(&bump)).expect("bump");
    }
    assert_eq!(fresh.eval(&twice).expect("read"), Tensor::from(vec![6.0f32; 4]));
}

#[test]
fn a_run_past_its_timeout_is_deadline_exceeded_and_the_session_runs_on() {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !common::gpu_ready() {
        return;
    }
    // Enough GPU work (a chain of 1024x1024 matmuls, about a second on lavapipe) that a deadline
    // of a tenth of it ends while the GPU is still at it (the host records the cached plan in
    // far less).
    let g = Graph::new();
    let n = 1024;
    let a = g
        .constant(Tensor::from_f32(&[n, n], (0..n * n).map(|i| (i % 7) as f32 * 1e-3).collect()).expect("a"))
        .expect("const");
    let mut y = a.clone();
    for _ in 0..4 {
        y = g.matmul(&y, &a, false, false).expect("matmul");
    }
    let total = g.reduce_sum(&y, None, false).expect("sum");
    let s = Session::new(&g, ConfigProto::default()).expect("session");
    let want = s.eval(&total).expect("a run without a deadline");
    // A tenth of a whole run (its plan cached) as the deadline.
    let t0 = std::time::Instant::now();
    assert_eq!(s.eval(&total).expect("again"), want);
    let deadline = t0.elapsed() / 10;
    if deadline < Duration::from_millis(2) {
        println!("the GPU ran the chain in {:?}: too fast for a deadline to fall inside it", t0.elapsed());
        return;
    }
    let (s, total2) = within_a_minute("a run with a deadline", move || {
        let short = RunOptions { timeout: Some(deadline), ..RunOptions::default() };
        let e = s.run_with(&[total.clone().into()], &[], &short, None).expect_err("past its deadline");
        assert_eq!(e.code, Code::DeadlineExceeded, "{e}");
        println!("a run past its deadline: {e}");
        (s, total)
    });
    let s = s;
    // The same session runs again, with the right value, while or after the GPU finishes.
    for _ in 0..3 {
        assert_eq!(s.eval(&total2).expect("runs again"), want);
    }
}
