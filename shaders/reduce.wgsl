// TEMPLATE: a reduction over any set of axes (Sum, Mean, Max), one thread per output element.
// Instantiated by `reduce_wgsl` (src/ops/reduce/gpu.rs), which prepends prelude.wgsl and replaces
// ELEM_TYPE (f32 or i32), REDUCE_INIT (the identity), REDUCE_COMBINE (an expression of `acc` and
// `v`) and REDUCE_FINISH (an expression of `acc` and `n`, the number of reduced elements).
//
// The host merges adjacent axes of the same kind, then describes the kept axes (kept_dims, in
// output order, with their input strides) and the reduced axes (red_dims, red_strides), each
// right-aligned in 8 slots. A thread finds its input base from its output index, then walks the
// reduced elements in row-major order.

alias T = ELEM_TYPE;
const WG_SIZE: u32 = 64u;
const MAX_RANK: u32 = 8u;

struct Params {
    count: u32,
    kept_rank: u32,
    red_rank: u32,
    // The number of reduced elements per output.
    n: u32,
    kept_dims: array<vec4<u32>, 2>,
    kept_strides: array<vec4<u32>, 2>,
    red_dims: array<vec4<u32>, 2>,
    red_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read_write> out: array<T>;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG_SIZE);
    if (i >= params.count) {
        return;
    }
    // Input offset of this output's first element.
    var rem = i;
    var base = 0u;
    var d = MAX_RANK;
    while (d > MAX_RANK - params.kept_rank) {
        d = d - 1u;
        let dim = params.kept_dims[d / 4u][d % 4u];
        base = base + (rem % dim) * params.kept_strides[d / 4u][d % 4u];
        rem = rem / dim;
    }
    var acc: T = REDUCE_INIT;
    let n = params.n;
    for (var j = 0u; j < n; j = j + 1u) {
        var r = j;
        var off = base;
        var e = MAX_RANK;
        while (e > MAX_RANK - params.red_rank) {
            e = e - 1u;
            let dim = params.red_dims[e / 4u][e % 4u];
            off = off + (r % dim) * params.red_strides[e / 4u][e % 4u];
            r = r / dim;
        }
        let v = x[off];
        acc = REDUCE_COMBINE;
    }
    out[i] = REDUCE_FINISH;
}
