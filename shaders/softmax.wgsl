// TEMPLATE: float32 softmax along one axis, one thread per row. Instantiated by `softmax_wgsl`
// (src/ops/nn/gpu.rs), which prepends prelude.wgsl (no placeholders beyond this marker line).
//
// The input is seen as [outer, n, inner] (n the softmax axis); row t is outer index t / inner
// and inner index t % inner, its elements `inner` apart. Numerically stable like the CPU:
// exp(x - max) / sum(exp(x - max)), the max ignoring NaN (which then spreads through the sum).

const WG_SIZE: u32 = 64u;

struct Params {
    count: u32,
    n: u32,
    inner: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = linear_index(gid, nwg, WG_SIZE);
    if (t >= params.count) {
        return;
    }
    let inner = params.inner;
    let base = (t / inner) * params.n * inner + t % inner;
    var m = -inf_f32();
    for (var j = 0u; j < params.n; j = j + 1u) {
        let v = x[base + j * inner];
        m = select(m, v, v > m);
    }
    var sum = 0.0;
    for (var j = 0u; j < params.n; j = j + 1u) {
        let e = exp_tf(x[base + j * inner] - m);
        out[base + j * inner] = e;
        sum = sum + e;
    }
    for (var j = 0u; j < params.n; j = j + 1u) {
        out[base + j * inner] = out[base + j * inner] / sum;
    }
}
