// TEMPLATE: batched matrix product C[b] = op(A[b]) * op(B[b]), float32, tiled in workgroup memory.
// Instantiated by `matmul_wgsl` (src/ops/linalg/gpu.rs), which prepends prelude.wgsl and replaces
// OUTPUT with the output binding and `store_out(index, value)`, which stores a result (through a
// fused epilogue, src/ops/fused/wgsl.rs, or as it is).
//
// Each workgroup of 64 threads computes a 32x32 tile of one output matrix; thread (tx, ty) of the
// 8x8 grid computes the 4x4 outputs at rows ty*4.., cols tx*4... The K dimension is walked in
// slices of 16: the 32x16 slice of op(A) and the 16x32 slice of op(B) are staged in workgroup
// memory, then every thread accumulates its 4x4 block from them.
//
// The dispatch has exactly 64 threads per tile, so a whole workgroup is either in range or not;
// the range check uses the workgroup id (uniform), which keeps the barriers in uniform control.
//
// Long k is split over dispatches (src/ops/linalg/gpu.rs, to keep within the loop budget): one
// dispatch covers k in [k_lo, k_hi) (k_lo a multiple of TK). With `trans` bit 2 it adds the
// output's value (the earlier dispatches' sum) to its own; with bit 3 it stores the raw sum (not
// the last dispatch), else it stores through `store_out` (the epilogue, applied once). The
// staging and the 4x4 block are unrolled: the k loop makes 17 trips per slice of TK.
//
// MATMUL_PARAMS is the uniforms and batch walk the matmul templates share (matmul_batch.wgsl):
// batch dimensions broadcast like the elementwise template.

const WG_SIZE: u32 = 64u;
const TILE: u32 = 32u;
const TK: u32 = 16u;

MATMUL_PARAMS

@group(0) @binding(1) var<storage, read> in_a: array<f32>;
@group(0) @binding(2) var<storage, read> in_b: array<f32>;
OUTPUT

var<workgroup> tile_a: array<f32, 512>; // [TILE rows][TK]
var<workgroup> tile_b: array<f32, 512>; // [TK][TILE cols]

// op(A)[row, kk] of the matrix starting at `base`, 0 outside the matrix.
fn load_a(base: u32, row: u32, kk: u32) -> f32 {
    if (row >= params.m || kk >= params.k) {
        return 0.0;
    }
    if ((params.trans & 1u) != 0u) {
        return in_a[base + kk * params.m + row];
    }
    return in_a[base + row * params.k + kk];
}

// op(B)[kk, col] of the matrix starting at `base`, 0 outside the matrix.
fn load_b(base: u32, kk: u32, col: u32) -> f32 {
    if (kk >= params.k || col >= params.n) {
        return 0.0;
    }
    if ((params.trans & 2u) != 0u) {
        return in_b[base + col * params.k + kk];
    }
    return in_b[base + kk * params.n + col];
}

@compute @workgroup_size(WG_SIZE)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // The workgroup's linear id, folded like `linear_index`.
    let group = wid.x + wid.y * nwg.x;
    if (group >= params.count / WG_SIZE) {
        return;
    }
    let tiles_m = (params.m + TILE - 1u) / TILE;
    let tiles_n = (params.n + TILE - 1u) / TILE;
    let tile_n = group % tiles_n;
    let tile_m = (group / tiles_n) % tiles_m;
    let batch = group / (tiles_n * tiles_m);

    // Matrix offsets of this batch in A and B.
    let mats = operand_matrices(batch);
    let base_a = mats.x * params.m * params.k;
    let base_b = mats.y * params.k * params.n;

    let tx = lid % 8u;
    let ty = lid / 8u;
    let row0 = tile_m * TILE;
    let col0 = tile_n * TILE;
    var c0 = vec4<f32>(0.0);
    var c1 = vec4<f32>(0.0);
    var c2 = vec4<f32>(0.0);
    var c3 = vec4<f32>(0.0);

    for (var k0 = params.k_lo; k0 < params.k_hi; k0 = k0 + TK) {
        // Stage the slices: 512 elements each, 8 per thread.
        stage(base_a, base_b, row0, col0, k0, lid);
        stage(base_a, base_b, row0, col0, k0, lid + WG_SIZE);
        stage(base_a, base_b, row0, col0, k0, lid + 2u * WG_SIZE);
        stage(base_a, base_b, row0, col0, k0, lid + 3u * WG_SIZE);
        stage(base_a, base_b, row0, col0, k0, lid + 4u * WG_SIZE);
        stage(base_a, base_b, row0, col0, k0, lid + 5u * WG_SIZE);
        stage(base_a, base_b, row0, col0, k0, lid + 6u * WG_SIZE);
        stage(base_a, base_b, row0, col0, k0, lid + 7u * WG_SIZE);
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk = kk + 1u) {
            let ob = kk * TILE + tx * 4u;
            let b = vec4<f32>(tile_b[ob], tile_b[ob + 1u], tile_b[ob + 2u], tile_b[ob + 3u]);
            let oa = ty * 4u * TK + kk;
            c0 = c0 + tile_a[oa] * b;
            c1 = c1 + tile_a[oa + TK] * b;
            c2 = c2 + tile_a[oa + 2u * TK] * b;
            c3 = c3 + tile_a[oa + 3u * TK] * b;
        }
        workgroupBarrier();
    }

    let base_c = batch * params.m * params.n;
    let row = row0 + ty * 4u;
    let col = col0 + tx * 4u;
    emit_row(base_c, row, col, c0);
    emit_row(base_c, row + 1u, col, c1);
    emit_row(base_c, row + 2u, col, c2);
    emit_row(base_c, row + 3u, col, c3);
}

// Element `idx` of op(A)'s and op(B)'s slices at k0.
fn stage(base_a: u32, base_b: u32, row0: u32, col0: u32, k0: u32, idx: u32) {
    tile_a[idx] = load_a(base_a, row0 + idx / TK, k0 + idx % TK);
    tile_b[idx] = load_b(base_b, k0 + idx / TILE, col0 + idx % TILE);
}

// Stores the 4 results of `row` from column `col` (those inside the matrix).
fn emit_row(base_c: u32, row: u32, col: u32, v: vec4<f32>) {
    if (row >= params.m) {
        return;
    }
    for (var j = 0u; j < 4u; j = j + 1u) {
        if (col + j < params.n) {
            emit(base_c + row * params.n + col + j, v[j]);
        }
    }
}

// Stores one result of this k split (see the header).
fn emit(idx: u32, v: f32) {
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
