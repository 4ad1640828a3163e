//! `Conv2D`'s shape rules on the CPU side: the validated NHWC geometry ([`ConvGeom`],
//! [`conv_geometry`], in TF's order and words), TF's windowed output size ([`windowed`]), and
//! [`conv2d_nhwc`], the op's entry point, which checks and then runs the im2col kernel of
//! [`super::im2col`].

use crate::error::{invalid, Error, Result};
use crate::runtime::padding::Padding;
use crate::tensor::{dims_string, Tensor};

pub(crate) use super::layout::{array, contiguous};

/// The geometry of one NHWC convolution, already validated by the op.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConvGeom {
    /// Batch size.
    pub(crate) batch: usize,
    /// Input height.
    pub(crate) in_h: usize,
    /// Input width.
    pub(crate) in_w: usize,
    /// Input depth (`groups * patch_c`).
    pub(crate) in_c: usize,
    /// Filter height.
    pub(crate) k_h: usize,
    /// Filter width.
    pub(crate) k_w: usize,
    /// Filter input depth: the channels of one group.
    pub(crate) patch_c: usize,
    /// Output depth (a multiple of the number of groups).
    pub(crate) out_c: usize,
    /// Row and column strides.
    pub(crate) stride: [usize; 2],
    /// Row and column dilations.
    pub(crate) dilation: [usize; 2],
    /// Padding before the first row and before the first column.
    pub(crate) pad: [usize; 2],
    /// Output height.
    pub(crate) out_h: usize,
    /// Output width.
    pub(crate) out_w: usize,
}

impl ConvGeom {
    /// The number of groups: input depth over filter depth.
    pub(super) fn groups(&self) -> usize {
        self.in_c / self.patch_c.max(1)
    }
    /// Output pixels: the rows of the patch matrix.
    pub(super) fn rows(&self) -> usize {
        self.batch * self.out_h * self.out_w
    }
}

/// The direct definition the kernels' tests check against.
#[cfg(test)]
impl ConvGeom {
    /// The input pixel `(row, column)` that filter tap `(kh, kw)` of output pixel `(oh, ow)`
    /// reads, or `None` where it falls in the padding; in signed arithmetic, unlike the
    /// kernels.
    pub(super) fn tap(&self, oh: usize, ow: usize, kh: usize, kw: usize) -> Option<(usize, usize)> {
        let ih = (oh * self.stride[0] + kh * self.dilation[0]) as isize - self.pad[0] as isize;
        let iw = (ow * self.stride[1] + kw * self.dilation[1]) as isize - self.pad[1] as isize;
        let inside = ih >= 0 && iw >= 0 && ih < self.in_h as isize && iw < self.in_w as isize;
        inside.then_some((ih as usize, iw as usize))
    }

    /// The convolution by its definition, in plain loops, for the kernels' tests to match.
    pub(super) fn reference(&self, x: &[f32], f: &[f32]) -> Vec<f32> {
        let g = self;
        let groups = g.in_c / g.patch_c;
        let cout_g = g.out_c / groups;
        let mut out = vec![0.0; g.rows() * g.out_c];
        for n in 0..g.batch {
            for oh in 0..g.out_h {
                for ow in 0..g.out_w {
                    for co in 0..g.out_c {
                        let grp = co / cout_g;
                        let mut s = 0.0;
                        for kh in 0..g.k_h {
                            for kw in 0..g.k_w {
                                let Some((ih, iw)) = g.tap(oh, ow, kh, kw) else {
                                    continue;
                                };
                                for ci in 0..g.patch_c {
                                    let xi = ((n * g.in_h + ih) * g.in_w + iw) * g.in_c + grp * g.patch_c + ci;
                                    let fi = ((kh * g.k_w + kw) * g.patch_c + ci) * g.out_c + co;
                                    s += x[xi] * f[fi];
                                }
                            }
                        }
                        out[((n * g.out_h + oh) * g.out_w + ow) * g.out_c + co] = s;
                    }
                }
            }
        }
        out
    }
}

