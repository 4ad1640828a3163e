//! The gradients of a grouped `Conv2D` on the CPU (NHWC, float32, more than one group:
//! depthwise convolutions among them), in direct loops. Input channel `ci` belongs to group
//! `ci / patch_c`, which owns the output channels `[group * per_group, (group + 1) *
//! per_group)`; the filter is `[KH, KW, patch_c, out_c]`.
//!
//! Each gradient element adds its terms in the GPU kernels' order (taps, then the group's
//! output channels for the input; the batch's pixels for the filter), starting from +0.0.

use rayon::prelude::*;

use super::conv::ConvGeom;
use super::conv_grad::source;
use crate::error::{Error, Result};

/// The input pixel that tap `(kh, kw)` of output pixel `(oh, ow)` reads (`None` in the padding).
fn read_at(g: &ConvGeom, oh: usize, ow: usize, kh: usize, kw: usize) -> Option<(usize, usize)> {
    let ih = (oh * g.stride[0] + kh * g.dilation[0]).checked_sub(g.pad[0]).filter(|&i| i < g.in_h)?;
    let iw = (ow * g.stride[1] + kw * g.dilation[1]).checked_sub(g.pad[1]).filter(|&i| i < g.in_w)?;
    Some((ih, iw))
}

/// Checks the buffer lengths against the geometry (an internal error when they disagree).
fn check(what: &str, g: &ConvGeom, x: usize, f: usize, dy: usize) -> Result<usize> {
    let groups = g.in_c / g.patch_c.max(1);
    let fits = g.patch_c > 0
        && groups > 0
        && g.in_c == groups * g.patch_c
        && g.out_c.is_multiple_of(groups)
        && x >= g.batch * g.in_h * g.in_w * g.in_c
        && f >= g.k_h * g.k_w * g.patch_c * g.out_c
        && dy >= g.batch * g.out_h * g.out_w * g.out_c;
    match fits {
        true => Ok(g.out_c / groups),
        false => Err(Error::internal(format!("{what}: buffers or channels do not fit {g:?}"))),
    }
}

/// `dx` (NHWC, `g`'s input shape) from `dy` and the filter, in parallel over input rows.
pub(crate) fn backprop_input(dy: &[f32], filter: &[f32], g: &ConvGeom, dx: &mut [f32]) -> Result<()> {
    let per_group = check("conv2d_backprop_input", g, dx.len(), filter.len(), dy.len())?;
    let dx = &mut dx[..g.batch * g.in_h * g.in_w * g.in_c];
    dx.fill(0.0);
    if dx.is_empty() || per_group == 0 {
        return Ok(());
    }
    dx.par_chunks_mut(g.in_w * g.in_c).enumerate().for_each(|(r, row)| {
        let (img, ih) = (r / g.in_h, r % g.in_h);
        for (iw, px) in row.chunks_exact_mut(g.in_c).enumerate() {
            for kh in 0..g.k_h {
                let Some(oh) = source(ih, kh, g.stride[0], g.dilation[0], g.pad[0], g.out_h) else {
                    continue;
                };
                for kw in 0..g.k_w {
                    let Some(ow) = source(iw, kw, g.stride[1], g.dilation[1], g.pad[1], g.out_w) else {
                        continue;
                    };
                    let d = &dy[((img * g.out_h + oh) * g.out_w + ow) * g.out_c..][..g.out_c];
                    let taps = &filter[(kh * g.k_w + kw) * g.patch_c * g.out_c..][..g.patch_c * g.out_c];
                    for (ci, v) in px.iter_mut().enumerate() {
                        let (grp, cig) = (ci / g.patch_c, ci % g.patch_c);
                        let d = &d[grp * per_group..][..per_group];
                        let f = &taps[cig * g.out_c + grp * per_group..][..per_group];
                        for (&a, &b) in d.iter().zip(f) {
                            *v += a * b;
                        }
                    }
                }
            }
        }
    });
    Ok(())
}

