// TEMPLATE: a binary elementwise op on two inputs of the output's shape, four elements per
// thread through vec4 loads and stores. Instantiated by `binary_vec4_wgsl`
// (src/runtime/gpu/shaders.rs), which prepends prelude.wgsl and replaces IN_TYPE, OUT_TYPE,
// WORKGROUP_SIZE, the walk's line and OP_EXPR (an expression of scalars `a` and `b`, applied
// per lane so the results equal the scalar kernel's).
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
@group(0) @binding(2) var<storage, read> in_b: array<vec4<InT>>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<OutT>>;

fn op(a: InT, b: InT) -> OutT {
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
        let b = in_b[j];
        out[j] = vec4<OutT>(op(a.x, b.x), op(a.y, b.y), op(a.z, b.z), op(a.w, b.w));
    }
}
