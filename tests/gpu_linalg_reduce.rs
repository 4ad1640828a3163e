//! The GPU kernels of matmul, reductions, softmax, transpose and concat against the CPU
//! kernels on shapes larger than the goldens' (several matmul tiles and K slices, broadcast
//! batches, long reductions, int32), and run-time shape errors identical on both devices.

mod common;

use common::{rand, Device};
use wgflow::{DType, Graph, Output, Session, Shape, Tensor};

/// Evaluates `ys` on both devices and compares (relative 1e-4, absolute 1e-4).
fn same_on_both(g: &Graph, ys: &[Output]) {
    let cpu = Session::new(g, Device::Cpu.config()).expect("cpu session");
    let gpu = Session::new(g, Device::Gpu.config()).expect("gpu session");
    for y in ys {
        let want = cpu.eval(y).expect("cpu run");
        let got = gpu.eval(y).expect("gpu run");
        Device::Gpu.check_ran_here(&gpu).unwrap_or_else(|e| panic!("{}: {e}", y.op().name()));
        assert_eq!(got.shape(), want.shape(), "{}", y.op().name());
        if want.dtype() == DType::I32 {
            assert_eq!(got, want, "{}", y.op().name());
            continue;
        }
        let (g32, w32) = (got.to_f32_vec().expect("f32"), want.to_f32_vec().expect("f32"));
        for (i, (a, b)) in g32.iter().zip(&w32).enumerate() {
            let ok = (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-4 + 1e-4 * b.abs();
            assert!(ok, "{} [{i}]: gpu {a} vs cpu {b}", y.op().name());
        }
    }
}

#[test]
fn matmul_tiles_transposes_and_batches() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let mut ys = Vec::new();
    for (m, k, n) in [(70, 45, 33), (1, 100, 65), (64, 16, 32), (33, 1, 97), (5, 0, 7)] {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = rand(&g, &if ta { [k, m] } else { [m, k] }, (m * k) as u32);
            let b = rand(&g, &if tb { [n, k] } else { [k, n] }, (k * n + 7) as u32);
            ys.push(g.matmul(&a, &b, ta, tb).expect("matmul"));
        }
    }
    // Broadcast batch dimensions, with transposes.
    let a = rand(&g, &[3, 1, 40, 20], 1);
    let b = rand(&g, &[4, 35, 20], 2);
    ys.push(g.matmul(&a, &b, false, true).expect("batch matmul"));
    let c = rand(&g, &[2, 20, 40], 3);
    let d = rand(&g, &[20, 50], 4);
    ys.push(g.matmul(&c, &d, true, false).expect("batch matmul"));
    same_on_both(&g, &ys);
}

#[test]
fn reductions_softmax_transpose_concat() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let x = rand(&g, &[6, 1, 50, 7, 9], 5);
    let mut ys = Vec::new();
    for axes in
        [None, Some(vec![0]), Some(vec![2]), Some(vec![0, 2, 4]), Some(vec![1, 3]), Some(vec![-1]), Some(vec![])]
    {
        for keep in [false, true] {
            ys.push(g.reduce_sum(&x, axes.as_deref(), keep).expect("sum"));
            ys.push(g.reduce_mean(&x, axes.as_deref(), keep).expect("mean"));
            ys.push(g.reduce_max(&x, axes.as_deref(), keep).expect("max"));
        }
    }
    // Empty reductions: sum 0, max -inf, mean NaN.
    let e = g.constant(Tensor::from_f32(&[3, 0], vec![]).expect("empty")).expect("constant");
    ys.push(g.reduce_sum(&e, Some(&[1]), false).expect("sum"));
    ys.push(g.reduce_max(&e, Some(&[1]), false).expect("max"));
    ys.push(g.reduce_mean(&e, Some(&[1]), false).expect("mean"));
    // NaN propagates through Max.
    let nan = g.constant(Tensor::from_f32(&[2, 3], vec![1.0, f32::NAN, 3.0, -2.0, 5.0, 0.0]).expect("t")).expect("c");
    ys.push(g.reduce_max(&nan, Some(&[1]), false).expect("max"));
    // int32 reductions.
    let ints: Vec<i32> = (0..120).map(|i| (i * 37 % 101) - 50).collect();
    let xi = g.constant(Tensor::from_i32(&[4, 5, 6], ints).expect("ints")).expect("constant");
    for axes in [None, Some(vec![1]), Some(vec![0, 2])] {
        ys.push(g.reduce_sum(&xi, axes.as_deref(), false).expect("sum"));
        ys.push(g.reduce_mean(&xi, axes.as_deref(), true).expect("mean"));
        ys.push(g.reduce_max(&xi, axes.as_deref(), false).expect("max"));
    }
    for axis in [0, 2, -1] {
        ys.push(g.softmax(&x, axis).expect("softmax"));
    }
    let big = g.constant(Tensor::from_f32(&[2, 3], vec![1000.0, 999.0, -1000.0, -80.0, 0.0, 80.0]).expect("t"));
    ys.push(g.softmax(big.expect("c"), -1).expect("softmax"));
    ys.push(g.transpose(&x, Some(&[4, 2, 0, 1, 3])).expect("transpose"));
    ys.push(g.transpose(&x, Some(&[1, 0, 2, 3, 4])).expect("transpose (a view)"));
    ys.push(g.transpose(&xi, None).expect("transpose int32"));
    let parts: Vec<Output> = (0..5).map(|i| rand(&g, &[6, i + 1, 50, 7, 9], 10 + i as u32)).collect();
    ys.push(g.concat(&parts, 1).expect("concat"));
    ys.push(g.concat(&[xi.clone(), xi.clone()], -1).expect("concat int32"));
    let r = g.reshape(&x, &[-1, 63]).expect("reshape");
    ys.push(g.reduce_sum(&r, Some(&[1]), false).expect("sum of a view"));
    same_on_both(&g, &ys);
}

