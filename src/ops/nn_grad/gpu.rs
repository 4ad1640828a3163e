//! GPU lowerings of the NN gradients (float32), all in gather form, one thread per output
//! element (no atomics): the convolution gradients sum over the taps and pixels that meet
//! their element, the pool gradients over the windows that cover their input position,
//! `BiasAddGrad` (one thread per channel) over the rows. The run-time checks and the geometry
//! are the CPU kernels', so both devices agree.

use crate::error::{Error, Result};
use crate::ops::gpu_passes::{reduce_passes, Axes, MAX_LOOP_TRIPS, OVERHEAD_TRIPS};
use crate::ops::kernel::{f32_kernel, template_wgsl, word, words};
use crate::ops::nn::gpu::{conv_words, pool_wgsl};
use crate::ops::reduce::{lower_reduce, ReduceKind};
use crate::ops::{wgsl, GpuLowering, Pass, PassBuf, Passes};
use crate::runtime::cpu::conv::ConvGeom;
use crate::runtime::cpu::pool::PoolGeom;
use crate::tensor::DType;

/// The uniforms both convolution gradient kernels take.
fn conv_uniforms(g: &ConvGeom) -> Result<Vec<u32>> {
    word(g.batch * g.in_h * g.in_w * g.in_c)?;
    word(g.batch * g.out_h * g.out_w * g.out_c)?;
    conv_words(g, g.batch)
}

/// Whether a kernel's worst-case loop trips per invocation fit the budget.
fn within_budget(trips: usize) -> bool {
    trips.saturating_add(OVERHEAD_TRIPS) <= MAX_LOOP_TRIPS
}

/// The loop trips a slice of a kernel's main loop may make.
const SLICE: usize = MAX_LOOP_TRIPS - OVERHEAD_TRIPS;

/// `Conv2DBackpropInput`: one thread per element of the input gradient, summing over the taps
/// and output channels; past the loop budget, in dispatches over slices of them (whole taps
/// while a tap's channels fit, else one tap's channels in slices) that add to the output in
/// place, in the one order of the single kernel.
pub(super) fn conv_backprop_input(g: &ConvGeom) -> Result<Option<GpuLowering>> {
    let out = vec![g.batch, g.in_h, g.in_w, g.in_c];
    let count = out.iter().product::<usize>();
    let wgsl = template_wgsl("conv2d_backprop_input", wgsl::CONV2D_BACKPROP_INPUT, &[])?;
    let taps = g.k_h * g.k_w;
    // The output channels one input channel's group owns.
    let per_group = g.out_c / (g.in_c / g.patch_c.max(1)).max(1);
    // Trips per tap: its own, its channel loop's and that loop's exit test.
    let (taps_slice, co_slice) = match per_group + 2 <= SLICE {
        true => ((SLICE / (per_group + 2)).max(1), per_group),
        false => (1, SLICE - 2),
    };
    let (tap_slices, co_slices) = (taps.div_ceil(taps_slice).max(1), per_group.div_ceil(co_slice).max(1));
    let slices = tap_slices * co_slices;
    let base = conv_uniforms(g)?;
    let mut p = Passes::new(DType::F32, out.clone());
    for s in 0..slices {
        let (ts, cs) = (s / co_slices, s % co_slices);
        let mut u = base.clone();
        u.extend([
            u32::from(s > 0),
            word(ts * taps_slice)?,
            word(((ts + 1) * taps_slice).min(taps))?,
            word(cs * co_slice)?,
            word(((cs + 1) * co_slice).min(per_group))?,
            word(g.patch_c)?,
            word(per_group)?,
            0,
        ]);
        if slices == 1 {
            return f32_kernel(wgsl, u, count, out).map(Some);
        }
        p.passes.push(Pass {
            wgsl: wgsl.into(),
            uniforms: u,
            invocations: count as u64,
            workgroup_size: 64,
            inputs: vec![PassBuf::Input(0), PassBuf::Input(1)],
            output: PassBuf::Out,
        });
    }
    word(count)?;
    Ok(Some(p.lowering()))
}

/// Output pixels one thread of the filter gradient sums (one loop trip each).
const FILTER_SLICE: usize = MAX_LOOP_TRIPS - OVERHEAD_TRIPS;

