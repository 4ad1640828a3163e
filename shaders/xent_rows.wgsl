// TEMPLATE: the last pass of the softmax cross-entropy losses over long rows (more classes than
// one thread may walk in the loop budget, src/ops/reduce/passes.rs), with the rows' maxima (NaN
// skipped) and sums of exp(x - max) of the float32 [batch, classes] logits computed by
// reduce_tree.wgsl: SoftmaxCrossEntropyWithLogits (dense labels of the logits' shape,
// LABEL_ELEM f32) and SparseSoftmaxCrossEntropyWithLogits (int32 class indices [batch],
// LABEL_ELEM i32). With s = logits - max, it writes the backprop exp(s) / sum - labels
// (grad == 1, one thread per element, output [batch, classes]) or, as the CPU kernel, the
// dense loss's terms labels * (log(sum) - s) (grad == 0, one thread per element, a temporary
// that a sum tree reduces to the loss of each row) or the sparse loss log(sum) - s[label]
// (grad == 0, one thread per row, output [batch]). A sparse label outside [0, classes) raises
// the error flag (shaders/error_flag.wgsl, appended after this template), which fails the run
// with TF's InvalidArgument; the row's values are NaN. Instantiated by `xent_rows_wgsl`
// (src/ops/losses/gpu.rs), which replaces LABEL_ELEM, LABEL_CHECK (the thread's row, and the
// sparse label check), BACKPROP and LOSS with the dense or sparse code, then prepends
// prelude.wgsl and replaces WORKGROUP_SIZE.

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
@group(0) @binding(3) var<storage, read> row_max: array<f32>;
@group(0) @binding(4) var<storage, read> row_sum: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG_SIZE);
    if (i >= params.count) {
        return;
    }
    LABEL_CHECK
    let m = row_max[row];
    let sum = row_sum[row];
    if (params.grad != 0u) {
        out[i] = BACKPROP;
        return;
    }
    LOSS
}
