//! GPU lowering of `Conv2D` (float32 NHWC): the direct kernel (shaders/conv2d.wgsl), the
//! subgroup kernel (shaders/conv2d_sg.wgsl) and the register-blocked one (`conv_rb`), picked by
//! the adapter's kernel variant (`runtime::gpu::variant`), with a fused epilogue if given.

use super::Padding;
use crate::error::Result;
use crate::ops::fused::wgsl::output_code;
use crate::ops::fused::Epilogue;
use crate::ops::gpu_passes::{MAX_LOOP_TRIPS, OVERHEAD_TRIPS};
use crate::ops::kernel::{code_of, f32_kernel, with_prelude, word, words, WG};
use crate::ops::sg_tile::{SgTile, TileStore};
use crate::ops::{cached_wgsl, wgsl, GpuLowering, Pass, PassBuf, Passes};
use crate::runtime::cpu::conv::{conv_geometry, ConvGeom};
use crate::runtime::gpu::variant::{kernels, KernelVariant};
use crate::tensor::DType;

/// `Conv2D` on float32 NHWC input, with a fused `epilogue` if given (`None` when it does not
/// fit the output).
pub(super) fn conv2d(
    inputs: &[(DType, &[usize])],
    strides: [usize; 4],
    dilations: [usize; 4],
    padding: Padding,
    epilogue: Option<&Epilogue>,
) -> Option<Result<GpuLowering>> {
    let [(DType::F32, xs), (DType::F32, fs)] = inputs else {
        return None;
    };
    conv2d_lowering(xs, fs, (strides, dilations, padding), epilogue).transpose()
}

/// The generic conv2d kernel (shaders/conv2d.wgsl), its results stored by `output` (the
/// template's `OUTPUT`: see `fused::wgsl::output_code`).
pub fn conv2d_wgsl(output: &str) -> String {
    let code = code_of(wgsl::CONV2D).replace("WORKGROUP_SIZE", &format!("{WG}u")).replace("OUTPUT", output);
    with_prelude(&code)
}

/// The subgroup conv2d kernel (shaders/conv2d_sg.wgsl) with `rows` pixels and `vcols` vec4
/// output channels per lane, reading the input as vec4s when `vec4_in` (Cin a multiple of 4),
/// its results stored by `output` (the template's `OUTPUT`).
pub fn conv2d_sg_wgsl(rows: usize, vcols: usize, vec4_in: bool, output: &str) -> String {
    use std::fmt::Write;
    let tile = SgTile { rows, vcols };
    let (mut decls, mut taps, mut body) = (String::new(), String::new(), String::new());
    for v in 0..vcols {
        let _ = writeln!(decls, "    let bc{v} = min(col0 + {}u + lane, last_col);", 8 * v);
    }
    for i in 0..rows {
        let _ = writeln!(decls, "    let px{i} = min(p0 + {}u, last_pixel);", 8 * i);
        let _ = writeln!(decls, "    let t{i} = px{i} / params.out_w;");
        let _ = writeln!(decls, "    let ih{i} = i32((t{i} % params.out_h) * params.stride_h) - i32(params.pad_h);");
        let _ = writeln!(decls, "    let iw{i} = i32((px{i} % params.out_w) * params.stride_w) - i32(params.pad_w);");
        let _ = writeln!(decls, "    let xb{i} = (t{i} / params.out_h) * params.in_h;");
        tile.zero_row(&mut decls, i);
        let _ = writeln!(taps, "            let hy{i} = ih{i} + dh;");
        let _ = writeln!(taps, "            let wx{i} = iw{i} + dw;");
        let _ =
            writeln!(taps, "            let ok{i} = hy{i} >= 0 && hy{i} <= ih_max && wx{i} >= 0 && wx{i} <= iw_max;");
        let _ = writeln!(
            taps,
            "            let xo{i} = ((xb{i} + u32(clamp(hy{i}, 0, ih_max))) * params.in_w + u32(clamp(wx{i}, 0, iw_max))) * x_step;"
        );
        let zero = if vec4_in { "vec4<f32>(0.0)" } else { "0.0" };
        let _ = writeln!(body, "                let xv{i} = select({zero}, in_x[xo{i} + ci], ok{i});");
    }
    // With vec4 input, the four channels of a vec4 in a loop (the driver's compile time grows
    // fast with the size of the loop body).
    let indent = if vec4_in { "                    " } else { "                " };
    if vec4_in {
        let _ = writeln!(body, "                for (var j = 0u; j < 4u; j = j + 1u) {{");
        for i in 0..rows {
            let _ = writeln!(body, "{indent}let xs{i} = vec4<f32>(xv{i}[j]);");
        }
    } else {
        for i in 0..rows {
            let _ = writeln!(body, "{indent}let xs{i} = vec4<f32>(xv{i});");
        }
    }
    for v in 0..vcols {
        let _ = writeln!(body, "{indent}let b{v} = filt[fi + bc{v}];");
    }
    let _ = writeln!(body, "{indent}fi = fi + cout4;");
    tile.fma(&mut body, indent, "xs");
    if vec4_in {
        let _ = writeln!(body, "                }}");
    }
    let stores = tile.stores(&TileStore {
        first: "p0",
        rows_end: "params.pixels",
        width: "cout4",
        base: "",
        store: "store_out",
    });
    let parts = [
        ("XTYPE", if vec4_in { "vec4<f32>" } else { "f32" }),
        ("XWIDTH", if vec4_in { "4u" } else { "1u" }),
        ("TAPS", taps.trim_end()),
    ];
    tile.instantiate(wgsl::CONV2D_SG, &parts, [&decls, &body, &stores], output)
}

