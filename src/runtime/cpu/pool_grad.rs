//! The gradients of `MaxPool` and `AvgPool` on the CPU (NHWC).
//!
//! - `MaxPoolGrad`: each window's gradient goes to the position of its max: the first in scan
//!   order on ties, the first NaN when the window holds one (the forward pool propagates NaN,
//!   so that is where its output came from). Windows overlap, so one input position may
//!   collect several gradients; they are added in window order (row-major over the output),
//!   which is also the GPU kernel's order.
//! - `AvgPoolGrad`: each input position sums, over the windows that cover it, the window's
//!   gradient divided by the window's number of valid (unpadded) cells.

use rayon::prelude::*;

use super::pool::{pool_geometry, span, PoolElem, PoolGeom};
use crate::error::{invalid, Error, Result};
use crate::runtime::padding::Padding;
use crate::tensor::dims_string;

/// The run-time checks of a pool gradient on a forward input of shape `xs` (4 values), and
/// the forward pool's geometry. Pooling across depth has no gradient here, as in TF.
pub(crate) fn pool_grad_geometry(
    max: bool,
    xs: &[usize],
    k: [usize; 4],
    s: [usize; 4],
    padding: Padding,
) -> Result<PoolGeom> {
    if max && (k[3] != 1 || s[3] != 1) {
        return Err(Error::unimplemented("MaxPoolingGrad is not yet supported on the depth dimension."));
    }
    Ok(pool_geometry(xs, max, k, s, padding)?.geom(xs, k, s))
}

/// The forward output shape of `g`.
pub(crate) fn out_shape(g: &PoolGeom) -> [usize; 4] {
    [g.batch, g.out_h, g.out_w, g.chan]
}

/// TF's check that a tensor (`what`: `orig_output`, `grad`) has the forward output's shape.
pub(crate) fn check_out_shape(what: &str, g: &PoolGeom, got: &[usize]) -> Result<()> {
    let want = out_shape(g);
    if got != want {
        invalid!("Expected {what} shape to be {}, but got {}", dims_string(&want), dims_string(got));
    }
    Ok(())
}

/// The output positions along one axis whose windows cover input position `i`.
pub(crate) fn covering(i: usize, stride: usize, pad: usize, window: usize, out: usize) -> std::ops::Range<usize> {
    let stride = stride.max(1);
    let lo = match (i + pad).checked_sub(window) {
        Some(t) => t / stride + 1,
        None => 0,
    };
    let hi = ((i + pad) / stride + 1).min(out);
    lo.min(hi)..hi
}

/// The flat index (within one image) of window `(oh, ow)`'s max for channel `c`: the first
/// NaN, else the first of the largest values; `None` for an empty window.
fn argmax<T: PoolElem>(x: &[T], g: &PoolGeom, oh: usize, ow: usize, c: usize) -> Option<usize> {
    let rows = span(oh, g.stride[0], g.pad[0], g.window[0], g.in_h);
    let cols = span(ow, g.stride[1], g.pad[1], g.window[1], g.in_w);
    let mut best: Option<(usize, T)> = None;
    for ih in rows {
        for iw in cols.clone() {
            let at = (ih * g.in_w + iw) * g.chan + c;
            let v = x[at];
            match best {
                Some((_, b)) if b.is_nan() => return best.map(|(i, _)| i),
                Some((_, b)) if !(v.is_nan() || v > b) => {}
                _ => best = Some((at, v)),
            }
        }
    }
    best.map(|(i, _)| i)
}

/// Checks the buffer lengths against the geometry (an internal error when they disagree).
fn check_buffers<T>(g: &PoolGeom, dy: &[T], dx: &[T]) -> Result<()> {
    if dx.len() < g.batch * g.in_h * g.in_w * g.chan || dy.len() < g.batch * g.out_h * g.out_w * g.chan {
        return Err(Error::internal(format!("pool grad: buffers too small for {g:?}")));
    }
    Ok(())
}

