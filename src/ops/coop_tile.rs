//! The cooperative matrix GEMM core (shaders/gemm_coop.wgsl) that matmul (`linalg::gpu_coop`)
//! and conv2d (`nn::conv_rb`) instantiate with their gemm_rb headers: the block a workgroup
//! computes for a configuration, and the generated staging and multiply-adds.

use std::fmt::Write;

use super::kernel::with_prelude;
use super::rb_tile::{k_per_dispatch, staging, Along};
use super::wgsl;
use crate::runtime::gpu::variant::{CoopShape, Kernels};

/// The block of the kernel for `shape`: (rows and columns of C per workgroup, k per slice,
/// threads), or `None` when the threads' loads do not divide a slice.
pub(crate) fn block(shape: CoopShape) -> Option<(usize, usize, usize)> {
    let (s, threads) = (shape.side, 4 * shape.lanes);
    let steps = (4 * threads).div_ceil(s * s).max(1);
    let (bm, bk) = (4 * s, s * steps);
    (threads > 0 && (bm * bk / 4).is_multiple_of(threads)).then_some((bm, bk, threads))
}

/// Bytes of workgroup memory the kernel stages: both slices twice, and the block of C.
fn staging_bytes(shape: CoopShape) -> usize {
    block(shape).map_or(usize::MAX, |(bm, bk, _)| 2 * 2 * bk * bm * if shape.f16 { 2 } else { 4 } + bm * bm * 4)
}

/// The block for the adapter's cooperative configuration when the adapter's workgroup limits
/// allow it (else the caller takes the register-blocked kernel).
pub(crate) fn usable(kernels: &Kernels) -> Option<(CoopShape, (usize, usize, usize))> {
    let shape = kernels.coop?;
    let b = block(shape)?;
    (b.2 <= kernels.max_threads && staging_bytes(shape) <= kernels.max_staging).then_some((shape, b))
}

/// The k one dispatch covers: one loop trip per slice, as the register-blocked kernel's.
pub(crate) fn k_split((_, bk, _): (usize, usize, usize)) -> usize {
    k_per_dispatch(bk)
}

/// The kernel for `shape` with the op's `header` (see gemm_coop.wgsl) whose `load_a` and
/// `load_b` read along `a` and `b` (`None`: see [`block`]).
pub(crate) fn gemm_coop_wgsl(shape: CoopShape, (a, b): (Along, Along), header: &str) -> Option<String> {
    let (bm, bk, threads) = block(shape)?;
    let s = shape.side;
    let elem = if shape.f16 { "f16" } else { "f32" };
    let mut decls = String::new();
    let (loads, stores) = staging(&mut decls, (bm, bm, bk, threads), (a, b), Some(elem));
    let mut body = String::new();
    for t in 0..bk / s {
        let base = t * s * bm;
        let m = format!("coop_mat{s}x{s}<{elem}");
        let _ = writeln!(body, "        let a{t}0 = coopLoad<{m}, A>>(&sa[cur + {base}u + sr], BM);");
        let _ = writeln!(body, "        let a{t}1 = coopLoad<{m}, A>>(&sa[cur + {base}u + sr + S], BM);");
        let _ = writeln!(body, "        let b{t}0 = coopLoadT<{m}, B>>(&sb[cur + {base}u + sn], BM);");
        let _ = writeln!(body, "        let b{t}1 = coopLoadT<{m}, B>>(&sb[cur + {base}u + sn + S], BM);");
        for (i, j) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            let _ = writeln!(body, "        c{i}{j} = coopMultiplyAdd(a{t}{i}, b{t}{j}, c{i}{j});");
        }
    }
    let code = super::kernel::code_of(wgsl::GEMM_COOP)
        .replace("HEADER", header)
        .replace("coop_matSIDExSIDE", &format!("coop_mat{s}x{s}"))
        .replace("SIDE", &format!("{s}u"))
        .replace("BK_N", &format!("{bk}u"))
        .replace("THREADS_N", &format!("{threads}u"))
        .replace("LANES", &format!("{}u", shape.lanes))
        .replace("ELEM", elem)
        .replace("SA_LEN", &(2 * bk * bm).to_string())
        .replace("SC_LEN", &(bm * bm).to_string())
        .replace("DECLS", decls.trim_end())
        .replace("LOADS", loads.trim_end())
        .replace("STORES_TO_SHARED", stores.trim_end())
        .replace("BODY", body.trim_end());
    let enable =
        if shape.f16 { "enable f16;\nenable wgpu_cooperative_matrix;\n" } else { "enable wgpu_cooperative_matrix;\n" };
    Some(format!("{enable}{}", with_prelude(&code)))
}

/// Configurations for the naga test: f32 8x8 on 32 lanes (Apple's simdgroup matrices), f16
/// 16x16 on 32 lanes (NVIDIA's tensor cores), f32 16x16 on 64 lanes.
pub(crate) const SAMPLES: [CoopShape; 3] = [
    CoopShape { side: 8, f16: false, lanes: 32 },
    CoopShape { side: 16, f16: true, lanes: 32 },
    CoopShape { side: 16, f16: false, lanes: 64 },
];
