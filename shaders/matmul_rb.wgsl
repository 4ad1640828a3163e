// TEMPLATE: the matmul part of the register-blocked GEMM (gemm_rb.wgsl, which names what it
// supplies): batched float32 C[b] = op(A[b]) * op(B[b]), operands bound as vec4s. Instantiated by
// `matmul_rb_wgsl` (src/ops/linalg/gpu_rb.rs) as gemm_rb.wgsl's HEADER, with OUTPUT the output
// binding and `store_out(index, vec4 value)` and MATMUL_PARAMS the uniforms and batch walk of
// matmul_batch.wgsl.
//
// The stored layouts read as vec4s along their contiguous dimension: A (m x k) with k, or A
// stored transposed (k x m) with m; B (k x n) with n, or B stored transposed (n x k) with k. That
// dimension is a multiple of 4, so a vec4 is wholly inside or outside. Batch dimensions broadcast
// and long k is split over dispatches as in matmul.wgsl (`trans` bits 2 and 3).

MATMUL_PARAMS

@group(0) @binding(1) var<storage, read> in_a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> in_b: array<vec4<f32>>;
OUTPUT

// The offsets, in floats, of this workgroup's A, B and C matrices.
var<private> base_a: u32;
var<private> base_b: u32;
var<private> base_c: u32;

fn setup(batch: u32) {
    let mats = operand_matrices(batch);
    base_a = mats.x * params.m * params.k;
    base_b = mats.y * params.k * params.n;
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
