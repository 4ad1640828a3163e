// TEMPLATE: batched matrix product C[b] = op(A[b]) * op(B[b]), float32, tiled in workgroup memory.
// Instantiated by `matmul_wgsl` (src/ops/gpu_util.rs), which prepends prelude.wgsl and replaces
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
// Batch dimensions broadcast like the elementwise template: batch_dims holds the output's batch
// dimensions right-aligned in 8 slots, a_strides / b_strides each operand's batch strides in
// matrices (0 where it broadcasts).

const WG_SIZE: u32 = 64u;
const TILE: u32 = 32u;
const TK: u32 = 16u;
const MAX_RANK: u32 = 8u;

struct Params {
    count: u32,
    m: u32,
    n: u32,
    k: u32,
    // bit 0: A is stored transposed (k x m); bit 1: B is stored transposed (n x k).
    trans: u32,
    rank: u32,
    _flags: u32,
    _pad: u32,
    batch_dims: array<vec4<u32>, 2>,
    a_strides: array<vec4<u32>, 2>,
    b_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> params: Params;
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

    // Matrix offsets of this batch in A and B (innermost batch dimension first).
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
    let base_a = ma * params.m * params.k;
    let base_b = mb * params.k * params.n;

    let tx = lid % 8u;
    let ty = lid / 8u;
    let row0 = tile_m * TILE;
    let col0 = tile_n * TILE;
    var acc: array<f32, 16>;
    for (var i = 0u; i < 16u; i = i + 1u) {
        acc[i] = 0.0;
    }

    for (var k0 = 0u; k0 < params.k; k0 = k0 + TK) {
        // Stage the slices: 512 elements each, 8 per thread.
        for (var e = 0u; e < 8u; e = e + 1u) {
            let idx = lid + e * WG_SIZE;
            let ar = idx / TK;
            let ak = idx % TK;
            tile_a[idx] = load_a(base_a, row0 + ar, k0 + ak);
            let bk = idx / TILE;
            let bc = idx % TILE;
            tile_b[idx] = load_b(base_b, k0 + bk, col0 + bc);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk = kk + 1u) {
            var a: array<f32, 4>;
            var b: array<f32, 4>;
            for (var i = 0u; i < 4u; i = i + 1u) {
                a[i] = tile_a[(ty * 4u + i) * TK + kk];
                b[i] = tile_b[kk * TILE + tx * 4u + i];
            }
            for (var i = 0u; i < 4u; i = i + 1u) {
                for (var j = 0u; j < 4u; j = j + 1u) {
                    acc[i * 4u + j] = acc[i * 4u + j] + a[i] * b[j];
                }
            }
        }
        workgroupBarrier();
    }

    let base_c = batch * params.m * params.n;
    for (var i = 0u; i < 4u; i = i + 1u) {
        let row = row0 + ty * 4u + i;
        for (var j = 0u; j < 4u; j = j + 1u) {
            let col = col0 + tx * 4u + j;
            if (row < params.m && col < params.n) {
                store_out(base_c + row * params.n + col, acc[i * 4u + j]);
            }
        }
    }
}
