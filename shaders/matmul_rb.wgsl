// TEMPLATE: the matmul part of the register-blocked GEMM (gemm_rb.wgsl, which names what it
// supplies): batched float32 C[b] = op(A[b]) * op(B[b]), operands bound as vec4s. Instantiated by
// `matmul_rb_wgsl` (src/ops/linalg/gpu_rb.rs) as gemm_rb.wgsl's HEADER, with OUTPUT the output
// binding and `store_out(index, vec4 value)`.
//
// The stored layouts read as vec4s along their contiguous dimension: A (m x k) with k, or A
// stored transposed (k x m) with m; B (k x n) with n, or B stored transposed (n x k) with k. That
// dimension is a multiple of 4, so a vec4 is wholly inside or outside. Batch dimensions broadcast
// and long k is split over dispatches as in matmul.wgsl (`trans` bits 2 and 3).

const MAX_RANK: u32 = 8u;

struct Params {
    count: u32,
    m: u32,
    n: u32,
    k: u32,
    trans: u32,
    rank: u32,
    k_lo: u32,
    k_hi: u32,
    batch_dims: array<vec4<u32>, 2>,
    a_strides: array<vec4<u32>, 2>,
    b_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> in_a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> in_b: array<vec4<f32>>;
OUTPUT

// The offsets, in floats, of this workgroup's A, B and C matrices.
var<private> base_a: u32;
var<private> base_b: u32;
var<private> base_c: u32;

fn setup(batch: u32) {
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
    base_a = ma * params.m * params.k;
    base_b = mb * params.k * params.n;
    base_c = batch * params.m * params.n;
}

// op(A)[row, k..k+4] from A stored m x k, or op(A)[row..row+4, k] from A stored k x m (`trans`
// bit 0): the generator calls it as load_a(row, k) or load_a(k, row) accordingly.
fn load_a(u: u32, v: u32) -> vec4<f32> {
    if ((params.trans & 1u) == 0u) {
        if (u >= params.m || v >= params.k_hi) {
            return vec4<f32>(0.0);
        }
        return in_a[(base_a + u * params.k + v) / 4u];
    }
    if (u >= params.k_hi || v >= params.m) {
        return vec4<f32>(0.0);
    }
    return in_a[(base_a + u * params.m + v) / 4u];
}

// op(B)[k, col..col+4] from B stored k x n, or op(B)[k..k+4, col] from B stored n x k (`trans`
// bit 1): called as load_b(k, col) or load_b(col, k).
fn load_b(u: u32, v: u32) -> vec4<f32> {
    if ((params.trans & 2u) == 0u) {
        if (u >= params.k_hi || v >= params.n) {
            return vec4<f32>(0.0);
        }
        return in_b[(base_b + u * params.n + v) / 4u];
    }
    if (u >= params.n || v >= params.k_hi) {
        return vec4<f32>(0.0);
    }
    return in_b[(base_b + u * params.k + v) / 4u];
}

// Stores one vec4 result of this k split (see matmul.wgsl).
fn emit(row: u32, q: u32, v: vec4<f32>) {
    let idx = base_c / 4u + row * (params.n / 4u) + q;
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
