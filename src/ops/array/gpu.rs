//! GPU lowerings of the data movement ops and `Fill`: strided_gather.wgsl (`Transpose`, a
//! view when the data order is unchanged, and `StridedSlice`), concat.wgsl (up to
//! `MAX_CONCAT_INPUTS` inputs), fill.wgsl; the instantiations of every template of the family.

use crate::error::{Error, Result};
use crate::ops::kernel::{code_of, kernel, slots, strides, with_prelude, word, MAX_RANK};
use crate::ops::{cached_wgsl, wgsl, GpuLowering};
use crate::runtime::gpu::shaders as gpu_shaders;
use crate::tensor::DType;

/// The most inputs a concat kernel binds (with its output, within the 8 storage buffers a
/// stage may always bind).
pub(crate) const MAX_CONCAT_INPUTS: usize = 7;

/// The fill kernel for elements of `dtype`, prelude included.
pub(crate) fn fill_wgsl(dtype: DType) -> Result<String> {
    let body = code_of(wgsl::FILL)
        .replace("ELEM", gpu_shaders::wgsl_scalar(dtype)?)
        .replace("WORKGROUP_SIZE", &format!("{}u", gpu_shaders::ELEMENTWISE_WORKGROUP_SIZE));
    Ok(with_prelude(&body))
}

/// The strided-gather kernel (any 4-byte element type), prelude included.
pub(crate) fn strided_gather_wgsl() -> String {
    with_prelude(wgsl::STRIDED_GATHER)
}

/// A gather into an output of `out` dimensions whose element with coordinates `c` over
/// `lens` (the same elements in the same order) is the input's `base + sum(c[d] * steps[d])`:
/// a transpose, or a strided slice (steps may be negative).
pub(crate) fn strided_gather(
    dtype: DType,
    lens: &[usize],
    out: Vec<usize>,
    base: i64,
    steps: &[i64],
) -> Result<GpuLowering> {
    if lens.len() > MAX_RANK {
        return Err(Error::invalid_argument(format!("rank {} is over the GPU kernel's {MAX_RANK}", lens.len())));
    }
    let count: usize = lens.iter().product();
    word(count)?;
    let wgsl = cached_wgsl("strided gather".into(), || Ok(strided_gather_wgsl()))?;
    let mut uniforms = vec![word(lens.len())?, word(base.max(0) as usize)?, 0];
    uniforms.extend(slots(lens, 1)?);
    let mut signed = vec![0u32; MAX_RANK];
    for (slot, s) in signed[MAX_RANK - steps.len()..].iter_mut().zip(steps) {
        *slot = i32::try_from(*s).map_err(|_| Error::invalid_argument("a gather step over int32"))? as u32;
    }
    uniforms.extend(signed);
    Ok(kernel(wgsl, uniforms, count, dtype, out))
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
    let body = code_of(wgsl::CONCAT)
        .replace("INPUT_BINDINGS", &bindings.join("\n"))
        .replace("OUTPUT_BINDING", &(n + 1).to_string())
        .replace("BLOCK_WORDS", &n.div_ceil(4).max(1).to_string())
        .replace("SELECT_CHAIN", &chain.join("\n    "));
    with_prelude(&body)
}

/// Transpose of `dims` by a checked permutation; a view when the data order is unchanged.
pub(crate) fn transpose(dtype: DType, dims: &[usize], perm: &[usize]) -> Option<Result<GpuLowering>> {
    let out: Vec<usize> = perm.iter().map(|&p| dims[p]).collect();
    if keeps_order(dims, perm) {
        return Some(Ok(GpuLowering::View(out)));
    }
    if !transpose_supported(dims, perm) {
        return None;
    }
    let st = strides(dims);
    let in_strides: Vec<i64> = perm.iter().map(|&p| st[p] as i64).collect();
    Some(strided_gather(dtype, &out.clone(), out, 0, &in_strides))
}

/// Whether a transpose keeps the data order: only the order of the non-unit axes matters.
fn keeps_order(dims: &[usize], perm: &[usize]) -> bool {
    let moved: Vec<usize> = perm.iter().copied().filter(|&p| dims[p] != 1).collect();
    moved.windows(2).all(|w| w[0] < w[1])
}

/// Whether the GPU transposes `dims` by `perm`: as a view, or within the kernel's rank.
pub(crate) fn transpose_supported(dims: &[usize], perm: &[usize]) -> bool {
    dims.len() <= MAX_RANK || keeps_order(dims, perm)
}

/// Whether the concat kernel binds `n` inputs.
pub(crate) fn concat_supported(n: usize) -> bool {
    (1..=MAX_CONCAT_INPUTS).contains(&n)
}

/// ConcatV2 of inputs of `shapes` (checked by the CPU code) along `axis`. `None` for more
/// inputs than a kernel binds.
pub(crate) fn concat(dtype: DType, shapes: &[&[usize]], axis: usize) -> Option<Result<GpuLowering>> {
    let n = shapes.len();
    if !concat_supported(n) {
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

/// Every instantiation of the data movement templates, named, for the naga validation test.
pub(crate) fn instantiations() -> Result<Vec<(String, String)>> {
    let mut all = vec![
        ("strided_gather.wgsl".to_string(), strided_gather_wgsl()),
        ("pad.wgsl".to_string(), super::pad::pad_wgsl()),
        ("tile.wgsl".to_string(), super::tile::tile_wgsl()),
        ("gather.wgsl with its error flag".to_string(), super::gather::gather_wgsl()),
    ];
    for n in [1, 2, 3, 4, 5, MAX_CONCAT_INPUTS] {
        all.push((format!("concat.wgsl with {n} inputs"), concat_wgsl(n)));
    }
    for dtype in [DType::F32, DType::I32] {
        all.push((format!("fill.wgsl {dtype}"), fill_wgsl(dtype)?));
        all.push((
            format!("segment_sum.wgsl {dtype} with its error flag"),
            super::segment_sum::segment_sum_wgsl(dtype)?,
        ));
    }
    Ok(all)
}
