// TEMPLATE: ConcatV2 of N inputs of any 4-byte element type (copied as u32 bits), one thread per
// output element. Instantiated by `concat_wgsl` (src/ops/array/gpu.rs), which prepends
// prelude.wgsl and replaces INPUT_BINDINGS (one `var<storage, read> in_K: array<u32>` per input at
// bindings 1..=N), OUTPUT_BINDING (N + 1), BLOCK_WORDS (ceil(N / 4)) and SELECT_CHAIN (for each
// input K: `if (w < len(K)) { out[i] = in_K[o * len(K) + w]; return; } w = w - len(K);`).
//
// Each input is seen as [outer, len] where len = its size along the axis times the inner size;
// the output as [outer, out_block]. blocks[K / 4][K % 4] is input K's len.

const WG_SIZE: u32 = 64u;

struct Params {
    count: u32,
    out_block: u32,
    _pad0: u32,
    _pad1: u32,
    blocks: array<vec4<u32>, BLOCK_WORDS>,
}

@group(0) @binding(0) var<uniform> params: Params;
INPUT_BINDINGS
@group(0) @binding(OUTPUT_BINDING) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG_SIZE);
    if (i >= params.count) {
        return;
    }
    let o = i / params.out_block;
    var w = i % params.out_block;
    SELECT_CHAIN
}
