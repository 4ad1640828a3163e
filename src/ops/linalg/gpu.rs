//! GPU lowerings of the matrix products (float32): the tiled kernel (shaders/matmul.wgsl) and
//! the subgroup kernel (shaders/matmul_sg.wgsl), split over k into passes when one
//! invocation's loop would pass the trip budget, with a fused epilogue if given.

use super::cpu::matmul_dims;
use super::{BatchMatMul, MatMul};
use crate::error::{Error, Result};
use crate::ops::fused::wgsl::output_code;
use crate::ops::fused::Epilogue;
use crate::ops::gpu_passes::{MAX_LOOP_TRIPS, OVERHEAD_TRIPS};
use crate::ops::kernel::{code_of, with_prelude, word, MAX_RANK, WG};
use crate::ops::sg_tile::{SgTile, TileStore};
use crate::ops::{cached_wgsl, wgsl, GpuLowering, Pass, PassBuf, Passes};
use crate::runtime::gpu::shaders as gpu_shaders;
use crate::runtime::gpu::variant::{kernels, KernelVariant};
use crate::tensor::{dims_string, DType};

/// Output tile side of the matmul kernel.
const TILE: usize = 32;
/// The k a tiled matmul dispatch covers: its k loop (slices of 16) makes 17 trips per slice
/// (the unrolled staging and the 16 k of the slice), so 224 slices fit the loop budget.
const MATMUL_K_SPLIT: usize = 224 * 16;
/// The k a subgroup matmul dispatch covers: 5 trips per vec4 of k (its loop over the 4 k).
const MATMUL_SG_K_SPLIT: usize = 768 * 4;
const _: () = assert!(MATMUL_K_SPLIT / 16 * 17 + OVERHEAD_TRIPS <= MAX_LOOP_TRIPS);
const _: () = assert!(MATMUL_SG_K_SPLIT / 4 * 5 + OVERHEAD_TRIPS <= MAX_LOOP_TRIPS);

impl MatMul {
    pub(super) fn lower(
        &self,
        inputs: &[(DType, &[usize])],
        epilogue: Option<&Epilogue>,
    ) -> Option<Result<GpuLowering>> {
        let shapes = [inputs[0].1, inputs[1].1];
        if let Some(i) = shapes.iter().position(|s| s.len() != 2) {
            return Some(Err(Error::invalid_argument(format!(
                "In[{i}] is not a matrix. Instead it has shape {}",
                dims_string(shapes[i])
            ))));
        }
        gpu_matmul(inputs, self.transpose_a, self.transpose_b, epilogue)
    }

    /// Whether [`MatMul::lower`] has a kernel (or a shape error) for these inputs.
    pub(super) fn supports(&self, inputs: &[(DType, &[usize])]) -> bool {
        inputs.iter().any(|s| s.1.len() != 2) || matmul_supported(inputs, self.transpose_a, self.transpose_b)
    }
}

impl BatchMatMul {
    pub(super) fn lower(
        &self,
        inputs: &[(DType, &[usize])],
        epilogue: Option<&Epilogue>,
    ) -> Option<Result<GpuLowering>> {
        if let Some(i) = inputs.iter().position(|s| s.1.len() < 2) {
            return Some(Err(Error::invalid_argument(format!("In[{i}] ndims must be >= 2: {}", inputs[i].1.len()))));
        }
        gpu_matmul(inputs, self.adj_x, self.adj_y, epilogue)
    }

    /// Whether [`BatchMatMul::lower`] has a kernel (or a shape error) for these inputs.
    pub(super) fn supports(&self, inputs: &[(DType, &[usize])]) -> bool {
        inputs.iter().any(|s| s.1.len() < 2) || matmul_supported(inputs, self.adj_x, self.adj_y)
    }
}

/// Whether [`gpu_matmul`] has a kernel (or a shape error) for these inputs: float32 operands
/// with at most `MAX_RANK` batch dimensions.
fn matmul_supported(inputs: &[(DType, &[usize])], ta: bool, tb: bool) -> bool {
    let ((da, sa), (db, sb)) = (inputs[0], inputs[1]);
    da == DType::F32
        && db == DType::F32
        && matmul_dims(sa, sb, ta, tb).map_or(true, |(_, batch)| batch.len() <= MAX_RANK)
}

