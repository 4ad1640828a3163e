//! GPU lowerings of the matrix products, reductions, softmax and data movement ops: the WGSL
//! instantiations (shaders/matmul.wgsl, reduce.wgsl, softmax.wgsl, transpose.wgsl,
//! concat.wgsl) and the uniforms each kernel expects. The ops' `gpu()` methods check run-time
//! shapes with their CPU code, then call in here.

use super::fused::wgsl::output_code;
use super::fused::Epilogue;
use super::gpu_passes::{serial, MAX_LOOP_TRIPS, OVERHEAD_TRIPS};
use super::reduce::ReduceKind;
use super::{cached_wgsl, GpuLowering, Pass, PassBuf, Passes};
use crate::error::{Error, Result};
use crate::runtime::gpu::context::subgroups_of_8;
use crate::runtime::gpu::shaders as gpu_shaders;
use crate::tensor::DType;

const MATMUL: &str = include_str!("../../shaders/matmul.wgsl");
const MATMUL_SG: &str = include_str!("../../shaders/matmul_sg.wgsl");
const REDUCE: &str = include_str!("../../shaders/reduce.wgsl");
const SOFTMAX: &str = include_str!("../../shaders/softmax.wgsl");
const TRANSPOSE: &str = include_str!("../../shaders/transpose.wgsl");
const CONCAT: &str = include_str!("../../shaders/concat.wgsl");

/// The workgroup size of every kernel here (each file declares it as `WG_SIZE`).
const WG: u32 = 64;
/// The highest rank the kernels index (batch dims of matmul, transpose, reductions).
const MAX_RANK: usize = 8;
/// The most inputs a concat kernel binds (with its output, within the 8 storage buffers a
/// stage may always bind).
pub(crate) const MAX_CONCAT_INPUTS: usize = 7;
/// Output tile side of the matmul kernel.
const TILE: usize = 32;
/// The k a tiled matmul dispatch covers: its k loop (slices of 16) makes 17 trips per slice
/// (the unrolled staging and the 16 k of the slice), so 224 slices fit the loop budget.
const MATMUL_K_SPLIT: usize = 224 * 16;
/// The k a subgroup matmul dispatch covers: 5 trips per vec4 of k (its loop over the 4 k).
const MATMUL_SG_K_SPLIT: usize = 768 * 4;
const _: () = assert!(MATMUL_K_SPLIT / 16 * 17 + OVERHEAD_TRIPS <= MAX_LOOP_TRIPS);
const _: () = assert!(MATMUL_SG_K_SPLIT / 4 * 5 + OVERHEAD_TRIPS <= MAX_LOOP_TRIPS);

fn with_prelude(body: &str) -> String {
    format!("{}\n{body}", gpu_shaders::PRELUDE)
}

/// A template without its comment lines, which name the placeholders.
pub(crate) fn code_of(template: &str) -> String {
    template.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// A `u32` uniform word, or `ResourceExhausted` for sizes beyond the kernels' 32-bit indexing.
pub(crate) fn word(v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::resource_exhausted(format!("size {v} is over 2^32 for a GPU kernel")))
}

/// `dims` right-aligned in `MAX_RANK` slots (leading slots 1, or 0 for strides).
pub(crate) fn slots(dims: &[usize], fill: u32) -> Result<Vec<u32>> {
    let mut w = vec![fill; MAX_RANK];
    for (slot, &d) in w[MAX_RANK - dims.len()..].iter_mut().zip(dims) {
        *slot = word(d)?;
    }
    Ok(w)
}

fn kernel(wgsl: &'static str, uniforms: Vec<u32>, invocations: usize, dtype: DType, shape: Vec<usize>) -> GpuLowering {
    GpuLowering::Kernel {
        wgsl: wgsl.into(),
        uniforms,
        invocations: invocations as u64,
        workgroup_size: WG,
        out: (dtype, shape),
    }
}

/// Row-major strides of `dims`.
fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1].saturating_mul(dims[i + 1]);
    }
    s
}

/// The float32 batched matmul kernel, its results stored by `output` (the template's `OUTPUT`:
/// see `fused::wgsl::output_code`).
pub fn matmul_wgsl(output: &str) -> String {
    with_prelude(&code_of(MATMUL).replace("OUTPUT", output))
}

