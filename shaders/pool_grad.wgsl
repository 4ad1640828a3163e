// TEMPLATE: MaxPoolGrad and AvgPoolGrad on NHWC float32, one thread per input element
// (n, ih, iw, c), in gather form (no atomics on floats), over the windows that cover (ih, iw) in
// row-major window order (the CPU kernel's order, so both add the same terms in the same order).
// Instantiated by `pool_grad_wgsl` (src/ops/nn_grad/gpu.rs), which replaces EXTRA_PARAMS,
// BINDINGS and WINDOWS with the max or avg code, then prepends prelude.wgsl and replaces
// WORKGROUP_SIZE.
//
// Max: for every covering window the thread finds the window's max and takes the window's
// gradient if the max is its own position. The max is the first of the largest values in scan
// order, or the first NaN (the forward pool propagates NaN). Padded cells take no part.
// orig_output (binding 2) is bound but not read: its shape is checked on the host.
//
// Avg: the sum of each covering window's gradient divided by its number of valid (unpadded)
// cells. The covering windows form a rectangle of at most cov_h x cov_w (host-computed); one
// dispatch covers its cells k in [k_lo, k_hi) (row-major, cov_w a row), so that a thread keeps to
// the loop budget (src/ops/reduce/passes.rs), and with `accumulate` set adds to the sum the
// earlier dispatches stored in out: the terms are added in window order whatever the slices.

const WG_SIZE: u32 = WORKGROUP_SIZE;

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
    EXTRA_PARAMS
}

@group(0) @binding(0) var<uniform> params: Params;
BINDINGS

// The pool window helpers `span` and `covering` (shaders/pool_windows.wgsl), put here by
// `pool_wgsl` (src/ops/nn/gpu.rs).
WINDOW_HELPERS

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG_SIZE);
    if (i >= params.count) {
        return;
    }
    let at = nhwc(i, params.in_h, params.in_w, params.chan);
    let n = at.x;
    let ih = at.y;
    let iw = at.z;
    let c = at.w;
    let ohs = covering(ih, params.stride_h, params.pad_h, params.win_h, params.out_h);
    let ows = covering(iw, params.stride_w, params.pad_w, params.win_w, params.out_w);
    var acc = 0.0;
    WINDOWS
    out[i] = acc;
}
