//! Direct `Conv2D` for x86-64 with AVX-512: an indirect GEMM that reads the receptive fields
//! straight from the input instead of copying them into an im2col patch matrix.
//!
//! A tile of [`MR`] output pixels times one block of up to 64 output channels is held in 24
//! vector registers. For each filter tap the tile looks up, per pixel, the run of `in_c`
//! input channels the tap reads (a shared run of zeros where the tap falls in the padding),
//! then multiplies it by the tap's rows of the filter, packed once per call into blocks of
//! 16-channel vectors. So a stem convolution with 3 input channels (`K = 147`) costs no
//! copies of its patches at all, and a 3x3 convolution no patch matrix. The filter block
//! stays in the core's cache while a task's tiles go by; tasks are runs of tiles, in
//! parallel on rayon.
//!
//! [`supported`] says when this path applies (the CPU has AVX-512F, one group, and a filter
//! block small enough for the cache); otherwise `im2col` runs its patch matrix and GEMM. A
//! depthwise convolution fits the same shape: one input run per tap and pixel, multiplied
//! elementwise by the tap's filter vector instead of broadcast, so it can become a second
//! micro-kernel beside [`tile`] reusing the tap lookup ([`Tile::runs`]).

use rayon::prelude::*;

use super::conv::ConvGeom;
use crate::error::{Error, Result};

/// Output pixels per tile.
const MR: usize = 6;
/// Output channels per vector.
const LANES: usize = 16;
/// Vectors (of [`LANES`] channels) per filter block.
const MAX_NV: usize = 4;
/// The largest patch (taps times input channels) whose filter block, `K x 64` floats, is
/// left to this path: 512 KiB, half a core's L2.
const MAX_K: usize = 2048;
/// Tiles per parallel task, at most.
const MAX_TILES_PER_TASK: usize = 64;

/// Whether [`conv2d`] takes this geometry on this CPU.
pub(super) fn supported(g: &ConvGeom) -> bool {
    let k = g.k_h * g.k_w * g.patch_c;
    g.groups() == 1 && k > 0 && k <= MAX_K && has_avx512()
}

#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

#[cfg(not(target_arch = "x86_64"))]
fn has_avx512() -> bool {
    false
}

/// The filter, `[taps * in_c, out_c]` row-major, split into blocks of at most 64 output
/// channels, each `[taps * in_c, 16 * nv]` row-major with its last vector zero-padded.
struct Packed {
    blocks: Vec<Block>,
}

struct Block {
    /// First output channel.
    c0: usize,
    /// Output channels of the block (`<= 16 * nv`).
    width: usize,
    /// Vectors per row.
    nv: usize,
    data: Vec<f32>,
}

