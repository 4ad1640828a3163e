//! GPU lowering of the reductions: shaders/reduce.wgsl per kind and dtype for short axes,
//! the tree passes of `gpu_passes` for long ones.

use super::ReduceKind;
use crate::error::{Error, Result};
use crate::ops::kernel::{code_of, with_prelude};
use crate::ops::{wgsl, GpuLowering};
use crate::runtime::gpu::shaders as gpu_shaders;
use crate::tensor::DType;

/// The reduction kernel for `kind` on `dtype` (float32 or int32).
pub fn reduce_wgsl(kind: ReduceKind, dtype: DType) -> Result<String> {
    let fold = crate::ops::gpu_passes::Fold::of(kind, dtype)
        .ok_or_else(|| Error::unimplemented(format!("no GPU reduction for {dtype}")))?;
    let body = code_of(wgsl::REDUCE)
        .replace("ELEM_TYPE", gpu_shaders::wgsl_scalar(dtype)?)
        .replace("REDUCE_INIT", fold.init)
        .replace("REDUCE_COMBINE", fold.combine)
        .replace("REDUCE_FINISH", fold.finish);
    Ok(with_prelude(&body))
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
    if !reduce_supported(kind, dtype, dims, mask) {
        return None;
    }
    // Adjacent axes of the same kind merge (size-1 axes drop out), as in the CPU kernel.
    crate::ops::gpu_passes::reduction((kind, dtype), dims, mask, out)
}

/// Whether the GPU reduces `dims` of `dtype` where `mask` is set: float32 or int32 (an int32
/// mean counting at most `i32::MAX` elements), within the kernels' rank.
pub(crate) fn reduce_supported(kind: ReduceKind, dtype: DType, dims: &[usize], mask: &[bool]) -> bool {
    let n: usize = dims.iter().zip(mask).filter(|(_, &m)| m).map(|(&d, _)| d).product();
    matches!(dtype, DType::F32 | DType::I32)
        && !(dtype == DType::I32 && kind == ReduceKind::Mean && n > i32::MAX as usize)
        && crate::ops::gpu_passes::Axes::of(dims, mask).is_some()
        && crate::ops::gpu_passes::Fold::of(kind, dtype).is_some()
}

/// Every instantiation of the reduction templates, named, for the naga validation test.
pub(crate) fn instantiations() -> Result<Vec<(String, String)>> {
    let mut all = vec![("argmax.wgsl".to_string(), super::argmax::argmax_wgsl())];
    for kind in [ReduceKind::Sum, ReduceKind::Mean, ReduceKind::Max] {
        for dtype in [DType::F32, DType::I32] {
            all.push((format!("reduce.wgsl {kind:?} {dtype}"), reduce_wgsl(kind, dtype)?));
        }
    }
    all.extend(crate::ops::gpu_passes::instantiations()?);
    Ok(all)
}
