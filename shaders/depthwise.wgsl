// TEMPLATE: depthwise Conv2D (one group per input channel, `DepthwiseConv2dNative` as wgflow
// builds it: a Conv2D whose filter is [KH, KW, 1, C * M]), NHWC float32, with strides,
// dilations and padding. Instantiated by `depthwise_wgsl` (src/ops/nn/depthwise_gpu.rs), which
// prepends prelude.wgsl and fills XTYPE and X_QUAD (vec4 input loads when the multiplier M is 1
// and C a multiple of 4, else four scalar loads) and OUTPUT (the output binding and
// `store_out(index, vec4 value)`).
//
// Thread i computes output channels 4q..4q+3 (q = i % (Cout / 4)) of output pixel i / (Cout / 4):
// channel o reads input channel o / M, and the filter's four channels are one vec4 of each tap's
// row. Neighbouring threads read neighbouring channels of the same pixel. Taps in the padding
// read zeros (times the weight: a NaN weight gives NaN, as on the CPU). Loop trips: the taps,
// which the lowering keeps within the budget.

const WG_SIZE: u32 = 64u;

struct Params {
    count: u32,
    in_h: u32,
    in_w: u32,
    in_c: u32,
    k_h: u32,
    k_w: u32,
    out_c: u32,
    mult: u32,
    stride_h: u32,
    stride_w: u32,
    dil_h: u32,
    dil_w: u32,
    pad_h: u32,
    pad_w: u32,
    out_h: u32,
    out_w: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> in_x: array<XTYPE>;
@group(0) @binding(2) var<storage, read> filt: array<vec4<f32>>;
OUTPUT

// Input channels o / M .. (o + 3) / M at input element `base` (the pixel's first channel).
fn x_quad(base: u32, o: u32) -> vec4<f32> {
    X_QUAD
}

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG_SIZE);
    if (i >= params.count) {
        return;
    }
    let quads = params.out_c / 4u;
    let q = i % quads;
    let pixel = i / quads;
    let ow = pixel % params.out_w;
    let t = pixel / params.out_w;
    let oh = t % params.out_h;
    let n = t / params.out_h;
    let o = q * 4u;
    var acc = vec4<f32>(0.0);
    for (var tap = 0u; tap < params.k_h * params.k_w; tap = tap + 1u) {
        let ih = i32(oh * params.stride_h + (tap / params.k_w) * params.dil_h) - i32(params.pad_h);
        let iw = i32(ow * params.stride_w + (tap % params.k_w) * params.dil_w) - i32(params.pad_w);
        let inside = ih >= 0 && ih < i32(params.in_h) && iw >= 0 && iw < i32(params.in_w);
        let ihc = u32(clamp(ih, 0, i32(params.in_h) - 1));
        let iwc = u32(clamp(iw, 0, i32(params.in_w) - 1));
        let base = ((n * params.in_h + ihc) * params.in_w + iwc) * params.in_c;
        let x = select(vec4<f32>(0.0), x_quad(base, o), inside);
        acc = fma(x, filt[tap * quads + q], acc);
    }
    store_out(i, acc);
}
