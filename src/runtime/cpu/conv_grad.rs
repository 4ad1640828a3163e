//! The gradients of `Conv2D` on the CPU (NHWC, float32; grouped ones are
//! `conv_grad_grouped.rs`'s):
//!
//! - `Conv2DBackpropInput`: the patch-matrix gradient `dy · Wᵀ` with the SIMD GEMM, then a
//!   col2im in gather form (each input pixel sums the patch entries that read it, in parallel
//!   over input rows, so the result does not depend on thread timing);
//! - `Conv2DBackpropFilter`: `patchesᵀ · dy`, the patches filled as the forward kernel fills
//!   them, accumulated block by block.
//!
//! The geometry is the forward convolution's ([`conv_geometry`]); [`conv_grad_geometry`]
//! adds the checks on `out_backprop`, in TF's words.

use rayon::prelude::*;

use super::conv::{conv_geometry, ConvGeom};
use super::gemm::{matmul, MatRef};
use super::im2col::{fill_patches, mat, positive_zeros, BLOCK_ELEMS};
use crate::error::{invalid, Error, Result};
use crate::runtime::padding::Padding;
use crate::tensor::{dims_string, try_zeros};

/// The run-time checks of a convolution gradient named `label` (`Conv2DBackpropInput` or
/// `Conv2DBackpropFilter`), with the forward input shape `xs`, filter shape `fs` and
/// `out_backprop` shape `dys`, in TF's order and words; the geometry of the forward
/// convolution. Shared by the CPU kernels and the GPU lowerings.
pub(crate) fn conv_grad_geometry(
    label: &str,
    xs: &[usize],
    fs: &[usize],
    dys: &[usize],
    strides: [usize; 4],
    dilations: [usize; 4],
    padding: Padding,
) -> Result<ConvGeom> {
    for (what, s) in [("input", xs), ("filter", fs), ("out_backprop", dys)] {
        if s.len() != 4 {
            invalid!("{label}: {what} must be 4-dimensional: {}", dims_string(s));
        }
    }
    if fs[2] == 0 {
        invalid!("{label}: filter depth must be strictly greated than zero");
    }
    if !xs[3].is_multiple_of(fs[2]) {
        invalid!("{label}: input depth must be evenly divisible by filter depth");
    }
    if fs[3] != dys[3] {
        invalid!("{label}: filter and out_backprop must have the same out_depth");
    }
    if xs[0] != dys[0] {
        invalid!(
            "{label}: input and out_backprop must have the same batch size, input batch: {} outbackprop batch: {}",
            xs[0],
            dys[0]
        );
    }
    let g = conv_geometry(xs, fs, strides, dilations, padding)
        .map_err(|e| Error { message: format!("{label}: {}", e.message), ..e })?;
    for (dim, (actual, computed)) in [(dys[1], g.out_h), (dys[2], g.out_w)].into_iter().enumerate() {
        if actual != computed {
            invalid!(
                "{label}: Size of out_backprop doesn't match computed: actual = {actual}, computed = {computed} \
                 spatial_dim: {} input: {} filter: {} output: {actual} stride: {} dilation: {}",
                dim + 1,
                xs[dim + 1],
                fs[dim],
                strides[dim + 1],
                dilations[dim + 1]
            );
        }
    }
    Ok(g)
}

/// Checks the buffer lengths against the geometry (an internal error when they disagree).
fn check_buffers(what: &str, g: &ConvGeom, x: usize, f: usize, dy: usize) -> Result<()> {
    let k = g.k_h * g.k_w * g.patch_c;
    let rows = g.batch * g.out_h * g.out_w;
    if g.in_c != g.patch_c || x < g.batch * g.in_h * g.in_w * g.in_c || f < k * g.out_c || dy < rows * g.out_c {
        return Err(Error::internal(format!("{what}: buffers or channels do not fit {g:?}")));
    }
    Ok(())
}

/// The output positions whose windows read input position `i` through tap `k` along one
/// axis: `o` with `o * stride + k * dilation - pad == i`, when it is in `0..out`.
pub(super) fn source(i: usize, k: usize, stride: usize, dilation: usize, pad: usize, out: usize) -> Option<usize> {
    let t = (i + pad).checked_sub(k * dilation)?;
    (t.is_multiple_of(stride) && t / stride < out).then_some(t / stride)
}

/// The gradient of a convolution with respect to its input: `dx` (NHWC, `g`'s input shape)
/// from `dy` (NHWC, `g`'s output shape) and `filter` (`[KH, KW, Cin, Cout]`).
pub(crate) fn backprop_input(dy: &[f32], filter: &[f32], g: &ConvGeom, dx: &mut [f32]) -> Result<()> {
    if g.groups() > 1 {
        return super::conv_grad_grouped::backprop_input(dy, filter, g, dx);
    }
    check_buffers("conv2d_backprop_input", g, dx.len(), filter.len(), dy.len())?;
    let k = g.k_h * g.k_w * g.in_c;
    let pix = g.out_h * g.out_w;
    let image = g.in_h * g.in_w * g.in_c;
    let dx = &mut dx[..g.batch * image];
    dx.fill(0.0);
    if k == 0 || pix == 0 || image == 0 || g.out_c == 0 {
        return Ok(());
    }
    // Whole images per block, so every input pixel of a block gets all its terms at once.
    let per_block = (BLOCK_ELEMS / (pix * k)).clamp(1, g.batch.max(1));
    let mut cols = try_zeros::<f32>(&[per_block * pix, k])?;
    let wt = MatRef { data: filter, rows: k, cols: g.out_c, transpose: true };
    for (b, dx_block) in dx.chunks_mut(per_block * image).enumerate() {
        let n = dx_block.len() / image;
        let first = b * per_block * pix;
        let dy_rows = MatRef {
            data: &dy[first * g.out_c..(first + n * pix) * g.out_c],
            rows: n * pix,
            cols: g.out_c,
            transpose: false,
        };
        let cols = &mut cols[..n * pix * k];
        matmul(dy_rows, wt, cols, false)?;
        let cols = &*cols;
        dx_block.par_chunks_mut(g.in_w * g.in_c).enumerate().for_each(|(r, row)| {
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
                        let src = ((img * g.out_h + oh) * g.out_w + ow) * k + (kh * g.k_w + kw) * g.in_c;
                        px.iter_mut().zip(&cols[src..src + g.in_c]).for_each(|(d, &v)| *d += v);
                    }
                }
            }
        });
    }
    Ok(())
}

