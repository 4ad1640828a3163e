//! Direct `Conv2D` on CPUs with AVX-512F: an indirect GEMM that reads the receptive fields
//! straight from the input instead of copying them into an im2col patch matrix.
//!
//! Each pixel's receptive field is a few *runs* of contiguous input ([`Runs`]): with unit
//! column dilation one run per filter row (`k_w * in_c` floats, 21 for a 7x7 stem on RGB),
//! else one per tap. For each tile of [`MR`] output pixels the driver finds where each run
//! starts ([`Runs::lookup`]): in the input, in a shared run of zeros (padding), or in a small
//! copy with zeros where a run crosses the padding; a tile whose windows are all inside needs
//! no table, only each pixel's first run and the step to the next ([`Source::Strided`]). The
//! micro-kernel ([`super::microkernel`]) multiplies the runs by the filter, packed once per
//! call into blocks of 64 output channels, which stay in the core's cache while a task's
//! tiles go by; tasks are stretches of tiles, in parallel on rayon. So a stem convolution
//! (`K = 147`) copies no patches and a 3x3 one builds no patch matrix.
//!
//! [`supported`] says when this path applies (one group, a filter block that fits the cache,
//! AVX-512F); otherwise `im2col` runs its patch matrix and GEMM, and 1x1 stride-1
//! convolutions stay a plain GEMM there. A depthwise convolution (a group per channel) fits
//! the same frame: the same run lookup per tile, with a second micro-kernel that multiplies
//! each run elementwise by the tap's filter vector instead of broadcasting it.

use rayon::prelude::*;

use super::conv::ConvGeom;
use super::microkernel::{has_avx512, on_width, Block, Dims, Packed, MR};
use crate::error::{Error, Result};

/// The largest patch (taps times input channels) whose filter block, `K x 64` floats, is
/// left to this path: 512 KiB, half a core's L2.
const MAX_K: usize = 2048;
/// Tiles per parallel task, at most.
const MAX_TILES_PER_TASK: usize = 64;

/// Whether [`conv2d`] takes this geometry on this CPU.
pub(crate) fn supported(g: &ConvGeom) -> bool {
    let k = g.k_h * g.k_w * g.patch_c;
    g.groups() == 1 && k > 0 && k <= MAX_K && has_avx512()
}
/// Computes the convolution of `x` (NHWC) with `filter` (`[KH, KW, in_c, out_c]`) into `out`
/// (NHWC), all row-major and checked by the caller against `g`. Call only where
/// [`supported`] holds.
pub(super) fn conv2d(x: &[f32], filter: &[f32], g: &ConvGeom, out: &mut [f32]) -> Result<()> {
    let k = g.k_h * g.k_w * g.in_c;
    let rows = g.rows();
    if !supported(g) || x.len() < g.batch * g.in_h * g.in_w * g.in_c || filter.len() < k * g.out_c {
        return Err(Error::internal(format!("direct conv2d: unsupported or short buffers for {g:?}")));
    }
    let out = out
        .get_mut(..rows * g.out_c)
        .ok_or_else(|| Error::internal(format!("direct conv2d: output too small for {g:?}")))?;
    let packed = Packed::new(filter, k, g.out_c);
    let runs = Runs::new(g);
    let zeros = vec![0.0; runs.len];
    let tiles = rows.div_ceil(MR);
    let per_task = (tiles / (rayon::current_num_threads() * 8)).clamp(1, MAX_TILES_PER_TASK);
    out.par_chunks_mut(per_task * MR * g.out_c).enumerate().for_each_init(
        || (vec![[std::ptr::null(); MR]; runs.count], vec![0.0; runs.count * MR * runs.len]),
        |(table, scratch), (t, o)| {
            let first = t * per_task * MR;
            for (i, tile_out) in o.chunks_mut(MR * g.out_c).enumerate() {
                let count = tile_out.len() / g.out_c;
                let src = runs.lookup(x, &zeros, g, first + i * MR, count, table, scratch);
                for block in &packed.blocks {
                    run_tile(src, runs.len, count, g.out_c, block, tile_out);
                }
            }
        },
    );
    Ok(())
}

/// How a pixel's receptive field splits into runs of contiguous input: with unit column
/// dilation, one run per filter row (`k_w * in_c` floats); otherwise one per tap (`in_c`).
struct Runs {
    /// Runs per pixel.
    count: usize,
    /// Floats per run.
    len: usize,
    /// Taps per run (along the filter row).
    taps: usize,
}

impl Runs {
    fn new(g: &ConvGeom) -> Runs {
        let taps = if g.dilation[1] == 1 { g.k_w } else { 1 };
        Runs { count: g.k_h * g.k_w / taps, len: taps * g.in_c, taps }
    }

