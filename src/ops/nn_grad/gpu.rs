//! GPU lowerings of the NN gradients (float32), all in gather form, one thread per output
//! element (no atomics): the convolution gradients sum over the taps and pixels that meet
//! their element, the pool gradients over the windows that cover their input position,
//! `BiasAddGrad` (one thread per channel) over the rows. The run-time checks and the geometry
//! are the CPU kernels', so both devices agree.

use crate::error::Error;
use crate::error::Result;
use crate::ops::gpu_passes::{reduce_passes, Axes, MAX_LOOP_TRIPS, OVERHEAD_TRIPS};
use crate::ops::gpu_util;
use crate::ops::nn::gpu::{kernel, nn_wgsl, word};
use crate::ops::reduce::ReduceKind;
use crate::ops::{GpuLowering, Pass, PassBuf, Passes};
use crate::runtime::cpu::conv::ConvGeom;
use crate::runtime::cpu::pool::PoolGeom;
use crate::tensor::DType;

const CONV_INPUT_TEMPLATE: &str = include_str!("../../../shaders/conv2d_backprop_input.wgsl");
const CONV_FILTER_TEMPLATE: &str = include_str!("../../../shaders/conv2d_backprop_filter.wgsl");
const MAX_POOL_GRAD_TEMPLATE: &str = include_str!("../../../shaders/max_pool_grad.wgsl");
const AVG_POOL_GRAD_TEMPLATE: &str = include_str!("../../../shaders/avg_pool_grad.wgsl");

/// Sizes as uniform words (`ResourceExhausted` past 2^32).
fn words(v: &[usize]) -> Result<Vec<u32>> {
    v.iter().map(|&x| word(x)).collect()
}

/// The uniforms both convolution gradient kernels take.
fn conv_uniforms(g: &ConvGeom) -> Result<Vec<u32>> {
    word(g.batch * g.in_h * g.in_w * g.in_c)?;
    word(g.batch * g.out_h * g.out_w * g.out_c)?;
    words(&[
        g.in_h,
        g.in_w,
        g.in_c,
        g.k_h,
        g.k_w,
        g.out_c,
        g.stride[0],
        g.stride[1],
        g.dilation[0],
        g.dilation[1],
        g.pad[0],
        g.pad[1],
        g.out_h,
        g.out_w,
        g.batch,
    ])
}

/// Whether a kernel's worst-case loop trips per invocation fit the budget.
fn within_budget(trips: usize) -> bool {
    trips.saturating_add(OVERHEAD_TRIPS) <= MAX_LOOP_TRIPS
}

/// `Conv2DBackpropInput`: one thread per element of the input gradient; `None` (the CPU
/// kernel) when one thread's walk over the taps and output channels is past the loop budget.
pub(super) fn conv_backprop_input(g: &ConvGeom) -> Result<Option<GpuLowering>> {
    let trips = g.k_h.saturating_mul(2 + g.k_w.saturating_mul(g.out_c.saturating_add(2)));
    if !within_budget(trips) {
        return Ok(None);
    }
    let out = vec![g.batch, g.in_h, g.in_w, g.in_c];
    let wgsl = nn_wgsl("conv2d_backprop_input", CONV_INPUT_TEMPLATE)?;
    kernel(wgsl, conv_uniforms(g)?, out.iter().product(), out).map(Some)
}

/// Output pixels one thread of the filter gradient sums (one loop trip each).
const FILTER_SLICE: usize = MAX_LOOP_TRIPS - OVERHEAD_TRIPS;

/// `Conv2DBackpropFilter`: one thread per filter element and slice of the output pixels; with
/// more than one slice, their partial sums are reduced in another pass.
pub(super) fn conv_backprop_filter(g: &ConvGeom) -> Result<Option<GpuLowering>> {
    let out = vec![g.k_h, g.k_w, g.in_c, g.out_c];
    let filter: usize = out.iter().product();
    let pixels = g.batch * g.out_h * g.out_w;
    // Slices: as few as the budget allows, but enough threads to fill a few workgroups.
    let slice = FILTER_SLICE.min(pixels.div_ceil(64usize.div_ceil(filter.max(1))).max(1));
    let slices = pixels.div_ceil(slice).max(1);
    let wgsl = nn_wgsl("conv2d_backprop_filter", CONV_FILTER_TEMPLATE)?;
    let mut uniforms = conv_uniforms(g)?;
    uniforms.extend([word(slice)?, 0, 0, 0]);
    let count = word(slices * filter)?;
    if slices == 1 {
        return kernel(wgsl, uniforms, filter, out).map(Some);
    }
    let mut p = Passes::new(DType::F32, out);
    let partials = p.temp(DType::F32, vec![slices, filter]);
    p.passes.push(Pass {
        wgsl: wgsl.into(),
        uniforms,
        invocations: u64::from(count),
        workgroup_size: 64,
        inputs: vec![PassBuf::Input(0), PassBuf::Input(1)],
        output: partials,
    });
    let axes = Axes { kept: (vec![filter], vec![1]), red: (vec![slices], vec![filter]) };
    reduce_passes(&mut p, (ReduceKind::Sum, DType::F32), &axes, partials, PassBuf::Out)?;
    Ok(Some(p.lowering()))
}

/// `MaxPoolGrad` (`max`) or `AvgPoolGrad`: one thread per element of the input gradient;
/// `None` (the CPU kernel) when one thread's walk over the windows that cover it (and, for the
/// max, over each of those windows) is past the loop budget.
pub(super) fn pool_grad(g: &PoolGeom, max: bool) -> Result<Option<GpuLowering>> {
    let covering = |w: usize, s: usize, o: usize| w.div_ceil(s.max(1)).min(o);
    let (ch, cw) = (covering(g.window[0], g.stride[0], g.out_h), covering(g.window[1], g.stride[1], g.out_w));
    let per_window = if max { 2 + g.window[0].saturating_mul(g.window[1].saturating_add(2)) } else { 1 };
    if !within_budget(ch.saturating_mul(2 + cw.saturating_mul(per_window + 1))) {
        return Ok(None);
    }
    let out = vec![g.batch, g.in_h, g.in_w, g.chan];
    word(g.batch * g.out_h * g.out_w * g.chan)?;
    let uniforms = words(&[
        g.in_h,
        g.in_w,
        g.chan,
        g.window[0],
        g.window[1],
        g.stride[0],
        g.stride[1],
        g.pad[0],
        g.pad[1],
        g.out_h,
        g.out_w,
    ])?;
    let wgsl = match max {
        true => nn_wgsl("max_pool_grad", MAX_POOL_GRAD_TEMPLATE)?,
        false => nn_wgsl("avg_pool_grad", AVG_POOL_GRAD_TEMPLATE)?,
    };
    kernel(wgsl, uniforms, out.iter().product(), out).map(Some)
}

/// `BiasAddGrad` of a float32 tensor of shape `s` (rank >= 2, checked by the caller): the
/// reduction of `[rows, channels]` over its rows (one thread per channel when the rows are
/// few, else workgroup trees).
pub(super) fn bias_add_grad(s: &[usize]) -> Result<GpuLowering> {
    let channels = s[s.len() - 1];
    let total: usize = s.iter().product();
    word(total)?;
    let rows = total.checked_div(channels).unwrap_or(0);
    gpu_util::reduce(ReduceKind::Sum, DType::F32, &[rows, channels], &[true, false], vec![channels])
        .unwrap_or_else(|| Err(Error::internal("no GPU reduction for BiasAddGrad")))
}
