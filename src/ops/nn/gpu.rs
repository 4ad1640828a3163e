//! GPU lowerings of the pools, `BiasAdd` and `Softmax` (float32), and the uniform packing of
//! the convolution geometry shared with `nn_grad` (`conv_words`).

use super::Padding;
use crate::error::Result;
use crate::ops::gpu_passes::{reduce_passes, Axes, MAX_LOOP_TRIPS, OVERHEAD_TRIPS};
use crate::ops::kernel::{f32_kernel, template_wgsl, word, WG};
use crate::ops::reduce::ReduceKind;
use crate::ops::{wgsl, GpuLowering, Pass, PassBuf, Passes};
use crate::runtime::cpu::pool::{pool_geometry, PoolShape};
use crate::tensor::DType;

pub(crate) use super::conv_gpu::conv_words;
pub(super) use super::conv_gpu::{conv2d, conv2d_sg_wgsl, conv2d_wgsl};

/// A pool kernel (forward or gradient): `template_wgsl` with the window helpers the pool
/// templates share (shaders/pool_windows.wgsl) in place of the template's `WINDOW_HELPERS`
/// line, and the template's own `parts`.
pub(crate) fn pool_wgsl(key: &str, template: &str, parts: &[(&str, &str)]) -> Result<&'static str> {
    let mut all = vec![("WINDOW_HELPERS", wgsl::POOL_WINDOWS)];
    all.extend_from_slice(parts);
    template_wgsl(key, template, &all)
}

/// `MaxPool` (`max`) / `AvgPool` on float32 NHWC input.
pub(super) fn pool(
    inputs: &[(DType, &[usize])],
    max: bool,
    ksize: [usize; 4],
    strides: [usize; 4],
    padding: Padding,
) -> Option<Result<GpuLowering>> {
    let [(DType::F32, xs)] = inputs else {
        return None;
    };
    Some(pool_lowering(xs, max, ksize, strides, padding))
}

/// The lanes of the pool kernel (shaders/pool.wgsl): one channel per load, or four.
const POOL_SCALAR: &str = "alias V = f32;\nalias U = u32;";
const POOL_VEC4: &str = "alias V = vec4<f32>;\nalias U = vec4<u32>;";
/// Its outputs: a grid-stride loop, or one output per thread.
const POOL_GRID: &str = "for (var i = t; i < params.total; i = i + params.count)";
const POOL_ONE: &str = "let i = t;";

/// The pool kernel (shaders/pool.wgsl): `vec4` reads four channels per load, `grid` loops
/// over the outputs.
pub(crate) fn pool_kernel_wgsl(vec4: bool, grid: bool) -> Result<&'static str> {
    let lanes = if vec4 { POOL_VEC4 } else { POOL_SCALAR };
    let outputs = if grid { POOL_GRID } else { POOL_ONE };
    let key = format!("pool vec4 {vec4} grid {grid}");
    pool_wgsl(&key, wgsl::POOL, &[("LANES", lanes), ("GRID_LOOP", outputs)])
}

/// The checks of [`pool_geometry`] (shared with the CPU kernel), then the kernel: one pass
/// where a thread can walk a whole window within the loop budget, else slices of the windows.
fn pool_lowering(xs: &[usize], max: bool, k: [usize; 4], s: [usize; 4], padding: Padding) -> Result<GpuLowering> {
    let PoolShape { out_h, out_w, pad: [pad_h, pad_w], depth_window } = pool_geometry(xs, max, k, s, padding)?;
    let out_c = depth_window.map_or(xs[3], |kd| xs[3] / kd);
    word(xs.iter().product())?;
    let out = vec![xs[0], out_h, out_w, out_c];
    // The uniforms both pool templates start with, channel counts in units of `lanes`.
    let geometry = |lanes: usize, last: usize| -> Result<Vec<u32>> {
        [xs[1], xs[2], xs[3] / lanes, k[1], k[2], k[3], s[1], s[2], pad_h, pad_w, out_h, out_w, out_c / lanes]
            .into_iter()
            .chain([usize::from(max), last])
            .map(word)
            .collect()
    };
    // pool.wgsl walks a window in one thread: 1 + win_c + 1 trips per cell, 2 per row.
    let trips = k[1] * (2 + k[2] * (k[3] + 2));
    if trips + OVERHEAD_TRIPS <= MAX_LOOP_TRIPS {
        // Four channels per load where the window takes one channel; a grid of at most
        // `grid_threads` threads where the budget allows (one trip more per output).
        let lanes = if depth_window.is_none() && xs[3].is_multiple_of(4) { 4 } else { 1 };
        let total = out.iter().product::<usize>() / lanes;
        let cap = crate::runtime::gpu::variant::grid_threads();
        let grid = cap != usize::MAX;
        let per_thread = (MAX_LOOP_TRIPS - OVERHEAD_TRIPS) / (trips + 1);
        let threads = if grid { total.min(cap.max(total.div_ceil(per_thread))) } else { total };
        return f32_kernel(pool_kernel_wgsl(lanes == 4, grid)?, geometry(lanes, total)?, threads, out);
    }
    // A huge window: slices of its cells, then a max or a sum over the slices.
    let slice = MAX_LOOP_TRIPS - OVERHEAD_TRIPS;
    let slices = (k[1] * k[2] * k[3]).div_ceil(slice);
    let outputs: usize = out.iter().product();
    let count = word(slices.saturating_mul(outputs))?;
    let mut p = Passes::new(DType::F32, out);
    let partials = p.temp(DType::F32, vec![slices, outputs]);
    p.passes.push(Pass {
        wgsl: pool_wgsl("pool_sliced", wgsl::POOL_SLICED, &[])?.into(),
        uniforms: geometry(1, slice)?,
        invocations: u64::from(count),
        workgroup_size: WG,
        inputs: vec![PassBuf::Input(0)],
        output: partials,
    });
    let axes = Axes { kept: (vec![outputs], vec![1]), red: (vec![slices], vec![outputs]) };
    let kind = if max { ReduceKind::Max } else { ReduceKind::Sum };
    reduce_passes(&mut p, (kind, DType::F32), &axes, partials, PassBuf::Out)?;
    Ok(p.lowering())
}

