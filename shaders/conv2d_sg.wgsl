// TEMPLATE: Conv2D on NHWC float32 input with a [KH, KW, Cin, Cout] filter (one group, Cout a
// multiple of 4) as an implicit GEMM on subgroups of exactly 8 invocations. Instantiated by
// `conv2d_sg_wgsl` (src/ops/nn/conv_gpu.rs), which prepends prelude.wgsl and generates XTYPE and XWIDTH
// (f32 and 1, or vec4<f32> and 4 when Cin is a multiple of 4), ROWS (pixels per lane), VCOLS (vec4
// output channels per lane), DECLS, TAPS (per filter tap: the pixels' input offsets), BODY,
// STORES and OUTPUT (the output binding and `store_out(index, vec4 value)`, as in matmul.wgsl).
//
// The GEMM: rows are output pixels, columns output channels, the reduction runs over (kh, kw,
// ci). As in matmul_sg.wgsl, lane l owns pixels p0 + l + 8i and loads their inputs; the rows of
// the filter ([KH*KW*Cin, Cout] row-major) are loaded by the subgroup, VCOLS vec4s per lane, and
// broadcast to all lanes. Input positions in the padding are loaded clamped (always in bounds)
// and replaced by zero with a select, so every lane runs every tap (the broadcasts need all of
// them). TF's SAME rule (the odd pad after) is in the pads the host computes.

const WG_SIZE: u32 = 64u;

struct Params {
    count: u32,
    in_h: u32,
    in_w: u32,
    in_c: u32,
    k_h: u32,
    k_w: u32,
    out_c: u32,
    stride_h: u32,
    stride_w: u32,
    dil_h: u32,
    dil_w: u32,
    pad_h: u32,
    pad_w: u32,
    out_h: u32,
    out_w: u32,
    pixels: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> in_x: array<XTYPE>;
@group(0) @binding(2) var<storage, read> filt: array<vec4<f32>>;
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
    let cout4 = params.out_c / 4u;
    let tiles_n = (cout4 + 8u * VCOLS - 1u) / (8u * VCOLS);
    let tile_n = group % tiles_n;
    let tile_m = group / tiles_n;
    let p0 = tile_m * 64u * ROWS + sg * 8u * ROWS + lane;
    let col0 = tile_n * 8u * VCOLS;
    let last_col = cout4 - 1u;
    let last_pixel = params.pixels - 1u;
    let ih_max = i32(params.in_h) - 1;
    let iw_max = i32(params.in_w) - 1;
    // Input offsets are counted in XTYPE elements.
    let x_step = params.in_c / XWIDTH;

DECLS
    for (var kh = 0u; kh < params.k_h; kh = kh + 1u) {
        for (var kw = 0u; kw < params.k_w; kw = kw + 1u) {
            let dh = i32(kh * params.dil_h);
            let dw = i32(kw * params.dil_w);
TAPS
            var fi = (kh * params.k_w + kw) * params.in_c * cout4;
            for (var ci = 0u; ci < x_step; ci = ci + 1u) {
BODY
            }
        }
    }
STORES
}
