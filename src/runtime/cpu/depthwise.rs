//! The CPU kernel of a depthwise convolution: a `Conv2D` with one group per input channel
//! (`patch_c == 1`, `out_c = in_c * M`), as `DepthwiseConv2dNative` is built. Each output
//! pixel sums, tap by tap, its input pixel's channels times the tap's filter row, a loop over
//! contiguous channels that vectorises; rows of output pixels run in parallel on rayon. The
//! grouped im2col path would build one GEMM of a single channel per group instead.

use rayon::prelude::*;

use super::conv::ConvGeom;
use crate::error::{Error, Result};

/// Output pixels per parallel task.
const ROWS_PER_TASK: usize = 64;

/// Whether `g` is a depthwise convolution (one group per input channel).
pub(super) fn applies(g: &ConvGeom) -> bool {
    g.patch_c == 1 && g.in_c > 1 && g.out_c.is_multiple_of(g.in_c)
}

/// `out` (NHWC) of `x` (NHWC) and `filter` (`[KH, KW, 1, in_c * M]`), all row-major.
pub(super) fn conv2d(x: &[f32], filter: &[f32], g: &ConvGeom, out: &mut [f32]) -> Result<()> {
    let (c, oc) = (g.in_c, g.out_c);
    let rows = g.rows();
    let taps = g.k_h * g.k_w;
    if !applies(g) || x.len() < g.batch * g.in_h * g.in_w * c || filter.len() < taps * oc || out.len() < rows * oc {
        return Err(Error::internal(format!("depthwise conv2d: bad geometry or buffers {g:?}")));
    }
    let m = oc / c;
    out[..rows * oc].par_chunks_mut(oc * ROWS_PER_TASK).enumerate().for_each(|(t, o)| {
        for (i, row) in o.chunks_mut(oc).enumerate() {
            let p = t * ROWS_PER_TASK + i;
            let (ow, oh, n) = (p % g.out_w, (p / g.out_w) % g.out_h, p / (g.out_w * g.out_h));
            row.fill(0.0);
            for kh in 0..g.k_h {
                let Some(ih) = (oh * g.stride[0] + kh * g.dilation[0]).checked_sub(g.pad[0]).filter(|&ih| ih < g.in_h)
                else {
                    continue;
                };
                for kw in 0..g.k_w {
                    let iw = (ow * g.stride[1] + kw * g.dilation[1]).checked_sub(g.pad[1]).filter(|&iw| iw < g.in_w);
                    let Some(iw) = iw else { continue };
                    let at = ((n * g.in_h + ih) * g.in_w + iw) * c;
                    let (xin, f) = (&x[at..at + c], &filter[(kh * g.k_w + kw) * oc..][..oc]);
                    if m == 1 {
                        row.iter_mut().zip(xin).zip(f).for_each(|((o, &xv), &fv)| *o += xv * fv);
                    } else {
                        for ((os, &xv), fs) in row.chunks_exact_mut(m).zip(xin).zip(f.chunks_exact(m)) {
                            os.iter_mut().zip(fs).for_each(|(o, &fv)| *o += xv * fv);
                        }
                    }
                }
            }
        }
    });
    Ok(())
}
