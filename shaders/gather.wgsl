// TEMPLATE: GatherV2 (batch_dims 0) of any 4-byte element type (copied as u32 bits) by int32
// indices, one thread per output element. Instantiated by `gather_wgsl`
// (src/ops/array/gather.rs), which prepends prelude.wgsl and appends the error flag
// (shaders/error_flag.wgsl, binding 4); no placeholders beyond this marker line.
//
// The params are [outer, axis_dim, inner] and the output [outer, n_indices, inner]: output
// element (o, p, k) is params[(o * axis_dim + indices[p]) * inner + k]. An index outside
// [0, axis_dim) raises the index error (the run fails with InvalidArgument) and writes 0.

const WG_SIZE: u32 = 64u;

struct Params {
    count: u32,
    inner: u32,
    n_indices: u32,
    axis_dim: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> indices: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG_SIZE);
    if (i >= params.count) {
        return;
    }
    let k = i % params.inner;
    let row = i / params.inner;
    let p = row % params.n_indices;
    let o = row / params.n_indices;
    let index = indices[p];
    if (index < 0 || u32(index) >= params.axis_dim) {
        raise_index_error(index, params.axis_dim);
        out[i] = 0u;
        return;
    }
    out[i] = x[(o * params.axis_dim + u32(index)) * params.inner + k];
}