/// `BiasAdd` on float32: `bias` along the last dimension of `x`.
pub(super) fn bias_add(inputs: &[(DType, &[usize])]) -> Option<Result<GpuLowering>> {
    let [(DType::F32, xs), (DType::F32, bs)] = inputs else {
        return None;
    };
    Some(bias_add_lowering(xs, bs))
}

fn bias_add_lowering(xs: &[usize], bs: &[usize]) -> Result<GpuLowering> {
    super::check_bias_shapes(xs, bs)?;
    let channels = word(bs[0])?;
    f32_kernel(template_wgsl("bias_add", wgsl::BIAS_ADD, &[])?, vec![channels], xs.iter().product(), xs.to_vec())
}

/// Every instantiation of the forward NN templates, named, for the naga validation test.
pub(crate) fn instantiations() -> Result<Vec<(String, String)>> {
    let plain = |vec4: bool| crate::ops::fused::wgsl::plain_output(3, if vec4 { "vec4<f32>" } else { "f32" });
    let (scalar, vec4) = crate::ops::fused::wgsl::sample_epilogues();
    use super::conv_rb::conv2d_rb_wgsl as rb;
    use crate::runtime::gpu::variant::RbTile;
    let coop = super::conv_rb::coop_samples(&vec4);
    let mut list = vec![
        ("conv2d.wgsl".to_string(), conv2d_wgsl(&plain(false))),
        ("conv2d_sg.wgsl 8x2 vec4".to_string(), conv2d_sg_wgsl(8, 2, true, &plain(true))),
        ("conv2d_sg.wgsl 2x1 scalar".to_string(), conv2d_sg_wgsl(2, 1, false, &plain(true))),
        ("conv2d_sg.wgsl 8x2 scalar".to_string(), conv2d_sg_wgsl(8, 2, false, &plain(true))),
        ("pool.wgsl scalar, one per thread".into(), pool_kernel_wgsl(false, false)?.to_string()),
        ("pool.wgsl vec4, grid".into(), pool_kernel_wgsl(true, true)?.to_string()),
        ("pool_sliced.wgsl".to_string(), pool_wgsl("pool_sliced", wgsl::POOL_SLICED, &[])?.to_string()),
        ("conv2d.wgsl with an epilogue".into(), conv2d_wgsl(&scalar)),
        ("conv2d_sg.wgsl 8x2 with an epilogue".into(), conv2d_sg_wgsl(8, 2, true, &vec4)),
        ("gemm_rb.wgsl + conv2d_rb.wgsl small vec4".into(), rb(RbTile::SMALL, true, &plain(true))),
        ("gemm_rb.wgsl + conv2d_rb.wgsl large scalar".into(), rb(RbTile::LARGE, false, &plain(true))),
        ("gemm_rb.wgsl + conv2d_rb.wgsl tiny, epilogue".into(), rb(RbTile::TINY, true, &vec4)),
        ("depthwise.wgsl vec4".into(), super::depthwise_gpu::depthwise_wgsl(true, &plain(true))),
        ("depthwise.wgsl scalar, epilogue".into(), super::depthwise_gpu::depthwise_wgsl(false, &vec4)),
    ];
    list.extend(coop);
    list.extend(super::softmax_gpu::instantiations());
    Ok(list)
}
