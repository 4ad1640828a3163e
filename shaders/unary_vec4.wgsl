// TEMPLATE: a unary elementwise op, four elements per thread through vec4 loads and stores.
// Instantiated by `unary_vec4_wgsl` (src/runtime/gpu/shaders.rs), which prepends prelude.wgsl
// and replaces IN_TYPE, OUT_TYPE, WORKGROUP_SIZE, the walk's line and OP_EXPR (an expression
// of the scalar `a`, applied per lane).
//
// The walk over the vec4s (`vec4_loop`) is a grid-stride loop (`count` threads run, thread t
// handling vec4s t, t + count, ... below `n4`, the tensor's vec4s, so a large tensor takes a
// bounded grid; the lowering keeps the trips within the loop budget) or, on CPU drivers,
// where the loop ran slower (`variant::grid_threads`), one vec4 per thread, `count` = `n4`.

alias InT = IN_TYPE;
alias OutT = OUT_TYPE;
const WG_SIZE: u32 = WORKGROUP_SIZE;

struct Params {
    count: u32,
    n4: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> in_a: array<vec4<InT>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<OutT>>;

fn op(a: InT) -> OutT {
    return OutT(OP_EXPR);
}

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG_SIZE);
    if (i >= params.count) {
        return;
    }
    GRID_LOOP {
        let a = in_a[j];
        out[j] = vec4<OutT>(op(a.x), op(a.y), op(a.z), op(a.w));
    }
}
