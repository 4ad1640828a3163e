//! The WGSL sources: the shared prelude, the elementwise templates, and the uniform layouts
//! the templates expect.

use super::shader_files::{
    ELEMENTWISE as BINARY_TEMPLATE, ELEMENTWISE_VEC4 as BINARY_VEC4_TEMPLATE, UNARY as UNARY_TEMPLATE,
    UNARY_VEC4 as UNARY_VEC4_TEMPLATE,
};
use crate::error::{Error, Result};
use crate::tensor::{dims_string, DType};

/// The prelude every elementwise kernel starts with: the index convention and TF-exact helpers.
pub const PRELUDE: &str = super::shader_files::PRELUDE;

/// The workgroup size of the elementwise templates; pass it to `Stream::dispatch`.
pub const ELEMENTWISE_WORKGROUP_SIZE: u32 = 64;
/// The highest rank the binary template broadcasts over.
pub const MAX_BROADCAST_RANK: usize = 8;

/// The WGSL scalar type that holds `dtype` in a storage buffer.
pub fn wgsl_scalar(dtype: DType) -> Result<&'static str> {
    match dtype {
        DType::F32 => Ok("f32"),
        DType::I32 => Ok("i32"),
        other => Err(Error::unimplemented(format!("no WGSL storage type for {other} tensors"))),
    }
}

fn instantiate(template: &str, expr: &str, input: &str, output: &str) -> String {
    let body = template
        .replace("IN_TYPE", input)
        .replace("OUT_TYPE", output)
        .replace("WORKGROUP_SIZE", &format!("{ELEMENTWISE_WORKGROUP_SIZE}u"))
        .replace("OP_EXPR", &format!("({expr})"));
    format!("{PRELUDE}\n{body}")
}

/// A float32 binary kernel computing `expr` (of `a` and `b`) with broadcasting.
/// Bindings: 0 params (see [`broadcast_uniforms`]), 1 `a`, 2 `b`, 3 output.
pub fn binary_wgsl(expr: &str) -> String {
    instantiate(BINARY_TEMPLATE, expr, "f32", "f32")
}

/// [`binary_wgsl`] for other element types (float32 and int32).
pub fn binary_wgsl_typed(expr: &str, input: DType, output: DType) -> Result<String> {
    Ok(instantiate(BINARY_TEMPLATE, expr, wgsl_scalar(input)?, wgsl_scalar(output)?))
}

/// A float32 unary kernel computing `expr` (of `a`). Bindings: 0 params (no uniforms beyond
/// the count), 1 `a`, 2 output.
pub fn unary_wgsl(expr: &str) -> String {
    instantiate(UNARY_TEMPLATE, expr, "f32", "f32")
}

/// [`unary_wgsl`] for other element types (float32 and int32).
pub fn unary_wgsl_typed(expr: &str, input: DType, output: DType) -> Result<String> {
    Ok(instantiate(UNARY_TEMPLATE, expr, wgsl_scalar(input)?, wgsl_scalar(output)?))
}

/// A binary kernel for two inputs of the output's shape, four elements per thread (vec4
/// loads). Bindings as [`binary_wgsl`]; the second uniform word is `n4`, the tensor's vec4s.
/// With `grid`, thread t handles vec4s t, t + count, ... (dispatch up to `n4` invocations);
/// without, one vec4 per thread (dispatch `n4`).
pub fn binary_vec4_wgsl(expr: &str, dtype: DType, grid: bool) -> Result<String> {
    let t = wgsl_scalar(dtype)?;
    Ok(instantiate(BINARY_VEC4_TEMPLATE, expr, t, t).replace("GRID_LOOP", vec4_loop(grid)))
}

/// A unary kernel, four elements per thread (vec4 loads), over `n4` vec4s as
/// [`binary_vec4_wgsl`].
pub fn unary_vec4_wgsl(expr: &str, dtype: DType, grid: bool) -> Result<String> {
    let t = wgsl_scalar(dtype)?;
    Ok(instantiate(UNARY_VEC4_TEMPLATE, expr, t, t).replace("GRID_LOOP", vec4_loop(grid)))
}

/// The vec4 kernels' walk over the vec4s (shaders/elementwise_vec4.wgsl): a grid-stride loop,
/// or one vec4 per thread.
fn vec4_loop(grid: bool) -> &'static str {
    if grid {
        "for (var j = i; j < params.n4; j = j + params.count)"
    } else {
        "let j = i;\n    if (j < params.n4)"
    }
}

/// numpy's broadcast of two shapes, or `InvalidArgument` in TF's words.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let rank = a.len().max(b.len());
    let dim = |s: &[usize], i: usize| if i < rank - s.len() { 1 } else { s[i - (rank - s.len())] };
    (0..rank)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y || y == 1 => Ok(x),
            (1, y) => Ok(y),
            _ => {
                Err(Error::invalid_argument(format!("Incompatible shapes: {} vs. {}", dims_string(a), dims_string(b))))
            }
        })
        .collect()
}

/// The uniforms of the binary template after the element count (which `dispatch` writes):
/// rank, flags, padding, then output dims, `a` strides and `b` strides, each right-aligned in
/// 8 slots. `out` must be the broadcast of `a` and `b`.
pub fn broadcast_uniforms(a: &[usize], b: &[usize], out: &[usize]) -> Result<Vec<u32>> {
    let rank = out.len();
    if rank > MAX_BROADCAST_RANK || a.len() > rank || b.len() > rank {
        return Err(Error::unimplemented(format!(
            "GPU broadcasting of {} and {} to {} (rank above {MAX_BROADCAST_RANK})",
            dims_string(a),
            dims_string(b),
            dims_string(out)
        )));
    }
    if broadcast_shape(a, b)? != out {
        return Err(Error::internal(format!(
            "{} is not the broadcast of {} and {}",
            dims_string(out),
            dims_string(a),
            dims_string(b)
        )));
    }
    let word = |v: usize| u32::try_from(v).map_err(|_| Error::resource_exhausted(format!("dimension {v} over 2^32")));
    let mut dims = [1u32; MAX_BROADCAST_RANK];
    for (slot, &d) in dims[MAX_BROADCAST_RANK - rank..].iter_mut().zip(out) {
        *slot = word(d)?;
    }
    let strides = |s: &[usize]| -> Result<[u32; MAX_BROADCAST_RANK]> {
        let mut st = [0u32; MAX_BROADCAST_RANK];
        let mut step = 1usize;
        for (k, &d) in s.iter().enumerate().rev() {
            let slot = MAX_BROADCAST_RANK - s.len() + k;
            st[slot] = if d == 1 { 0 } else { word(step)? };
            step = step.saturating_mul(d);
        }
        Ok(st)
    };
    let flags = u32::from(a == out) | (u32::from(b == out) << 1);
    let mut words = vec![word(rank)?, flags, 0];
    words.extend_from_slice(&dims);
    words.extend_from_slice(&strides(a)?);
    words.extend_from_slice(&strides(b)?);
    Ok(words)
}
