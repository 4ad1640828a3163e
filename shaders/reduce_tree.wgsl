// TEMPLATE: one pass of a workgroup-tree reduction over any set of axes (Sum, Mean, Max, and
// softmax's row max and row sum of exponentials). Instantiated by `tree_wgsl`
// (src/ops/reduce/passes.rs), which prepends prelude.wgsl and replaces ELEM_TYPE (f32 or i32),
// REDUCE_INIT (the identity), REDUCE_COMBINE (an expression of `acc` and `v`), REDUCE_FINISH
// (an expression of `acc` and `n`, the number of reduced elements), AUX_BINDING and LOAD (the
// value of element `off` of output `o`: `x[off]`, or `exp_tf(x[off] - aux[o])` with the row
// maxima bound as `aux`), OUT_BINDING, and WORKGROUP_COMBINE with its BUILTINS: the tree below,
// or (where the adapter has subgroups, see `variant::subgroup_reductions`) a butterfly of
// `subgroupShuffleXor` within each subgroup, then thread 0 combining the subgroups' values. The
// butterfly applies the fold's own REDUCE_COMBINE, so Max keeps TF's NaN rule (`max_tf`), which
// `subgroupMax` does not promise.
//
// Each output's reduced elements are split into `chunks` blocks of WG_SIZE * per_thread; workgroup
// g reduces block g % chunks of output g / chunks: each thread combines per_thread elements (WG_SIZE
// apart, so neighbouring threads read neighbouring elements), then the workgroup combines its 64
// values as a tree in workgroup memory and thread 0 writes out[g]. With chunks > 1 the host runs
// another pass over the [outputs, chunks] partials; only the last pass applies REDUCE_FINISH
// (`finish`). Every workgroup either works or returns as a whole (the test uses the workgroup id),
// so the barriers stay in uniform control flow. Loop trips per invocation: per_thread times
// (red_rank + 2), plus the kept-axis walk and the 6 tree steps (or at most 6 shuffles and 16
// partials), within MAX_LOOP_TRIPS.

alias T = ELEM_TYPE;
const WG_SIZE: u32 = 64u;
const MAX_RANK: u32 = 8u;

struct Params {
    count: u32,
    kept_rank: u32,
    red_rank: u32,
    // The reduced elements per output in this pass.
    n: u32,
    chunks: u32,
    per_thread: u32,
    // 1 when this is the last pass (REDUCE_FINISH applies).
    finish: u32,
    // The reduced elements per output of the whole reduction (REDUCE_FINISH's `n`).
    total: u32,
    kept_dims: array<vec4<u32>, 2>,
    kept_strides: array<vec4<u32>, 2>,
    red_dims: array<vec4<u32>, 2>,
    red_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;
AUX_BINDING
@group(0) @binding(OUT_BINDING) var<storage, read_write> out: array<T>;

var<workgroup> part: array<T, 64>;

@compute @workgroup_size(WG_SIZE)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
BUILTINS
) {
    let group = wid.x + wid.y * nwg.x;
    if (group >= params.count / WG_SIZE) {
        return;
    }
    let o = group / params.chunks;
    let c = group % params.chunks;
    // Input offset of this output's first element.
    var rem = o;
    var base = 0u;
    var d = MAX_RANK;
    while (d > MAX_RANK - params.kept_rank) {
        d = d - 1u;
        let dim = params.kept_dims[d / 4u][d % 4u];
        base = base + (rem % dim) * params.kept_strides[d / 4u][d % 4u];
        rem = rem / dim;
    }
    var acc: T = REDUCE_INIT;
    let first = c * params.per_thread * WG_SIZE + lid;
    for (var t = 0u; t < params.per_thread; t = t + 1u) {
        let j = first + t * WG_SIZE;
        if (j < params.n) {
            var r = j;
            var off = base;
            var e = MAX_RANK;
            while (e > MAX_RANK - params.red_rank) {
                e = e - 1u;
                let dim = params.red_dims[e / 4u][e % 4u];
                off = off + (r % dim) * params.red_strides[e / 4u][e % 4u];
                r = r / dim;
            }
            let v = LOAD;
            acc = REDUCE_COMBINE;
        }
    }
WORKGROUP_COMBINE
    if (lid == 0u) {
        let n = params.total;
        if (params.finish != 0u) {
            out[group] = REDUCE_FINISH;
        } else {
            out[group] = acc;
        }
    }
}
