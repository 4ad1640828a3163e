// TEMPLATE: MaxPoolGrad on NHWC float32, one thread per input element (n, ih, iw, c), in gather
// form (no atomics on floats): for every window that covers (ih, iw), in row-major window order
// (the CPU kernel's order, so both add the same terms in the same order), the thread finds the
// window's max and takes the window's gradient if the max is its own position. The max is the
// first of the largest values in scan order, or the first NaN (the forward pool propagates NaN).
// Padded cells take no part. orig_output (binding 2) is bound but not read: its shape is checked
// on the host. Instantiated by `nn_wgsl` (src/ops/nn/gpu.rs), which prepends prelude.wgsl and
// replaces WORKGROUP_SIZE.

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
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> in_x: array<f32>;
@group(0) @binding(2) var<storage, read> orig_out: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

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
    let image = n * params.in_h;
    let ohs = covering(ih, params.stride_h, params.pad_h, params.win_h, params.out_h);
    let ows = covering(iw, params.stride_w, params.pad_w, params.win_w, params.out_w);
    var acc = 0.0;
    for (var oh = ohs.x; oh < ohs.y; oh = oh + 1u) {
        let rows = span(oh, params.stride_h, params.pad_h, params.win_h, params.in_h);
        for (var ow = ows.x; ow < ows.y; ow = ow + 1u) {
            let cols = span(ow, params.stride_w, params.pad_w, params.win_w, params.in_w);
            var best = 0.0;
            var best_at = vec2<u32>(rows.x, cols.x);
            var found = false;
            for (var h = rows.x; h < rows.y; h = h + 1u) {
                for (var w = cols.x; w < cols.y; w = w + 1u) {
                    let v = in_x[((image + h) * params.in_w + w) * params.chan + c];
                    if (!found || (!is_nan(best) && (is_nan(v) || v > best))) {
                        best = v;
                        best_at = vec2<u32>(h, w);
                        found = true;
                    }
                }
            }
            if (best_at.x == ih && best_at.y == iw) {
                acc = acc + dy[((n * params.out_h + oh) * params.out_w + ow) * params.chan + c];
            }
        }
    }
    out[i] = acc;
}
