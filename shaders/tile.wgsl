// TEMPLATE: Tile of any 4-byte element type (copied as u32 bits), one thread per output
// element, up to rank 8. Instantiated by `tile_wgsl` (src/ops/array/tile.rs), which prepends
// prelude.wgsl (no placeholders beyond this marker line).
//
// out_dims and in_dims hold the output's and the input's dimensions, right-aligned in 8
// slots; output coordinate c along a dimension reads input coordinate c % in_dim.

const WG_SIZE: u32 = 64u;
const MAX_RANK: u32 = 8u;

struct Params {
    count: u32,
    rank: u32,
    _pad0: u32,
    _pad1: u32,
    out_dims: array<vec4<u32>, 2>,
    in_dims: array<vec4<u32>, 2>,
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
    var off = 0u;
    var stride = 1u;
    var d = MAX_RANK;
    while (d > MAX_RANK - params.rank) {
        d = d - 1u;
        let o = params.out_dims[d / 4u][d % 4u];
        let n = params.in_dims[d / 4u][d % 4u];
        off = off + ((rem % o) % n) * stride;
        rem = rem / o;
        stride = stride * n;
    }
    out[i] = x[off];
}
