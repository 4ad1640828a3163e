// What the workgroup-per-row kernels share (softmax_rows.wgsl, xent_wg.wgsl): the workgroup
// memory their combines use (`reduce::passes::row_combines`, the combines of
// reduce_tree.wgsl) and `broadcast`. `row_combines` puts it, without its comments, in place of
// each kernel's ROW_HELPERS line.

var<workgroup> part: array<f32, 64>;

// Thread 0's `acc` (the result of a combine) for every thread of the workgroup; called in
// uniform control flow.
fn broadcast(acc: f32, lid: u32) -> f32 {
    if (lid == 0u) {
        part[0] = acc;
    }
    workgroupBarrier();
    let v = part[0];
    workgroupBarrier();
    return v;
}
