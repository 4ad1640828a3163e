//! Helpers every op family's GPU lowering shares, with no knowledge of any family: uniform
//! word packing (`word`, `words`, `slots`), template text (`code_of`, `with_prelude`) and the
//! one-dispatch [`GpuLowering::Kernel`] builders.

use super::{cached_wgsl, GpuLowering};
use crate::error::{Error, Result};
use crate::runtime::gpu::shaders::PRELUDE;
use crate::tensor::DType;

/// The workgroup size of the op kernels (each template declares it as `WG_SIZE` or gets it
/// through `WORKGROUP_SIZE`).
pub(crate) const WG: u32 = 64;
/// The highest rank the kernels index (batch dims of matmul, transpose, reductions).
pub(crate) const MAX_RANK: usize = 8;

/// `body` after the shared WGSL prelude.
pub(crate) fn with_prelude(body: &str) -> String {
    format!("{PRELUDE}\n{body}")
}

/// A template without its comment lines, which name the placeholders.
pub(crate) fn code_of(template: &str) -> String {
    template.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// A `u32` uniform word, or `ResourceExhausted` for sizes beyond the kernels' 32-bit indexing.
pub(crate) fn word(v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::resource_exhausted(format!("size {v} is over 2^32 for a GPU kernel")))
}

/// Sizes as uniform words (`ResourceExhausted` past 2^32).
pub(crate) fn words(v: &[usize]) -> Result<Vec<u32>> {
    v.iter().map(|&x| word(x)).collect()
}

/// `dims` right-aligned in `MAX_RANK` slots (leading slots 1, or 0 for strides).
pub(crate) fn slots(dims: &[usize], fill: u32) -> Result<Vec<u32>> {
    let mut w = vec![fill; MAX_RANK];
    for (slot, &d) in w[MAX_RANK - dims.len()..].iter_mut().zip(dims) {
        *slot = word(d)?;
    }
    Ok(w)
}

/// A float32 kernel from a template that takes its workgroup size as `WORKGROUP_SIZE` (the NN
/// and loss templates): comment lines dropped, each `(placeholder, code)` of `parts`
/// substituted, `WORKGROUP_SIZE` replaced and the prelude prepended; built once per process.
pub(crate) fn template_wgsl(key: &str, template: &str, parts: &[(&str, &str)]) -> Result<&'static str> {
    cached_wgsl(format!("nn {key} f32"), || {
        let code = parts.iter().fold(code_of(template), |t, (name, text)| t.replace(name, text));
        Ok(with_prelude(&code.replace("WORKGROUP_SIZE", &format!("{WG}u"))))
    })
}

/// Row-major strides of `dims`.
pub(crate) fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1].saturating_mul(dims[i + 1]);
    }
    s
}

/// One dispatch of `invocations` threads in workgroups of [`WG`], writing an output of
/// `dtype` and `shape`.
pub(crate) fn kernel(
    wgsl: &'static str,
    uniforms: Vec<u32>,
    invocations: usize,
    dtype: DType,
    shape: Vec<usize>,
) -> GpuLowering {
    GpuLowering::Kernel {
        wgsl: wgsl.into(),
        uniforms,
        invocations: invocations as u64,
        workgroup_size: WG,
        out: (dtype, shape),
    }
}

/// A float32 kernel writing `out`, after checking its element count fits a uniform word.
pub(crate) fn f32_kernel(
    wgsl: &'static str,
    uniforms: Vec<u32>,
    invocations: usize,
    out: Vec<usize>,
) -> Result<GpuLowering> {
    word(out.iter().product())?;
    Ok(kernel(wgsl, uniforms, invocations, DType::F32, out))
}
