// TEMPLATE: Conv2DBackpropInput on NHWC float32, any number of groups: the gradient of Conv2D
// with respect to its input, one thread per input element (n, ih, iw, ci), in gather form (no
// atomics): it sums dy[n, oh, ow, co] * filter[kh, kw, ci % patch_c, co] over the taps (kh, kw)
// and output pixels (oh, ow) whose window reads (ih, iw), i.e. oh * stride_h + kh * dil_h -
// pad_h == ih (and alike for w), and over the output channels co of ci's group (ci / patch_c
// owns [group * per_group, (group + 1) * per_group)).
// Instantiated by `template_wgsl` (src/ops/kernel.rs), which prepends prelude.wgsl and replaces
// WORKGROUP_SIZE. The accumulator starts at +0.0 and only adds, as the CPU kernel.
//
// One dispatch covers the taps t = kh * k_w + kw in [tap_lo, tap_hi) and the output channels in
// [co_lo, co_hi) of the group's (counted from the group's first), so that a thread keeps to the loop budget (src/ops/reduce/passes.rs); with
// `accumulate` set it adds to the sum the earlier dispatches stored in out. The host splits
// the channels only for one tap per dispatch, so the terms are added in one order whatever
// the slices.

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
    accumulate: u32,
    tap_lo: u32,
    tap_hi: u32,
    co_lo: u32,
    co_hi: u32,
    patch_c: u32,
    per_group: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> filt: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// The output position whose window reads input position `i` through tap `k` along one axis, or
// `size` (out of range) when there is none.
fn source(i: u32, k: u32, stride: u32, dil: u32, pad: u32, size: u32) -> u32 {
    let t = i + pad;
    let kd = k * dil;
    if (t < kd || (t - kd) % stride != 0u) {
        return size;
    }
    return min((t - kd) / stride, size);
}

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG_SIZE);
    if (i >= params.count) {
        return;
    }
    let ci = i % params.in_c;
    let iw = (i / params.in_c) % params.in_w;
    let ih = (i / (params.in_c * params.in_w)) % params.in_h;
    let n = i / (params.in_c * params.in_w * params.in_h);
    let first_co = (ci / params.patch_c) * params.per_group;
    var acc = 0.0;
    if (params.accumulate != 0u) {
        acc = out[i];
    }
    for (var t = params.tap_lo; t < params.tap_hi; t = t + 1u) {
        let kh = t / params.k_w;
        let kw = t % params.k_w;
        let oh = source(ih, kh, params.stride_h, params.dil_h, params.pad_h, params.out_h);
        let ow = source(iw, kw, params.stride_w, params.dil_w, params.pad_w, params.out_w);
        if (oh >= params.out_h || ow >= params.out_w) {
            continue;
        }
        let d_base = ((n * params.out_h + oh) * params.out_w + ow) * params.out_c + first_co;
        let f_base = ((kh * params.k_w + kw) * params.patch_c + ci % params.patch_c) * params.out_c + first_co;
        for (var co = params.co_lo; co < params.co_hi; co = co + 1u) {
            acc = acc + dy[d_base + co] * filt[f_base + co];
        }
    }
    out[i] = acc;
}
