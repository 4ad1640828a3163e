//! The register-blocked Conv2D (shaders/conv2d_rb.wgsl in the GEMM core gemm_rb.wgsl): an
//! implicit GEMM per group, for groups whose output channels are whole vec4s; under the `coop`
//! variant the same header in the cooperative matrix core (gemm_coop.wgsl).

use crate::error::{Error, Result};
use crate::ops::coop_tile::{self, gemm_coop_wgsl};
use crate::ops::fused::wgsl::output_code;
use crate::ops::fused::Epilogue;
use crate::ops::kernel::{code_of, words};
use crate::ops::linalg::k_split;
use crate::ops::rb_tile::{gemm_rb_wgsl, k_per_dispatch, Along};
use crate::ops::{cached_wgsl, wgsl, GpuLowering};
use crate::runtime::cpu::conv::ConvGeom;
use crate::runtime::gpu::variant::{CoopShape, KernelVariant, Kernels, RbTile};

/// conv2d_rb.wgsl, reading the input as vec4s when `vec4_in` (Cin and Cin/groups multiples of
/// 4), its results stored by `output`: the header of either GEMM core.
fn header(vec4_in: bool, output: &str) -> String {
    let (xtype, at, quad) = if vec4_in {
        (
            "vec4<f32>",
            "in_x[u32(o) / 4u][u32(o) % 4u]",
            "let o = x_offset(row, k);\n    if (o < 0) {\n        return vec4<f32>(0.0);\n    }\n    return in_x[u32(o) / 4u];",
        )
    } else {
        (
            "f32",
            "in_x[u32(o)]",
            "return vec4<f32>(x_at(row, k), x_at(row, k + 1u), x_at(row, k + 2u), x_at(row, k + 3u));",
        )
    };
    code_of(wgsl::CONV2D_RB)
        .replace("XTYPE", xtype)
        .replace("X_AT", at)
        .replace("X_QUAD", quad)
        .replace("OUTPUT", output)
}

/// The register-blocked conv2d kernel for `tile` (see [`header`]).
pub fn conv2d_rb_wgsl(tile: RbTile, vec4_in: bool, output: &str) -> String {
    gemm_rb_wgsl(tile, Along::K, Along::Other, &header(vec4_in, output))
}

/// The cooperative matrix conv2d kernel for `shape` (`None`: no block for it).
pub fn conv2d_coop_wgsl(shape: CoopShape, vec4_in: bool, output: &str) -> Option<String> {
    gemm_coop_wgsl(shape, (Along::K, Along::Other), &header(vec4_in, output))
}

/// Instantiations of the cooperative kernel for the naga test.
pub(crate) fn coop_samples(output: &str) -> Vec<(String, String)> {
    coop_tile::SAMPLES
        .iter()
        .zip([true, false, true])
        .filter_map(|(&shape, vec4_in)| {
            let name = format!("gemm_coop.wgsl + conv2d_rb.wgsl {shape:?} vec4 {vec4_in}");
            conv2d_coop_wgsl(shape, vec4_in, output).map(|w| (name, w))
        })
        .collect()
}

/// Whether the register-blocked kernel takes this convolution: each group's output channels
/// are whole vec4s.
pub(super) fn fits(g: &ConvGeom) -> bool {
    let groups = g.in_c / g.patch_c.max(1);
    let cout_g = g.out_c / groups.max(1);
    g.in_c > 0 && g.patch_c > 0 && cout_g > 0 && cout_g.is_multiple_of(4) && g.batch * g.out_h * g.out_w > 0
}

/// The lowering (`Ok(None)`: the epilogue does not fit the output).
pub(super) fn lowering(kernels: &Kernels, g: &ConvGeom, epilogue: Option<&Epilogue>) -> Result<Option<GpuLowering>> {
    let groups = g.in_c / g.patch_c;
    let cout_g = g.out_c / groups;
    let pixels = g.batch * g.out_h * g.out_w;
    let k = g.k_h * g.k_w * g.patch_c;
    let tile = kernels.tile_for(pixels, cout_g, groups);
    let out = vec![g.batch, g.out_h, g.out_w, g.out_c];
    let Some(output) = output_code(epilogue, &out, 3, true) else { return Ok(None) };
    let vec4_in = g.in_c.is_multiple_of(4) && g.patch_c.is_multiple_of(4);
    let [s, d, p] = [g.stride, g.dilation, g.pad];
    // The words after `count`: m, n, k, flags, groups, k_lo, k_hi (the last four set by k_split), geometry.
    let uniforms = words(&[
        pixels, cout_g, k, 0, groups, 0, 0, g.in_h, g.in_w, g.in_c, g.k_w, g.patch_c, g.out_c, s[0], s[1], d[0], d[1],
        p[0], p[1], g.out_h, g.out_w,
    ])?;
    let leaves = epilogue.map_or(0, Epilogue::leaf_count);
    let coop = if kernels.variant == KernelVariant::Coop { coop_tile::usable(kernels) } else { None };
    if let Some((shape, block)) = coop {
        let key = format!("nn conv2d coop {shape:?} vec4 {vec4_in} {}", output.key());
        let wgsl = cached_wgsl(key, || {
            conv2d_coop_wgsl(shape, vec4_in, &output.code())
                .ok_or_else(|| Error::internal("no cooperative matrix block for this adapter"))
        })?;
        let (bm, _, threads) = block;
        let workgroups = groups * pixels.div_ceil(bm) * cout_g.div_ceil(bm);
        return k_split(
            wgsl,
            uniforms,
            workgroups * threads,
            (k, coop_tile::k_split(block)),
            out,
            leaves,
            threads as u32,
        );
    }
    let RbTile { bm, bn, bk, tm, tn } = tile;
    let key = format!("nn conv2d rb f32 {bm}x{bn}x{bk} {tm}x{tn} vec4 {vec4_in} {}", output.key());
    let wgsl = cached_wgsl(key, || Ok(conv2d_rb_wgsl(tile, vec4_in, &output.code())))?;
    let workgroups = groups * pixels.div_ceil(bm) * cout_g.div_ceil(bn);
    k_split(
        wgsl,
        uniforms,
        workgroups * tile.threads(),
        (k, k_per_dispatch(tile.bk)),
        out,
        leaves,
        tile.threads() as u32,
    )
}