/// The subgroup kernel when it applies (on 8-wide subgroups): one group, Cout a multiple of 4,
/// and the epilogue (if any) fits.
fn conv2d_sg_lowering(
    g: &crate::runtime::cpu::conv::ConvGeom,
    epilogue: Option<&Epilogue>,
) -> Option<Result<GpuLowering>> {
    if g.patch_c != g.in_c || !g.out_c.is_multiple_of(4) || g.out_c == 0 || g.in_c == 0 {
        return None;
    }
    let pixels = g.batch * g.out_h * g.out_w;
    let vec4_in = g.in_c.is_multiple_of(4);
    // At most 8: 16 runs a little faster but takes the driver seconds to compile.
    let rows = match pixels {
        4096.. => 8,
        1024.. => 4,
        _ => 2,
    };
    let vcols = if g.out_c >= 64 { 2 } else { 1 };
    let out = vec![g.batch, g.out_h, g.out_w, g.out_c];
    let output = output_code(epilogue, &out, 3, true)?;
    Some((|| {
        let input = if vec4_in { "vec4" } else { "scalar" };
        let key = format!("nn conv2d sg f32 {rows}x{vcols} {input} {}", output.key());
        let wgsl = cached_wgsl(key, || Ok(conv2d_sg_wgsl(rows, vcols, vec4_in, &output.code())))?;
        let groups = pixels.div_ceil(64 * rows) * (g.out_c / 4).div_ceil(8 * vcols);
        f32_kernel(wgsl, conv_words(g, pixels)?, groups * WG as usize, out)
    })())
}

/// The convolution geometry as the uniform words the subgroup `Conv2D` kernel and both
/// convolution gradient kernels share: sizes, strides, dilations, padding and output size,
/// then `last` (each kernel's own last word).
pub(crate) fn conv_words(g: &ConvGeom, last: usize) -> Result<Vec<u32>> {
    let mut fields = vec![g.in_h, g.in_w, g.in_c, g.k_h, g.k_w, g.out_c];
    fields.extend(window_fields(g));
    fields.push(last);
    words(&fields)
}

/// The part of the geometry every convolution kernel's uniforms hold in this order: strides,
/// dilations and pads (rows, then columns), then the output height and width.
fn window_fields(g: &ConvGeom) -> [usize; 8] {
    let [s, d, p] = [g.stride, g.dilation, g.pad];
    [s[0], s[1], d[0], d[1], p[0], p[1], g.out_h, g.out_w]
}