/// The subgroup matmul kernel (see shaders/matmul_sg.wgsl) with `rows` rows and `vcols` vec4
/// columns per lane, its loops unrolled here, its results stored by `output` (the template's
/// `OUTPUT`).
pub fn matmul_sg_wgsl(rows: usize, vcols: usize, ta: bool, tb: bool, output: &str) -> String {
    use std::fmt::Write;
    let (mut decls, mut body, mut stores) = (String::new(), String::new(), String::new());
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
        for c in 0..8 * vcols {
            let _ = writeln!(decls, "    var c{i}_{c} = vec4<f32>(0.0);");
        }
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
    for v in 0..vcols {
        for l in 0..8 {
            let c = 8 * v + l;
            let _ = writeln!(body, "            let bb{c} = subgroupBroadcast(b{v}, {l}u);");
            for i in 0..rows {
                let _ = writeln!(body, "            c{i}_{c} = fma(as{i}, bb{c}, c{i}_{c});");
            }
        }
    }
    let _ = writeln!(body, "        }}");
    for i in 0..rows {
        let _ = writeln!(stores, "    let r{i} = row0 + {}u;", 8 * i);
        let _ = writeln!(stores, "    if (r{i} < params.m) {{");
        for c in 0..8 * vcols {
            let _ = writeln!(
                stores,
                "        if (col0 + {c}u < n4) {{\n            emit(base_c + r{i} * n4 + col0 + {c}u, c{i}_{c});\n        }}"
            );
        }
        let _ = writeln!(stores, "    }}");
    }
    let body = code_of(MATMUL_SG)
        .replace("A_ELEM", if ta { "f32" } else { "vec4<f32>" })
        .replace("ROWS", &format!("{rows}u"))
        .replace("VCOLS", &format!("{vcols}u"))
        .replace("DECLS", decls.trim_end())
        .replace("BODY", body.trim_end())
        .replace("STORES", stores.trim_end())
        .replace("OUTPUT", output);
    with_prelude(&body)
}

/// The reduction kernel for `kind` on `dtype` (float32 or int32).
pub fn reduce_wgsl(kind: ReduceKind, dtype: DType) -> Result<String> {
    let fold = super::gpu_passes::Fold::of(kind, dtype)
        .ok_or_else(|| Error::unimplemented(format!("no GPU reduction for {dtype}")))?;
    let body = code_of(REDUCE)
        .replace("ELEM_TYPE", gpu_shaders::wgsl_scalar(dtype)?)
        .replace("REDUCE_INIT", fold.init)
        .replace("REDUCE_COMBINE", fold.combine)
        .replace("REDUCE_FINISH", fold.finish);
    Ok(with_prelude(&body))
}

/// The float32 softmax kernel.
pub fn softmax_wgsl() -> String {
    with_prelude(SOFTMAX)
}

/// The transpose kernel (any 4-byte element type).
pub fn transpose_wgsl() -> String {
    with_prelude(TRANSPOSE)
}

/// The concat kernel for `n` inputs (any 4-byte element type).
pub fn concat_wgsl(n: usize) -> String {
    let bindings: Vec<String> =
        (0..n).map(|k| format!("@group(0) @binding({}) var<storage, read> in_{k}: array<u32>;", k + 1)).collect();
    let chain: Vec<String> = (0..n)
        .map(|k| {
            let len = format!("params.blocks[{}u][{}u]", k / 4, k % 4);
            format!("if (w < {len}) {{\n        out[i] = in_{k}[o * {len} + w];\n        return;\n    }}\n    w = w - {len};")
        })
        .collect();
    let body = code_of(CONCAT)
        .replace("INPUT_BINDINGS", &bindings.join("\n"))
        .replace("OUTPUT_BINDING", &(n + 1).to_string())
        .replace("BLOCK_WORDS", &n.div_ceil(4).max(1).to_string())
        .replace("SELECT_CHAIN", &chain.join("\n    "));
    with_prelude(&body)
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
        // The subgroup kernel: k and n multiples of 4 (whole vec4s), on 8-wide subgroups.
        if m > 0 && n > 0 && k > 0 && n.is_multiple_of(4) && k.is_multiple_of(4) && subgroups_of_8() {
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
            return k_split(wgsl, uniforms, groups * WG as usize, (k, MATMUL_SG_K_SPLIT), out, leaves).map(Some);
        }
        let Some(output) = output_code(epilogue, &out, 3, false) else { return Ok(None) };
        let wgsl = cached_wgsl(format!("matmul f32 {}", output.key()), || Ok(matmul_wgsl(&output.code())))?;
        let groups = batches * m.div_ceil(TILE) * n.div_ceil(TILE);
        k_split(wgsl, uniforms, groups * WG as usize, (k, MATMUL_K_SPLIT), out, leaves).map(Some)
    })()
    .transpose()
}