    /// Where each run of the `count` pixels `first..` of a tile starts. When the tile is full,
    /// its windows lie wholly inside the input and each has one run per filter row, that is
    /// [`Source::Strided`]. Otherwise `table[r][i]` is filled with the start of run `r` of
    /// pixel `first + i`: a place in `x` when the run lies inside the input, `zeros` when it
    /// lies wholly in the padding (or the pixel is past `count`), else a copy in `scratch`
    /// with zeros for the padded taps. Each pointer has `self.len` floats to read, valid while
    /// `x`, `zeros` and `scratch` are neither moved nor written.
    #[allow(clippy::too_many_arguments)]
    fn lookup<'t>(
        &self,
        x: &[f32],
        zeros: &[f32],
        g: &ConvGeom,
        first: usize,
        count: usize,
        table: &'t mut [[*const f32; MR]],
        scratch: &mut [f32],
    ) -> Source<'t> {
        if let Some(src) = self.strided(x, g, first, count) {
            return src;
        }
        let cin = g.in_c;
        let (in_h, in_w) = (g.in_h as isize, g.in_w as isize);
        let (dil_h, dil_w) = (g.dilation[0] as isize, g.dilation[1] as isize);
        // The first filter column of each run along a filter row: every column, or only 0.
        let run_starts = g.k_w / self.taps;
        // The first pixel's position, then the next ones by steps (no divisions per pixel).
        let (mut ow, mut oh, mut n) = (first % g.out_w, (first / g.out_w) % g.out_h, first / (g.out_w * g.out_h));
        let window_h = (g.k_h as isize - 1) * dil_h;
        let window_w = (g.k_w as isize - 1) * dil_w;
        for i in 0..MR {
            let top = (oh * g.stride[0]) as isize - g.pad[0] as isize;
            let left = (ow * g.stride[1]) as isize - g.pad[1] as isize;
            let item = n;
            (ow, oh, n) = match (ow + 1 == g.out_w, oh + 1 == g.out_h) {
                (false, _) => (ow + 1, oh, n),
                (true, false) => (0, oh + 1, n),
                (true, true) => (0, 0, n + 1),
            };
            if i < count && top >= 0 && left >= 0 && top + window_h < in_h && left + window_w < in_w {
                // The whole window is inside: each run starts a fixed step after the last.
                let corner = ((item * g.in_h + top as usize) * g.in_w + left as usize) * cin;
                let (step_h, step_w) = (g.dilation[0] * g.in_w * cin, g.dilation[1] * cin);
                let mut entries = table.iter_mut();
                for kh in 0..g.k_h {
                    for kw0 in 0..run_starts {
                        let Some(entry) = entries.next() else { break };
                        let at = corner + kh * step_h + kw0 * step_w;
                        entry[i] = x[at..at + self.len].as_ptr();
                    }
                }
                continue;
            }
            let mut entries = table.iter_mut().enumerate();
            for kh in 0..g.k_h as isize {
                let ih = top + kh * dil_h;
                let row_inside = i < count && ih >= 0 && ih < in_h;
                let row_base = (item * g.in_h).wrapping_add(ih as usize).wrapping_mul(g.in_w);
                for kw0 in 0..run_starts as isize {
                    let Some((r, entry)) = entries.next() else { break };
                    let iw0 = left + kw0 * dil_w;
                    let last = iw0 + (self.taps as isize - 1) * dil_w;
                    entry[i] = if !row_inside || last < 0 || iw0 >= in_w {
                        zeros.as_ptr()
                    } else if iw0 >= 0 && last < in_w {
                        let at = (row_base + iw0 as usize) * cin;
                        x[at..at + self.len].as_ptr()
                    } else {
                        // Partly in the padding: copy the taps that are inside.
                        let dst = &mut scratch[(r * MR + i) * self.len..][..self.len];
                        for (t, d) in dst.chunks_exact_mut(cin).enumerate() {
                            let iw = iw0 + t as isize * dil_w;
                            if iw >= 0 && iw < in_w {
                                let at = (row_base + iw as usize) * cin;
                                d.copy_from_slice(&x[at..at + cin]);
                            } else {
                                d.fill(0.0);
                            }
                        }
                        std::ptr::null()
                    };
                }
            }
        }
        let base = scratch.as_ptr();
        for (r, entry) in table.iter_mut().enumerate() {
            for (i, ptr) in entry.iter_mut().enumerate() {
                if ptr.is_null() {
                    // SAFETY: slot `r * MR + i` of `scratch` is inside it (it holds
                    // `count * MR` runs) and was just filled.
                    *ptr = unsafe { base.add((r * MR + i) * self.len) };
                }
            }
        }
        Source::Table(table)
    }

    /// [`Source::Strided`] for a full tile of pixels whose windows lie inside the input, with
    /// one run per filter row.
    fn strided<'t>(&self, x: &[f32], g: &ConvGeom, first: usize, count: usize) -> Option<Source<'t>> {
        if count != MR || self.taps != g.k_w {
            return None;
        }
        let window_h = (g.k_h - 1) * g.dilation[0];
        let window_w = (g.k_w - 1) * g.dilation[1];
        let step = g.dilation[0] * g.in_w * g.in_c;
        let mut starts = [std::ptr::null(); MR];
        for (i, start) in starts.iter_mut().enumerate() {
            let p = first + i;
            let (ow, oh, n) = (p % g.out_w, (p / g.out_w) % g.out_h, p / (g.out_w * g.out_h));
            let top = (oh * g.stride[0]).checked_sub(g.pad[0]).filter(|t| t + window_h < g.in_h)?;
            let left = (ow * g.stride[1]).checked_sub(g.pad[1]).filter(|l| l + window_w < g.in_w)?;
            let at = ((n * g.in_h + top) * g.in_w + left) * g.in_c;
            // The last run of the window, `(k_h - 1) * step` further on, is inside `x` too.
            *start = x.get(at..at + window_h * g.in_w * g.in_c + self.len)?.as_ptr();
        }
        Some(Source::Strided { starts, step })
    }
}

