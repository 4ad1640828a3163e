// The uniforms and the batch walk that the matmul templates share (matmul.wgsl, matmul_sg.wgsl,
// matmul_rb.wgsl); `matmul_code` (src/ops/linalg/gpu.rs) puts it, without its comments, in
// place of each template's MATMUL_PARAMS line.
//
// Batch dimensions broadcast like the elementwise template: batch_dims holds the output's batch
// dimensions right-aligned in 8 slots (the last `rank` of them used), a_strides / b_strides each
// operand's batch strides in matrices (0 where it broadcasts). Long k is split over dispatches:
// one dispatch covers k in [k_lo, k_hi).

const MAX_RANK: u32 = 8u;

struct Params {
    count: u32,
    m: u32,
    n: u32,
    k: u32,
    // bit 0: A is stored transposed (k x m); bit 1: B is stored transposed (n x k); bits 2 and
    // 3: how a dispatch of a k split stores (see each template).
    trans: u32,
    rank: u32,
    k_lo: u32,
    k_hi: u32,
    batch_dims: array<vec4<u32>, 2>,
    a_strides: array<vec4<u32>, 2>,
    b_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> params: Params;

// The indices, in A and in B, of the operand matrices of output matrix `batch` (innermost batch
// dimension first).
fn operand_matrices(batch: u32) -> vec2<u32> {
    var rem = batch;
    var ma = 0u;
    var mb = 0u;
    var d = MAX_RANK;
    while (d > MAX_RANK - params.rank) {
        d = d - 1u;
        let dim = params.batch_dims[d / 4u][d % 4u];
        let coord = rem % dim;
        rem = rem / dim;
        ma = ma + coord * params.a_strides[d / 4u][d % 4u];
        mb = mb + coord * params.b_strides[d / 4u][d % 4u];
    }
    return vec2<u32>(ma, mb);
}
