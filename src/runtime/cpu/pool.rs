//! `MaxPool` and `AvgPool` on the CPU (NHWC), one rayon task per block of output rows.
//!
//! Padding never takes part: a max pool ignores padded cells (as if they were `-inf`) and an
//! average pool divides by the number of valid cells in each window.

use std::ops::Add;

use ndarray::{ArcArray, ArrayD, IxDyn};
use rayon::prelude::*;

use super::conv::windowed;
use super::layout::{array, contiguous};
use crate::error::{invalid, Error, Result};
use crate::runtime::padding::Padding;
use crate::tensor::{try_full, HostElem};

/// The geometry of one NHWC pooling, already validated by the op.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PoolGeom {
    /// Batch size.
    pub(crate) batch: usize,
    /// Input height.
    pub(crate) in_h: usize,
    /// Input width.
    pub(crate) in_w: usize,
    /// Channels.
    pub(crate) chan: usize,
    /// Window height and width.
    pub(crate) window: [usize; 2],
    /// Row and column strides.
    pub(crate) stride: [usize; 2],
    /// Padding before the first row and before the first column.
    pub(crate) pad: [usize; 2],
    /// Output height.
    pub(crate) out_h: usize,
    /// Output width.
    pub(crate) out_w: usize,
}

/// An element type the pools handle.
pub(crate) trait PoolElem: Copy + Send + Sync + PartialOrd + Add<Output = Self> + HostElem {
    /// The identity of `max`.
    const LOWEST: Self;
    /// The identity of `+`.
    const ZERO: Self;
    /// Whether the value is NaN.
    fn is_nan(self) -> bool;
    /// `self / count`.
    fn div_count(self, count: usize) -> Self;
}

/// Implements [`PoolElem`] for a float type.
macro_rules! float_elem {
    ($t:ty) => {
        impl PoolElem for $t {
            const LOWEST: Self = <$t>::NEG_INFINITY;
            const ZERO: Self = 0.0;
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
            fn div_count(self, count: usize) -> Self {
                self / count as $t
            }
        }
    };
}
float_elem!(f32);
float_elem!(f64);

impl PoolElem for i32 {
    const LOWEST: Self = i32::MIN;
    const ZERO: Self = 0;
    fn is_nan(self) -> bool {
        false
    }
    fn div_count(self, count: usize) -> Self {
        self / i32::try_from(count).unwrap_or(i32::MAX).max(1)
    }
}

/// The output size and pads of a pool, or its depth window for a depthwise max pool.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PoolShape {
    pub(crate) out_h: usize,
    pub(crate) out_w: usize,
    pub(crate) pad: [usize; 2],
    /// `Some(k)` when the window runs across depth (max pool only): `k` channels become one.
    pub(crate) depth_window: Option<usize>,
}

impl PoolShape {
    /// The spatial pooling of an NHWC input of shape `xs` with this output size and pads,
    /// windows `k` and strides `s` (NHWC).
    pub(crate) fn geom(&self, xs: &[usize], k: [usize; 4], s: [usize; 4]) -> PoolGeom {
        PoolGeom {
            batch: xs[0],
            in_h: xs[1],
            in_w: xs[2],
            chan: xs[3],
            window: [k[1], k[2]],
            stride: [s[1], s[2]],
            pad: self.pad,
            out_h: self.out_h,
            out_w: self.out_w,
        }
    }
}

/// `MaxPool` (`max`) or `AvgPool`'s run-time checks on shapes, in TF's order and words, and
/// the geometry they give; shared by the CPU kernel and the GPU lowering.
pub(crate) fn pool_geometry(
    xs: &[usize],
    max: bool,
    k: [usize; 4],
    s: [usize; 4],
    padding: Padding,
) -> Result<PoolShape> {
    if let Some(i) = k.iter().position(|&k| k == 0) {
        invalid!("Sliding window ksize for dimension {i} was zero.");
    }
    if k[0] != 1 || s[0] != 1 {
        return Err(Error::unimplemented("Pooling is not yet supported on the batch dimension."));
    }
    if xs.len() != 4 {
        invalid!("tensor_in must be 4-dimensional");
    }
    let depth = k[3] != 1 || s[3] != 1;
    if !max && depth {
        return Err(Error::unimplemented("Non-spatial pooling is not yet supported."));
    }
    if depth && (k[1] != 1 || k[2] != 1) {
        return Err(Error::unimplemented(
            "MaxPooling supports exactly one of pooling across depth or pooling across width/height.",
        ));
    }
    let (out_h, pad_h) = windowed(xs[1], k[1], 1, s[1], padding)?;
    let (out_w, pad_w) = windowed(xs[2], k[2], 1, s[2], padding)?;
    if depth {
        if !xs[3].is_multiple_of(k[3]) {
            return Err(Error::unimplemented(
                "Depthwise max pooling requires the depth window to evenly divide the input depth",
            ));
        }
        if s[3] != k[3] {
            return Err(Error::unimplemented(
                "Depthwise max pooling requires the depth window to equal the depth stride",
            ));
        }
        if (out_h, out_w) != (xs[1], xs[2]) {
            return Err(Error::unimplemented("Depthwise max pooling with spatial strides is not supported"));
        }
    }
    Ok(PoolShape { out_h, out_w, pad: [pad_h, pad_w], depth_window: depth.then_some(k[3]) })
}

