// TEMPLATE: Conv2DBackpropFilter on NHWC float32, one group: the gradient of Conv2D with respect to
// its filter, one thread per filter element (kh, kw, ci, co): the sum over the batch and the
// output pixels (oh, ow) of x[n, ih, iw, ci] * dy[n, oh, ow, co], with
// ih = oh * stride_h + kh * dil_h - pad_h (padding reads as zero, so padded taps are skipped).
// Neighbouring threads (consecutive co) read the same input element and neighbouring dy values.
// Instantiated by `nn_wgsl` (src/ops/nn/gpu.rs), which prepends prelude.wgsl and replaces
// WORKGROUP_SIZE. The accumulator starts at +0.0 and only adds, as the CPU kernel.

const WG_SIZE: u32 = WORKGROUP_SIZE;

struct Params {
    count: u32,
    in_h: u32,
    in_w: u32,
    in_c: u32,
    k_h: u32,
    k_w: u32,
    out_c: u32,
    stride_h: u32,
    stride_w: u32,
    dil_h: u32,
    dil_w: u32,
    pad_h: u32,
    pad_w: u32,
    out_h: u32,
    out_w: u32,
    batch: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG_SIZE);
    if (i >= params.count) {
        return;
    }
    let co = i % params.out_c;
    let ci = (i / params.out_c) % params.in_c;
    let kw = (i / (params.out_c * params.in_c)) % params.k_w;
    let kh = i / (params.out_c * params.in_c * params.k_w);
    var acc = 0.0;
    for (var n = 0u; n < params.batch; n = n + 1u) {
        for (var oh = 0u; oh < params.out_h; oh = oh + 1u) {
            let ih = i32(oh * params.stride_h + kh * params.dil_h) - i32(params.pad_h);
            if (ih < 0 || ih >= i32(params.in_h)) {
                continue;
            }
            let x_row = (n * params.in_h + u32(ih)) * params.in_w;
            let d_row = (n * params.out_h + oh) * params.out_w;
            for (var ow = 0u; ow < params.out_w; ow = ow + 1u) {
                let iw = i32(ow * params.stride_w + kw * params.dil_w) - i32(params.pad_w);
                if (iw < 0 || iw >= i32(params.in_w)) {
                    continue;
                }
                acc = acc + x[(x_row + u32(iw)) * params.in_c + ci] * dy[(d_row + ow) * params.out_c + co];
            }
        }
    }
    out[i] = acc;
}
