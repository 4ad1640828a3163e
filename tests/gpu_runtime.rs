//! The GPU runtime on a real adapter: uploads, broadcasting, 2-D workgroup folding, TF's NaN
//! semantics, the pipeline cache, one submit per run, transfer counts, the pool and the limits.
//!
//! Without an adapter these tests print SKIPPED and pass, unless CI=true (then they fail).

use std::sync::Arc;

use wgflow::testing::{
    binary_wgsl, broadcast_shape, broadcast_uniforms, unary_wgsl, BufferPool, GpuContext, GpuTensor, Stream,
    ELEMENTWISE_WORKGROUP_SIZE as WG,
};
use wgflow::{Code, DType, Tensor};

/// The shared context, or `None` (after printing SKIPPED) when there is no adapter.
fn context() -> Option<Arc<GpuContext>> {
    match GpuContext::get(None) {
        Ok(ctx) => Some(ctx),
        Err(e) if e.code == Code::NotFound => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("no GPU adapter, and CI=true makes that a failure: {e}");
            }
            println!("SKIPPED: no GPU adapter (set CI=true to make this a failure)");
            None
        }
        Err(e) => panic!("opening the GPU failed: {e}"),
    }
}

fn f32s(t: &Tensor) -> Vec<f32> {
    t.to_f32_vec().expect("a float32 tensor")
}

/// Runs the binary template on `a` and `b` with broadcasting and returns the result.
fn binary(pool: &mut BufferPool, expr: &str, a: &Tensor, b: &Tensor) -> wgflow::Result<Tensor> {
    let out_shape = broadcast_shape(a.shape(), b.shape())?;
    let uniforms = broadcast_uniforms(a.shape(), b.shape(), &out_shape)?;
    let mut s = Stream::new(pool)?;
    let ga = s.upload(a)?;
    let gb = s.upload(b)?;
    let out = s.alloc(DType::F32, &out_shape)?;
    s.dispatch(&binary_wgsl(expr), &uniforms, &[&ga, &gb], &out, out.len() as u64, WG)?;
    s.fetch(&out)?;
    for t in [ga, gb, out] {
        s.release(t);
    }
    let mut results = s.finish()?;
    Ok(results.remove(0))
}

fn unary(pool: &mut BufferPool, expr: &str, a: &Tensor) -> wgflow::Result<Tensor> {
    let mut s = Stream::new(pool)?;
    let ga = s.upload(a)?;
    let out = s.alloc(DType::F32, a.shape())?;
    s.dispatch(&unary_wgsl(expr), &[], &[&ga], &out, out.len() as u64, WG)?;
    s.fetch(&out)?;
    let mut results = s.finish()?;
    Ok(results.remove(0))
}

/// Equal as TF's tests see it: both NaN, or equal (infinities and signs included), or within
/// `tol` relative.
fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = (g.is_nan() && w.is_nan()) || g == w || (g - w).abs() <= tol * w.abs().max(1e-30);
        assert!(ok, "{what}[{i}]: got {g:?}, want {w:?}");
    }
}

#[test]
fn adapter_is_reported() {
    let Some(ctx) = context() else { return };
    let info = ctx.info();
    println!(
        "GPU adapter: {} (name {:?}, backend {:?}, type {:?})",
        ctx.description(),
        info.name,
        info.backend,
        info.device_type
    );
    let l = ctx.limits();
    println!(
        "limits: max_buffer_size {} max_storage_buffer_binding_size {} max_compute_invocations_per_workgroup {} \
         max_compute_workgroups_per_dimension {}",
        l.max_buffer_size,
        l.max_storage_buffer_binding_size,
        l.max_compute_invocations_per_workgroup,
        l.max_compute_workgroups_per_dimension
    );
    assert_eq!(wgflow::testing::adapter_name().as_deref(), Some(info.name.as_str()));
    assert!(l.max_compute_invocations_per_workgroup >= 256, "the adapter's own limits were requested");
    // The same process-wide context comes back.
    let again = GpuContext::get(None).expect("cached context");
    assert!(Arc::ptr_eq(&ctx, &again));
}

