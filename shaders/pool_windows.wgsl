// The index and window arithmetic the pool kernels share (pool.wgsl, pool_sliced.wgsl,
// pool_grad.wgsl, max_pool_argmax.wgsl, max_pool_grad_sliced.wgsl): `nhwc`, and the CPU
// kernels' `span` and `covering` (src/runtime/cpu/pool.rs, pool_grad.rs). `pool_wgsl`
// (src/ops/nn/gpu.rs) puts it in place of each kernel's WINDOW_HELPERS line.

// The coordinates (n, row, column, channel) of element `i` of an NHWC tensor of `h` rows, `w`
// columns and `c` channels.
fn nhwc(i: u32, h: u32, w: u32, c: u32) -> vec4<u32> {
    return vec4<u32>(i / (c * w * h), (i / (c * w)) % h, (i / c) % w, i % c);
}

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
