//! The matmul / conv2d kernel variants (`WGFLOW_KERNEL=tiled|regblock|sg8|coop`): the variant
//! the process uses is the one asked for (or the adapter's default when it cannot run it), the
//! kernels built are that variant's, and its results equal the CPU's on shapes that cross its
//! tiles, transposes, broadcast batches, groups, scalar input channels and k splits.
//! `scripts/test.sh` runs this file once per variant the adapter can run.

mod common;

use common::{rand, Device};
use wgflow::gpu::KernelVariant;
use wgflow::{Graph, Output, Padding, Session};

/// Evaluates `ys` on both devices; each element within `4e-5 * sqrt(k) * (1 + |cpu|)` for a
/// sum over `k` products (float32 sums in another order).
fn same_on_both(g: &Graph, ys: &[(Output, usize)]) {
    let cpu = Session::new(g, Device::Cpu.config()).expect("cpu session");
    let gpu = Session::new(g, Device::Gpu.config()).expect("gpu session");
    for (y, k) in ys {
        let want = cpu.eval(y).expect("cpu run").to_f32_vec().expect("f32");
        let got = gpu.eval(y).expect("gpu run").to_f32_vec().expect("f32");
        Device::Gpu.check_ran_here(&gpu).unwrap_or_else(|e| panic!("{}: {e}", y.op().name()));
        assert_eq!(got.len(), want.len(), "{}", y.op().name());
        let tol = 1e-5 * (*k as f32).sqrt().max(1.0);
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert!((a - b).abs() <= tol * (1.0 + b.abs()) * 4.0, "{} [{i}]: gpu {a} vs cpu {b}", y.op().name());
        }
    }
}

/// The variant `WGFLOW_KERNEL` asks for, as the adapter can run it (lavapipe: 8-wide subgroups,
/// no cooperative matrices).
fn expected_variant(adapter_sg8: bool, coop: bool) -> KernelVariant {
    let auto = if coop {
        KernelVariant::Coop
    } else if adapter_sg8 {
        KernelVariant::Sg8
    } else {
        KernelVariant::RegBlock
    };
    match std::env::var(wgflow::gpu::KERNEL_ENV).unwrap_or_default().trim() {
        "tiled" => KernelVariant::Tiled,
        "regblock" => KernelVariant::RegBlock,
        "sg8" if adapter_sg8 => KernelVariant::Sg8,
        "coop" if coop => KernelVariant::Coop,
        _ => auto,
    }
}

/// Prints the adapter's kernel line and `coop offered: yes|no` (scripts/test.sh reads it to know
/// whether to run the `coop` variant).
#[test]
fn adapter_kernels() {
    if !common::gpu_ready() {
        return;
    }
    let report = wgflow::testing::GpuContext::get(None).expect("context").report();
    let line = report.lines().find(|l| l.starts_with("matmul/conv2d kernels:")).expect("a kernels line");
    println!("{line}");
    let offered = line.contains("cooperative");
    println!("coop offered: {}", if offered { "yes" } else { "no" });
}

#[test]
fn the_variant_asked_for_is_the_one_that_runs() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let y = g.matmul(rand(&g, &[96, 64], 1), rand(&g, &[64, 128], 2), false, false).expect("matmul");
    let c =
        g.conv2d(rand(&g, &[1, 9, 9, 8], 3), rand(&g, &[3, 3, 8, 16], 4), &[1, 1, 1, 1], Padding::Same, &[1, 1, 1, 1]);
    let c = c.expect("conv2d");
    same_on_both(&g, &[(y, 64), (c, 72)]);
    let ctx = wgflow::testing::GpuContext::get(None).expect("context");
    let report = ctx.report();
    let sg8 = ctx.device_features().contains(wgflow::testing::Features::SUBGROUP)
        && ctx.info().subgroup_min_size == 8
        && ctx.info().subgroup_max_size == 8;
    // Whether the adapter offers a cooperative matrix configuration wgflow uses.
    let coop = report.contains("cooperative 8x8 tiles") || report.contains("cooperative 16x16 tiles");
    let want = expected_variant(sg8, coop);
    assert_eq!(wgflow::gpu::kernel_variant(), want, "report:\n{report}");
    let (matmul, conv) = match want {
        KernelVariant::Tiled => ("matmul f32", "nn conv2d f32"),
        KernelVariant::RegBlock => ("matmul rb f32", "nn conv2d rb f32"),
        KernelVariant::Sg8 => ("matmul sg f32", "nn conv2d sg f32"),
        KernelVariant::Coop => ("matmul coop", "nn conv2d coop"),
    };
    let d = g.depthwise_conv2d(
        rand(&g, &[1, 6, 6, 8], 5),
        rand(&g, &[3, 3, 8, 1], 6),
        &[1, 1, 1, 1],
        Padding::Same,
        &[1, 1, 1, 1],
    );
    same_on_both(&g, &[(d.expect("depthwise"), 9)]);
    let built = wgflow::testing::kernels_built();
    for prefix in [matmul, conv, "nn depthwise f32"] {
        assert!(built.iter().any(|k| k.starts_with(prefix)), "no {prefix} kernel in {built:#?}");
    }
    println!("kernel variant {}: built {built:?}", want.as_str());
}

