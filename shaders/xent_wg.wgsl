// TEMPLATE: the softmax cross-entropy losses on float32 [batch, classes] logits, one workgroup
// per row, for rows long enough to keep a workgroup busy: SoftmaxCrossEntropyWithLogits (dense
// labels of the logits' shape, LABEL_ELEM f32) and SparseSoftmaxCrossEntropyWithLogits (int32
// class indices [batch], LABEL_ELEM i32), with the results of xent.wgsl (one thread per row),
// which says what each writes. Instantiated by `xent_wg_wgsl` (src/ops/losses/gpu.rs), which
// replaces LABEL_ELEM, LABEL_CHECK (the label check, raising the error flag from thread 0),
// BACKPROP and LOSS with the dense or sparse code, ROW_MAX and ROW_SUM with the workgroup
// combines of `reduce::passes::row_combines` (a tree in workgroup memory, or subgroup
// shuffles), BUILTINS with the builtins they read and ROW_HELPERS with row_combine.wgsl (their
// workgroup memory and `broadcast`), then prepends prelude.wgsl.
//
// Workgroup g handles row g (of count / WG_SIZE rows): its threads walk the row WG_SIZE
// classes apart (neighbouring threads read neighbouring classes) for the max (NaN skipped,
// then spreading through the sum), the sum of exp(x - max), then the backprop, or the dense
// loss's terms (summed by a third combine) or the sparse loss (thread 0). Every workgroup
// either works or returns as a whole, and `grad` is uniform, so the barriers stay in uniform
// control flow. Loop trips per invocation: four walks of ceil(classes / WG_SIZE) and three
// combines, which the lowering keeps within MAX_LOOP_TRIPS.

const WG_SIZE: u32 = 64u;

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
    let base = row * params.classes;
    LABEL_CHECK
    var acc = -inf_f32();
    for (var j = lid; j < params.classes; j = j + WG_SIZE) {
        let v = logits[base + j];
        acc = select(acc, v, v > acc);
    }
ROW_MAX
    let m = broadcast(acc, lid);
    acc = 0.0;
    for (var j = lid; j < params.classes; j = j + WG_SIZE) {
        acc = acc + exp_tf(logits[base + j] - m);
    }
ROW_SUM
    let sum = broadcast(acc, lid);
    if (params.grad != 0u) {
        for (var j = lid; j < params.classes; j = j + WG_SIZE) {
            out[base + j] = BACKPROP;
        }
        return;
    }
    LOSS
}