/// `MaxPoolGrad`: `dx` (the forward input's shape) from the forward input `x` and the
/// gradient `dy` of the forward output. Parallel over images.
pub(crate) fn max_pool_grad<T: PoolElem>(x: &[T], dy: &[T], g: &PoolGeom, dx: &mut [T]) -> Result<()> {
    check_buffers(g, dy, dx)?;
    let image = g.in_h * g.in_w * g.chan;
    if x.len() < g.batch * image {
        return Err(Error::internal(format!("max_pool_grad: input too small for {g:?}")));
    }
    let dx = &mut dx[..g.batch * image];
    dx.fill(T::ZERO);
    if image == 0 {
        return Ok(());
    }
    let out_image = g.out_h * g.out_w * g.chan;
    dx.par_chunks_mut(image).enumerate().for_each(|(n, dxi)| {
        let xi = &x[n * image..(n + 1) * image];
        let dyi = &dy[n * out_image..(n + 1) * out_image];
        for oh in 0..g.out_h {
            for ow in 0..g.out_w {
                for c in 0..g.chan {
                    if let Some(at) = argmax(xi, g, oh, ow, c) {
                        dxi[at] = dxi[at] + dyi[(oh * g.out_w + ow) * g.chan + c];
                    }
                }
            }
        }
    });
    Ok(())
}

/// `AvgPoolGrad`: `dx` (the forward input's shape) from the gradient `dy` of the forward
/// output, in gather form, parallel over input rows.
pub(crate) fn avg_pool_grad<T: PoolElem>(dy: &[T], g: &PoolGeom, dx: &mut [T]) -> Result<()> {
    check_buffers(g, dy, dx)?;
    let row = g.in_w * g.chan;
    let dx = &mut dx[..g.batch * g.in_h * row];
    if row == 0 {
        return Ok(());
    }
    dx.par_chunks_mut(row).enumerate().for_each(|(r, dxr)| {
        let (n, ih) = (r / g.in_h, r % g.in_h);
        let ohs = covering(ih, g.stride[0], g.pad[0], g.window[0], g.out_h);
        for (iw, px) in dxr.chunks_exact_mut(g.chan).enumerate() {
            px.fill(T::ZERO);
            let ows = covering(iw, g.stride[1], g.pad[1], g.window[1], g.out_w);
            for oh in ohs.clone() {
                let rows = span(oh, g.stride[0], g.pad[0], g.window[0], g.in_h).len();
                for ow in ows.clone() {
                    let count = rows * span(ow, g.stride[1], g.pad[1], g.window[1], g.in_w).len();
                    let src = ((n * g.out_h + oh) * g.out_w + ow) * g.chan;
                    px.iter_mut().zip(&dy[src..src + g.chan]).for_each(|(d, &v)| *d = *d + v.div_count(count));
                }
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::conv::windowed;
    use super::*;

    #[test]
    fn covering_inverts_span() {
        for (size, window, stride, padding) in
            [(7, 3, 2, Padding::Same), (8, 2, 2, Padding::Valid), (5, 3, 1, Padding::Same), (9, 2, 3, Padding::Same)]
        {
            let (out, pad) = windowed(size, window, 1, stride, padding).unwrap();
            for i in 0..size {
                let want: Vec<usize> = (0..out).filter(|&o| span(o, stride, pad, window, size).contains(&i)).collect();
                let got: Vec<usize> = covering(i, stride, pad, window, out).collect();
                assert_eq!(got, want, "i {i} size {size} window {window} stride {stride} {padding:?}");
            }
        }
    }

    #[test]
    fn max_grad_goes_to_first_max_or_nan() {
        let g = pool_grad_geometry(true, &[1, 2, 3, 1], [1, 2, 2, 1], [1, 1, 1, 1], Padding::Valid).unwrap();
        // Windows [[1, 5], [5, 2]] (tie: first 5) and [[5, 0], [2, NaN]] (the NaN).
        let x = [1.0f32, 5.0, 0.0, 5.0, 2.0, f32::NAN];
        let mut dx = [9.0f32; 6];
        max_pool_grad(&x, &[10.0, 100.0], &g, &mut dx).unwrap();
        assert_eq!(dx, [0.0, 10.0, 0.0, 0.0, 0.0, 100.0]);
    }
}