/// The GPU lowering of both ops, after the CPU kernel's checks, with a fused epilogue if given.
fn gpu_matmul(
    inputs: &[(DType, &[usize])],
    ta: bool,
    tb: bool,
    epilogue: Option<&Epilogue>,
) -> Option<Result<GpuLowering>> {
    let ((da, sa), (db, sb)) = (inputs[0], inputs[1]);
    if da != DType::F32 || db != DType::F32 {
        return None;
    }
    match matmul_dims(sa, sb, ta, tb) {
        Ok((mkn, batch)) => matmul(mkn, (&sa[..sa.len() - 2], &sb[..sb.len() - 2], &batch), (ta, tb), epilogue),
        Err(e) => Some(Err(e)),
    }
}

/// The float32 batched matmul kernel, its results stored by `output` (the template's `OUTPUT`:
/// see `fused::wgsl::output_code`).
pub fn matmul_wgsl(output: &str) -> String {
    with_prelude(&matmul_code(wgsl::MATMUL).replace("OUTPUT", output))
}

/// A matmul template without its comments, with the uniforms and batch walk the matmul
/// templates share (shaders/matmul_batch.wgsl) in place of its `MATMUL_PARAMS` line.
pub(crate) fn matmul_code(template: &str) -> String {
    code_of(template).replace("MATMUL_PARAMS", &code_of(wgsl::MATMUL_BATCH))
}

/// The subgroup matmul kernel (see shaders/matmul_sg.wgsl) with `rows` rows and `vcols` vec4
/// columns per lane, its loops unrolled here, its results stored by `output` (the template's
/// `OUTPUT`).
pub fn matmul_sg_wgsl(rows: usize, vcols: usize, ta: bool, tb: bool, output: &str) -> String {
    use std::fmt::Write;
    let tile = SgTile { rows, vcols };
    let (mut decls, mut body) = (String::new(), String::new());
    for v in 0..vcols {
        if tb {
            // Row 4c of the stored (n x k) B, in vec4s, for the lane's vec4 column c.
            let _ = writeln!(decls, "    let bt{v} = mat_b / 4u + min(col0 + {}u + lane, last_col) * 4u * k4;", 8 * v);
            for q in 0..4 {
                let _ = writeln!(body, "        let t{v}_{q} = in_b[bt{v} + {q}u * k4 + kk];");
            }
        } else {
            let _ = writeln!(decls, "    let bc{v} = min(col0 + {}u + lane, last_col);", 8 * v);
        }
    }
    if !tb {
        let _ = writeln!(body, "        var bi = mat_b / 4u + kk * 4u * n4;");
    }
    for i in 0..rows {
        tile.zero_row(&mut decls, i);
        if ta {
            let _ = writeln!(decls, "    let ar{i} = mat_a + min(row0 + {}u, last_row);", 8 * i);
            let _ = writeln!(body, "        let ak{i} = ar{i} + kk * 4u * params.m;");
            let _ = writeln!(
                body,
                "        let av{i} = vec4<f32>(in_a[ak{i}], in_a[ak{i} + params.m], in_a[ak{i} + 2u * params.m], in_a[ak{i} + 3u * params.m]);"
            );
        } else {
            let _ = writeln!(decls, "    let ar{i} = mat_a / 4u + min(row0 + {}u, last_row) * k4;", 8 * i);
            let _ = writeln!(body, "        let av{i} = in_a[ar{i} + kk];");
        }
    }
    // The four k of a vec4 in a loop (not unrolled here: the driver's compile time grows fast
    // with the size of the loop body).
    let _ = writeln!(body, "        for (var j = 0u; j < 4u; j = j + 1u) {{");
    for i in 0..rows {
        let _ = writeln!(body, "            let as{i} = vec4<f32>(av{i}[j]);");
    }
    for v in 0..vcols {
        if tb {
            let _ = writeln!(body, "            let b{v} = vec4<f32>(t{v}_0[j], t{v}_1[j], t{v}_2[j], t{v}_3[j]);");
        } else {
            let _ = writeln!(body, "            let b{v} = in_b[bi + bc{v}];");
        }
    }
    if !tb {
        let _ = writeln!(body, "            bi = bi + n4;");
    }
    tile.fma(&mut body, "            ", "as");
    let _ = writeln!(body, "        }}");
    let stores =
        tile.stores(&TileStore { first: "row0", rows_end: "params.m", width: "n4", base: "base_c + ", store: "emit" });
    let parts = [("A_ELEM", if ta { "f32" } else { "vec4<f32>" })];
    tile.instantiate(&matmul_code(wgsl::MATMUL_SG), &parts, [&decls, &body, &stores], output)
}