#[test]
fn matmuls_cross_tiles_transposes_batches_and_k_splits() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let mut ys = Vec::new();
    // Ragged against 32, 64 and 128 tiles; every transpose; n, k and m multiples of 4 (the
    // vec4 kernels' condition), and shapes that are not (the tiled fallback).
    for (m, k, n) in [(132, 68, 136), (260, 36, 200), (4, 8, 4), (13, 20, 28), (64, 30, 33), (768, 20, 776)] {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = rand(&g, &if ta { [k, m] } else { [m, k] }, (m + k) as u32);
            let b = rand(&g, &if tb { [n, k] } else { [k, n] }, (k * n) as u32);
            ys.push((g.matmul(&a, &b, ta, tb).expect("matmul"), k));
        }
    }
    // Broadcast batches.
    let a = rand(&g, &[2, 1, 36, 20], 11);
    let b = rand(&g, &[3, 20, 44], 12);
    ys.push((g.matmul(&a, &b, false, false).expect("batch matmul"), 20));
    // A k past one dispatch of every variant (the register-blocked one takes 64,512 at most).
    let a = rand(&g, &[4, 70_000], 13);
    let b = rand(&g, &[70_000, 8], 14);
    ys.push((g.matmul(&a, &b, false, false).expect("long k"), 70_000));
    same_on_both(&g, &ys);
}

#[test]
fn convolutions_cross_groups_scalar_channels_and_k_splits() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let mut ys = Vec::new();
    let one = [1, 1, 1, 1];
    // (input, filter, strides, padding, dilations): vec4 channels, 3 channels (scalar loads),
    // two groups of 8 output channels, strides with TF's SAME, dilations, VALID.
    type Case = ([usize; 4], [usize; 4], [usize; 4], Padding, [usize; 4]);
    let cases: [Case; 5] = [
        ([2, 17, 15, 8], [3, 3, 8, 68], one, Padding::Same, one),
        ([1, 23, 23, 3], [7, 7, 3, 16], [1, 2, 2, 1], Padding::Same, one),
        ([2, 9, 10, 8], [3, 3, 4, 16], one, Padding::Same, one),
        ([1, 12, 12, 4], [3, 3, 4, 8], one, Padding::Valid, [1, 2, 2, 1]),
        ([1, 5, 6, 12], [2, 2, 12, 4], [1, 2, 3, 1], Padding::Valid, one),
    ];
    for (i, (x, f, s, p, d)) in cases.iter().enumerate() {
        let y = g.conv2d(rand(&g, x, i as u32), rand(&g, f, 50 + i as u32), s, *p, d).expect("conv2d");
        ys.push((y, f[0] * f[1] * f[2]));
    }
    // Depthwise (its own kernel): multiplier 1 with vec4 channels, 2 with scalar ones, strides,
    // dilations, both paddings.
    let depthwise: [Case; 3] = [
        ([2, 11, 9, 8], [3, 3, 8, 1], [1, 2, 2, 1], Padding::Same, one),
        ([1, 10, 10, 6], [3, 3, 6, 2], one, Padding::Valid, [1, 2, 2, 1]),
        ([1, 7, 8, 4], [5, 5, 4, 1], one, Padding::Same, one),
    ];
    for (i, (x, f, s, p, d)) in depthwise.iter().enumerate() {
        let y = g.depthwise_conv2d(rand(&g, x, 70 + i as u32), rand(&g, f, 80 + i as u32), s, *p, d);
        ys.push((y.expect("depthwise"), f[0] * f[1]));
    }
    // A receptive field past one dispatch: 3 x 3 x 7,200 = 64,800 entries.
    let y = g.conv2d(rand(&g, &[1, 3, 3, 7200], 60), rand(&g, &[3, 3, 7200, 4], 61), &one, Padding::Same, &one);
    ys.push((y.expect("long conv2d"), 64_800));
    same_on_both(&g, &ys);
}

/// `GpuOptions::allow_f16_matmul` changes nothing where the adapter offers no f16 cooperative
/// matrices (lavapipe): the same kernels, the same float32 results as a session without it.
#[test]
fn allow_f16_matmul_is_inert_without_f16_cooperative_matrices() {
    if !common::gpu_ready() {
        return;
    }
    let report = wgflow::testing::GpuContext::get(None).expect("context").report();
    if report.contains("A/B F16, C/result F32") {
        return; // This adapter offers them: the option then changes the kernel on purpose.
    }
    let g = Graph::new();
    let y = g.matmul(rand(&g, &[72, 40], 21), rand(&g, &[40, 36], 22), false, false).expect("matmul");
    let mut config = Device::Gpu.config();
    let plain = Session::new(&g, config.clone()).expect("session").eval(&y).expect("run");
    config.gpu_options.allow_f16_matmul = true;
    let allowed = Session::new(&g, config).expect("session").eval(&y).expect("run");
    assert_eq!(plain, allowed, "bit-equal results");
    assert_ne!(wgflow::gpu::kernel_variant(), KernelVariant::Coop);
}