/// The conv2d lowering (`Ok(None)`: the epilogue does not fit the output).
fn conv2d_lowering(
    xs: &[usize],
    fs: &[usize],
    (s, d, p): ([usize; 4], [usize; 4], Padding),
    epilogue: Option<&Epilogue>,
) -> Result<Option<GpuLowering>> {
    let g = conv_geometry(xs, fs, s, d, p)?;
    word(xs.iter().product())?;
    word(fs.iter().product())?;
    // The subgroup kernel walks the whole receptive field in one dispatch: kh * (2 + kw * (2 +
    // its channel loop: 6 trips per vec4 of Cin, or 1 per channel read as scalars)).
    let sg_trips = g.k_h.saturating_mul(2 + g.k_w.saturating_mul(2 + 2 * g.in_c));
    if super::depthwise_gpu::fits(&g) {
        return super::depthwise_gpu::lowering(&g, epilogue);
    }
    let kernels = kernels();
    if kernels.variant == KernelVariant::Sg8 && sg_trips + OVERHEAD_TRIPS <= MAX_LOOP_TRIPS {
        if let Some(lowering) = conv2d_sg_lowering(&g, epilogue) {
            return lowering.map(Some);
        }
    }
    let rb = matches!(kernels.variant, KernelVariant::RegBlock | KernelVariant::Coop);
    if rb && super::conv_rb::fits(&g) {
        return super::conv_rb::lowering(&kernels, &g, epilogue);
    }
    let groups = g.in_c / g.patch_c;
    let cout_g = g.out_c / groups;
    let quads = cout_g.div_ceil(4);
    let out = vec![g.batch, g.out_h, g.out_w, g.out_c];
    let invocations = g.batch * g.out_h * g.out_w * groups * quads;
    word(invocations)?;
    let mut fields = vec![g.in_h, g.in_w, g.in_c, g.k_h, g.k_w, g.patch_c, g.out_c, cout_g];
    fields.extend(window_fields(&g));
    fields.extend([quads, groups]);
    let uniforms = words(&fields)?;
    let Some(output) = output_code(epilogue, &out, 3, false) else { return Ok(None) };
    let wgsl = cached_wgsl(format!("nn conv2d f32 {}", output.key()), || Ok(conv2d_wgsl(&output.code())))?;
    // Dispatches over slices of the taps and input channels: 2 trips per tap, 5 per channel
    // (the partial quad's loop over its channels included).
    let taps = g.k_h * g.k_w;
    let ci_slice = g.patch_c.clamp(1, 512);
    let taps_slice = ((MAX_LOOP_TRIPS - OVERHEAD_TRIPS) / (2 + 5 * ci_slice)).max(1);
    let (tap_slices, ci_slices) = (taps.div_ceil(taps_slice).max(1), g.patch_c.div_ceil(ci_slice).max(1));
    let slices = tap_slices * ci_slices;
    let leaves = epilogue.map_or(0, Epilogue::leaf_count);
    let mut p = Passes::new(DType::F32, out.clone());
    for s in 0..slices {
        let (ts, cs) = (s / ci_slices, s % ci_slices);
        let flags = u32::from(s > 0) | (u32::from(s + 1 < slices) << 1);
        let mut u = uniforms.clone();
        u.extend([
            flags,
            word(ts * taps_slice)?,
            word(((ts + 1) * taps_slice).min(taps))?,
            word(cs * ci_slice)?,
            word(((cs + 1) * ci_slice).min(g.patch_c))?,
        ]);
        if slices == 1 {
            return f32_kernel(wgsl, u, invocations, out).map(Some);
        }
        p.passes.push(Pass {
            wgsl: wgsl.into(),
            uniforms: u,
            invocations: invocations as u64,
            workgroup_size: WG,
            inputs: (0..2 + leaves).map(PassBuf::Input).collect(),
            output: PassBuf::Out,
        });
    }
    word(out.iter().product())?;
    Ok(Some(p.lowering()))
}