/// A matmul kernel's dispatches over k in slices of `split`: the first writes, the later ones
/// add to the output, and only the last stores through the epilogue (see shaders/matmul.wgsl).
/// `uniforms` are the kernel's words; those at 5 and 6 (k_lo, k_hi) and `trans` (3) are set
/// here. The inputs bind as the op's (epilogue leaves included).
fn k_split(
    wgsl: &'static str,
    uniforms: Vec<u32>,
    invocations: usize,
    (k, split): (usize, usize),
    out: Vec<usize>,
    leaves: usize,
) -> Result<GpuLowering> {
    let slices = k.div_ceil(split).max(1);
    let mut uniforms = uniforms;
    if slices == 1 {
        uniforms[5] = 0;
        uniforms[6] = word(k)?;
        return Ok(kernel(wgsl, uniforms, invocations, DType::F32, out));
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
            workgroup_size: WG,
            inputs: (0..bound).map(PassBuf::Input).collect(),
            output: PassBuf::Out,
        });
    }
    Ok(p.lowering())
}

/// A reduction of `dims` over the axes in `mask`, output shape `out` (checked by the CPU
/// code). `None` for dtypes without a kernel.
pub(crate) fn reduce(
    kind: ReduceKind,
    dtype: DType,
    dims: &[usize],
    mask: &[bool],
    out: Vec<usize>,
) -> Option<Result<GpuLowering>> {
    if !matches!(dtype, DType::F32 | DType::I32) {
        return None;
    }
    let n: usize = dims.iter().zip(mask).filter(|(_, &m)| m).map(|(&d, _)| d).product();
    if dtype == DType::I32 && kind == ReduceKind::Mean && n > i32::MAX as usize {
        return None;
    }
    // Adjacent axes of the same kind merge (size-1 axes drop out), as in the CPU kernel.
    super::gpu_passes::reduction((kind, dtype), dims, mask, out)
}

/// Softmax of float32 `dims` along `axis` (checked by the CPU code): one thread per row for
/// short rows (three walks of the row), else in passes.
pub(crate) fn softmax(dims: &[usize], axis: usize) -> Result<GpuLowering> {
    let n = dims[axis];
    let inner: usize = dims[axis + 1..].iter().product();
    let outer: usize = dims[..axis].iter().product();
    word(dims.iter().product())?;
    let rows = if n == 0 { 0 } else { outer * inner };
    // (Three walks of the row: 3n trips, as a serial reduction of n over one axis counts.)
    if n > 0 && !serial(n, 1, rows) {
        return super::gpu_passes::softmax_passes(dims, (outer, n, inner));
    }
    let wgsl = cached_wgsl("softmax f32".into(), || Ok(softmax_wgsl()))?;
    Ok(kernel(wgsl, vec![word(n)?, word(inner.max(1))?, 0], rows, DType::F32, dims.to_vec()))
}

/// Transpose of `dims` by a checked permutation; a view when the data order is unchanged.
pub(crate) fn transpose(dtype: DType, dims: &[usize], perm: &[usize]) -> Option<Result<GpuLowering>> {
    let out: Vec<usize> = perm.iter().map(|&p| dims[p]).collect();
    // Only the order of the non-unit axes matters.
    let moved: Vec<usize> = perm.iter().copied().filter(|&p| dims[p] != 1).collect();
    if moved.windows(2).all(|w| w[0] < w[1]) {
        return Some(Ok(GpuLowering::View(out)));
    }
    if dims.len() > MAX_RANK {
        return None;
    }
    Some((|| {
        let wgsl = cached_wgsl("transpose".into(), || Ok(transpose_wgsl()))?;
        let st = strides(dims);
        let in_strides: Vec<usize> = perm.iter().map(|&p| st[p]).collect();
        let count: usize = out.iter().product();
        word(count)?;
        let mut uniforms = vec![word(dims.len())?, 0, 0];
        uniforms.extend(slots(&out, 1)?);
        uniforms.extend(slots(&in_strides, 0)?);
        Ok(kernel(wgsl, uniforms, count, dtype, out))
    })())
}

