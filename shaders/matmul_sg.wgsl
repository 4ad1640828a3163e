// TEMPLATE: batched float32 matmul C[b] = op(A[b]) * op(B[b]) for k and n multiples of 4, with
// subgroups of exactly 8 invocations. Instantiated by `matmul_sg_wgsl` (src/ops/linalg/gpu.rs),
// which prepends prelude.wgsl and generates the unrolled parts for the transposes it is given:
// A_ELEM (vec4<f32>, or f32 when A is stored transposed), ROWS (rows per lane), VCOLS (vec4
// columns per lane), DECLS, BODY and STORES, and OUTPUT (the output binding and
// `store_out(index, vec4 value)`, as in matmul.wgsl).
//
// Why this shape: on a CPU driver (lavapipe) every storage load is done lane by lane, so loads
// cost far more than arithmetic. Each subgroup computes a (8 * ROWS) x (32 * VCOLS) block: lane l
// owns rows row0 + l + 8i and loads them from A as vec4s over k (four scalars when A is stored
// transposed); for each k it holds VCOLS vec4s of the row of op(B) (the subgroup's 32 * VCOLS
// columns, split between the lanes; loaded as vec4s over k and transposed in registers when B is
// stored transposed), and `subgroupBroadcast` hands every lane the whole row from registers. The accumulators are named
// vec4 variables (no private arrays). Loads out of range are clamped (always in bounds) and the
// stores skipped, so every lane stays active for the broadcasts.
//
// Batch dimensions broadcast as in matmul.wgsl (MATMUL_PARAMS: matmul_batch.wgsl), and long k
// is split over dispatches as there (k_lo, k_hi multiples of 4; `trans` bits 2 and 3): 5 loop
// trips per vec4 of k.

const WG_SIZE: u32 = 64u;

MATMUL_PARAMS

@group(0) @binding(1) var<storage, read> in_a: array<A_ELEM>;
@group(0) @binding(2) var<storage, read> in_b: array<vec4<f32>>;
OUTPUT

@compute @workgroup_size(WG_SIZE)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(subgroup_id) sg: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let group = wid.x + wid.y * nwg.x;
    if (group >= params.count / WG_SIZE) {
        return;
    }
    let n4 = params.n / 4u;
    let k4 = params.k / 4u;
    let tiles_n = (n4 + 8u * VCOLS - 1u) / (8u * VCOLS);
    let tiles_m = (params.m + 64u * ROWS - 1u) / (64u * ROWS);
    let tile_n = group % tiles_n;
    let tile_m = (group / tiles_n) % tiles_m;
    let batch = group / (tiles_n * tiles_m);

    let mats = operand_matrices(batch);
    // Matrix offsets in floats (whole vec4s: k and n are multiples of 4).
    let mat_a = mats.x * params.m * params.k;
    let mat_b = mats.y * params.k * params.n;
    let base_c = batch * params.m * n4;
    let row0 = tile_m * 64u * ROWS + sg * 8u * ROWS + lane;
    let col0 = tile_n * 8u * VCOLS;
    let last_row = params.m - 1u;
    let last_col = n4 - 1u;

DECLS
    for (var kk = params.k_lo / 4u; kk < params.k_hi / 4u; kk = kk + 1u) {
BODY
    }
STORES
}

// Stores one vec4 result of this k split (see matmul.wgsl).
fn emit(idx: u32, v: vec4<f32>) {
    var s = v;
    if ((params.trans & 4u) != 0u) {
        s = s + out[idx];
    }
    if ((params.trans & 8u) != 0u) {
        out[idx] = s;
    } else {
        store_out(idx, s);
    }
}