/// `MatMul` / `BatchMatMulV2` on shapes the CPU checks accepted: `m x k` times `k x n` per
/// batch, batch dims `ba` and `bb` broadcast to `batch`, with a fused `epilogue` if given.
/// `None` beyond rank-8 batches, or for an epilogue that does not fit the output.
pub(crate) fn matmul(
    (m, k, n): (usize, usize, usize),
    (ba, bb, batch): (&[usize], &[usize], &[usize]),
    (ta, tb): (bool, bool),
    epilogue: Option<&Epilogue>,
) -> Option<Result<GpuLowering>> {
    if batch.len() > MAX_RANK {
        return None;
    }
    let leaves = epilogue.map_or(0, Epilogue::leaf_count);
    (|| -> Result<Option<GpuLowering>> {
        let mut uniforms = vec![word(m)?, word(n)?, word(k)?, u32::from(ta) | (u32::from(tb) << 1)];
        uniforms.extend(gpu_shaders::broadcast_uniforms(ba, bb, batch)?);
        let mut out = batch.to_vec();
        out.extend([m, n]);
        word(out.iter().product())?;
        let batches = batch.iter().product::<usize>();
        let kernels = kernels();
        // The subgroup kernel: k and n multiples of 4 (whole vec4s), on 8-wide subgroups.
        let sg_fits = m > 0 && n > 0 && k > 0 && n.is_multiple_of(4) && k.is_multiple_of(4);
        if kernels.variant == KernelVariant::Sg8 && sg_fits {
            // Rows per lane: the most whose block (64 * rows) the matrix fills, at most 8.
            // (16 rows run ~10% faster at 1024, but the driver then takes seconds to compile.)
            let rows = match m {
                512.. => 8,
                256.. => 4,
                _ => 2,
            };
            let vcols = if n >= 64 { 2 } else { 1 };
            let Some(output) = output_code(epilogue, &out, 3, true) else { return Ok(None) };
            let key = format!("matmul sg f32 {rows}x{vcols} ta {ta} tb {tb} {}", output.key());
            let wgsl = cached_wgsl(key, || Ok(matmul_sg_wgsl(rows, vcols, ta, tb, &output.code())))?;
            let groups = batches * m.div_ceil(64 * rows) * n.div_ceil(32 * vcols);
            return k_split(wgsl, uniforms, groups * WG as usize, (k, MATMUL_SG_K_SPLIT), out, leaves, WG);
        }
        let rb_fits = super::gpu_rb::fits((m, k, n), (ta, tb));
        if kernels.variant == KernelVariant::Coop && rb_fits {
            let parts = (uniforms.clone(), out.clone(), batches);
            if let Some(l) = super::gpu_coop::lowering(&kernels, (m, k, n), (ta, tb), parts, epilogue) {
                return l;
            }
        }
        let rb = matches!(kernels.variant, KernelVariant::RegBlock | KernelVariant::Coop);
        if rb && rb_fits {
            return super::gpu_rb::lowering(&kernels, (m, k, n), (ta, tb), (uniforms, out, batches), epilogue);
        }
        let Some(output) = output_code(epilogue, &out, 3, false) else { return Ok(None) };
        let wgsl = cached_wgsl(format!("matmul f32 {}", output.key()), || Ok(matmul_wgsl(&output.code())))?;
        let groups = batches * m.div_ceil(TILE) * n.div_ceil(TILE);
        k_split(wgsl, uniforms, groups * WG as usize, (k, MATMUL_K_SPLIT), out, leaves, WG)
    })()
    .transpose()
}

