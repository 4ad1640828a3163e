// TEMPLATE: one pass of MaxPool / AvgPool on NHWC float32 input for windows too large for one
// thread (pool.wgsl walks a whole window): the window's cells (rows, columns and win_c channels,
// in row-major order) are split into slices of `slice` cells (within the loop budget,
// src/ops/reduce/passes.rs), and thread i handles slice i / outputs of output i % outputs, writing
// out[i]: the max of its valid cells (-inf when none; a NaN wins and stays), or their +0.0-based
// sum divided by the window's number of valid cells. The host reduces the [slices, outputs]
// partials with a max or a sum. Instantiated by `template_wgsl` (src/ops/kernel.rs), which prepends
// prelude.wgsl and replaces WORKGROUP_SIZE.

const WG_SIZE: u32 = WORKGROUP_SIZE;

struct Params {
    count: u32,
    in_h: u32,
    in_w: u32,
    in_c: u32,
    win_h: u32,
    win_w: u32,
    win_c: u32,
    stride_h: u32,
    stride_w: u32,
    pad_h: u32,
    pad_w: u32,
    out_h: u32,
    out_w: u32,
    out_c: u32,
    is_max: u32,
    slice: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> in_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// The pool window helpers `span` and `covering` (shaders/pool_windows.wgsl), put here by
// `pool_wgsl` (src/ops/nn/gpu.rs).
WINDOW_HELPERS

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = linear_index(gid, nwg, WG_SIZE);
    if (t >= params.count) {
        return;
    }
    let slices = (params.win_h * params.win_w * params.win_c + params.slice - 1u) / params.slice;
    let total = params.count / slices;
    let i = t % total;
    let s = t / total;
    let at = nhwc(i, params.out_h, params.out_w, params.out_c);
    let n = at.x;
    let c = at.w;
    let rows = span(at.y, params.stride_h, params.pad_h, params.win_h, params.in_h);
    let cols = span(at.z, params.stride_w, params.pad_w, params.win_w, params.in_w);
    // The window's cells in this slice, as offsets from the window's first row and column.
    let cells = (rows.y - rows.x) * (cols.y - cols.x) * params.win_c;
    let first = s * params.slice;
    let end = min(first + params.slice, cells);
    let is_max = params.is_max != 0u;
    var acc = select(0.0, -inf_f32(), is_max);
    for (var q = first; q < end; q = q + 1u) {
        let k = q % params.win_c;
        let cell = q / params.win_c;
        let iw = cols.x + cell % (cols.y - cols.x);
        let ih = rows.x + cell / (cols.y - cols.x);
        let v = in_x[((n * params.in_h + ih) * params.in_w + iw) * params.in_c + c * params.win_c + k];
        if (is_max) {
            if (is_nan(v) || v > acc) {
                acc = v;
            }
        } else {
            acc = acc + v;
        }
    }
    if (!is_max) {
        acc = acc / f32((rows.y - rows.x) * (cols.y - cols.x));
    }
    out[t] = acc;
}
