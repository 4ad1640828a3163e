// TEMPLATE: the first pass of MaxPoolGrad on NHWC float32 for large windows (see
// max_pool_grad_sliced.wgsl): the max of each window and where it is. A window's valid cells
// (rows, then columns, one channel) are split into slices of `slice` cells, within the loop
// budget (src/ops/reduce/passes.rs); thread i handles slice i / outputs of window i % outputs and
// writes the pair out[2i], out[2i + 1]: the f32 bits of the slice's max and its position
// h * in_w + w, or 0xffffffff when the slice has no cells. The max is the first of the largest
// values in scan order, or the first NaN, as the CPU kernel picks it; the host combines the
// slices' pairs in order with max_pool_argmax_combine.wgsl, which keeps that choice.
// Instantiated by `template_wgsl` (src/ops/kernel.rs), which prepends prelude.wgsl and replaces
// WORKGROUP_SIZE.

const WG_SIZE: u32 = WORKGROUP_SIZE;
const NONE: u32 = 0xffffffffu;

struct Params {
    count: u32,
    in_h: u32,
    in_w: u32,
    chan: u32,
    win_h: u32,
    win_w: u32,
    stride_h: u32,
    stride_w: u32,
    pad_h: u32,
    pad_w: u32,
    out_h: u32,
    out_w: u32,
    outputs: u32,
    slice: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> in_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

// The pool window helpers `span` and `covering` (shaders/pool_windows.wgsl), put here by
// `pool_wgsl` (src/ops/nn/gpu.rs).
WINDOW_HELPERS

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG_SIZE);
    if (i >= params.count) {
        return;
    }
    let s = i / params.outputs;
    let o = i % params.outputs;
    let at = nhwc(o, params.out_h, params.out_w, params.chan);
    let n = at.x;
    let c = at.w;
    let rows = span(at.y, params.stride_h, params.pad_h, params.win_h, params.in_h);
    let cols = span(at.z, params.stride_w, params.pad_w, params.win_w, params.in_w);
    let width = cols.y - cols.x;
    let cells = (rows.y - rows.x) * width;
    let lo = min(s * params.slice, cells);
    let hi = min(lo + params.slice, cells);
    var best = 0.0;
    var best_at = NONE;
    for (var k = lo; k < hi; k = k + 1u) {
        let h = rows.x + k / width;
        let w = cols.x + k % width;
        let v = in_x[((n * params.in_h + h) * params.in_w + w) * params.chan + c];
        if (best_at == NONE || (!is_nan(best) && (is_nan(v) || v > best))) {
            best = v;
            best_at = h * params.in_w + w;
        }
    }
    out[2u * i] = bitcast<u32>(best);
    out[2u * i + 1u] = best_at;
}
