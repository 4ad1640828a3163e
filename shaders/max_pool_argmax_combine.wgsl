// TEMPLATE: a combining pass of MaxPoolGrad's window maxima (max_pool_argmax.wgsl): the input
// holds [groups_in, outputs] pairs (the f32 bits of a max and its position, 0xffffffff for
// none), thread i folds, in order, the `fan` groups (fan * (i / outputs) ...) of output
// i % outputs into the pair out[2i], out[2i + 1], within the loop budget
// (src/ops/reduce/passes.rs). A later group wins only with a NaN (when the max so far is not one)
// or a larger value, so the pick is the first NaN, else the first of the largest values, in
// scan order. Instantiated by `template_wgsl` (src/ops/kernel.rs), which prepends prelude.wgsl and
// replaces WORKGROUP_SIZE.

const WG_SIZE: u32 = WORKGROUP_SIZE;
const NONE: u32 = 0xffffffffu;

struct Params {
    count: u32,
    outputs: u32,
    groups_in: u32,
    fan: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> pairs: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG_SIZE);
    if (i >= params.count) {
        return;
    }
    let g = i / params.outputs;
    let o = i % params.outputs;
    let lo = min(g * params.fan, params.groups_in);
    let hi = min(lo + params.fan, params.groups_in);
    var best = 0.0;
    var best_at = NONE;
    for (var j = lo; j < hi; j = j + 1u) {
        let p = j * params.outputs + o;
        let at = pairs[2u * p + 1u];
        let v = bitcast<f32>(pairs[2u * p]);
        if (at != NONE && (best_at == NONE || (!is_nan(best) && (is_nan(v) || v > best)))) {
            best = v;
            best_at = at;
        }
    }
    out[2u * i] = bitcast<u32>(best);
    out[2u * i + 1u] = best_at;
}
