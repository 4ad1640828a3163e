// TEMPLATE: UnsortedSegmentSum of ELEM data (f32 or i32) by int32 segment ids, in gather form:
// one thread per output element (segment s, inner offset k) walks the ids start..end in order
// and adds the data rows whose id is s, so that it adds in the CPU kernel's order (no atomics)
// and the devices agree exactly. Instantiated by `segment_sum_wgsl`
// (src/ops/array/segment_sum.rs), which replaces ELEM, prepends prelude.wgsl and appends the
// error flag (shaders/error_flag.wgsl, binding 5).
//
// The data are [n_ids, inner], the output [num_segments, inner]. A lowering whose ids loop past
// the loop budget runs in passes over slices of the ids, each adding onto the previous pass's
// partial sums (prev; the first pass, first != 0, starts from zero and ignores prev). Thread 0
// raises the segment error for each id outside [0, num_segments) of its slice.

const WG_SIZE: u32 = 64u;

struct Params {
    count: u32,
    inner: u32,
    num_segments: u32,
    first: u32,
    start: u32,
    end: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> data: array<ELEM>;
@group(0) @binding(2) var<storage, read> ids: array<i32>;
@group(0) @binding(3) var<storage, read> prev: array<ELEM>;
@group(0) @binding(4) var<storage, read_write> out: array<ELEM>;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG_SIZE);
    if (i >= params.count) {
        return;
    }
    let k = i % params.inner;
    let segment = i / params.inner;
    var acc = ELEM(0);
    if (params.first == 0u) {
        acc = prev[i];
    }
    for (var j = params.start; j < params.end; j = j + 1u) {
        let id = ids[j];
        if (id < 0 || u32(id) >= params.num_segments) {
            if (i == 0u) {
                raise_segment_error(id, params.num_segments);
            }
        } else if (u32(id) == segment) {
            acc = acc + data[j * params.inner + k];
        }
    }
    out[i] = acc;
}
