// TEMPLATE: the softmax cross-entropy losses on float32 [batch, classes] logits, one thread per
// row: SoftmaxCrossEntropyWithLogits (dense labels of the logits' shape, LABEL_ELEM f32) and
// SparseSoftmaxCrossEntropyWithLogits (int32 class indices [batch], LABEL_ELEM i32). With
// s = logits - max(logits) (the max ignoring NaN, which then spreads through the sum), it writes
// the loss of the row (grad == 0, output [batch]) or the backprop exp(s) / sum(exp(s)) - labels
// (grad == 1, output [batch, classes]), as the CPU kernel. The dense loss is
// sum(labels * (log(sum(exp(s))) - s)), the sparse one log(sum(exp(s))) - s[label]; a sparse
// label outside [0, classes) raises the error flag (shaders/error_flag.wgsl, appended after this
// template), which fails the run with TF's InvalidArgument, and the row's values are NaN.
// Instantiated by `xent_wgsl` (src/ops/losses/gpu.rs), which replaces LABEL_ELEM, LABEL_CHECK,
// BACKPROP and LOSS with the dense or sparse code, then prepends prelude.wgsl and replaces
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
@group(0) @binding(2) var<storage, read> labels: array<LABEL_ELEM>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = linear_index(gid, nwg, WG_SIZE);
    if (row >= params.count) {
        return;
    }
    let base = row * params.classes;
    LABEL_CHECK
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
            out[base + j] = BACKPROP;
        }
        return;
    }
    LOSS
}