/// Where the runs of one tile's pixels start.
#[derive(Clone, Copy)]
enum Source<'t> {
    /// Run `r` of pixel `i` starts at `table[r][i]`.
    Table(&'t [[*const f32; MR]]),
    /// Run `r` of pixel `i` starts at `starts[i] + r * step`, for `count` runs.
    Strided { starts: [*const f32; MR], step: usize },
}

/// One tile (where its runs start, from [`Runs::lookup`]) times one filter block, each run
/// `len` floats, on the vector width the block needs.
fn run_tile(src: Source<'_>, len: usize, count: usize, out_c: usize, block: &Block, out: &mut [f32]) {
    let dims = Dims { len, count, out_c };
    match src {
        Source::Table(table) => on_width(table.iter().copied(), dims, block, out),
        Source::Strided { starts, step } => {
            let runs = block.rows() / len.max(1);
            let table = (0..runs).map(move |r| starts.map(|p| p.wrapping_add(r * step)));
            on_width(table, dims, block, out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::cpu::conv::conv_geometry;
    use crate::runtime::padding::Padding;

    /// The direct kernel against the definition, over geometries chosen to reach each path
    /// of the run lookup (whole windows, rows and taps in the padding, short last tiles, tiles
    /// across rows and batch items, dilated columns) and each vector width of a filter block.
    #[test]
    fn matches_the_definition() {
        if !has_avx512() {
            eprintln!("no AVX-512F on this CPU: the direct kernel does not run here");
            return;
        }
        // (input, filter, stride, dilations, padding)
        type Case = ([usize; 4], [usize; 4], usize, [usize; 2], Padding);
        let cases: &[Case] = &[
            ([1, 23, 22, 3], [7, 7, 3, 64], 2, [1, 1], Padding::Same),
            ([2, 9, 11, 32], [3, 3, 32, 70], 1, [1, 1], Padding::Same),
            ([2, 9, 11, 5], [3, 3, 5, 17], 1, [1, 1], Padding::Valid),
            ([1, 12, 13, 4], [3, 2, 4, 33], 3, [1, 1], Padding::Same),
            ([2, 10, 10, 2], [3, 3, 2, 49], 1, [2, 3], Padding::Same),
            ([1, 7, 12, 1], [5, 5, 1, 1], 1, [1, 2], Padding::Valid),
            ([3, 4, 5, 6], [1, 1, 6, 16], 2, [1, 1], Padding::Same),
            ([1, 8, 8, 3], [2, 2, 3, 130], 2, [1, 1], Padding::Same),
        ];
        for &(xs, fs, s, d, padding) in cases {
            let g = conv_geometry(&xs, &fs, [1, s, s, 1], [1, d[0], d[1], 1], padding).unwrap();
            assert!(supported(&g), "{g:?}");
            let x: Vec<f32> = (0..xs.iter().product()).map(|i: usize| ((i * 7) % 13) as f32 * 0.25).collect();
            let f: Vec<f32> = (0..fs.iter().product()).map(|i: usize| ((i * 5) % 11) as f32 * 0.5 - 2.0).collect();
            let mut out = vec![f32::NAN; g.rows() * g.out_c];
            conv2d(&x, &f, &g, &mut out).unwrap();
            assert_eq!(out, g.reference(&x, &f), "{xs:?} * {fs:?} s{s} d{d:?} {padding:?}");
        }
    }

    #[test]
    fn a_grouped_or_too_long_filter_is_left_to_the_patch_matrix() {
        let g = conv_geometry(&[1, 4, 4, 4], &[3, 3, 2, 4], [1; 4], [1; 4], Padding::Same).unwrap();
        assert!(!supported(&g), "grouped");
        let g = conv_geometry(&[1, 4, 4, 512], &[3, 3, 512, 4], [1; 4], [1; 4], Padding::Same).unwrap();
        assert!(!supported(&g), "K = 4608 > MAX_K");
        let mut out = vec![0.0; g.rows() * g.out_c];
        assert!(conv2d(&[0.0; 4 * 4 * 512], &[0.0; 9 * 512 * 4], &g, &mut out).is_err());
    }
}