/// ConcatV2 of inputs of `shapes` (checked by the CPU code) along `axis`. `None` for more
/// inputs than a kernel binds.
pub(crate) fn concat(dtype: DType, shapes: &[&[usize]], axis: usize) -> Option<Result<GpuLowering>> {
    let n = shapes.len();
    if n == 0 || n > MAX_CONCAT_INPUTS {
        return None;
    }
    Some((|| {
        let wgsl = cached_wgsl(format!("concat {n}"), || Ok(concat_wgsl(n)))?;
        let mut out = shapes[0].to_vec();
        out[axis] = shapes.iter().map(|s| s[axis]).sum();
        let inner: usize = out[axis + 1..].iter().product();
        let count: usize = out.iter().product();
        word(count)?;
        let mut uniforms = vec![word(out[axis] * inner)?, 0, 0];
        let mut blocks = vec![0u32; n.div_ceil(4) * 4];
        for (b, s) in blocks.iter_mut().zip(shapes) {
            *b = word(s[axis] * inner)?;
        }
        uniforms.extend(blocks);
        Ok(kernel(wgsl, uniforms, count, dtype, out))
    })())
}

/// Every instantiation of the templates here, named, for the naga validation test.
pub fn instantiations() -> Result<Vec<(String, String)>> {
    let plain = |vec4: bool| super::fused::wgsl::plain_output(3, if vec4 { "vec4<f32>" } else { "f32" });
    let mut all = vec![
        ("matmul.wgsl".to_string(), matmul_wgsl(&plain(false))),
        ("matmul_sg.wgsl 8x2".to_string(), matmul_sg_wgsl(8, 2, false, false, &plain(true))),
        ("matmul_sg.wgsl 2x1 ta tb".to_string(), matmul_sg_wgsl(2, 1, true, true, &plain(true))),
        ("matmul_sg.wgsl 4x2 ta".to_string(), matmul_sg_wgsl(4, 2, true, false, &plain(true))),
        ("matmul_sg.wgsl 4x1 tb".to_string(), matmul_sg_wgsl(4, 1, false, true, &plain(true))),
        ("conv2d.wgsl".to_string(), super::nn::gpu::conv2d_wgsl(&plain(false))),
        ("conv2d_sg.wgsl 8x2 vec4".to_string(), super::nn::gpu::conv2d_sg_wgsl(8, 2, true, &plain(true))),
        ("conv2d_sg.wgsl 2x1 scalar".to_string(), super::nn::gpu::conv2d_sg_wgsl(2, 1, false, &plain(true))),
        ("conv2d_sg.wgsl 8x2 scalar".to_string(), super::nn::gpu::conv2d_sg_wgsl(8, 2, false, &plain(true))),
        ("softmax.wgsl".to_string(), softmax_wgsl()),
        ("transpose.wgsl".to_string(), transpose_wgsl()),
    ];
    for kind in [ReduceKind::Sum, ReduceKind::Mean, ReduceKind::Max] {
        for dtype in [DType::F32, DType::I32] {
            all.push((format!("reduce.wgsl {kind:?} {dtype}"), reduce_wgsl(kind, dtype)?));
        }
    }
    for n in [1, 2, 3, 4, 5, MAX_CONCAT_INPUTS] {
        all.push((format!("concat.wgsl with {n} inputs"), concat_wgsl(n)));
    }
    // The head kernels with a fused epilogue: relu(x * scale[c] + residual), scalar and vec4.
    let (scalar, vec4) = super::fused::wgsl::sample_epilogues();
    all.push(("matmul.wgsl with an epilogue".into(), matmul_wgsl(&scalar)));
    all.push(("matmul_sg.wgsl 4x2 with an epilogue".into(), matmul_sg_wgsl(4, 2, false, false, &vec4)));
    all.push(("conv2d.wgsl with an epilogue".into(), super::nn::gpu::conv2d_wgsl(&scalar)));
    all.push(("conv2d_sg.wgsl 8x2 with an epilogue".into(), super::nn::gpu::conv2d_sg_wgsl(8, 2, true, &vec4)));
    for dtype in [DType::F32, DType::I32] {
        all.push((format!("fill.wgsl {dtype}"), super::fill::fill_wgsl(dtype)?));
    }
    all.extend(super::fused::wgsl::instantiations());
    all.extend(super::gpu_passes::instantiations()?);
    all.push(("xent_rows.wgsl".into(), super::losses::xent_rows_wgsl()?.to_string()));
    all.push(("sparse_xent_rows.wgsl with its error flag".into(), super::losses::sparse_xent_rows_wgsl()?.to_string()));
    all.extend(super::nn_grad::gpu::instantiations()?);
    Ok(all)
}
