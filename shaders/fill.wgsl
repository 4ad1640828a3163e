// TEMPLATE: `Fill`: every output element is the one element of binding 1. Instantiated by
// `fill_wgsl` (src/ops/array/gpu.rs), which prepends prelude.wgsl and replaces ELEM (f32 or i32) and
// WORKGROUP_SIZE.

alias T = ELEM;
const WG_SIZE: u32 = WORKGROUP_SIZE;

struct Params {
    count: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> value: array<T>;
@group(0) @binding(2) var<storage, read_write> out: array<T>;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG_SIZE);
    if (i >= params.count) {
        return;
    }
    out[i] = value[0];
}
