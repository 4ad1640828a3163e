//! GPU lowerings of `Softmax` (float32): a workgroup per row along the last axis
//! (shaders/softmax_rows.wgsl), a thread per row for short rows and other axes
//! (shaders/softmax.wgsl), and passes for rows past the loop budget
//! (`gpu_passes::softmax_passes`).

use crate::error::Result;
use crate::ops::gpu_passes::{serial, softmax_passes, MAX_LOOP_TRIPS, OVERHEAD_TRIPS};
use crate::ops::kernel::{kernel, with_prelude, word};
use crate::ops::reduce::combine::{row_combines, COMBINE_TRIPS};
use crate::ops::{cached_wgsl, wgsl, GpuLowering};
use crate::runtime::gpu::variant::subgroup_reductions;
use crate::tensor::DType;

/// The row kernel's workgroup size (shaders/softmax_rows.wgsl).
const ROW_WG: usize = 64;

/// The row kernel's loads: scalar, or four elements at a time.
const ROW_SCALAR: &str = "alias V = f32;
fn max_lanes(acc: f32, v: f32) -> f32 {
    return select(acc, v, v > acc);
}
fn exp_lanes(v: f32, m: f32) -> f32 {
    return exp_tf(v - m);
}
fn sum_lanes(v: f32) -> f32 {
    return v;
}";
const ROW_VEC4: &str = "alias V = vec4<f32>;
fn max_lanes(acc: f32, v: vec4<f32>) -> f32 {
    let a = select(acc, v.x, v.x > acc);
    let b = select(a, v.y, v.y > a);
    let c = select(b, v.z, v.z > b);
    return select(c, v.w, v.w > c);
}
fn exp_lanes(v: vec4<f32>, m: f32) -> vec4<f32> {
    return vec4<f32>(exp_tf(v.x - m), exp_tf(v.y - m), exp_tf(v.z - m), exp_tf(v.w - m));
}
fn sum_lanes(v: vec4<f32>) -> f32 {
    return (v.x + v.y) + (v.z + v.w);
}";

/// The one-thread-per-row softmax kernel.
pub fn softmax_wgsl() -> String {
    with_prelude(wgsl::SOFTMAX)
}

/// The workgroup-per-row softmax kernel: `vec4` loads, `subgroups` combines.
pub(crate) fn softmax_rows_wgsl(vec4: bool, subgroups: bool) -> String {
    let row = row_combines(subgroups);
    let code = crate::ops::kernel::code_of(wgsl::SOFTMAX_ROWS)
        .replace("LANES", if vec4 { ROW_VEC4 } else { ROW_SCALAR })
        .replace("ROW_MAX", &row.max)
        .replace("ROW_SUM", &row.sum)
        .replace("BUILTINS", row.builtins)
        .replace("ROW_HELPERS", &row.helpers);
    with_prelude(&code)
}

/// Softmax of float32 `dims` along `axis` (checked by the CPU code).
pub(crate) fn softmax(dims: &[usize], axis: usize) -> Result<GpuLowering> {
    let n = dims[axis];
    let inner: usize = dims[axis + 1..].iter().product();
    let outer: usize = dims[..axis].iter().product();
    word(dims.iter().product())?;
    let rows = if n == 0 { 0 } else { outer * inner };
    // One thread per row makes three walks of the row: 3n trips, as a serial reduction of n
    // over one axis counts. Rows along the last axis with a load per thread of the row kernel
    // or more, or too long for one thread, take a workgroup each (on lavapipe, a thread per
    // row measured 2.7x faster on 16384 rows of 64, the workgroup 1.6-2.3x faster on 32 rows
    // of 1000 and 64 of 10,000).
    let one_thread = n == 0 || serial(n, 1, rows);
    if inner == 1 && (!one_thread || row_loads(n) >= ROW_WG) {
        if let Some(rows_kernel) = row_kernel(dims, rows, n)? {
            return Ok(rows_kernel);
        }
    }
    if !one_thread {
        return softmax_passes(dims, (outer, n, inner));
    }
    let wgsl = cached_wgsl("softmax f32".into(), || Ok(softmax_wgsl()))?;
    Ok(kernel(wgsl, vec![word(n)?, word(inner.max(1))?, 0], rows, DType::F32, dims.to_vec()))
}

/// The row kernel's loads per row of `n` elements: vec4s where `n` is a multiple of 4.
fn row_loads(n: usize) -> usize {
    if n.is_multiple_of(4) {
        n / 4
    } else {
        n
    }
}

/// The workgroup-per-row kernel for `rows` rows of `n` contiguous elements, where its three
/// walks of the row fit the loop budget.
fn row_kernel(dims: &[usize], rows: usize, n: usize) -> Result<Option<GpuLowering>> {
    let vec4 = n.is_multiple_of(4);
    let loads = row_loads(n);
    let trips = 3 * loads.div_ceil(ROW_WG) + 2 * COMBINE_TRIPS + OVERHEAD_TRIPS;
    if trips > MAX_LOOP_TRIPS {
        return Ok(None);
    }
    let sg = subgroup_reductions();
    let key = format!("softmax rows f32 vec4 {vec4} subgroups {sg}");
    let wgsl = cached_wgsl(key, || Ok(softmax_rows_wgsl(vec4, sg)))?;
    let invocations = word(rows.saturating_mul(ROW_WG))?;
    Ok(Some(GpuLowering::Kernel {
        wgsl: wgsl.into(),
        uniforms: vec![word(loads)?],
        invocations: u64::from(invocations),
        workgroup_size: ROW_WG as u32,
        out: (DType::F32, dims.to_vec()),
    }))
}

/// Every instantiation of the softmax templates, named, for the naga validation test.
pub(crate) fn instantiations() -> Vec<(String, String)> {
    let mut all = vec![("softmax.wgsl".to_string(), softmax_wgsl())];
    for vec4 in [false, true] {
        for sg in [false, true] {
            all.push((format!("softmax_rows.wgsl vec4 {vec4} subgroups {sg}"), softmax_rows_wgsl(vec4, sg)));
        }
    }
    all
}