/// `dw` (`[KH, KW, patch_c, out_c]`) from the input `x` and `dy`, in parallel over the taps.
pub(crate) fn backprop_filter(x: &[f32], dy: &[f32], g: &ConvGeom, dw: &mut [f32]) -> Result<()> {
    let per_group = check("conv2d_backprop_filter", g, x.len(), dw.len(), dy.len())?;
    let tap = g.patch_c * g.out_c;
    let dw = &mut dw[..g.k_h * g.k_w * tap];
    dw.fill(0.0);
    if dw.is_empty() || per_group == 0 {
        return Ok(());
    }
    dw.par_chunks_mut(tap).enumerate().for_each(|(t, w)| {
        let (kh, kw) = (t / g.k_w, t % g.k_w);
        for n in 0..g.batch {
            for oh in 0..g.out_h {
                for ow in 0..g.out_w {
                    let Some((ih, iw)) = read_at(g, oh, ow, kh, kw) else {
                        continue;
                    };
                    let xs = &x[((n * g.in_h + ih) * g.in_w + iw) * g.in_c..][..g.in_c];
                    let d = &dy[((n * g.out_h + oh) * g.out_w + ow) * g.out_c..][..g.out_c];
                    for (cig, w) in w.chunks_exact_mut(g.out_c).enumerate() {
                        for (co, (w, &dv)) in w.iter_mut().zip(d).enumerate() {
                            *w += xs[(co / per_group) * g.patch_c + cig] * dv;
                        }
                    }
                }
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::cpu::conv::conv_geometry;
    use crate::runtime::padding::Padding;

    /// The scatter definitions of both gradients of a grouped convolution.
    fn naive(x: &[f32], f: &[f32], dy: &[f32], g: &ConvGeom) -> (Vec<f32>, Vec<f32>) {
        let (mut dx, mut dw) = (vec![0.0; x.len()], vec![0.0; f.len()]);
        let per_group = g.out_c / (g.in_c / g.patch_c);
        for n in 0..g.batch {
            for (oh, ow) in (0..g.out_h).flat_map(|h| (0..g.out_w).map(move |w| (h, w))) {
                for (kh, kw) in (0..g.k_h).flat_map(|h| (0..g.k_w).map(move |w| (h, w))) {
                    let Some((ih, iw)) = g.tap(oh, ow, kh, kw) else {
                        continue;
                    };
                    for co in 0..g.out_c {
                        let grp = co / per_group;
                        for cig in 0..g.patch_c {
                            let xi = ((n * g.in_h + ih) * g.in_w + iw) * g.in_c + grp * g.patch_c + cig;
                            let fi = ((kh * g.k_w + kw) * g.patch_c + cig) * g.out_c + co;
                            let d = dy[((n * g.out_h + oh) * g.out_w + ow) * g.out_c + co];
                            dx[xi] += d * f[fi];
                            dw[fi] += d * x[xi];
                        }
                    }
                }
            }
        }
        (dx, dw)
    }

    #[test]
    fn match_scatter_definitions() {
        // (input channels, filter depth, output channels): depthwise with multipliers 1 and 2,
        // and two groups of three channels.
        for (c, pc, oc, s, p) in [
            (5, 1, 5, [1, 1, 1, 1], Padding::Same),
            (3, 1, 6, [1, 2, 2, 1], Padding::Same),
            (6, 3, 4, [1, 2, 1, 1], Padding::Valid),
        ] {
            let g = conv_geometry(&[2, 7, 6, c], &[3, 2, pc, oc], s, [1, 1, 1, 1], p).unwrap();
            // Multiples of 1/4 with small products: every summation order is exact.
            let x: Vec<f32> = (0..2 * 7 * 6 * c).map(|i| ((i * 7) % 13) as f32 * 0.25).collect();
            let f: Vec<f32> = (0..3 * 2 * pc * oc).map(|i| ((i * 5) % 11) as f32 * 0.5 - 2.0).collect();
            let dy: Vec<f32> = (0..2 * g.out_h * g.out_w * oc).map(|i| ((i * 3) % 7) as f32 - 3.0).collect();
            let (want_dx, want_dw) = naive(&x, &f, &dy, &g);
            let (mut dx, mut dw) = (vec![f32::NAN; x.len()], vec![f32::NAN; f.len()]);
            backprop_input(&dy, &f, &g, &mut dx).unwrap();
            backprop_filter(&x, &dy, &g, &mut dw).unwrap();
            assert_eq!(dx, want_dx, "{g:?}");
            assert_eq!(dw, want_dw, "{g:?}");
        }
    }
}
