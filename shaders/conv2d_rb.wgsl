// TEMPLATE: the Conv2D part of the register-blocked GEMM (gemm_rb.wgsl, which names what it
// supplies): NHWC float32 input, a [KH, KW, Cin/groups, Cout] filter, as an implicit GEMM per
// group: row = output pixel (m = N * OH * OW), column = the group's output channel (n =
// Cout/groups, a multiple of 4), k = tap * (Cin/groups) + input channel. Instantiated by
// `conv2d_rb_wgsl` (src/ops/nn/conv_rb.rs) as gemm_rb.wgsl's HEADER, with XTYPE (vec4<f32>
// when Cin and Cin/groups are multiples of 4, else f32), X_AT (one element of in_x at o), X_QUAD
// (how load_a reads four input values) and OUTPUT (the output binding and `store_out(index, vec4 value)`).
//
// The GEMM's batch is the group. Taps in the padding read zeros (then times the weight, so a
// NaN weight gives NaN as on the CPU). Long k is split over dispatches as matmul's is (the same
// words: `flags` bit 2 adds the output's value, the earlier dispatches' sum; bit 3 stores the
// raw sum, not the last dispatch).

struct Params {
    count: u32,
    m: u32,
    n: u32,
    k: u32,
    flags: u32,
    groups: u32,
    k_lo: u32,
    k_hi: u32,
    in_h: u32,
    in_w: u32,
    in_c: u32,
    k_w: u32,
    patch_c: u32,
    out_c: u32,
    stride_h: u32,
    stride_w: u32,
    dil_h: u32,
    dil_w: u32,
    pad_h: u32,
    pad_w: u32,
    out_h: u32,
    out_w: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> in_x: array<XTYPE>;
@group(0) @binding(2) var<storage, read> filt: array<vec4<f32>>;
OUTPUT

// This workgroup's group.
var<private> grp: u32;

fn setup(batch: u32) {
    grp = batch;
}

// The index in the input of op(A)[row, k] (output pixel `row`, receptive-field entry `k`), or
// -1 in the padding or out of range.
fn x_offset(row: u32, k: u32) -> i32 {
    if (row >= params.m || k >= params.k_hi) {
        return -1;
    }
    let tap = k / params.patch_c;
    let ci = k % params.patch_c;
    let ow = row % params.out_w;
    let t = row / params.out_w;
    let ih = i32((t % params.out_h) * params.stride_h + (tap / params.k_w) * params.dil_h) - i32(params.pad_h);
    let iw = i32(ow * params.stride_w + (tap % params.k_w) * params.dil_w) - i32(params.pad_w);
    if (ih < 0 || ih >= i32(params.in_h) || iw < 0 || iw >= i32(params.in_w)) {
        return -1;
    }
    let pixel = ((t / params.out_h) * params.in_h + u32(ih)) * params.in_w + u32(iw);
    return i32(pixel * params.in_c + grp * params.patch_c + ci);
}

// One input value (0 where `x_offset` is -1), for the scalar X_QUAD.
fn x_at(row: u32, k: u32) -> f32 {
    let o = x_offset(row, k);
    if (o < 0) {
        return 0.0;
    }
    return X_AT;
}

// op(A)[row, k..k+4]: called as load_a(row, k).
fn load_a(row: u32, k: u32) -> vec4<f32> {
    X_QUAD
}

// The filter's [k, col..col+4] of this group: called as load_b(k, col).
fn load_b(k: u32, col: u32) -> vec4<f32> {
    if (k >= params.k_hi || col >= params.n) {
        return vec4<f32>(0.0);
    }
    return filt[(k * params.out_c + grp * params.n + col) / 4u];
}

fn emit(row: u32, q: u32, v: vec4<f32>) {
    let idx = row * (params.out_c / 4u) + grp * (params.n / 4u) + q;
    var s = v;
    if ((params.flags & 4u) != 0u) {
        s = s + out[idx];
    }
    if ((params.flags & 8u) != 0u) {
        out[idx] = s;
    } else {
        store_out(idx, s);
    }
}