#[test]
fn add_same_shape_and_broadcast() {
    let Some(ctx) = context() else { return };
    let mut pool = BufferPool::new(ctx);
    let a = Tensor::from_f32(&[2, 3], vec![1., 2., 3., 4., 5., 6.]).expect("tensor");
    let b = Tensor::from_f32(&[2, 3], vec![10., 20., 30., 40., 50., 60.]).expect("tensor");
    let sum = binary(&mut pool, "a + b", &a, &b).expect("add");
    assert_eq!(sum.shape(), &[2, 3]);
    assert_eq!(f32s(&sum), vec![11., 22., 33., 44., 55., 66.]);

    let col = Tensor::from_f32(&[3, 1], vec![1., 2., 3.]).expect("tensor");
    let row = Tensor::from_f32(&[1, 4], vec![10., 20., 30., 40.]).expect("tensor");
    let out = binary(&mut pool, "a + b", &col, &row).expect("broadcast add");
    assert_eq!(out.shape(), &[3, 4]);
    assert_eq!(f32s(&out), vec![11., 21., 31., 41., 12., 22., 32., 42., 13., 23., 33., 43.]);

    // Rank 3 against a scalar and against a vector, and a rank-6 broadcast.
    let x = Tensor::from_f32(&[2, 2, 2], (0..8).map(|v| v as f32).collect()).expect("tensor");
    let s = binary(&mut pool, "a * b", &x, &Tensor::from(2.0f32)).expect("scalar");
    assert_eq!(f32s(&s), (0..8).map(|v| 2.0 * v as f32).collect::<Vec<_>>());
    let v = Tensor::from_f32(&[2], vec![100., 200.]).expect("tensor");
    let s = binary(&mut pool, "a - b", &v, &x).expect("vector");
    assert_eq!(f32s(&s), vec![100., 199., 98., 197., 96., 195., 94., 193.]);
    let p = Tensor::from_f32(&[2, 1, 3, 1, 2, 1], (0..12).map(|v| v as f32).collect()).expect("tensor");
    let q = Tensor::from_f32(&[1, 2, 1, 2, 1, 2], (0..8).map(|v| 100.0 * v as f32).collect()).expect("tensor");
    let r = binary(&mut pool, "a + b", &p, &q).expect("rank 6");
    assert_eq!(r.shape(), &[2, 2, 3, 2, 2, 2]);
    let got = f32s(&r);
    let mut k = 0;
    for i0 in 0..2 {
        for i1 in 0..2 {
            for i2 in 0..3 {
                for i3 in 0..2 {
                    for i4 in 0..2 {
                        for i5 in 0..2 {
                            let pv = (i0 * 6 + i2 * 2 + i4) as f32;
                            let qv = 100.0 * (i1 * 4 + i3 * 2 + i5) as f32;
                            assert_eq!(got[k], pv + qv, "rank-6 element {k}");
                            k += 1;
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn more_than_65535_workgroups_fold_into_two_dimensions() {
    let Some(ctx) = context() else { return };
    let max = ctx.limits().max_compute_workgroups_per_dimension;
    let n = 64 * 70_000usize;
    let (x, y) = wgflow::testing::workgroup_grid(n as u64, 64, max).expect("grid");
    println!("{n} invocations in workgroups of 64: grid ({x}, {y}), limit {max} per dimension");
    assert!(y > 1 && x <= max);
    let mut pool = BufferPool::new(ctx);
    let a = Tensor::from_f32(&[n], (0..n).map(|i| i as f32).collect()).expect("tensor");
    let b = Tensor::from_f32(&[n], vec![0.5; n]).expect("tensor");
    let out = binary(&mut pool, "a + b", &a, &b).expect("large add");
    let got = f32s(&out);
    let bad = got.iter().enumerate().find(|&(i, &v)| v != i as f32 + 0.5);
    assert!(bad.is_none(), "first wrong element: {bad:?}");
}

#[test]
fn nan_and_edge_semantics_match_tf() {
    let Some(ctx) = context() else { return };
    let mut pool = BufferPool::new(ctx);
    let nan = f32::NAN;
    let inf = f32::INFINITY;
    let t = |v: Vec<f32>| Tensor::from_f32(&[v.len()], v).expect("tensor");

    let a = t(vec![nan, 1.0, 2.0, -1.0, nan, -0.0]);
    let b = t(vec![1.0, nan, 1.0, -2.0, nan, 0.0]);
    let max = binary(&mut pool, "select(select(b, a, a >= b), a + b, is_nan(a) || is_nan(b))", &a, &b).expect("max");
    assert_close("maximum", &f32s(&max), &[nan, nan, 2.0, -1.0, nan, -0.0], 0.0);
    let max = binary(&mut pool, "max_tf(a, b)", &a, &b).expect("max_tf");
    assert_close("max_tf", &f32s(&max), &[nan, nan, 2.0, -1.0, nan, -0.0], 0.0);
    let min = binary(&mut pool, "min_tf(a, b)", &a, &b).expect("min_tf");
    assert_close("min_tf", &f32s(&min), &[nan, nan, 1.0, -2.0, nan, 0.0], 0.0);

    let x = vec![0.0, 0.0, -2.0, -2.0, -2.0, 2.0, 3.0, nan, 1.0, 0.0, -0.0, inf, -inf, -inf, 0.5, 10.0, 1.5];
    let y = vec![0.0, -1.0, 0.5, 2.0, 3.0, -2.0, 2.0, 0.0, nan, 2.0, -3.0, -1.0, 3.0, 2.0, inf, 20.5, 0.37];
    let pow = binary(&mut pool, "pow_tf(a, b)", &t(x.clone()), &t(y.clone())).expect("pow");
    let want: Vec<f32> = x.iter().zip(&y).map(|(a, b)| a.powf(*b)).collect();
    assert_close("pow", &f32s(&pow), &want, 2e-6);
    assert_close("pow listed", &f32s(&pow)[..5], &[1.0, inf, nan, 4.0, -8.0], 0.0);

    let xs = vec![0.0, -1.0, 1.0, nan, inf, -0.0, 2.5, 1e-30];
    let log = unary(&mut pool, "log_tf(a)", &t(xs.clone())).expect("log");
    assert_close("log", &f32s(&log), &xs.iter().map(|v| v.ln()).collect::<Vec<_>>(), 2e-6);
    let sqrt = unary(&mut pool, "sqrt_tf(a)", &t(xs.clone())).expect("sqrt");
    assert_close("sqrt", &f32s(&sqrt), &xs.iter().map(|v| v.sqrt()).collect::<Vec<_>>(), 2e-6);

    let ts = vec![nan, 0.0, 1e-5, -1e-5, 0.5, -0.5, 1.0, 3.0, 8.0, 9.5, -9.5, 20.0, -20.0, 100.0, -1e30, inf, -inf];
    let tanh = unary(&mut pool, "tanh_tf(a)", &t(ts.clone())).expect("tanh");
    let got = f32s(&tanh);
    assert_close("tanh", &got, &ts.iter().map(|v| v.tanh()).collect::<Vec<_>>(), 1e-6);
    assert!(got.iter().all(|v| v.is_nan() || v.abs() <= 1.0), "tanh beyond +-1: {got:?}");
    assert_close("tanh saturates", &got[9..], &[1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0], 0.0);
}

#[test]
fn second_identical_dispatch_compiles_nothing() {
    let Some(ctx) = context() else { return };
    let mut pool = BufferPool::new(ctx.clone());
    // An expression no other test uses, so the first run here is the one that compiles it.
    let expr = "a * b + a - a";
    let a = Tensor::from_f32(&[4], vec![1., 2., 3., 4.]).expect("tensor");
    let before = pool.stats();
    let first = binary(&mut pool, expr, &a, &a).expect("first run");
    let mid = pool.stats();
    let second = binary(&mut pool, expr, &a, &a).expect("second run");
    let after = pool.stats();
    assert_eq!(f32s(&first), vec![1., 4., 9., 16.]);
    assert_eq!(first, second);
    assert_eq!(mid.since(&before).pipelines_compiled, 1, "the first run compiles its pipeline");
    assert_eq!(after.since(&mid).pipelines_compiled, 0, "the second run compiles nothing");
    // ... and allocates nothing: every buffer came back to the pool and was reused.
    let buffers = pool.buffers_allocated();
    binary(&mut pool, expr, &a, &a).expect("third run");
    assert_eq!(pool.buffers_allocated(), buffers, "a repeated run allocates no buffer");
    assert!(ctx.pipelines_compiled() >= 1);
}

#[test]
fn one_finish_is_one_submit_and_transfers_are_counted() {
    let Some(ctx) = context() else { return };
    let mut pool = BufferPool::new(ctx);
    let a = Tensor::from_f32(&[3, 5], (0..15).map(|v| v as f32).collect()).expect("tensor");
    let b = Tensor::from_f32(&[5], vec![1.; 5]).expect("tensor");
    let ints = Tensor::from_i32(&[7], vec![1, -2, 3, -4, 5, -6, 7]).expect("tensor");
    let before = pool.stats();
    let mut s = Stream::new(&mut pool).expect("stream");
    let ga = s.upload(&a).expect("upload");
    let gb = s.upload(&b).expect("upload");
    let gi = s.upload(&ints).expect("upload");
    let out_shape = [3, 5];
    let u = broadcast_uniforms(&[3, 5], &[5], &out_shape).expect("uniforms");
    let sum = s.alloc(DType::F32, &out_shape).expect("alloc");
    let neg = s.alloc(DType::F32, &out_shape).expect("alloc");
    s.dispatch(&binary_wgsl("a + b"), &u, &[&ga, &gb], &sum, 15, WG).expect("add");
    s.dispatch(&unary_wgsl("-a"), &[], &[&sum], &neg, 15, WG).expect("neg");
    assert_eq!(s.fetch(&sum).expect("fetch"), 0);
    assert_eq!(s.fetch(&neg).expect("fetch"), 1);
    assert_eq!(s.fetch(&gi).expect("fetch"), 2);
    let results = s.finish().expect("finish");
    let d = pool.stats().since(&before);
    assert_eq!(d.submits, 1, "one finish, one submit");
    assert_eq!(d.bytes_uploaded, (15 + 5 + 7) * 4);
    assert_eq!(d.bytes_downloaded, (15 + 15 + 7) * 4);
    assert_eq!(f32s(&results[0]), (0..15).map(|v| v as f32 + 1.0).collect::<Vec<_>>());
    assert_eq!(f32s(&results[1]), (0..15).map(|v| -(v as f32 + 1.0)).collect::<Vec<_>>());
    assert_eq!(results[2], ints);
    // An empty run still submits once; empty tensors round-trip.
    let before = pool.stats();
    let mut s = Stream::new(&mut pool).expect("stream");
    let e = s.upload(&Tensor::from_f32(&[0, 3], vec![]).expect("tensor")).expect("upload");
    s.fetch(&e).expect("fetch");
    let results = s.finish().expect("finish");
    assert_eq!(results[0].shape(), &[0, 3]);
    assert_eq!(pool.stats().since(&before).submits, 1);
}

#[test]
fn dropping_the_pool_frees_its_buffers() {
    let Some(ctx) = context() else { return };
    let mut pool = BufferPool::new(ctx);
    let a = Tensor::from_f32(&[1000], vec![1.0; 1000]).expect("tensor");
    let kept: GpuTensor = {
        let mut s = Stream::new(&mut pool).expect("stream");
        let g = s.upload(&a).expect("upload");
        s.fetch(&g).expect("fetch");
        s.finish().expect("finish");
        g
    };
    let held = pool.held_counter();
    assert!(held.get() >= 4096, "the pool holds at least the tensor's size class: {}", held.get());
    assert_eq!(pool.stats().bytes_held, held.get());
    drop(kept);
    drop(pool);
    assert_eq!(held.get(), 0, "a dropped pool holds nothing");
}

#[test]
fn over_the_binding_limit_is_resource_exhausted() {
    let Some(ctx) = context() else { return };
    let limit = ctx.limits().max_storage_buffer_binding_size;
    let mut pool = BufferPool::new(ctx);
    let err = pool.take(limit + 4).expect_err("over the limit");
    assert_eq!(err.code, Code::ResourceExhausted);
    assert!(err.message.contains(&(limit + 4).to_string()) && err.message.contains(&limit.to_string()), "{err}");
    println!("{err}");
    let mut s = Stream::new(&mut pool).expect("stream");
    let elems = (limit / 4 + 1) as usize;
    let err = s.alloc(DType::F32, &[elems]).expect_err("over the limit");
    assert_eq!(err.code, Code::ResourceExhausted);
    let err = s.alloc(DType::Bool, &[4]).expect_err("bool is not a GPU type");
    assert_eq!(err.code, Code::Unimplemented);
}

#[test]
fn bad_kernels_are_errors_not_panics() {
    let Some(ctx) = context() else { return };
    let mut pool = BufferPool::new(ctx);
    let mut s = Stream::new(&mut pool).expect("stream");
    let a = s.upload(&Tensor::from_f32(&[4], vec![1.; 4]).expect("tensor")).expect("upload");
    let out = s.alloc(DType::F32, &[4]).expect("alloc");
    let err = s.dispatch(&binary_wgsl("a +* b"), &[], &[&a, &a], &out, 4, WG).expect_err("bad WGSL");
    assert_eq!(err.code, Code::Internal);
    println!("bad WGSL: {err}");
    let err = s.dispatch(&binary_wgsl("a + b"), &[], &[&a], &out, 4, WG).expect_err("binding mismatch");
    assert_eq!(err.code, Code::Internal);
    println!("binding mismatch: {err}");
    // Caught by wgpu's validation inside an error scope: the shader's 3 storage bindings do not
    // fit a layout for one input.
    let err = s.dispatch(&binary_wgsl("a + b + 0.0"), &[], &[&a], &out, 4, WG).expect_err("layout mismatch");
    assert_eq!(err.code, Code::Internal);
    assert!(err.message.contains("creating a compute pipeline"), "{err}");
    println!("layout mismatch: {err}");
    // A binding larger than its buffer.
    let small = s.alloc(DType::F32, &[4]).expect("alloc");
    let lying = GpuTensor { buffer: small.buffer.clone(), dtype: DType::F32, shape: vec![1 << 20] };
    let err = s.dispatch(&unary_wgsl("-a"), &[], &[&lying], &out, 4, WG).expect_err("binding past the buffer");
    assert_eq!(err.code, Code::Internal);
    assert!(err.message.contains("binding a GPU dispatch"), "{err}");
    println!("binding past the buffer: {err}");
    let err = s.dispatch(&binary_wgsl("a + b"), &[], &[&a, &a], &out, 4, WG).expect_err("params missing");
    assert_eq!(err.code, Code::Internal);
    println!("params missing: {err}");
    let err = s.dispatch(&unary_wgsl("-a"), &[], &[&a], &out, 4, 32).expect_err("wrong workgroup size");
    assert_eq!(err.code, Code::Internal);
    let err = s.dispatch(&unary_wgsl("-a"), &[], &[&out], &out, 4, WG).expect_err("aliasing");
    assert_eq!(err.code, Code::Internal);
    // The stream still works after the errors.
    s.dispatch(&unary_wgsl("-a"), &[], &[&a], &out, 4, WG).expect("valid dispatch");
    s.fetch(&out).expect("fetch");
    assert_eq!(f32s(&s.finish().expect("finish")[0]), vec![-1.; 4]);
    assert_eq!(pool.context().take_uncaptured_error(), None, "every error was caught by a scope");
}

#[test]
fn a_lost_device_is_unavailable() {
    let Some(_) = context() else { return };
    let private = GpuContext::open_private(None).expect("a second device");
    let mut pool = BufferPool::new(private.clone());
    let a = Tensor::from_f32(&[4], vec![1.; 4]).expect("tensor");
    let mut s = Stream::new(&mut pool).expect("stream");
    let g = s.upload(&a).expect("upload");
    s.fetch(&g).expect("fetch");
    private.destroy_device();
    let err = s.finish().expect_err("the device is gone");
    assert_eq!(err.code, Code::Unavailable, "{err}");
    println!("{err}");
    let err = Stream::new(&mut pool).map(|_| ()).expect_err("no new work on a lost device");
    assert_eq!(err.code, Code::Unavailable);
}

#[test]
fn a_gpu_past_its_timeout_is_unavailable_not_a_hang() {
    let Some(_) = context() else { return };
    let private = GpuContext::open_private(None).expect("a second device");
    let mut pool = BufferPool::new(private);
    let n = 1 << 22;
    let a = Tensor::from_f32(&[n], (0..n).map(|i| i as f32 * 1e-3).collect()).expect("tensor");
    let mut s = Stream::new(&mut pool).expect("stream");
    let g = s.upload(&a).expect("upload");
    let mut x = s.alloc(DType::F32, &[n]).expect("alloc");
    let mut y = s.alloc(DType::F32, &[n]).expect("alloc");
    s.dispatch(&unary_wgsl("tanh_tf(a)"), &[], &[&g], &x, n as u64, WG).expect("dispatch");
    for _ in 0..20 {
        s.dispatch(&unary_wgsl("tanh_tf(a) + log_tf(a)"), &[], &[&x], &y, n as u64, WG).expect("dispatch");
        std::mem::swap(&mut x, &mut y);
    }
    s.fetch(&x).expect("fetch");
    let start = std::time::Instant::now();
    match s.finish_within(std::time::Duration::from_micros(1)) {
        Err(e) => {
            assert_eq!(e.code, Code::Unavailable, "{e}");
            println!("after {:?}: {e}", start.elapsed());
        }
        Ok(_) => println!("the GPU finished within 1 us; the timeout path was not exercised"),
    }
    // The device still works afterwards.
    let mut s = Stream::new(&mut pool).expect("stream");
    let g = s.upload(&Tensor::from_f32(&[2], vec![1., 2.]).expect("tensor")).expect("upload");
    s.fetch(&g).expect("fetch");
    assert_eq!(f32s(&s.finish().expect("finish")[0]), vec![1., 2.]);
}
