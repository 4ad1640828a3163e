// TEMPLATE: the last pass of SparseSoftmaxCrossEntropyWithLogits over long rows (more classes than
// one thread may walk in the loop budget, src/ops/reduce/passes.rs), with the rows' maxima (NaN
// skipped) and sums of exp(x - max) of the float32 [batch, classes] logits computed by
// reduce_tree.wgsl. With s = logits - max, it writes the backprop exp(s) / sum - one_hot(label)
// (grad == 1, one thread per element, output [batch, classes]) or the loss log(sum) - s[label]
// (grad == 0, one thread per row, output [batch]), as the CPU kernel. A label outside
// [0, classes) raises the error flag (shaders/error_flag.wgsl, appended after this template),
// which fails the run with TF's InvalidArgument; the row's values are NaN. Instantiated by
// `sparse_xent_rows_wgsl` (src/ops/losses/gpu.rs), which prepends prelude.wgsl, replaces
// WORKGROUP_SIZE and appends the error flag snippet.

const WG_SIZE: u32 = WORKGROUP_SIZE;

struct Params {
    count: u32,
    classes: u32,
    grad: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<storage, read> row_max: array<f32>;
@group(0) @binding(4) var<storage, read> row_sum: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG_SIZE);
    if (i >= params.count) {
        return;
    }
    let row = select(i, i / params.classes, params.grad != 0u);
    let label = labels[row];
    let valid = label >= 0 && u32(label) < params.classes;
    let first = params.grad == 0u || i % params.classes == 0u;
    if (!valid && first) {
        raise_label_error(label, params.classes);
    }
    let m = row_max[row];
    let sum = row_sum[row];
    if (params.grad != 0u) {
        let j = i % params.classes;
        let p = exp_tf(logits[i] - m) / sum - select(0.0, 1.0, i32(j) == label);
        out[i] = select(nan_f32(), p, valid);
        return;
    }
    if (!valid) {
        out[row] = nan_f32();
        return;
    }
    out[row] = log_tf(sum) - (logits[row * params.classes + u32(label)] - m);
}
