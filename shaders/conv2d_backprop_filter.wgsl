// TEMPLATE: Conv2DBackpropFilter on NHWC float32, any number of groups: the gradient of Conv2D
// with respect to its filter, the sum over the batch and the output pixels (oh, ow) of
// x[n, ih, iw, group * patch_c + ci] * dy[n, oh, ow, co] for each filter element (kh, kw, ci, co)
// (co's group is co / per_group), with
// ih = oh * stride_h + kh * dil_h - pad_h (padding reads as zero, so padded taps are skipped).
// Instantiated by `template_wgsl` (src/ops/kernel.rs), which prepends prelude.wgsl and replaces
// WORKGROUP_SIZE. The accumulator starts at +0.0 and only adds, as the CPU kernel.
//
// The batch's output pixels (batch * out_h * out_w, in row-major order) are split into slices of
// `slice` pixels (within the loop budget, src/ops/reduce/passes.rs): thread i sums slice i / F for
// filter element i % F (F the filter's size) and writes out[i], so the output is [slices, F]
// partial sums, reduced over the slices by another pass when there is more than one.
// Neighbouring threads (consecutive co) read the same input element and neighbouring dy values.

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
    slice: u32,
    patch_c: u32,
    per_group: u32,
    _p0: u32,
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
    let filter_size = params.k_h * params.k_w * params.patch_c * params.out_c;
    let f = i % filter_size;
    let s = i / filter_size;
    let co = f % params.out_c;
    let ci = (co / params.per_group) * params.patch_c + (f / params.out_c) % params.patch_c;
    let kw = (f / (params.out_c * params.patch_c)) % params.k_w;
    let kh = f / (params.out_c * params.patch_c * params.k_w);
    let pixels = params.batch * params.out_h * params.out_w;
    let first = s * params.slice;
    let end = min(first + params.slice, pixels);
    // The pixel's coordinates are stepped along (integer division is slow on some drivers).
    var ow = first % params.out_w;
    var oh = (first / params.out_w) % params.out_h;
    var n = first / (params.out_w * params.out_h);
    var acc = 0.0;
    for (var p = first; p < end; p = p + 1u) {
        let ih = i32(oh * params.stride_h + kh * params.dil_h) - i32(params.pad_h);
        let iw = i32(ow * params.stride_w + kw * params.dil_w) - i32(params.pad_w);
        if (ih >= 0 && ih < i32(params.in_h) && iw >= 0 && iw < i32(params.in_w)) {
            let xi = ((n * params.in_h + u32(ih)) * params.in_w + u32(iw)) * params.in_c + ci;
            acc = acc + x[xi] * dy[p * params.out_c + co];
        }
        ow = ow + 1u;
        if (ow == params.out_w) {
            ow = 0u;
            oh = oh + 1u;
            if (oh == params.out_h) {
                oh = 0u;
                n = n + 1u;
            }
        }
    }
    out[i] = acc;
}
