// TEMPLATE: a binary elementwise op with numpy broadcasting, up to rank 8.
// Instantiated by `binary_wgsl` (src/runtime/gpu/shaders.rs), which prepends prelude.wgsl and
// replaces IN_TYPE, OUT_TYPE, WORKGROUP_SIZE and OP_EXPR (an expression of `a` and `b`).
//
// Shapes are right-aligned to 8 dimensions: out_dims holds the output's dimensions (leading ones
// padded with 1) and a_strides / b_strides each input's element strides, 0 where it broadcasts.
// flags bit 0 (bit 1): input a (b) has the output's shape, so its index is the output's.

alias InT = IN_TYPE;
alias OutT = OUT_TYPE;
const WG_SIZE: u32 = WORKGROUP_SIZE;
const MAX_RANK: u32 = 8u;

struct Params {
    count: u32,
    rank: u32,
    flags: u32,
    _pad: u32,
    out_dims: array<vec4<u32>, 2>,
    a_strides: array<vec4<u32>, 2>,
    b_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> in_a: array<InT>;
@group(0) @binding(2) var<storage, read> in_b: array<InT>;
@group(0) @binding(3) var<storage, read_write> out: array<OutT>;

fn op(a: InT, b: InT) -> OutT {
    return OutT(OP_EXPR);
}

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG_SIZE);
    if (i >= params.count) {
        return;
    }
    var ia = i;
    var ib = i;
    if ((params.flags & 3u) != 3u) {
        var rem = i;
        var oa = 0u;
        var ob = 0u;
        var d = MAX_RANK;
        let first = MAX_RANK - params.rank;
        // Innermost dimension first; once `rem` is 0 every remaining coordinate is 0.
        while (d > first && rem != 0u) {
            d = d - 1u;
            let dim = params.out_dims[d / 4u][d % 4u];
            let coord = rem % dim;
            rem = rem / dim;
            oa = oa + coord * params.a_strides[d / 4u][d % 4u];
            ob = ob + coord * params.b_strides[d / 4u][d % 4u];
        }
        if ((params.flags & 1u) == 0u) {
            ia = oa;
        }
        if ((params.flags & 2u) == 0u) {
            ib = ob;
        }
    }
    out[i] = op(in_a[ia], in_b[ib]);
}
