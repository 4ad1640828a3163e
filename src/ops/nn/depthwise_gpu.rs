//! The GPU kernel of depthwise convolutions (shaders/depthwise.wgsl): a `Conv2D` with one group
//! per input channel, four output channels per thread.

use crate::error::Result;
use crate::ops::fused::wgsl::output_code;
use crate::ops::fused::Epilogue;
use crate::ops::gpu_passes::{MAX_LOOP_TRIPS, OVERHEAD_TRIPS};
use crate::ops::kernel::{code_of, f32_kernel, with_prelude, word, words};
use crate::ops::{cached_wgsl, wgsl, GpuLowering};
use crate::runtime::cpu::conv::ConvGeom;

/// The depthwise kernel, reading the input as vec4s when `vec4_in` (multiplier 1, channels a
/// multiple of 4), its results stored by `output` (vec4 stores).
pub fn depthwise_wgsl(vec4_in: bool, output: &str) -> String {
    let (xtype, quad) = if vec4_in {
        ("vec4<f32>", "return in_x[(base + o) / 4u];")
    } else {
        (
            "f32",
            "let m = params.mult;\n    return vec4<f32>(in_x[base + o / m], in_x[base + (o + 1u) / m], in_x[base + (o + 2u) / m], in_x[base + (o + 3u) / m]);",
        )
    };
    let code = code_of(wgsl::DEPTHWISE).replace("XTYPE", xtype).replace("X_QUAD", quad).replace("OUTPUT", output);
    with_prelude(&code)
}

/// Whether this convolution is depthwise and the kernel takes it: one input channel per group,
/// output channels in whole vec4s, and its taps within the loop budget.
pub(super) fn fits(g: &ConvGeom) -> bool {
    g.patch_c == 1
        && g.in_c > 1
        && g.out_c.is_multiple_of(4)
        && g.out_c > 0
        && g.batch * g.out_h * g.out_w > 0
        && g.k_h.saturating_mul(g.k_w) + OVERHEAD_TRIPS <= MAX_LOOP_TRIPS
}

/// The lowering (`Ok(None)`: the epilogue does not fit the output).
pub(super) fn lowering(g: &ConvGeom, epilogue: Option<&Epilogue>) -> Result<Option<GpuLowering>> {
    let out = vec![g.batch, g.out_h, g.out_w, g.out_c];
    let Some(output) = output_code(epilogue, &out, 3, true) else { return Ok(None) };
    let mult = g.out_c / g.in_c;
    let vec4_in = mult == 1 && g.in_c.is_multiple_of(4);
    let key = format!("nn depthwise f32 vec4 {vec4_in} {}", output.key());
    let wgsl = cached_wgsl(key, || Ok(depthwise_wgsl(vec4_in, &output.code())))?;
    let [s, d, p] = [g.stride, g.dilation, g.pad];
    let uniforms = words(&[
        g.in_h, g.in_w, g.in_c, g.k_h, g.k_w, g.out_c, mult, s[0], s[1], d[0], d[1], p[0], p[1], g.out_h, g.out_w,
    ])?;
    let invocations = g.batch * g.out_h * g.out_w * (g.out_c / 4);
    word(invocations)?;
    f32_kernel(wgsl, uniforms, invocations, out).map(Some)
}
