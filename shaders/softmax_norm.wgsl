// TEMPLATE: the last pass of a long-row softmax: out = exp(x - max) / sum, one thread per element,
// with the rows' maxima and sums of exponentials computed by reduce_tree.wgsl. Instantiated by
// `softmax_norm_wgsl` (src/ops/reduce/passes.rs), which prepends prelude.wgsl.
//
// The input is seen as [outer, n, inner] (n the softmax axis); element i is in row
// (i / (n * inner)) * inner + i % inner.

const WG_SIZE: u32 = 64u;

struct Params {
    count: u32,
    n: u32,
    inner: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> row_max: array<f32>;
@group(0) @binding(3) var<storage, read> row_sum: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG_SIZE);
    if (i >= params.count) {
        return;
    }
    let row = (i / (params.n * params.inner)) * params.inner + i % params.inner;
    out[i] = exp_tf(x[i] - row_max[row]) / row_sum[row];
}
