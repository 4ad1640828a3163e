// TEMPLATE: BiasAddGrad on float32: out[c] = the sum over rows r of dy[r * channels + c], one
// thread per channel, rows added in order (the CPU kernel's order). Instantiated by `nn_wgsl`
// (src/ops/nn/gpu.rs), which prepends prelude.wgsl and replaces WORKGROUP_SIZE.

const WG_SIZE: u32 = WORKGROUP_SIZE;

struct Params {
    count: u32,
    channels: u32,
    rows: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = linear_index(gid, nwg, WG_SIZE);
    if (c >= params.count) {
        return;
    }
    var acc = 0.0;
    for (var r = 0u; r < params.rows; r = r + 1u) {
        acc = acc + dy[r * params.channels + c];
    }
    out[c] = acc;
}