#[test]
fn runtime_shape_errors_match_the_cpu() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let p = g.placeholder(DType::F32, Shape::unknown()).expect("placeholder");
    let q = g.placeholder(DType::F32, Shape::unknown()).expect("placeholder");
    let ys = [
        g.matmul(&p, &q, false, false).expect("matmul"),
        g.reduce_sum(&p, Some(&[3]), false).expect("sum"),
        g.softmax(&p, 2).expect("softmax"),
        g.transpose(&p, Some(&[0, 1, 2])).expect("transpose"),
        g.concat(&[p.clone(), q.clone()], 1).expect("concat"),
        g.reshape(&p, &[-1, 5]).expect("reshape"),
    ];
    let feeds =
        [(vec![2, 3], vec![2, 3]), (vec![2, 3, 4], vec![2, 5, 4]), (vec![2, 3, 4], vec![3, 4]), (vec![6], vec![6])];
    let cpu = Session::new(&g, Device::Cpu.config()).expect("cpu session");
    let gpu = Session::new(&g, Device::Gpu.config()).expect("gpu session");
    let mut errors = 0;
    for y in &ys {
        for (sp, sq) in &feeds {
            let fp = Tensor::filled(DType::F32, sp, 1.0);
            let fq = Tensor::filled(DType::F32, sq, 1.0);
            let want = cpu.eval_feed(y, &[(&p, fp.clone()), (&q, fq.clone())]);
            let got = gpu.eval_feed(y, &[(&p, fp), (&q, fq)]);
            match (got, want) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{}", y.op().name()),
                (Err(a), Err(b)) => {
                    errors += 1;
                    assert_eq!((a.code, a.message), (b.code, b.message), "{}", y.op().name());
                }
                (a, b) => panic!("{}: gpu {a:?} vs cpu {b:?}", y.op().name()),
            }
        }
    }
    assert!(errors >= 10, "only {errors} error cases");
    assert_eq!(gpu.stats().cpu_fallbacks, 0);
}

/// Shapes on both sides of the subgroup matmul kernel's conditions (k and n multiples of 4; used
/// where the device has 8-wide subgroups), with every transpose: partial row and column blocks,
/// the block sizes, broadcast batches, and near misses that take the tiled kernel.
#[test]
fn matmul_subgroup_kernel_shapes() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let mut ys = Vec::new();
    for (m, k, n) in [(300, 68, 132), (257, 4, 64), (9, 12, 8), (16, 8, 4), (600, 36, 20), (20, 6, 8), (20, 8, 6)] {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = rand(&g, &if ta { [k, m] } else { [m, k] }, (m + k) as u32);
            let b = rand(&g, &if tb { [n, k] } else { [k, n] }, (k + n + 3) as u32);
            ys.push(g.matmul(&a, &b, ta, tb).expect("matmul"));
        }
    }
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let a = rand(&g, &if ta { [2, 3, 28, 40] } else { [2, 3, 40, 28] }, 5);
        let b = rand(&g, &if tb { [3, 36, 28] } else { [3, 28, 36] }, 6);
        ys.push(g.matmul(&a, &b, ta, tb).expect("batch matmul"));
        let c = rand(&g, &if ta { [4, 16, 270] } else { [4, 270, 16] }, 7);
        let d = rand(&g, &if tb { [68, 16] } else { [16, 68] }, 8);
        ys.push(g.matmul(&c, &d, ta, tb).expect("batch matmul"));
    }
    same_on_both(&g, &ys);
}