/// `Conv2DBackpropFilter`: one thread per filter element and slice of the output pixels; with
/// more than one slice, their partial sums are reduced in another pass.
pub(super) fn conv_backprop_filter(g: &ConvGeom) -> Result<Option<GpuLowering>> {
    let out = vec![g.k_h, g.k_w, g.patch_c, g.out_c];
    let per_group = g.out_c / (g.in_c / g.patch_c.max(1)).max(1);
    let filter: usize = out.iter().product();
    let pixels = g.batch * g.out_h * g.out_w;
    // Slices within the budget, and enough of them for about 1024 threads (but at least 256
    // pixels each, so that the partial sums stay few).
    let wanted = 1024usize.div_ceil(filter.max(1));
    let slice = pixels.div_ceil(wanted).clamp(256, FILTER_SLICE);
    let slices = pixels.div_ceil(slice).max(1);
    let wgsl = template_wgsl("conv2d_backprop_filter", wgsl::CONV2D_BACKPROP_FILTER, &[])?;
    let mut uniforms = conv_uniforms(g)?;
    uniforms.extend([word(slice)?, word(g.patch_c)?, word(per_group)?, 0]);
    let count = word(slices * filter)?;
    if slices == 1 {
        return f32_kernel(wgsl, uniforms, filter, out).map(Some);
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

/// `MaxPoolGrad` (`max`) or `AvgPoolGrad`: one thread per element of the input gradient,
/// summing over the windows that cover it in window order. Past the loop budget, the sum runs
/// in dispatches over slices of the covering windows that add to the output in place; for the
/// max, the windows' maxima are then found first (in slices of their cells, combined in order),
/// rather than by every thread for every covering window.
pub(super) fn pool_grad(g: &PoolGeom, max: bool) -> Result<Option<GpuLowering>> {
    let covering = |w: usize, s: usize, o: usize| w.div_ceil(s.max(1)).min(o);
    let (ch, cw) = (covering(g.window[0], g.stride[0], g.out_h), covering(g.window[1], g.stride[1], g.out_w));
    let out = vec![g.batch, g.in_h, g.in_w, g.chan];
    let count = out.iter().product::<usize>();
    let outputs = g.batch * g.out_h * g.out_w * g.chan;
    word(outputs)?;
    word(count)?;
    let geom = words(&[
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
    let windows = ch.saturating_mul(cw);
    if max {
        let per_window = 2 + g.window[0].saturating_mul(g.window[1].saturating_add(2));
        if within_budget(ch.saturating_mul(2 + cw.saturating_mul(per_window + 1))) {
            let wgsl = pool_grad_wgsl(true)?;
            return f32_kernel(wgsl, geom, count, out).map(Some);
        }
    } else if windows.div_ceil(SLICE) <= 1 {
        let mut u = geom;
        u.extend([0, 0, word(windows)?, word(cw.max(1))?]);
        return f32_kernel(pool_grad_wgsl(false)?, u, count, out).map(Some);
    }
    let mut p = Passes::new(DType::F32, out);
    let (wgsl, mut inputs) = match max {
        true => {
            let arg = window_maxima(&mut p, g, &geom, outputs)?;
            (pool_wgsl("max_pool_grad_sliced", wgsl::MAX_POOL_GRAD_SLICED, &[])?, vec![arg, PassBuf::Input(2)])
        }
        false => (pool_grad_wgsl(false)?, vec![PassBuf::Input(0)]),
    };
    let slices = windows.div_ceil(SLICE).max(1);
    for s in 0..slices {
        let mut u = geom.clone();
        u.extend([u32::from(s > 0), word(s * SLICE)?, word(((s + 1) * SLICE).min(windows))?, word(cw.max(1))?]);
        p.passes.push(Pass {
            wgsl: wgsl.into(),
            uniforms: u,
            invocations: count as u64,
            workgroup_size: 64,
            inputs: if s + 1 == slices { std::mem::take(&mut inputs) } else { inputs.clone() },
            output: PassBuf::Out,
        });
    }
    Ok(Some(p.lowering()))
}

/// Appends the passes that find each pool window's max and its position (pairs of words, see
/// shaders/max_pool_argmax.wgsl) and returns the temporary holding them, `[outputs, 2]`.
fn window_maxima(p: &mut Passes, g: &PoolGeom, geom: &[u32], outputs: usize) -> Result<PassBuf> {
    let cells = g.window[0].min(g.in_h).saturating_mul(g.window[1].min(g.in_w));
    let mut groups = cells.div_ceil(SLICE).max(1);
    let mut u = geom.to_vec();
    u.extend([word(outputs)?, word(SLICE)?, 0, 0]);
    let mut src = p.temp(DType::I32, vec![groups, outputs, 2]);
    p.passes.push(Pass {
        wgsl: pool_wgsl("max_pool_argmax", wgsl::MAX_POOL_ARGMAX, &[])?.into(),
        uniforms: u,
        invocations: u64::from(word(groups.saturating_mul(outputs))?),
        workgroup_size: 64,
        inputs: vec![PassBuf::Input(0)],
        output: src,
    });
    while groups > 1 {
        let next = groups.div_ceil(SLICE);
        let dst = p.temp(DType::I32, vec![next, outputs, 2]);
        p.passes.push(Pass {
            wgsl: template_wgsl("max_pool_argmax_combine", wgsl::MAX_POOL_ARGMAX_COMBINE, &[])?.into(),
            uniforms: vec![word(outputs)?, word(groups)?, word(SLICE)?],
            invocations: u64::from(word(next.saturating_mul(outputs))?),
            workgroup_size: 64,
            inputs: vec![src],
            output: dst,
        });
        (src, groups) = (dst, next);
    }
    Ok(src)
}

/// MaxPoolGrad's code for the placeholders of shaders/pool_grad.wgsl: the forward input and
/// output bound before the gradient, and each covering window scanned for its maximum.
const MAX_POOL_GRAD: [(&str, &str); 3] = [
    ("EXTRA_PARAMS", ""),
    (
        "BINDINGS",
        "@group(0) @binding(1) var<storage, read> in_x: array<f32>;
@group(0) @binding(2) var<storage, read> orig_out: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;",
    ),
    (
        "WINDOWS",
        "let image = n * params.in_h;
    for (var oh = ohs.x; oh < ohs.y; oh = oh + 1u) {
        let rows = span(oh, params.stride_h, params.pad_h, params.win_h, params.in_h);
        for (var ow = ows.x; ow < ows.y; ow = ow + 1u) {
            let cols = span(ow, params.stride_w, params.pad_w, params.win_w, params.in_w);
            var best = 0.0;
            var best_at = vec2<u32>(rows.x, cols.x);
            var found = false;
            for (var h = rows.x; h < rows.y; h = h + 1u) {
                for (var w = cols.x; w < cols.y; w = w + 1u) {
                    let v = in_x[((image + h) * params.in_w + w) * params.chan + c];
                    if (!found || (!is_nan(best) && (is_nan(v) || v > best))) {
                        best = v;
                        best_at = vec2<u32>(h, w);
                        found = true;
                    }
                }
            }
            if (best_at.x == ih && best_at.y == iw) {
                acc = acc + dy[((n * params.out_h + oh) * params.out_w + ow) * params.chan + c];
            }
        }
    }",
    ),
];

/// AvgPoolGrad's code for the placeholders of shaders/pool_grad.wgsl: the slice of covering
/// windows this dispatch adds (to the earlier slices' sum when `accumulate` is set).
const AVG_POOL_GRAD: [(&str, &str); 3] = [
    (
        "EXTRA_PARAMS",
        "accumulate: u32,
    k_lo: u32,
    k_hi: u32,
    cov_w: u32,",
    ),
    (
        "BINDINGS",
        "@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;",
    ),
    (
        "WINDOWS",
        "if (params.accumulate != 0u) {
        acc = out[i];
    }
    for (var k = params.k_lo; k < params.k_hi; k = k + 1u) {
        let oh = ohs.x + k / params.cov_w;
        let ow = ows.x + k % params.cov_w;
        if (oh >= ohs.y) {
            break;
        }
        if (ow >= ows.y) {
            continue;
        }
        let rows = span(oh, params.stride_h, params.pad_h, params.win_h, params.in_h);
        let cols = span(ow, params.stride_w, params.pad_w, params.win_w, params.in_w);
        let count = (rows.y - rows.x) * (cols.y - cols.x);
        acc = acc + dy[((n * params.out_h + oh) * params.out_w + ow) * params.chan + c] / f32(count);
    }",
    ),
];

/// The pool gradient kernel, `max` or avg: shaders/pool_grad.wgsl with that kind's code.
fn pool_grad_wgsl(max: bool) -> Result<&'static str> {
    match max {
        true => pool_wgsl("max_pool_grad", wgsl::POOL_GRAD, &MAX_POOL_GRAD),
        false => pool_wgsl("avg_pool_grad", wgsl::POOL_GRAD, &AVG_POOL_GRAD),
    }
}

/// Every instantiation of the NN gradient templates added for the loop budget, named, for the
/// naga validation test.
pub(crate) fn instantiations() -> Result<Vec<(String, String)>> {
    Ok([
        ("pool_grad.wgsl max", pool_grad_wgsl(true)?),
        ("pool_grad.wgsl avg", pool_grad_wgsl(false)?),
        ("max_pool_argmax.wgsl", pool_wgsl("max_pool_argmax", wgsl::MAX_POOL_ARGMAX, &[])?),
        ("max_pool_argmax_combine.wgsl", template_wgsl("max_pool_argmax_combine", wgsl::MAX_POOL_ARGMAX_COMBINE, &[])?),
        ("max_pool_grad_sliced.wgsl", pool_wgsl("max_pool_grad_sliced", wgsl::MAX_POOL_GRAD_SLICED, &[])?),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_string(), s.to_string()))
    .collect())
}

/// `BiasAddGrad` of a float32 tensor of shape `s` (rank >= 2, checked by the caller): the
/// reduction of `[rows, channels]` over its rows (one thread per channel when the rows are
/// few, else workgroup trees).
pub(super) fn bias_add_grad(s: &[usize]) -> Result<GpuLowering> {
    let channels = s[s.len() - 1];
    let total: usize = s.iter().product();
    word(total)?;
    let rows = total.checked_div(channels).unwrap_or(0);
    lower_reduce(ReduceKind::Sum, DType::F32, &[rows, channels], &[true, false], vec![channels])
        .unwrap_or_else(|| Err(Error::internal("no GPU reduction for BiasAddGrad")))
}
