// TEMPLATE (a snippet): the error flag of a kernel that checks its input (an integer division by zero, a
// label out of range), appended by `error_flag_wgsl` (src/runtime/gpu/flags.rs), which replaces
// FLAG_BINDING with the binding after the kernel's output. A kernel cannot fail: it raises a
// code here and computes on; the host reads the flag with the run's fetches (no extra submit)
// and turns a raised code into the node's InvalidArgument error.
//
// Words: 0 the code (the largest raised wins); for a label, an index or a segment id out of
// range, 1 the largest value at or over the bound, 2 the bound, 3 one more than the magnitude
// of the most negative value minus one (0: none), so that the host names the label TF names.

@group(0) @binding(FLAG_BINDING) var<storage, read_write> wgflow_error: array<atomic<u32>, 4>;

// Error codes, as `flags.rs` reads them.
const ERR_DIV_BY_ZERO: u32 = 1u;
const ERR_LABEL_RANGE: u32 = 2u;
const ERR_INDEX_RANGE: u32 = 3u;
const ERR_SEGMENT_RANGE: u32 = 4u;

fn raise_error(code: u32) {
    atomicMax(&wgflow_error[0], code);
}

// A class label outside [0, classes).
fn raise_label_error(label: i32, classes: u32) {
    raise_error(ERR_LABEL_RANGE);
    atomicStore(&wgflow_error[2], classes);
    if (label < 0) {
        atomicMax(&wgflow_error[3], u32(-(label + 1)) + 1u);
    } else {
        atomicMax(&wgflow_error[1], u32(label));
    }
}

// The value out of [0, bound) of a range error `code`, recorded as for a label.
fn record_range_error(code: u32, value: i32, bound: u32) {
    raise_error(code);
    atomicStore(&wgflow_error[2], bound);
    if (value < 0) {
        atomicMax(&wgflow_error[3], u32(-(value + 1)) + 1u);
    } else {
        atomicMax(&wgflow_error[1], u32(value));
    }
}

// A gather index outside [0, bound).
fn raise_index_error(index: i32, bound: u32) {
    record_range_error(ERR_INDEX_RANGE, index, bound);
}

// A segment id outside [0, num_segments).
fn raise_segment_error(id: i32, num_segments: u32) {
    record_range_error(ERR_SEGMENT_RANGE, id, num_segments);
}

// TF's int32 TruncateDiv, raising on a zero divisor (i32 min / -1 wraps, as in TF).
fn truncate_div_checked(a: i32, b: i32) -> i32 {
    if (b == 0) {
        raise_error(ERR_DIV_BY_ZERO);
        return 0;
    }
    return a / b;
}

// TF's int32 FloorDiv, raising on a zero divisor.
fn floor_div_checked(a: i32, b: i32) -> i32 {
    if (b == 0) {
        raise_error(ERR_DIV_BY_ZERO);
        return 0;
    }
    let q = a / b;
    return select(q, q - 1, (a % b != 0) && ((a < 0) != (b < 0)));
}
