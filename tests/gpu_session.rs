//! The GPU session's promises, checked with its counters: variables stay resident, only
//! feeds go up and only fetches come down, one submit per run, no recompilation, and each
//! session holds (and frees) its own memory.

mod common;

use wgflow::{ConfigProto, DType, Graph, Session, Shape, Tensor};

const N: usize = 1 << 20;

fn gpu_session(g: &Graph) -> Session {
    Session::new(g, ConfigProto::default()).expect("session")
}

#[test]
fn assign_add_loop_on_a_resident_variable_moves_no_bytes_until_fetched() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let v = g.variable(Tensor::filled(DType::F32, &[N], 0.0), "v").unwrap();
    let step = g.assign_add(&v, Tensor::filled(DType::F32, &[N], 1.0)).unwrap();
    let init = g.global_variables_initializer().unwrap();
    let s = gpu_session(&g);
    s.run(&[&init]).unwrap();
    s.run(&[step.op()]).unwrap(); // uploads the increment constant once
    let before = s.stats();
    for _ in 0..100 {
        s.run(&[step.op()]).unwrap();
    }
    let after = s.stats();
    assert_eq!(after.bytes_uploaded - before.bytes_uploaded, 0, "the loop uploaded bytes");
    assert_eq!(after.bytes_downloaded - before.bytes_downloaded, 0, "the loop downloaded bytes");
    assert_eq!(after.pipelines_compiled - before.pipelines_compiled, 0);
    let value = s.eval(&v).unwrap();
    assert_eq!(s.stats().bytes_downloaded - after.bytes_downloaded, 4 * N as u64);
    let data = value.to_f32_vec().unwrap();
    assert!(data.iter().all(|&x| x == 101.0), "got {}", data[0]);
}

#[test]
fn second_run_of_a_signature_compiles_nothing_and_submits_once() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let p = g.placeholder(DType::F32, Shape::known(&[4])).unwrap();
    let y = g.relu(((&p * 2.0f32).unwrap() - 1.0f32).unwrap()).unwrap();
    let s = gpu_session(&g);
    let feed = Tensor::from(vec![0.0f32, 1.0, 2.0, -3.0]);
    s.eval_feed(&y, &[(&p, feed.clone())]).unwrap();
    let before = s.stats();
    let got = s.eval_feed(&y, &[(&p, feed)]).unwrap();
    let after = s.stats();
    assert_eq!(got, Tensor::from(vec![0.0f32, 1.0, 3.0, 0.0]));
    assert_eq!(after.pipelines_compiled - before.pipelines_compiled, 0);
    assert_eq!(after.submits - before.submits, 1);
    assert_eq!(after.gpu_buffers_allocated, before.gpu_buffers_allocated, "a repeated run allocates nothing");
    assert_eq!(after.bytes_uploaded - before.bytes_uploaded, 16, "only the feed goes up");
    assert_eq!(after.bytes_downloaded - before.bytes_downloaded, 16, "only the fetch comes down");
    assert_eq!(after.plans_built, before.plans_built);
}

#[test]
fn two_sessions_hold_their_own_values_and_dropping_one_frees_its_memory() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let v = g.variable(Tensor::filled(DType::F32, &[N], 1.0), "w").unwrap();
    let set = g.assign(&v, Tensor::filled(DType::F32, &[N], 7.0)).unwrap();
    let init = g.global_variables_initializer().unwrap();
    let a = gpu_session(&g);
    let b = gpu_session(&g);
    a.run(&[&init]).unwrap();
    b.run(&[&init]).unwrap();
    b.run(&[&set]).unwrap();
    assert_eq!(a.eval(&v).unwrap().to_f32_vec().unwrap()[N - 1], 1.0);
    assert_eq!(b.eval(&v).unwrap().to_f32_vec().unwrap()[N - 1], 7.0);
    assert!(a.stats().gpu_bytes_held >= 4 * N as u64, "a holds {}", a.stats().gpu_bytes_held);
    assert!(b.stats().gpu_bytes_held >= 4 * N as u64);
    let held_a = a.stats().gpu_bytes_held;
    let held = common::pool_bytes_held_of(&b);
    drop(b);
    assert_eq!(held.get(), 0, "dropping the session returns its GPU memory");
    assert_eq!(a.stats().gpu_bytes_held, held_a, "the other session is untouched");
    a.close();
    assert_eq!(a.stats().gpu_bytes_held, 0, "closing a session returns its GPU memory");
}

