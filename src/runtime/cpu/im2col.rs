//! The CPU `Conv2D` kernel: im2col patch matrices, filled in parallel with rayon, multiplied
//! by the filter matrix with the SIMD GEMM. A 1x1 stride-1 ungrouped convolution is a plain
//! matrix product of the input with the filter and copies nothing. The patch filling
//! ([`fill_patches`]) is shared with the filter gradient.

use rayon::prelude::*;

use super::conv::ConvGeom;
use super::gemm::{matmul, matmul_serial, MatRef};
use crate::error::{Error, Result};
use crate::tensor::try_zeros;

/// Upper bound on the elements of one patch-matrix block (16 MiB of f32).
pub(super) const BLOCK_ELEMS: usize = 1 << 22;
/// Patch-matrix elements per task of the parallel blocked convolution (256 KiB of f32).
const TASK_ELEMS: usize = 1 << 16;
/// Patch rows one rayon task fills at least.
const MIN_ROWS_PER_TASK: usize = 32;

/// Computes the convolution of `x` (NHWC, row-major) with `filter` ([KH, KW, patch_c, out_c],
/// row-major) into `out` (NHWC, row-major).
pub(crate) fn conv2d(x: &[f32], filter: &[f32], g: &ConvGeom, out: &mut [f32]) -> Result<()> {
    let groups = g.groups();
    let k = g.k_h * g.k_w * g.patch_c;
    let rows = g.rows();
    if g.patch_c == 0 || groups == 0 || !g.in_c.is_multiple_of(g.patch_c) || !g.out_c.is_multiple_of(groups) {
        return Err(Error::internal(format!("conv2d: bad channel geometry {g:?}")));
    }
    if x.len() < g.batch * g.in_h * g.in_w * g.in_c || filter.len() < k * g.out_c || out.len() < rows * g.out_c {
        return Err(Error::internal(format!("conv2d: buffers too small for {g:?}")));
    }
    if rows == 0 || g.out_c == 0 {
        return Ok(());
    }
    let out = &mut out[..rows * g.out_c];
    if k == 0 {
        out.fill(0.0);
        return Ok(());
    }
    if g.k_h == 1 && g.k_w == 1 && g.stride == [1, 1] && groups == 1 && g.pad == [0, 0] {
        // Every output pixel is its input pixel times the filter matrix.
        let a = MatRef { data: x, rows, cols: g.in_c, transpose: false };
        matmul(a, mat(filter, k, g.out_c), out, false)?;
        positive_zeros(out);
        return Ok(());
    }
    if super::conv_direct::supported(g) {
        return super::conv_direct::conv2d(x, filter, g, out);
    }
    if groups == 1 {
        return conv2d_ungrouped(x, filter, g, k, out);
    }
    if super::depthwise::applies(g) {
        return super::depthwise::conv2d(x, filter, g, out);
    }
    conv2d_grouped(x, filter, g, k, out)?;
    positive_zeros(out);
    Ok(())
}

/// One group: blocks of output rows in parallel, each filling its patch matrix (sized to stay
/// in the core's cache) and multiplying it on its own thread. `k` is the patch length.
fn conv2d_ungrouped(x: &[f32], filter: &[f32], g: &ConvGeom, k: usize, out: &mut [f32]) -> Result<()> {
    let rows = g.rows();
    let block = (TASK_ELEMS / k).clamp(MIN_ROWS_PER_TASK, rows.max(MIN_ROWS_PER_TASK));
    let filter = mat(filter, k, g.out_c);
    out.par_chunks_mut(block * g.out_c).enumerate().try_for_each_init(Vec::new, |patches: &mut Vec<f32>, (i, o)| {
        let n = o.len() / g.out_c;
        if patches.len() < n * k {
            // One patch matrix per worker, its size from the filter: checked first.
            *patches = try_zeros::<f32>(&[n, k])?;
        }
        let patches = &mut patches[..n * k];
        fill_rows(x, g, 0, i * block, patches, k);
        matmul_serial(MatRef { data: patches, rows: n, cols: k, transpose: false }, filter, o, false)?;
        positive_zeros_serial(o);
        Ok::<(), Error>(())
    })
}

/// Several groups: group by group, blocks of output rows in turn, each block's patches
/// filled in parallel and multiplied by the group's filter columns with the parallel GEMM.
/// `k` is the patch length. Leaves the zeros' signs to the caller.
fn conv2d_grouped(x: &[f32], filter: &[f32], g: &ConvGeom, k: usize, out: &mut [f32]) -> Result<()> {
    let (groups, rows) = (g.groups(), g.rows());
    let cout_g = g.out_c / groups;
    let block_rows = (BLOCK_ELEMS / k).clamp(1, rows);
    let mut patches = try_zeros::<f32>(&[block_rows, k])?;
    let mut group_filter = try_zeros::<f32>(&[k, cout_g])?;
    let mut group_out = try_zeros::<f32>(&[block_rows, cout_g])?;
    for grp in 0..groups {
        // The group's filter columns as a contiguous k x cout_g matrix.
        for (r, dst) in group_filter.chunks_exact_mut(cout_g).enumerate() {
            let src = r * g.out_c + grp * cout_g;
            dst.copy_from_slice(&filter[src..src + cout_g]);
        }
        let mut start = 0;
        while start < rows {
            let n = block_rows.min(rows - start);
            let p = &mut patches[..n * k];
            fill_patches(x, g, grp * g.patch_c, start, p, k);
            let a = MatRef { data: p, rows: n, cols: k, transpose: false };
            let o = &mut group_out[..n * cout_g];
            matmul(a, mat(&group_filter, k, cout_g), o, false)?;
            for (r, src) in o.chunks_exact(cout_g).enumerate() {
                let dst = (start + r) * g.out_c + grp * cout_g;
                out[dst..dst + cout_g].copy_from_slice(src);
            }
            start += n;
        }
    }
    Ok(())
}

