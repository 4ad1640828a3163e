// TEMPLATE: SparseSoftmaxCrossEntropyWithLogits on float32 [batch, classes] logits and int32 class
// indices [batch], one thread per row. With s = logits - max(logits), it writes the loss
// log(sum(exp(s))) - s[label] of the row (grad == 0, output [batch]) or the backprop
// exp(s) / sum(exp(s)) - one_hot(label) (grad == 1, output [batch, classes]), as the CPU kernel.
// A label outside [0, classes) raises the error flag (shaders/error_flag.wgsl, appended after
// this template), which fails the run with TF's InvalidArgument; the row's values are NaN.
// Instantiated by `sparse_xent_wgsl` (src/ops/losses.rs), which prepends prelude.wgsl, replaces
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
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = linear_index(gid, nwg, WG_SIZE);
    if (row >= params.count) {
        return;
    }
    let base = row * params.classes;
    let label = labels[row];
    let valid = label >= 0 && u32(label) < params.classes;
    if (!valid) {
        raise_label_error(label, params.classes);
    }
    var m = -inf_f32();
    for (var j = 0u; j < params.classes; j = j + 1u) {
        let v = logits[base + j];
        m = select(m, v, v > m);
    }
    var sum = 0.0;
    for (var j = 0u; j < params.classes; j = j + 1u) {
        sum = sum + exp_tf(logits[base + j] - m);
    }
    if (params.grad != 0u) {
        for (var j = 0u; j < params.classes; j = j + 1u) {
            let p = exp_tf(logits[base + j] - m) / sum - select(0.0, 1.0, i32(j) == label);
            out[base + j] = select(nan_f32(), p, valid);
        }
        return;
    }
    if (!valid) {
        out[row] = nan_f32();
        return;
    }
    out[row] = log_tf(sum) - (logits[base + u32(label)] - m);
}