/// The gradient of a convolution with respect to its filter: `dw` (`[KH, KW, Cin, Cout]`)
/// from the input `x` (NHWC) and `dy` (NHWC, `g`'s output shape).
pub(crate) fn backprop_filter(x: &[f32], dy: &[f32], g: &ConvGeom, dw: &mut [f32]) -> Result<()> {
    if g.groups() > 1 {
        return super::conv_grad_grouped::backprop_filter(x, dy, g, dw);
    }
    check_buffers("conv2d_backprop_filter", g, x.len(), dw.len(), dy.len())?;
    let k = g.k_h * g.k_w * g.in_c;
    let rows = g.batch * g.out_h * g.out_w;
    let dw = &mut dw[..k * g.out_c];
    dw.fill(0.0);
    if k == 0 || rows == 0 || g.out_c == 0 {
        return Ok(());
    }
    let block_rows = (BLOCK_ELEMS / k).clamp(1, rows);
    let mut patches = try_zeros::<f32>(&[block_rows, k])?;
    let mut start = 0;
    while start < rows {
        let n = block_rows.min(rows - start);
        let p = &mut patches[..n * k];
        fill_patches(x, g, 0, start, p, k);
        let pt = MatRef { data: p, rows: n, cols: k, transpose: true };
        matmul(pt, mat(&dy[start * g.out_c..(start + n) * g.out_c], n, g.out_c), dw, start > 0)?;
        start += n;
    }
    positive_zeros(dw);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geom(in_hw: [usize; 2], k: [usize; 2], s: [usize; 4], d: [usize; 4], p: Padding) -> ConvGeom {
        conv_geometry(&[2, in_hw[0], in_hw[1], 3], &[k[0], k[1], 3, 4], s, d, p).unwrap()
    }

    /// The scatter definitions of both gradients, for checking.
    fn naive(x: &[f32], f: &[f32], dy: &[f32], g: &ConvGeom) -> (Vec<f32>, Vec<f32>) {
        let mut dx = vec![0.0; x.len()];
        let mut dw = vec![0.0; f.len()];
        for n in 0..g.batch {
            for oh in 0..g.out_h {
                for ow in 0..g.out_w {
                    for kh in 0..g.k_h {
                        for kw in 0..g.k_w {
                            let Some((ih, iw)) = g.tap(oh, ow, kh, kw) else {
                                continue;
                            };
                            for ci in 0..g.in_c {
                                let xi = ((n * g.in_h + ih) * g.in_w + iw) * g.in_c + ci;
                                for co in 0..g.out_c {
                                    let fi = ((kh * g.k_w + kw) * g.in_c + ci) * g.out_c + co;
                                    let d = dy[((n * g.out_h + oh) * g.out_w + ow) * g.out_c + co];
                                    dx[xi] += d * f[fi];
                                    dw[fi] += d * x[xi];
                                }
                            }
                        }
                    }
                }
            }
        }
        (dx, dw)
    }

    #[test]
    fn match_scatter_definitions() {
        for g in [
            geom([7, 6], [3, 2], [1, 2, 1, 1], [1, 1, 2, 1], Padding::Same),
            geom([6, 7], [2, 3], [1, 3, 2, 1], [1, 1, 1, 1], Padding::Valid),
            geom([5, 5], [1, 1], [1, 1, 1, 1], [1, 1, 1, 1], Padding::Same),
        ] {
            // Multiples of 1/4 with small products: every summation order is exact.
            let x: Vec<f32> = (0..g.batch * g.in_h * g.in_w * g.in_c).map(|i| ((i * 7) % 13) as f32 * 0.25).collect();
            let f: Vec<f32> =
                (0..g.k_h * g.k_w * g.in_c * g.out_c).map(|i| ((i * 5) % 11) as f32 * 0.5 - 2.0).collect();
            let dy: Vec<f32> = (0..g.batch * g.out_h * g.out_w * g.out_c).map(|i| ((i * 3) % 7) as f32 - 3.0).collect();
            let (want_dx, want_dw) = naive(&x, &f, &dy, &g);
            let (mut dx, mut dw) = (vec![f32::NAN; x.len()], vec![f32::NAN; f.len()]);
            backprop_input(&dy, &f, &g, &mut dx).unwrap();
            backprop_filter(&x, &dy, &g, &mut dw).unwrap();
            assert_eq!(dx, want_dx, "{g:?}");
            assert_eq!(dw, want_dw, "{g:?}");
        }
    }
}