/// Turns `-0.0` into `0.0`, as TF's kernels produce: they add the products to a zero
/// accumulator, so a sum of zero is never negative, while the GEMM can return `-0.0`.
pub(crate) fn positive_zeros(out: &mut [f32]) {
    out.par_chunks_mut(1 << 16).for_each(|c| c.iter_mut().for_each(|v| *v += 0.0));
}

/// [`positive_zeros`] on the calling thread.
fn positive_zeros_serial(out: &mut [f32]) {
    out.iter_mut().for_each(|v| *v += 0.0);
}

/// A row-major `rows x cols` matrix operand.
pub(crate) fn mat(data: &[f32], rows: usize, cols: usize) -> MatRef<'_> {
    MatRef { data, rows, cols, transpose: false }
}

/// Fills `patches` (rows of length `k`) with the receptive fields of output pixels
/// `first_row..`, reading input channels `c0..c0 + patch_c`; padding reads as zero.
pub(crate) fn fill_patches(x: &[f32], g: &ConvGeom, c0: usize, first_row: usize, patches: &mut [f32], k: usize) {
    patches
        .par_chunks_mut(k * MIN_ROWS_PER_TASK)
        .enumerate()
        .for_each(|(i, rows)| fill_rows(x, g, c0, first_row + i * MIN_ROWS_PER_TASK, rows, k));
}

/// [`fill_patches`] on the calling thread.
fn fill_rows(x: &[f32], g: &ConvGeom, c0: usize, first_row: usize, patches: &mut [f32], k: usize) {
    let pc = g.patch_c;
    let seg = g.k_w * pc;
    patches.chunks_exact_mut(k).enumerate().for_each(|(i, row)| {
        let r = first_row + i;
        let ow = r % g.out_w;
        let oh = (r / g.out_w) % g.out_h;
        let n = r / (g.out_w * g.out_h);
        for (kh, dst_h) in row.chunks_exact_mut(seg).enumerate() {
            let ih = (oh * g.stride[0] + kh * g.dilation[0]).checked_sub(g.pad[0]).filter(|&ih| ih < g.in_h);
            let Some(ih) = ih else {
                dst_h.fill(0.0);
                continue;
            };
            let base = (n * g.in_h + ih) * g.in_w;
            for (kw, dst) in dst_h.chunks_exact_mut(pc).enumerate() {
                match (ow * g.stride[1] + kw * g.dilation[1]).checked_sub(g.pad[1]).filter(|&iw| iw < g.in_w) {
                    Some(iw) => {
                        let src = (base + iw) * g.in_c + c0;
                        dst.copy_from_slice(&x[src..src + pc]);
                    }
                    None => dst.fill(0.0),
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(g: ConvGeom) {
        let x: Vec<f32> = (0..g.batch * g.in_h * g.in_w * g.in_c).map(|i| ((i * 7) % 13) as f32 * 0.25).collect();
        let f: Vec<f32> = (0..g.k_h * g.k_w * g.patch_c * g.out_c).map(|i| ((i * 5) % 11) as f32 * 0.5 - 2.0).collect();
        let mut out = vec![f32::NAN; g.rows() * g.out_c];
        conv2d(&x, &f, &g, &mut out).unwrap();
        let want = g.reference(&x, &f);
        assert_eq!(out, want, "{g:?}");
        if g.groups() > 1 {
            // The grouped patch-matrix path itself, which `conv2d` skips for depthwise ones.
            let mut out = vec![f32::NAN; g.rows() * g.out_c];
            conv2d_grouped(&x, &f, &g, g.k_h * g.k_w * g.patch_c, &mut out).unwrap();
            positive_zeros(&mut out);
            assert_eq!(out, want, "grouped patch matrix: {g:?}");
        }
        if g.groups() == 1 {
            // The patch-matrix path itself, which `conv2d` skips where the direct one runs.
            let mut out = vec![f32::NAN; g.rows() * g.out_c];
            let k = g.k_h * g.k_w * g.patch_c;
            conv2d_ungrouped(&x, &f, &g, k, &mut out).unwrap();
            assert_eq!(out, want, "patch matrix: {g:?}");
        }
    }

    #[test]
    fn matches_direct_definition() {
        let base = ConvGeom {
            batch: 2,
            in_h: 7,
            in_w: 6,
            in_c: 4,
            k_h: 3,
            k_w: 2,
            patch_c: 4,
            out_c: 6,
            stride: [2, 1],
            dilation: [1, 2],
            pad: [1, 1],
            out_h: 4,
            out_w: 5,
        };
        check(base);
        check(ConvGeom { patch_c: 2, ..base });
        // Depthwise: one group per channel, multipliers 1 and 3.
        check(ConvGeom { patch_c: 1, out_c: 4, ..base });
        check(ConvGeom { patch_c: 1, out_c: 12, ..base });
        assert!(super::super::depthwise::applies(&ConvGeom { patch_c: 1, out_c: 12, ..base }));
        let unit_steps = ConvGeom { stride: [1, 1], dilation: [1, 1], ..base };
        check(ConvGeom { k_h: 1, k_w: 1, pad: [0, 0], out_h: 7, out_w: 6, ..unit_steps });
        // Enough output rows for several parallel blocks, the last one partial.
        let many = ConvGeom { batch: 1, in_h: 60, in_w: 61, pad: [1, 0], out_h: 60, out_w: 60, ..unit_steps };
        assert!(many.rows() > TASK_ELEMS / (many.k_h * many.k_w * many.patch_c));
        check(many);
    }
}
