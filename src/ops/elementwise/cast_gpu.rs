//! The GPU kernel of `Cast` between float32 and int32 (shaders/cast.wgsl).

use crate::error::Result;
use crate::ops::kernel::{code_of, kernel, with_prelude, word};
use crate::ops::{cached_wgsl, wgsl, GpuLowering};
use crate::tensor::DType;

fn wgsl_type(d: DType) -> Option<&'static str> {
    match d {
        DType::F32 => Some("f32"),
        DType::I32 => Some("i32"),
        _ => None,
    }
}

/// The cast kernel from `from` to `to`, prelude included; `None` for other dtypes.
pub(crate) fn cast_wgsl(from: DType, to: DType) -> Option<String> {
    let body = code_of(wgsl::CAST).replace("IN_TYPE", wgsl_type(from)?).replace("OUT_TYPE", wgsl_type(to)?);
    Some(with_prelude(&body))
}

/// Whether the GPU casts `from` to `to` (float32 and int32, either way).
pub(crate) fn supported(from: DType, to: DType) -> bool {
    wgsl_type(from).is_some() && wgsl_type(to).is_some() && from != to
}

/// `Cast` of a tensor of `dims` from `from` to `to`.
pub(crate) fn cast(from: DType, to: DType, dims: &[usize]) -> Option<Result<GpuLowering>> {
    if !supported(from, to) {
        return None;
    }
    Some((|| {
        let count: usize = dims.iter().product();
        word(count)?;
        let src = cast_wgsl(from, to).unwrap_or_default();
        let wgsl = cached_wgsl(format!("cast {from} {to}"), || Ok(src))?;
        Ok(kernel(wgsl, Vec::new(), count, to, dims.to_vec()))
    })())
}

/// Both instantiations, for the naga validation test.
pub(crate) fn instantiations() -> Vec<(String, String)> {
    [(DType::F32, DType::I32), (DType::I32, DType::F32)]
        .iter()
        .filter_map(|&(a, b)| Some((format!("cast.wgsl {a} -> {b}"), cast_wgsl(a, b)?)))
        .collect()
}