/// `Conv2D`'s run-time checks on shapes, in TF's order and words, and the geometry they
/// give; shared by the CPU kernel and the GPU lowering so both devices agree.
pub(crate) fn conv_geometry(
    xs: &[usize],
    fs: &[usize],
    s: [usize; 4],
    d: [usize; 4],
    padding: Padding,
) -> Result<ConvGeom> {
    if s[0] != 1 || s[3] != 1 {
        return Err(Error::unimplemented(
            "Current implementation does not yet support strides in the batch and depth dimensions.",
        ));
    }
    if s[1] == 0 || s[2] == 0 {
        invalid!("Row and column strides should be larger than 0.");
    }
    if d[0] != 1 || d[3] != 1 {
        return Err(Error::unimplemented(
            "Current implementation does not yet support dilations in the batch and depth dimensions.",
        ));
    }
    if d[1] == 0 || d[2] == 0 {
        invalid!("Dilated rates should be larger than 0.");
    }
    if xs.len() != 4 {
        invalid!("input must be 4-dimensional{}", dims_string(xs));
    }
    if fs.len() != 4 {
        invalid!("filter must be 4-dimensional: {}", dims_string(fs));
    }
    let (in_c, patch_c, out_c) = (xs[3], fs[2], fs[3]);
    if fs.iter().product::<usize>() == 0 {
        invalid!("filter must not have zero elements (i.e. all dimensions must be non-zero)");
    }
    if !in_c.is_multiple_of(patch_c) {
        invalid!("input depth must be evenly divisible by filter depth: {in_c} vs {patch_c}");
    }
    let groups = in_c / patch_c;
    if groups == 0 || !out_c.is_multiple_of(groups) || out_c < groups {
        invalid!("output depth must be evenly divisible by number of groups: {out_c} vs {groups}");
    }
    let (out_h, pad_h) = windowed(xs[1], fs[0], d[1], s[1], padding)?;
    let (out_w, pad_w) = windowed(xs[2], fs[1], d[2], s[2], padding)?;
    Ok(ConvGeom {
        batch: xs[0],
        in_h: xs[1],
        in_w: xs[2],
        in_c,
        k_h: fs[0],
        k_w: fs[1],
        patch_c,
        out_c,
        stride: [s[1], s[2]],
        dilation: [d[1], d[2]],
        pad: [pad_h, pad_w],
        out_h,
        out_w,
    })
}

/// `Conv2D`: the run-time checks of [`conv_geometry`], then the kernel. `strides` and
/// `dilations` are NHWC.
pub(crate) fn conv2d_nhwc(
    x: &Tensor,
    f: &Tensor,
    strides: [usize; 4],
    dilations: [usize; 4],
    padding: Padding,
) -> Result<Tensor> {
    let geom = conv_geometry(x.shape(), f.shape(), strides, dilations, padding)?;
    let (Tensor::F32(xa), Tensor::F32(fa)) = (x, f) else {
        return Err(Error::unimplemented(format!("wgflow has no CPU Conv2D kernel for {}", x.dtype())));
    };
    let shape = [geom.batch, geom.out_h, geom.out_w, geom.out_c];
    // The kernel writes every element, so a recycled buffer needs no zeroing.
    let mut out = super::recycle::take_full(&shape)?;
    if !out.is_empty() {
        super::im2col::conv2d(&contiguous(xa), &contiguous(fa), &geom, &mut out)?;
    }
    Ok(array(&shape, out)?.into())
}

/// TF's `GetWindowedOutputSizeVerboseV2`: the run-time output size and leading pad.
pub(crate) fn windowed(
    input: usize,
    k: usize,
    dilation: usize,
    stride: usize,
    padding: Padding,
) -> Result<(usize, usize)> {
    let (i, s) = (input as i64, stride.max(1) as i64);
    let eff = (k as i64 - 1) * dilation as i64 + 1;
    let (out, pad) = match padding {
        Padding::Valid => ((i - eff + s) / s, 0),
        Padding::Same => {
            let out = (i + s - 1) / s;
            (out, ((out - 1) * s + eff - i).max(0) / 2)
        }
    };
    if out < 0 {
        invalid!("Computed output size would be negative: {out} [input_size: {input}, effective_filter_size: {eff}, stride: {stride}]");
    }
    Ok((out as usize, pad.max(0) as usize))
}