/// `MaxPool` (`max`) or `AvgPool`: the checks of [`pool_geometry`], then the
/// kernel. `ksize` and `strides` are NHWC.
pub(crate) fn pool_nhwc<T: PoolElem>(
    max: bool,
    a: &ArcArray<T, IxDyn>,
    ksize: [usize; 4],
    strides: [usize; 4],
    padding: Padding,
) -> Result<ArrayD<T>> {
    let xs = a.shape();
    let (k, s) = (ksize, strides);
    let shape = pool_geometry(xs, max, k, s, padding)?;
    let x = contiguous(a);
    if let Some(kd) = shape.depth_window {
        let mut out = try_full(&[xs[0], xs[1], xs[2], xs[3] / kd], T::ZERO)?;
        depth_max_pool(&x, kd, &mut out)?;
        return array(&[xs[0], xs[1], xs[2], xs[3] / kd], out);
    }
    let g = shape.geom(xs, k, s);
    let shape = [xs[0], g.out_h, g.out_w, xs[3]];
    let mut out = try_full(&shape, T::ZERO)?;
    if max {
        max_pool(&x, &g, &mut out)?;
    } else {
        avg_pool(&x, &g, &mut out)?;
    }
    array(&shape, out)
}

/// Max pooling; a NaN anywhere in a window makes that output NaN.
pub(crate) fn max_pool<T: PoolElem>(x: &[T], g: &PoolGeom, out: &mut [T]) -> Result<()> {
    pool(x, g, out, T::LOWEST, |acc, v| {
        if v.is_nan() || v > *acc {
            *acc = v
        }
    })
}

/// Average pooling over the valid cells of each window.
pub(crate) fn avg_pool<T: PoolElem>(x: &[T], g: &PoolGeom, out: &mut [T]) -> Result<()> {
    pool(x, g, out, T::ZERO, |acc, v| *acc = *acc + v)?;
    // Second pass: divide each output pixel by its window's number of valid cells.
    let chan = g.chan.max(1);
    out.par_chunks_mut(chan).with_min_len(64).enumerate().for_each(|(i, px)| {
        let (oh, ow) = ((i / g.out_w.max(1)) % g.out_h.max(1), i % g.out_w.max(1));
        let rows = span(oh, g.stride[0], g.pad[0], g.window[0], g.in_h);
        let cols = span(ow, g.stride[1], g.pad[1], g.window[1], g.in_w);
        let count = rows.len() * cols.len();
        px.iter_mut().for_each(|v| *v = v.div_count(count));
    });
    Ok(())
}

/// The input positions (clamped to the input) covered by window `o` along one axis.
pub(crate) fn span(o: usize, stride: usize, pad: usize, window: usize, size: usize) -> std::ops::Range<usize> {
    let start = o * stride;
    let lo = start.saturating_sub(pad).min(size);
    let hi = (start + window).saturating_sub(pad).min(size);
    lo..hi.max(lo)
}

/// Folds every window's valid cells into its output pixel with `step`, starting at `init`.
fn pool<T: PoolElem>(x: &[T], g: &PoolGeom, out: &mut [T], init: T, step: impl Fn(&mut T, T) + Sync) -> Result<()> {
    let row_len = g.out_w * g.chan;
    if x.len() < g.batch * g.in_h * g.in_w * g.chan || out.len() < g.batch * g.out_h * row_len {
        return Err(Error::internal(format!("pool: buffers too small for {g:?}")));
    }
    if row_len == 0 {
        return Ok(());
    }
    let out = &mut out[..g.batch * g.out_h * row_len];
    out.par_chunks_mut(row_len).enumerate().for_each(|(r, orow)| {
        let (n, oh) = (r / g.out_h, r % g.out_h);
        let rows = span(oh, g.stride[0], g.pad[0], g.window[0], g.in_h);
        for (ow, acc) in orow.chunks_exact_mut(g.chan).enumerate() {
            acc.fill(init);
            let cols = span(ow, g.stride[1], g.pad[1], g.window[1], g.in_w);
            for ih in rows.clone() {
                for iw in cols.clone() {
                    let src = ((n * g.in_h + ih) * g.in_w + iw) * g.chan;
                    acc.iter_mut().zip(&x[src..src + g.chan]).for_each(|(a, &v)| step(a, v));
                }
            }
        }
    });
    Ok(())
}

/// Max pooling across depth only: each output channel is the max of `window` consecutive
/// input channels (TF's depthwise max pool; no padding, stride equal to the window).
pub(crate) fn depth_max_pool<T: PoolElem>(x: &[T], window: usize, out: &mut [T]) -> Result<()> {
    if window == 0 || !x.len().is_multiple_of(window) || out.len() < x.len() / window {
        return Err(Error::internal("depth_max_pool: bad geometry"));
    }
    out.par_iter_mut().zip(x.par_chunks(window)).for_each(|(o, w)| {
        let mut acc = T::LOWEST;
        for &v in w {
            if v.is_nan() || v > acc {
                acc = v;
            }
        }
        *o = acc;
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_is_ignored() {
        // 3x3 of ones, 2x2 windows, stride 2, SAME: pads one row/column after.
        let (xs, k) = ([1, 3, 3, 1], [1, 2, 2, 1]);
        let g = pool_geometry(&xs, true, k, k, Padding::Same).unwrap().geom(&xs, k, k);
        assert_eq!((g.pad, g.out_h, g.out_w), ([0, 0], 2, 2));
        let x: Vec<f32> = (1..=9).map(|v| -(v as f32)).collect();
        let mut out = vec![0.0f32; 4];
        max_pool(&x, &g, &mut out).unwrap();
        assert_eq!(out, vec![-1.0, -3.0, -7.0, -9.0]);
        avg_pool(&x, &g, &mut out).unwrap();
        assert_eq!(out, vec![-3.0, -4.5, -7.5, -9.0]);
        let mut xn = x.clone();
        xn[4] = f32::NAN;
        max_pool(&xn, &g, &mut out).unwrap();
        assert!(out[0].is_nan() && !out[1].is_nan());
    }
}
