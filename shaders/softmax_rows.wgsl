// TEMPLATE: float32 softmax along the last axis, one workgroup per row. Instantiated by
// `softmax_rows_wgsl` (src/ops/nn/softmax_gpu.rs), which prepends prelude.wgsl and replaces
// LANES, ROW_MAX, ROW_SUM, BUILTINS and ROW_HELPERS.
//
// LANES declares the load type V (f32, or vec4<f32> where the row length is a multiple of 4)
// and three helpers over a load's lanes: `max_lanes` (NaN skipped, as on the CPU: it then
// spreads through the sum), `exp_lanes` (exp(v - m)) and `sum_lanes`. ROW_MAX and ROW_SUM
// combine the threads' `acc` into thread 0's: a tree in workgroup memory, or subgroup shuffles
// then the subgroups' values (the combines of shaders/reduce_tree.wgsl, from
// `reduce::passes::row_combines`), with BUILTINS the subgroup builtins they read, and
// ROW_HELPERS with row_combine.wgsl (their workgroup memory and `broadcast`).
//
// Workgroup g handles row g (of count / WG_SIZE rows, `n` loads each). Its threads walk the row
// WG_SIZE loads apart, so neighbouring threads read neighbouring loads, three times: the max,
// the sum of exp(x - max), then out = exp(x - max) / sum, as the CPU. Every workgroup either
// works or returns as a whole, so the barriers stay in uniform control flow. Loop trips per
// invocation: three walks of ceil(n / WG_SIZE) loads and the two combines, which the lowering
// keeps within MAX_LOOP_TRIPS.

const WG_SIZE: u32 = 64u;

LANES

struct Params {
    count: u32,
    // The loads per row.
    n: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<V>;
@group(0) @binding(2) var<storage, read_write> out: array<V>;

ROW_HELPERS

@compute @workgroup_size(WG_SIZE)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
BUILTINS
) {
    let row = wid.x + wid.y * nwg.x;
    if (row >= params.count / WG_SIZE) {
        return;
    }
    let base = row * params.n;
    var acc = -inf_f32();
    for (var j = lid; j < params.n; j = j + WG_SIZE) {
        acc = max_lanes(acc, x[base + j]);
    }
ROW_MAX
    let m = broadcast(acc, lid);
    acc = 0.0;
    for (var j = lid; j < params.n; j = j + WG_SIZE) {
        acc = acc + sum_lanes(exp_lanes(x[base + j], m));
    }
ROW_SUM
    let sum = broadcast(acc, lid);
    for (var j = lid; j < params.n; j = j + WG_SIZE) {
        out[base + j] = exp_lanes(x[base + j], m) / sum;
    }
}
