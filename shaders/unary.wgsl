// TEMPLATE: a unary elementwise op. Instantiated by `unary_wgsl` (src/runtime/gpu/shaders.rs),
// which prepends prelude.wgsl and replaces IN_TYPE, OUT_TYPE, WORKGROUP_SIZE and OP_EXPR
// (an expression of `a`).

alias InT = IN_TYPE;
alias OutT = OUT_TYPE;
const WG_SIZE: u32 = WORKGROUP_SIZE;

struct Params {
    count: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> in_a: array<InT>;
@group(0) @binding(2) var<storage, read_write> out: array<OutT>;

fn op(a: InT) -> OutT {
    return OutT(OP_EXPR);
}

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG_SIZE);
    if (i >= params.count) {
        return;
    }
    out[i] = op(in_a[i]);
}
