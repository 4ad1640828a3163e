// TEMPLATE: the gather pass of MaxPoolGrad on NHWC float32 for large windows or many windows
// covering an input position (max_pool_grad.wgsl rescans every covering window in one thread):
// one thread per input element (n, ih, iw, c) adds, over the windows that cover (ih, iw) in
// row-major window order (the CPU kernel's order), the window's gradient if the window's max
// (found by max_pool_argmax.wgsl: pairs of the max's f32 bits and its position ih * in_w + iw,
// or 0xffffffff for a window without valid cells) is its own position. The covering windows
// form a rectangle of at most cov_h x cov_w; one dispatch covers its cells k in [k_lo, k_hi)
// (row-major, cov_w a row), within the loop budget (src/ops/reduce/passes.rs), and with
// `accumulate` set adds to the sum the earlier dispatches stored in out. Instantiated by
// `template_wgsl` (src/ops/kernel.rs), which prepends prelude.wgsl and replaces WORKGROUP_SIZE.

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
    accumulate: u32,
    k_lo: u32,
    k_hi: u32,
    cov_w: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> arg: array<u32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

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
    let own = ih * params.in_w + iw;
    var acc = 0.0;
    if (params.accumulate != 0u) {
        acc = out[i];
    }
    for (var k = params.k_lo; k < params.k_hi; k = k + 1u) {
        let oh = ohs.x + k / params.cov_w;
        let ow = ows.x + k % params.cov_w;
        if (oh >= ohs.y) {
            break;
        }
        if (ow >= ows.y) {
            continue;
        }
        let o = ((n * params.out_h + oh) * params.out_w + ow) * params.chan + c;
        if (arg[2u * o + 1u] == own) {
            acc = acc + dy[o];
        }
    }
    out[i] = acc;
}
