//! The register-blocked matmul (shaders/matmul_rb.wgsl in the GEMM core gemm_rb.wgsl), for
//! operands whose stored rows are whole vec4s.

use super::gpu::k_split;
use crate::error::Result;
use crate::ops::fused::wgsl::output_code;
use crate::ops::fused::Epilogue;
use crate::ops::rb_tile::{gemm_rb_wgsl, k_per_dispatch, matmul_along};
use crate::ops::{cached_wgsl, wgsl, GpuLowering};
use crate::runtime::gpu::variant::{Kernels, RbTile};

/// The register-blocked kernel for `tile` and the transposes, its results stored by `output`
/// (the template's `OUTPUT`).
pub fn matmul_rb_wgsl(tile: RbTile, ta: bool, tb: bool, output: &str) -> String {
    let header = super::gpu::matmul_code(wgsl::MATMUL_RB).replace("OUTPUT", output);
    let (a, b) = matmul_along(ta, tb);
    gemm_rb_wgsl(tile, a, b, &header)
}

/// Whether the register-blocked kernel takes these shapes: the output's rows and each
/// operand's stored rows are whole vec4s.
pub(super) fn fits((m, k, n): (usize, usize, usize), (ta, tb): (bool, bool)) -> bool {
    let a_row = if ta { m } else { k };
    let b_row = if tb { k } else { n };
    m > 0 && n > 0 && k > 0 && n.is_multiple_of(4) && a_row.is_multiple_of(4) && b_row.is_multiple_of(4)
}

/// The lowering (`Ok(None)`: the epilogue does not fit the output). `uniforms` are matmul's
/// words, as for the tiled kernel.
pub(super) fn lowering(
    kernels: &Kernels,
    (m, k, n): (usize, usize, usize),
    (ta, tb): (bool, bool),
    (uniforms, out, batches): (Vec<u32>, Vec<usize>, usize),
    epilogue: Option<&Epilogue>,
) -> Result<Option<GpuLowering>> {
    let tile = kernels.tile_for(m, n, batches);
    let Some(output) = output_code(epilogue, &out, 3, true) else { return Ok(None) };
    let RbTile { bm, bn, bk, tm, tn } = tile;
    let key = format!("matmul rb f32 {bm}x{bn}x{bk} {tm}x{tn} ta {ta} tb {tb} {}", output.key());
    let wgsl = cached_wgsl(key, || Ok(matmul_rb_wgsl(tile, ta, tb, &output.code())))?;
    let groups = batches * m.div_ceil(bm) * n.div_ceil(bn);
    let leaves = epilogue.map_or(0, Epilogue::leaf_count);
    let split = (k_per_dispatch(tile.bk), tile.threads() as u32);
    k_split(wgsl, uniforms, groups * tile.threads(), (k, split.0), out, leaves, split.1)
}
