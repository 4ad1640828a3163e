// TEMPLATE: the last pass of SoftmaxCrossEntropyWithLogits over long rows (more classes than one
// thread may walk in the loop budget, src/ops/reduce/passes.rs), one thread per element of the
// float32 [batch, classes] logits, with the rows' maxima (NaN skipped) and sums of exp(x - max)
// computed by reduce_tree.wgsl. With s = logits - max, it writes the backprop
// exp(s) / sum - labels (grad == 1, the op's output) or the loss term labels * (log(sum) - s)
// (grad == 0, a temporary that a sum tree reduces to the loss of each row), as the CPU kernel.
// Instantiated by `template_wgsl` (src/ops/kernel.rs), which prepends prelude.wgsl and replaces
// WORKGROUP_SIZE.

const WG_SIZE: u32 = WORKGROUP_SIZE;

struct Params {
    count: u32,
    classes: u32,
    grad: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<f32>;
@group(0) @binding(3) var<storage, read> row_max: array<f32>;
@group(0) @binding(4) var<storage, read> row_sum: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG_SIZE);
    if (i >= params.count) {
        return;
    }
    let row = i / params.classes;
    let s = logits[i] - row_max[row];
    let sum = row_sum[row];
    if (params.grad != 0u) {
        out[i] = exp_tf(s) / sum - labels[i];
        return;
    }
    out[i] = labels[i] * (log_tf(sum) - s);
}
