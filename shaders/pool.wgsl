// TEMPLATE: MaxPool / AvgPool on NHWC float32 input. Instantiated by `pool_wgsl`
// (src/ops/nn/gpu.rs) through `template_wgsl` (src/ops/kernel.rs), which prepends prelude.wgsl
// and replaces WORKGROUP_SIZE, WINDOW_HELPERS, LANES and GRID_LOOP.
//
// LANES declares the element type V (f32, or vec4<f32>: four neighbouring channels per load,
// where the window takes one channel and the channel count is a multiple of 4) and its lane
// type U (u32 or vec4<u32>); channel counts in the uniforms are in V units. GRID_LOOP is either
// a grid-stride loop (thread t computes outputs t, t + count, ... below `total`, so a large
// output takes a bounded grid; the lowering keeps the trips within the loop budget) or one
// output per thread (on CPU drivers, see `variant::grid_threads`).
//
// Output channel c reads input channels c * win_c .. c * win_c + win_c (win_c is 1 except for
// TF's depthwise max pool, whose spatial window is 1x1). Padded cells take no part: the max
// starts at -inf and a NaN wins and stays (as TF's CPU kernel), the average divides the +0.0-based
// sum by the number of valid cells.

const WG_SIZE: u32 = WORKGROUP_SIZE;

LANES

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
    // The outputs (in V units).
    total: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> in_x: array<V>;
@group(0) @binding(2) var<storage, read_write> out: array<V>;

// The pool window helpers `span` and `covering` (shaders/pool_windows.wgsl), put here by
// `pool_wgsl` (src/ops/nn/gpu.rs).
WINDOW_HELPERS

// The max of `acc` and `v` per lane, a NaN winning and staying.
fn max_nan_wins(acc: V, v: V) -> V {
    let nan = (bitcast<U>(v) & U(0x7fffffffu)) > U(0x7f800000u);
    return select(acc, v, nan | (v > acc));
}

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = linear_index(gid, nwg, WG_SIZE);
    if (t >= params.count) {
        return;
    }
    GRID_LOOP {
        let at = nhwc(i, params.out_h, params.out_w, params.out_c);
        let n = at.x;
        let c = at.w;
        let rows = span(at.y, params.stride_h, params.pad_h, params.win_h, params.in_h);
        let cols = span(at.z, params.stride_w, params.pad_w, params.win_w, params.in_w);
        let is_max = params.is_max != 0u;
        var acc = V(select(0.0, -inf_f32(), is_max));
        for (var ih = rows.x; ih < rows.y; ih = ih + 1u) {
            for (var iw = cols.x; iw < cols.y; iw = iw + 1u) {
                let base = ((n * params.in_h + ih) * params.in_w + iw) * params.in_c + c * params.win_c;
                for (var k = 0u; k < params.win_c; k = k + 1u) {
                    let v = in_x[base + k];
                    if (is_max) {
                        acc = max_nan_wins(acc, v);
                    } else {
                        acc = acc + v;
                    }
                }
            }
        }
        if (!is_max) {
            acc = acc / f32((rows.y - rows.x) * (cols.y - cols.x));
        }
        out[i] = acc;
    }
}