#[test]
fn uninitialized_variable_and_shape_errors_on_the_gpu() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let v = g.variable(vec![1.0f32, 2.0], "v").unwrap();
    let p = g.placeholder(DType::F32, Shape::unknown()).unwrap();
    let y = (v.value() + &p).unwrap();
    let s = gpu_session(&g);
    let e = s.eval_feed(&y, &[(&p, Tensor::from(vec![1.0f32, 2.0]))]).unwrap_err();
    assert_eq!(e.message, "Attempting to use uninitialized value v");
    s.run(&[v.initializer()]).unwrap();
    let e = s.eval_feed(&y, &[(&p, Tensor::from(vec![1.0f32, 2.0, 3.0]))]).unwrap_err();
    assert_eq!(e.message, "Incompatible shapes: [2] vs. [3]");
    assert_eq!(e.node.as_deref(), Some("add"));
    let ok = s.eval_feed(&y, &[(&p, Tensor::from(vec![1.0f32, 2.0]))]).unwrap();
    assert_eq!(ok, Tensor::from(vec![2.0f32, 4.0]));
}

#[test]
fn a_tensor_over_the_storage_binding_limit_is_resource_exhausted_naming_the_node() {
    if !common::gpu_ready() {
        return;
    }
    let limit = wgflow::testing::GpuContext::get(None).unwrap().limits().max_storage_buffer_binding_size as usize;
    let g = Graph::new();
    let p = g.placeholder(DType::F32, Shape::unknown()).unwrap();
    let y = g.named("too_big").square(&p).unwrap();
    let s = gpu_session(&g);
    let n = limit / 4 + 1024;
    let e = s.eval_feed(&y, &[(&p, Tensor::filled(DType::F32, &[n], 1.0))]).unwrap_err();
    assert_eq!(e.code, wgflow::Code::ResourceExhausted, "{e}");
    assert!(e.node.is_some(), "{e}");
    assert!(e.message.contains(&limit.to_string()), "the message names the limit: {}", e.message);
}

#[test]
fn two_gpu_sessions_run_at_once_on_two_threads() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let v = g.variable(Tensor::filled(DType::F32, &[4096], 0.0), "acc").unwrap();
    let step = g.assign_add(&v, Tensor::filled(DType::F32, &[4096], 1.0)).unwrap();
    let init = g.global_variables_initializer().unwrap();
    let sessions: Vec<Session> = (0..2).map(|_| gpu_session(&g)).collect();
    let handles: Vec<_> = sessions
        .into_iter()
        .enumerate()
        .map(|(t, s)| {
            let (init, step, v) = (init.clone(), step.clone(), v.clone());
            std::thread::spawn(move || {
                s.run(&[&init]).unwrap();
                for _ in 0..(20 + 10 * t) {
                    s.run(&[step.op()]).unwrap();
                }
                s.eval(&v).unwrap().to_f32_vec().unwrap()
            })
        })
        .collect();
    let got: Vec<Vec<f32>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(got[0].iter().all(|&x| x == 20.0), "first session: {}", got[0][0]);
    assert!(got[1].iter().all(|&x| x == 30.0), "second session: {}", got[1][0]);
}

#[test]
fn failed_runs_do_not_keep_buffers() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let p = g.placeholder(DType::F32, Shape::unknown()).unwrap();
    let q = g.placeholder(DType::F32, Shape::unknown()).unwrap();
    let y = g.relu((&p + &q).unwrap()).unwrap();
    let s = gpu_session(&g);
    let bad = [(&p, Tensor::from(vec![1.0f32; 64])), (&q, Tensor::from(vec![1.0f32; 3]))];
    assert!(s.run_feed(&[&y], &bad).is_err());
    let after_first = s.stats().gpu_buffers_allocated;
    for _ in 0..5 {
        assert!(s.run_feed(&[&y], &bad).is_err());
    }
    assert_eq!(s.stats().gpu_buffers_allocated, after_first, "failed runs reuse their buffers");
}
