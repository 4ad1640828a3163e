// TEMPLATE: BiasAdd on float32: out[i] = x[i] + bias[i % channels], the bias along the last
// dimension. Instantiated by `template_wgsl` (src/ops/kernel.rs), which prepends prelude.wgsl and
// replaces WORKGROUP_SIZE.

const WG_SIZE: u32 = WORKGROUP_SIZE;

struct Params {
    count: u32,
    channels: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG_SIZE);
    if (i >= params.count) {
        return;
    }
    out[i] = x[i] + bias[i % params.channels];
}
