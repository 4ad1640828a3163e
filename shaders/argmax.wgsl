// TEMPLATE: ArgMax of float32 along one axis, one thread per output element (a serial scan
// of the axis): the index of the first largest value, a NaN counting as the largest (as TF's
// CPU kernel returns a NaN's index). Instantiated by `argmax_wgsl`
// (src/ops/reduce/argmax.rs), which prepends prelude.wgsl (no placeholders beyond this
// marker line). The input is [outer, axis, inner]; the output [outer, inner] of i32.

const WG_SIZE: u32 = 64u;

struct Params {
    count: u32,
    axis: u32,
    inner: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<i32>;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG_SIZE);
    if (i >= params.count) {
        return;
    }
    let o = i / params.inner;
    let r = i % params.inner;
    let first = o * params.axis * params.inner + r;
    var best = x[first];
    var at = 0u;
    for (var k = 1u; k < params.axis; k = k + 1u) {
        let v = x[first + k * params.inner];
        if (!is_nan(best) && (v > best || is_nan(v))) {
            best = v;
            at = k;
        }
    }
    out[i] = i32(at);
}
