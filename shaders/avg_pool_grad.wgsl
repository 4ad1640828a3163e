// TEMPLATE: AvgPoolGrad on NHWC float32, one thread per input element (n, ih, iw, c), in gather
// form: the sum, over the windows that cover (ih, iw) in row-major window order, of the window's
// gradient divided by its number of valid (unpadded) cells, as the CPU kernel computes it.
// Instantiated by `nn_wgsl` (src/ops/nn/gpu.rs), which prepends prelude.wgsl and replaces
// WORKGROUP_SIZE.
//
// The windows that cover a position form a rectangle of at most cov_h x cov_w (host-computed);
// one dispatch covers its cells k in [k_lo, k_hi) (row-major, cov_w a row), so that a thread
// keeps to the loop budget (src/ops/gpu_passes.rs), and with `accumulate` set adds to the sum
// the earlier dispatches stored in out: the terms are added in window order whatever the slices.

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
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// The valid input range [lo, hi) of window `o` along one axis.
fn span(o: u32, stride: u32, pad: u32, window: u32, size: u32) -> vec2<u32> {
    let start = o * stride;
    let lo = min(select(start - pad, 0u, start < pad), size);
    let end = start + window;
    let hi = min(select(end - pad, 0u, end < pad), size);
    return vec2<u32>(lo, max(hi, lo));
}

// The windows [lo, hi) along one axis that cover input position `i`.
fn covering(i: u32, stride: u32, pad: u32, window: u32, out_size: u32) -> vec2<u32> {
    let t = i + pad;
    let lo = select(0u, (t - window) / stride + 1u, t >= window);
    let hi = min(t / stride + 1u, out_size);
    return vec2<u32>(min(lo, hi), hi);
}

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG_SIZE);
    if (i >= params.count) {
        return;
    }
    let c = i % params.chan;
    let iw = (i / params.chan) % params.in_w;
    let ih = (i / (params.chan * params.in_w)) % params.in_h;
    let n = i / (params.chan * params.in_w * params.in_h);
    let ohs = covering(ih, params.stride_h, params.pad_h, params.win_h, params.out_h);
    let ows = covering(iw, params.stride_w, params.pad_w, params.win_w, params.out_w);
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
        let rows = span(oh, params.stride_h, params.pad_h, params.win_h, params.in_h);
        let cols = span(ow, params.stride_w, params.pad_w, params.win_w, params.in_w);
        let count = (rows.y - rows.x) * (cols.y - cols.x);
        acc = acc + dy[((n * params.out_h + oh) * params.out_w + ow) * params.chan + c] / f32(count);
    }
    out[i] = acc;
}
