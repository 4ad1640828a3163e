//! Matmul on cooperative matrices: the GEMM core of `ops::coop_tile` with matmul_rb.wgsl's
//! loads and stores, where the adapter offers a configuration wgflow uses
//! (`variant::coop_shape`).

use super::gpu::k_split;
use crate::error::{Error, Result};
use crate::ops::coop_tile::{self, gemm_coop_wgsl};
use crate::ops::fused::wgsl::output_code;
use crate::ops::fused::Epilogue;
use crate::ops::rb_tile::matmul_along;
use crate::ops::{cached_wgsl, wgsl, GpuLowering};
use crate::runtime::gpu::variant::{CoopShape, Kernels};

/// The cooperative matrix matmul, its results stored by `output` (`None`: no block for
/// `shape`).
pub fn matmul_coop_wgsl(shape: CoopShape, ta: bool, tb: bool, output: &str) -> Option<String> {
    let header = super::gpu::matmul_code(wgsl::MATMUL_RB).replace("OUTPUT", output);
    gemm_coop_wgsl(shape, matmul_along(ta, tb), &header)
}

/// The lowering: `None` when the adapter has no usable configuration (the caller then takes the
/// register-blocked kernel), `Some(Ok(None))` when the epilogue does not fit.
pub(super) fn lowering(
    kernels: &Kernels,
    (m, k, n): (usize, usize, usize),
    (ta, tb): (bool, bool),
    (uniforms, out, batches): (Vec<u32>, Vec<usize>, usize),
    epilogue: Option<&Epilogue>,
) -> Option<Result<Option<GpuLowering>>> {
    let (shape, block) = coop_tile::usable(kernels)?;
    let output = output_code(epilogue, &out, 3, true)?;
    Some((|| {
        let key = format!("matmul coop {shape:?} ta {ta} tb {tb} {}", output.key());
        let wgsl = cached_wgsl(key, || {
            matmul_coop_wgsl(shape, ta, tb, &output.code())
                .ok_or_else(|| Error::internal("no cooperative matrix block for this adapter"))
        })?;
        let (bm, _, threads) = block;
        let groups = batches * m.div_ceil(bm) * n.div_ceil(bm);
        let leaves = epilogue.map_or(0, Epilogue::leaf_count);
        k_split(wgsl, uniforms, groups * threads, (k, coop_tile::k_split(block)), out, leaves, threads as u32)
    })())
}

/// Instantiations for the naga test, with transposes.
pub(crate) fn samples(output: &str) -> Vec<(String, String)> {
    let cases = [(false, false), (true, true), (false, true)];
    coop_tile::SAMPLES
        .iter()
        .zip(cases)
        .filter_map(|(&shape, (ta, tb))| {
            let name = format!("gemm_coop.wgsl + matmul_rb.wgsl {shape:?} ta {ta} tb {tb}");
            matmul_coop_wgsl(shape, ta, tb, output).map(|w| (name, w))
        })
        .collect()
}
