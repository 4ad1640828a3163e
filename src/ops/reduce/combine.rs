//! How a workgroup of 64 threads combines its threads' values into thread 0's, the step the
//! tree reductions (shaders/reduce_tree.wgsl, `passes::tree_wgsl`) and the workgroup-per-row
//! kernels (softmax_rows.wgsl, xent_wg.wgsl) share: a tree in workgroup memory, or subgroup
//! shuffles where the adapter has subgroups.

use super::passes::Fold;
use crate::ops::kernel::code_of;
use crate::ops::wgsl;

/// How a tree pass combines its workgroup's values: a tree in workgroup memory.
const TREE_COMBINE: &str = "    part[lid] = acc;
    workgroupBarrier();
    for (var s = WG_SIZE / 2u; s > 0u; s = s / 2u) {
        if (lid < s) {
            let v = part[lid + s];
            acc = REDUCE_COMBINE;
            part[lid] = acc;
        }
        workgroupBarrier();
    }";
/// ... or a butterfly within each subgroup, then the subgroups' values in thread 0 (at most 16
/// of them, subgroups of 4 lanes or more: see `variant::subgroup_reductions`).
const SUBGROUP_COMBINE: &str = "    for (var o = sg_size / 2u; o > 0u; o = o / 2u) {
        let v = subgroupShuffleXor(acc, o);
        acc = REDUCE_COMBINE;
    }
    if (lane == 0u) {
        part[sg_id] = acc;
    }
    workgroupBarrier();
    if (lid == 0u) {
        acc = part[0];
        for (var s = 1u; s < WG_SIZE / sg_size; s = s + 1u) {
            let v = part[s];
            acc = REDUCE_COMBINE;
        }
    }";
const SUBGROUP_BUILTINS: &str = "    @builtin(subgroup_size) sg_size: u32,
    @builtin(subgroup_id) sg_id: u32,
    @builtin(subgroup_invocation_id) lane: u32,";

/// The most loop trips of one [`workgroup_combine`]: 6 tree steps, or up to 6 shuffles and
/// 16 subgroups' values.
pub(crate) const COMBINE_TRIPS: usize = 24;

/// How a workgroup of `WG_SIZE` threads combines its threads' `acc` into thread 0's with
/// `REDUCE_COMBINE` (an expression of `acc` and `v`), reading `part` (64 values in workgroup
/// memory) and `lid`: the tree, or (`subgroups`) the shuffles; and the entry point's builtins
/// that the combine reads.
pub(super) fn workgroup_combine(subgroups: bool) -> (&'static str, &'static str) {
    if subgroups {
        (SUBGROUP_COMBINE, SUBGROUP_BUILTINS)
    } else {
        (TREE_COMBINE, "")
    }
}

/// The parts of a workgroup-per-row kernel (shaders/softmax_rows.wgsl, xent_wg.wgsl): the
/// combines of a row's max (NaN skipped, [`Fold::SOFTMAX_MAX`]) and of a sum, the builtins they
/// read, and the helpers they share (shaders/row_combine.wgsl: their workgroup memory and
/// `broadcast`).
pub(crate) struct RowCombines {
    pub(crate) max: String,
    pub(crate) sum: String,
    pub(crate) builtins: &'static str,
    pub(crate) helpers: String,
}

/// [`RowCombines`] with the subgroup shuffles (`subgroups`) or the tree.
pub(crate) fn row_combines(subgroups: bool) -> RowCombines {
    let (combine, builtins) = workgroup_combine(subgroups);
    RowCombines {
        max: combine.replace("REDUCE_COMBINE", Fold::SOFTMAX_MAX.combine),
        sum: combine.replace("REDUCE_COMBINE", Fold::SUM_F32.combine),
        builtins,
        helpers: code_of(wgsl::ROW_COMBINE),
    }
}
