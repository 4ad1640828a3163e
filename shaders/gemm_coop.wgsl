// TEMPLATE: the GEMM core on cooperative matrices (tensor cores on NVIDIA, simdgroup matrices on
// Apple), for adapters with wgpu's EXPERIMENTAL_COOPERATIVE_MATRIX and a square S x S
// configuration accumulating in f32; matmul and conv2d supply the same HEADER as for gemm_rb.wgsl
// (matmul_rb.wgsl or conv2d_rb.wgsl: Params, bindings, setup, load_a, load_b, emit, with
// OUTPUT). Instantiated by `gemm_coop_wgsl` (src/ops/coop_tile.rs), which puts `enable
// wgpu_cooperative_matrix;` (and `enable f16;` for f16 inputs) first, then the prelude and the
// HEADER, and fills S (the tile side), ELEM (f32, or f16 with
// GpuOptions::allow_f16_matmul), LANES (the subgroup size), BK_N (k per slice: a multiple of S
// for which the threads' loads divide the slices), and the generated LOADS and STORES_TO_SHARED
// (each thread's share of the global vec4 loads and their scalar stores) and BODY (the slice's
// BK / S steps of coopLoad and coopMultiplyAdd).
//
// A workgroup is 4 subgroups, 2 x 2, computing a (4S) x (4S) block of C; each subgroup owns a
// 2S x 2S part of it as 2 x 2 accumulator tiles. k is walked in slices of BK: op(A)'s slice is
// staged k-major ([k][4S rows], which is column-major A for coopLoad), op(B)'s k-major ([k][4S
// columns], row-major B for coopLoadT), double-buffered as in gemm_rb.wgsl. At the end each
// subgroup stores its tiles to workgroup memory and every thread emits vec4s of the block
// through `emit` (bounds-checked, with the epilogue and k splits as matmul_rb.wgsl).
// Cooperative operations run in uniform control flow: the range check uses the workgroup id.

HEADER

const S: u32 = SIDE;
const BM: u32 = 4u * SIDE;
const BK: u32 = BK_N;
const THREADS: u32 = 4u * LANES;

// [2][BK][BM]: the two copies of op(A)'s and op(B)'s slices; C: [BM][BM], row-major.
var<workgroup> sa: array<ELEM, SA_LEN>;
var<workgroup> sb: array<ELEM, SA_LEN>;
var<workgroup> sc: array<f32, SC_LEN>;

@compute @workgroup_size(THREADS_N)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let group = wid.x + wid.y * nwg.x;
    if (group >= params.count / THREADS) {
        return;
    }
    let tiles_m = (params.m + BM - 1u) / BM;
    let tiles_n = (params.n + BM - 1u) / BM;
    let tile_n = group % tiles_n;
    let tile_m = (group / tiles_n) % tiles_m;
    setup(group / (tiles_n * tiles_m));
    let row0 = tile_m * BM;
    let col0 = tile_n * BM;
    // This thread's subgroup and its 2S x 2S part of the block.
    let sg = lid / LANES;
    let sr = (sg / 2u) * 2u * S;
    let sn = (sg % 2u) * 2u * S;
    var c00 = coop_matSIDExSIDE<f32, C>();
    var c01 = coop_matSIDExSIDE<f32, C>();
    var c10 = coop_matSIDExSIDE<f32, C>();
    var c11 = coop_matSIDExSIDE<f32, C>();
DECLS
    let slices = (params.k_hi - params.k_lo + BK - 1u) / BK;
    {
        let k0 = params.k_lo;
        let nxt = 0u;
LOADS
STORES_TO_SHARED
    }
    workgroupBarrier();
    for (var s = 0u; s < slices; s = s + 1u) {
        let cur = (s & 1u) * BK * BM;
        let more = s + 1u < slices;
        if (more) {
            let k0 = params.k_lo + (s + 1u) * BK;
LOADS
        }
BODY
        if (more) {
            let nxt = BK * BM - cur;
STORES_TO_SHARED
        }
        workgroupBarrier();
    }
    coopStoreT(c00, &sc[sr * BM + sn], BM);
    coopStoreT(c01, &sc[sr * BM + sn + S], BM);
    coopStoreT(c10, &sc[(sr + S) * BM + sn], BM);
    coopStoreT(c11, &sc[(sr + S) * BM + sn + S], BM);
    workgroupBarrier();
    for (var e = lid; e < BM * BM / 4u; e = e + THREADS) {
        let row = e / (BM / 4u);
        let q = e % (BM / 4u);
        let o = row * BM + q * 4u;
        if (row0 + row < params.m && col0 / 4u + q < params.n / 4u) {
            emit(row0 + row, col0 / 4u + q, vec4<f32>(sc[o], sc[o + 1u], sc[o + 2u], sc[o + 3u]));
        }
    }
}
