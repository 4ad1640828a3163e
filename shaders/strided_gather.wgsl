// TEMPLATE: a strided gather of any 4-byte element type (copied as u32 bits), one thread per
// output element, up to rank 8: Transpose, StridedSlice and Slice. Instantiated by
// `strided_gather_wgsl` (src/ops/array/gpu.rs), which prepends prelude.wgsl (no
// placeholders beyond this marker line).
//
// The output's element with coordinates c (over dims, right-aligned in 8 slots) reads the
// input at base + sum(c[d] * steps[d]); a step may be negative (a reversed slice).

const WG_SIZE: u32 = 64u;
const MAX_RANK: u32 = 8u;

struct Params {
    count: u32,
    rank: u32,
    base: u32,
    _pad0: u32,
    dims: array<vec4<u32>, 2>,
    steps: array<vec4<i32>, 2>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG_SIZE);
    if (i >= params.count) {
        return;
    }
    var rem = i;
    var off = i32(params.base);
    var d = MAX_RANK;
    while (d > MAX_RANK - params.rank) {
        d = d - 1u;
        let dim = params.dims[d / 4u][d % 4u];
        off = off + i32(rem % dim) * params.steps[d / 4u][d % 4u];
        rem = rem / dim;
    }
    out[i] = x[u32(off)];
}
