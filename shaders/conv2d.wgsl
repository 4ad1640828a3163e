// TEMPLATE: Conv2D on NHWC float32 input with a [KH, KW, Cin/groups, Cout] filter, as an implicit
// GEMM: each thread computes 4 consecutive output channels of one group for one output pixel,
// looping over the receptive field (KH * KW * Cin/groups) with the im2col coordinates computed on
// the fly; padding reads as zero. Instantiated by `conv2d_wgsl` (src/ops/nn/conv_gpu.rs), which
// prepends prelude.wgsl and replaces WORKGROUP_SIZE and OUTPUT (the output binding and
// `store_out(index, value)`, as in matmul.wgsl).
//
// A long receptive field is split over dispatches (src/ops/nn/conv_gpu.rs, to keep within the loop
// budget): one covers the taps (kh * k_w + kw) in [tap_lo, tap_hi) and the input channels in
// [ci_lo, ci_hi). With `flags` bit 0 it adds the output's value (the earlier dispatches' sum) to
// its own; with bit 1 it stores the raw sum (not the last dispatch), else it stores through
// `store_out` (the epilogue, applied once).
//
// Thread i: pixel = i / (groups * quads), then group and quad (4 channels) within the pixel, so
// neighbouring threads share the pixel's input and read neighbouring filter columns. The
// accumulators start at +0.0 and only add, so a zero sum is +0.0 as in TF's CPU kernel.

const WG_SIZE: u32 = WORKGROUP_SIZE;

struct Params {
    count: u32,
    in_h: u32,
    in_w: u32,
    in_c: u32,
    k_h: u32,
    k_w: u32,
    patch_c: u32,
    out_c: u32,
    cout_g: u32,
    stride_h: u32,
    stride_w: u32,
    dil_h: u32,
    dil_w: u32,
    pad_h: u32,
    pad_w: u32,
    out_h: u32,
    out_w: u32,
    quads: u32,
    groups: u32,
    flags: u32,
    tap_lo: u32,
    tap_hi: u32,
    ci_lo: u32,
    ci_hi: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> in_x: array<f32>;
@group(0) @binding(2) var<storage, read> filt: array<f32>;
OUTPUT

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG_SIZE);
    if (i >= params.count) {
        return;
    }
    let per_pixel = params.groups * params.quads;
    let pixel = i / per_pixel;
    let within = i % per_pixel;
    let grp = within / params.quads;
    let c0 = (within % params.quads) * 4u;
    // Channels this thread writes: 4, or fewer in a group's last quad.
    let n_valid = min(4u, params.cout_g - c0);
    let ow = pixel % params.out_w;
    let oh = (pixel / params.out_w) % params.out_h;
    let n = pixel / (params.out_w * params.out_h);
    let in_c0 = grp * params.patch_c;
    let f_col = grp * params.cout_g + c0;

    var acc = vec4<f32>(0.0, 0.0, 0.0, 0.0);
    for (var t = params.tap_lo; t < params.tap_hi; t = t + 1u) {
        let kh = t / params.k_w;
        let kw = t % params.k_w;
        let ih = i32(oh * params.stride_h + kh * params.dil_h) - i32(params.pad_h);
        let iw = i32(ow * params.stride_w + kw * params.dil_w) - i32(params.pad_w);
        // A tap in the padding reads zeros (loaded clamped, then selected away) rather than
        // being skipped: zero times a NaN or infinite weight is NaN, as on the CPU and in TF.
        let inside = ih >= 0 && ih < i32(params.in_h) && iw >= 0 && iw < i32(params.in_w);
        let ihc = u32(clamp(ih, 0, i32(params.in_h) - 1));
        let iwc = u32(clamp(iw, 0, i32(params.in_w) - 1));
        let x_base = ((n * params.in_h + ihc) * params.in_w + iwc) * params.in_c + in_c0;
        var f_idx = ((kh * params.k_w + kw) * params.patch_c + params.ci_lo) * params.out_c + f_col;
        if (n_valid == 4u) {
            for (var ci = params.ci_lo; ci < params.ci_hi; ci = ci + 1u) {
                let w = vec4<f32>(filt[f_idx], filt[f_idx + 1u], filt[f_idx + 2u], filt[f_idx + 3u]);
                acc = acc + select(0.0, in_x[x_base + ci], inside) * w;
                f_idx = f_idx + params.out_c;
            }
        } else {
            for (var ci = params.ci_lo; ci < params.ci_hi; ci = ci + 1u) {
                var w = vec4<f32>(0.0, 0.0, 0.0, 0.0);
                for (var k = 0u; k < n_valid; k = k + 1u) {
                    w[k] = filt[f_idx + k];
                }
                acc = acc + select(0.0, in_x[x_base + ci], inside) * w;
                f_idx = f_idx + params.out_c;
            }
        }
    }
    let o = pixel * params.out_c + f_col;
    for (var k = 0u; k < n_valid; k = k + 1u) {
        var v = acc[k];
        if ((params.flags & 1u) != 0u) {
            v = v + out[o + k];
        }
        if ((params.flags & 2u) != 0u) {
            out[o + k] = v;
        } else {
            store_out(o + k, v);
        }
    }
}
