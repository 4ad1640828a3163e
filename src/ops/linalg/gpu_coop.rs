//! Matmul on cooperative matrices (shaders/matmul_coop.wgsl, with matmul_rb.wgsl's loads and
//! stores), where the adapter offers a configuration wgflow uses (`variant::coop_shape`).

use std::fmt::Write;

use super::gpu::k_split;
use crate::error::Result;
use crate::ops::fused::wgsl::output_code;
use crate::ops::fused::Epilogue;
use crate::ops::kernel::{code_of, with_prelude};
use crate::ops::rb_tile::{k_per_dispatch, staging, Along};
use crate::ops::{cached_wgsl, wgsl, GpuLowering};
use crate::runtime::gpu::variant::{CoopShape, RbTile};

/// The block of the kernel for `shape`: (rows and columns of C per workgroup, k per slice,
/// threads), or `None` when the threads' loads do not divide a slice.
fn block(shape: CoopShape) -> Option<(usize, usize, usize)> {
    let (s, threads) = (shape.side, 4 * shape.lanes);
    let steps = (4 * threads).div_ceil(s * s).max(1);
    let (bm, bk) = (4 * s, s * steps);
    (threads > 0 && (bm * bk / 4).is_multiple_of(threads)).then_some((bm, bk, threads))
}

/// Bytes of workgroup memory the kernel stages: both slices twice, and the block of C.
fn staging_bytes(shape: CoopShape) -> usize {
    block(shape).map_or(usize::MAX, |(bm, bk, _)| 2 * 2 * bk * bm * if shape.f16 { 2 } else { 4 } + bm * bm * 4)
}

/// The cooperative matrix kernel, its results stored by `output` (`None`: see [`block`]).
pub fn matmul_coop_wgsl(shape: CoopShape, ta: bool, tb: bool, output: &str) -> Option<String> {
    let (bm, bk, threads) = block(shape)?;
    let s = shape.side;
    let elem = if shape.f16 { "f16" } else { "f32" };
    let a = if ta { Along::Other } else { Along::K };
    let b = if tb { Along::K } else { Along::Other };
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
    let header = code_of(wgsl::MATMUL_RB).replace("OUTPUT", output);
    let code = code_of(wgsl::MATMUL_COOP)
        .replace("HEADER", &header)
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

/// The lowering: `None` when the block does not fit the adapter's workgroup limits (the caller
/// then takes the register-blocked kernel), `Some(Ok(None))` when the epilogue does not fit.
pub(super) fn lowering(
    shape: CoopShape,
    limits: (usize, usize),
    (m, k, n): (usize, usize, usize),
    (ta, tb): (bool, bool),
    (uniforms, out, batches): (Vec<u32>, Vec<usize>, usize),
    epilogue: Option<&Epilogue>,
) -> Option<Result<Option<GpuLowering>>> {
    let (bm, bk, threads) = block(shape)?;
    let (max_threads, max_bytes) = limits;
    if threads > max_threads || staging_bytes(shape) > max_bytes {
        return None;
    }
    let output = output_code(epilogue, &out, 3, true)?;
    Some((|| {
        let key = format!("matmul coop {shape:?} ta {ta} tb {tb} {}", output.key());
        let wgsl = cached_wgsl(key, || {
            matmul_coop_wgsl(shape, ta, tb, &output.code())
                .ok_or_else(|| crate::error::Error::internal("no cooperative matrix block for this adapter"))
        })?;
        let groups = batches * m.div_ceil(bm) * n.div_ceil(bm);
        let leaves = epilogue.map_or(0, Epilogue::leaf_count);
        // One loop trip per slice, as the register-blocked kernel's.
        let split = k_per_dispatch(RbTile { bm, bn: bm, bk, tm: 4, tn: 4 });
        k_split(wgsl, uniforms, groups * threads, (k, split), out, leaves, threads as u32)
    })())
}

/// Instantiations for the naga test: f32 8x8 on 32 lanes (Apple's simdgroup matrices), f16
/// 16x16 on 32 lanes (NVIDIA's tensor cores), with transposes.
pub(crate) fn samples(output: &str) -> Vec<(String, String)> {
    let shapes = [
        (CoopShape { side: 8, f16: false, lanes: 32 }, false, false),
        (CoopShape { side: 16, f16: true, lanes: 32 }, true, true),
        (CoopShape { side: 16, f16: false, lanes: 64 }, false, true),
    ];
    shapes
        .iter()
        .filter_map(|&(shape, ta, tb)| {
            let name = format!("matmul_coop.wgsl {shape:?} ta {ta} tb {tb}");
            matmul_coop_wgsl(shape, ta, tb, output).map(|w| (name, w))
        })
        .collect()
}