impl Packed {
    fn new(filter: &[f32], k: usize, out_c: usize) -> Packed {
        let blocks = (0..out_c)
            .step_by(LANES * MAX_NV)
            .map(|c0| {
                let width = (out_c - c0).min(LANES * MAX_NV);
                let nv = width.div_ceil(LANES);
                let row = nv * LANES;
                let mut data = vec![0.0; k * row];
                for (r, dst) in data.chunks_exact_mut(row).enumerate() {
                    dst[..width].copy_from_slice(&filter[r * out_c + c0..][..width]);
                }
                Block { c0, width, nv, data }
            })
            .collect();
        Packed { blocks }
    }
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
                runs.lookup(x, &zeros, g, first + i * MR, count, table, scratch);
                for block in &packed.blocks {
                    run_tile(table, runs.len, count, g.out_c, block, tile_out);
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

    /// Fills `table[r][i]` with the start of run `r` of pixel `first + i` for the `count`
    /// pixels of a tile: a place in `x` when the run lies inside the input, `zeros` when it
    /// lies wholly in the padding (or the pixel is past `count`), else a copy in `scratch`
    /// with zeros for the padded taps. Each pointer has `self.len` floats to read, valid while
    /// `x`, `zeros` and `scratch` are neither moved nor written.
    #[allow(clippy::too_many_arguments)]
    fn lookup(
        &self,
        x: &[f32],
        zeros: &[f32],
        g: &ConvGeom,
        first: usize,
        count: usize,
        table: &mut [[*const f32; MR]],
        scratch: &mut [f32],
    ) {
        let cin = g.in_c;
        for i in 0..MR {
            let p = first + i;
            let (ow, oh, n) = (p % g.out_w, (p / g.out_w) % g.out_h, p / (g.out_w * g.out_h));
            let top = (oh * g.stride[0]) as isize - g.pad[0] as isize;
            let left = (ow * g.stride[1]) as isize - g.pad[1] as isize;
            for (r, entry) in table.iter_mut().enumerate() {
                let (kh, kw0) = (r * self.taps / g.k_w, r * self.taps % g.k_w);
                let ih = top + (kh * g.dilation[0]) as isize;
                let iw0 = left + (kw0 * g.dilation[1]) as isize;
                let row_inside = i < count && ih >= 0 && (ih as usize) < g.in_h;
                let pixel = |iw: isize| ((n * g.in_h + ih as usize) * g.in_w + iw as usize) * cin;
                let last = iw0 + (self.taps as isize - 1) * g.dilation[1] as isize;
                entry[i] = if !row_inside || last < 0 || iw0 >= g.in_w as isize {
                    zeros.as_ptr()
                } else if iw0 >= 0 && last < g.in_w as isize {
                    x[pixel(iw0)..pixel(iw0) + self.len].as_ptr()
                } else {
                    // Partly in the padding: copy the taps that are inside.
                    let dst = &mut scratch[(r * MR + i) * self.len..][..self.len];
                    for (t, d) in dst.chunks_exact_mut(cin).enumerate() {
                        let iw = iw0 + (t * g.dilation[1]) as isize;
                        if iw >= 0 && iw < g.in_w as isize {
                            d.copy_from_slice(&x[pixel(iw)..pixel(iw) + cin]);
                        } else {
                            d.fill(0.0);
                        }
                    }
                    std::ptr::null()
                };
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
    }
}

/// One tile (its run table from [`Runs::lookup`]) times one filter block, on the vector
/// width the block needs.
fn run_tile(table: &[[*const f32; MR]], len: usize, count: usize, out_c: usize, block: &Block, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        let tile = Tile { table, len, count, out_c };
        // SAFETY: `supported` (checked by `conv2d`) found AVX-512F on this CPU; the table's
        // pointers each have `len` floats to read (`Runs::lookup`), and the block holds
        // `table.len() * len` rows (one per filter tap and input channel).
        unsafe {
            match block.nv {
                1 => avx512::tile::<1>(&tile, block, out),
                2 => avx512::tile::<2>(&tile, block, out),
                3 => avx512::tile::<3>(&tile, block, out),
                _ => avx512::tile::<4>(&tile, block, out),
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (table, len, count, out_c, block, out);
}

/// What the micro-kernel reads of one tile.
struct Tile<'a> {
    table: &'a [[*const f32; MR]],
    len: usize,
    count: usize,
    out_c: usize,
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::{_mm512_fmadd_ps, _mm512_loadu_ps, _mm512_mask_storeu_ps, _mm512_set1_ps, _mm512_setzero_ps};

    use super::{Block, Tile, LANES, MR};

    /// `out[pixel][block.c0..][..block.width]` for each pixel of `tile`, `NV == block.nv`.
    ///
    /// # Safety
    /// The CPU must have AVX-512F; each pointer of `tile.table` must have `tile.len` floats to
    /// read, and `block.data` at least `tile.table.len() * tile.len * NV * LANES`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn tile<const NV: usize>(tile: &Tile<'_>, block: &Block, out: &mut [f32]) {
        let row = NV * LANES;
        let mut acc = [[_mm512_setzero_ps(); NV]; MR];
        let mut w = block.data.as_ptr();
        for runs in tile.table {
            for c in 0..tile.len {
                // SAFETY: the caller's bounds: `w` walks the block's rows in order, one per
                // (run, c), and each run has `tile.len` floats.
                unsafe {
                    let mut b = [_mm512_setzero_ps(); NV];
                    for (v, bv) in b.iter_mut().enumerate() {
                        *bv = _mm512_loadu_ps(w.add(v * LANES));
                    }
                    for (acc_i, run) in acc.iter_mut().zip(runs) {
                        let a = _mm512_set1_ps(*run.add(c));
                        for (acc_iv, bv) in acc_i.iter_mut().zip(&b) {
                            *acc_iv = _mm512_fmadd_ps(a, *bv, *acc_iv);
                        }
                    }
                    w = w.add(row);
                }
            }
        }
        for (acc_i, dst) in acc.iter().zip(out.chunks_mut(tile.out_c)).take(tile.count) {
            let dst = &mut dst[block.c0..block.c0 + block.width];
            for (v, acc_iv) in acc_i.iter().enumerate() {
                let lanes = (block.width - v * LANES).min(LANES);
                let mask = if lanes == LANES { u16::MAX } else { (1u16 << lanes) - 1 };
                // SAFETY: the mask writes `lanes` floats from `v * LANES`, all inside `dst`.
                unsafe { _mm512_mask_storeu_ps(dst.as_mut_ptr().add(v * LANES), mask, *acc_iv) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_the_filter_in_blocks_of_sixty_four_channels() {
        let (k, out_c) = (3, 70);
        let f: Vec<f32> = (0..k * out_c).map(|i| i as f32).collect();
        let p = Packed::new(&f, k, out_c);
        let shapes: Vec<_> = p.blocks.iter().map(|b| (b.c0, b.width, b.nv, b.data.len())).collect();
        assert_eq!(shapes, vec![(0, 64, 4, 3 * 64), (64, 6, 1, 3 * 16)]);
        assert_eq!(p.blocks[1].data[16..16 + 7], [134.0, 135.0, 136.0, 137.0, 138.0, 139.0, 0.0]);
    }
}
