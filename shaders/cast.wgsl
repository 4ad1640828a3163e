// TEMPLATE: Cast between float32 and int32, one thread per element. Instantiated by
// `cast_wgsl` (src/ops/elementwise/cast_gpu.rs), which replaces IN_TYPE and OUT_TYPE (f32 or
// i32) and prepends prelude.wgsl. float32 to int32 truncates toward zero, saturating, as
// Rust's `as` on the CPU (NaN gives 0 there; WGSL leaves it to the implementation).

const WG_SIZE: u32 = 64u;

struct Params {
    count: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<IN_TYPE>;
@group(0) @binding(2) var<storage, read_write> out: array<OUT_TYPE>;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG_SIZE);
    if (i >= params.count) {
        return;
    }
    out[i] = OUT_TYPE(x[i]);
}