/// A matmul kernel's dispatches over k in slices of `split`: the first writes, the later ones
/// add to the output, and only the last stores through the epilogue (see shaders/matmul.wgsl).
/// `uniforms` are the kernel's words; those at 5 and 6 (k_lo, k_hi) and `trans` (3) are set
/// here. The inputs bind as the op's (epilogue leaves included); workgroups of `wg` threads.
pub(crate) fn k_split(
    wgsl: &'static str,
    uniforms: Vec<u32>,
    invocations: usize,
    (k, split): (usize, usize),
    out: Vec<usize>,
    leaves: usize,
    wg: u32,
) -> Result<Option<GpuLowering>> {
    let slices = k.div_ceil(split).max(1);
    let mut uniforms = uniforms;
    if slices == 1 {
        uniforms[5] = 0;
        uniforms[6] = word(k)?;
        return Ok(Some(GpuLowering::Kernel {
            wgsl: wgsl.into(),
            uniforms,
            invocations: invocations as u64,
            workgroup_size: wg,
            out: (DType::F32, out),
        }));
    }
    // Every pass binds what the single kernel binds: the op's inputs in order.
    let bound = 2 + leaves;
    let mut p = Passes::new(DType::F32, out);
    for s in 0..slices {
        let mut u = uniforms.clone();
        u[3] |= if s > 0 { 4 } else { 0 } | if s + 1 < slices { 8 } else { 0 };
        u[5] = word(s * split)?;
        u[6] = word(((s + 1) * split).min(k))?;
        p.passes.push(Pass {
            wgsl: wgsl.into(),
            uniforms: u,
            invocations: invocations as u64,
            workgroup_size: wg,
            inputs: (0..bound).map(PassBuf::Input).collect(),
            output: PassBuf::Out,
        });
    }
    Ok(Some(p.lowering()))
}

/// Every instantiation of the matmul templates, named, for the naga validation test: plain
/// stores, and a fused epilogue (`relu(x * scale[c] + residual)`), scalar and vec4.
pub(crate) fn instantiations() -> Result<Vec<(String, String)>> {
    let plain = |vec4: bool| crate::ops::fused::wgsl::plain_output(3, if vec4 { "vec4<f32>" } else { "f32" });
    let (scalar, vec4) = crate::ops::fused::wgsl::sample_epilogues();
    use super::gpu_rb::matmul_rb_wgsl as rb;
    use crate::runtime::gpu::variant::RbTile;
    let mut coop = super::gpu_coop::samples(&plain(true));
    coop.extend(super::gpu_coop::samples(&vec4).into_iter().take(1).map(|(n, w)| (format!("{n}, epilogue"), w)));
    let mut list = vec![
        ("matmul.wgsl".to_string(), matmul_wgsl(&plain(false))),
        ("matmul_sg.wgsl 8x2".to_string(), matmul_sg_wgsl(8, 2, false, false, &plain(true))),
        ("matmul_sg.wgsl 2x1 ta tb".to_string(), matmul_sg_wgsl(2, 1, true, true, &plain(true))),
        ("matmul_sg.wgsl 4x2 ta".to_string(), matmul_sg_wgsl(4, 2, true, false, &plain(true))),
        ("matmul_sg.wgsl 4x1 tb".to_string(), matmul_sg_wgsl(4, 1, false, true, &plain(true))),
        ("matmul.wgsl with an epilogue".into(), matmul_wgsl(&scalar)),
        ("gemm_rb.wgsl + matmul_rb.wgsl small".into(), rb(RbTile::SMALL, false, false, &plain(true))),
        ("gemm_rb.wgsl + matmul_rb.wgsl large ta tb".into(), rb(RbTile::LARGE, true, true, &plain(true))),
        ("gemm_rb.wgsl + matmul_rb.wgsl tiny ta".into(), rb(RbTile::TINY, true, false, &plain(true))),
        ("gemm_rb.wgsl + matmul_rb.wgsl small tb, epilogue".into(), rb(RbTile::SMALL, false, true, &vec4)),
        ("matmul_sg.wgsl 4x2 with an epilogue".into(), matmul_sg_wgsl(4, 2, false, false, &vec4)),
    ];
    list.extend(coop);
    Ok(list)
}
