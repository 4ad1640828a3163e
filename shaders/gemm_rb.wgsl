// TEMPLATE: the register-blocked GEMM core that matmul (matmul_rb.wgsl) and conv2d
// (conv2d_rb.wgsl, an implicit GEMM) share. Instantiated by `gemm_rb_wgsl` (src/ops/rb_tile.rs),
// which prepends prelude.wgsl, puts the op's HEADER (its Params, bindings, OUTPUT and the
// functions below) first, and generates the tile's constants and unrolled parts.
//
// A workgroup of THREADS computes a BM x BN block of one output matrix (params.m x params.n,
// both counted in floats; n a multiple of 4); thread (tx, ty) owns a TM x TN block of it (TM
// rows at ty * TM, TN / 4 vec4 columns at tx * TN / 4), kept in named vec4 accumulators.
// k in [params.k_lo, params.k_hi) is walked in slices of BK. op(A)'s BM x BK slice and op(B)'s
// BK x BN slice are staged in workgroup memory, both k-major so that a thread reads its rows and
// columns as vec4s; there are two copies of each (double buffering): while the threads compute
// from one, they hold the next slice's global loads in registers and then write them to the
// other, so one barrier per slice suffices.
//
// The op supplies (HEADER):
// - `params` with count (invocations), m, n, k_lo, k_hi;
// - `setup(batch)`: sets the private offsets of output matrix `batch`;
// - `load_a(u, v)`: four values of op(A). Either (row, k): op(A)[row, k..k+4] (A stored with k
//   contiguous), or (k, row): op(A)[row..row+4, k] (rows contiguous): the generator knows which
//   (LOAD_A / STORE_A). Zero outside the matrix or past k_hi;
// - `load_b(u, v)`: likewise (k, col): op(B)[k, col..col+4], or (col, k): op(B)[k..k+4, col];
// - `emit(row, q, v)`: stores the vec4 of row `row` at vec4 column `q`.
//
// The range check uses the workgroup id (uniform), so every barrier is in uniform control flow.

HEADER

const THREADS: u32 = THREADS_N;
const BK: u32 = BK_N;
const AQ: u32 = BM_N / 4u;
const BQ: u32 = BN_N / 4u;

// [2][BK][BM / 4] and [2][BK][BN / 4]: the two copies of each slice.
var<workgroup> sa: array<vec4<f32>, SA_LEN>;
var<workgroup> sb: array<vec4<f32>, SB_LEN>;

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
    let tiles_m = (params.m + BM_N - 1u) / BM_N;
    let tiles_n = (params.n + BN_N - 1u) / BN_N;
    let tile_n = group % tiles_n;
    let tile_m = (group / tiles_n) % tiles_m;
    setup(group / (tiles_n * tiles_m));
    let row0 = tile_m * BM_N;
    let col0 = tile_n * BN_N;
    let tx = lid % (BN_N / TN_N);
    let ty = lid / (BN_N / TN_N);
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
        let cur = (s & 1u) * BK;
        let more = s + 1u < slices;
        if (more) {
            let k0 = params.k_lo + (s + 1u) * BK;
LOADS
        }
BODY
        if (more) {
            let nxt = BK - cur;
STORES_TO_SHARED
        }
        workgroupBarrier();
    }
RESULTS
}
