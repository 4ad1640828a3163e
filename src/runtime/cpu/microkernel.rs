//! The register-tiled micro-kernel of the direct convolution ([`super::conv_direct`]), and
//! the filter packing it reads.
//!
//! A tile of [`MR`] output pixels times one [`Block`] of up to 64 output channels (`NV`
//! vectors of [`LANES`]) is held in up to 24 AVX-512 registers. The kernel walks the tile's
//! input *runs*, contiguous stretches of floats each pixel reads (a filter row's taps, or one
//! tap's channels), broadcasting each float and multiplying it into the block's matching row.
//! Each loop step loads `NV` filter vectors and `MR` input floats for `MR * NV`
//! fused multiply-adds. A depthwise convolution would be a second kernel here: one input
//! vector per tap and pixel times the tap's filter vector, without the broadcast.

/// Output pixels per tile.
pub(super) const MR: usize = 6;
/// Output channels per vector.
pub(super) const LANES: usize = 16;
/// Vectors (of [`LANES`] channels) per filter block.
const MAX_NV: usize = 4;

/// Whether this CPU runs the kernel.
#[cfg(target_arch = "x86_64")]
pub(super) fn has_avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

#[cfg(not(target_arch = "x86_64"))]
pub(super) fn has_avx512() -> bool {
    false
}

/// The filter, `[taps * in_c, out_c]` row-major, split into blocks of at most 64 output
/// channels, each `[taps * in_c, 16 * nv]` row-major with its last vector zero-padded.
pub(super) struct Packed {
    pub(super) blocks: Vec<Block>,
}

pub(super) struct Block {
    /// First output channel.
    c0: usize,
    /// Output channels of the block (`<= 16 * nv`).
    width: usize,
    /// Vectors per row.
    nv: usize,
    data: Vec<f32>,
}

impl Block {
    /// Rows of the block: one per filter tap and input channel.
    pub(super) fn rows(&self) -> usize {
        self.data.len() / (self.nv * LANES)
    }
}

impl Packed {
    pub(super) fn new(filter: &[f32], k: usize, out_c: usize) -> Packed {
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

/// The sizes the micro-kernel needs besides its runs.
#[derive(Clone, Copy)]
pub(super) struct Dims {
    /// Floats per run.
    pub(super) len: usize,
    /// Pixels of the tile that exist.
    pub(super) count: usize,
    /// Output channels (the row length of `out`).
    pub(super) out_c: usize,
}

pub(super) fn on_width<I: Iterator<Item = [*const f32; MR]>>(runs: I, dims: Dims, block: &Block, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `supported` (checked by `conv2d`) found AVX-512F on this CPU; each start
        // has `dims.len` floats to read (`Runs::lookup`), and the block holds one row per
        // run and float of a run.
        unsafe {
            match block.nv {
                1 => avx512::tile::<1, I>(runs, dims, block, out),
                2 => avx512::tile::<2, I>(runs, dims, block, out),
                3 => avx512::tile::<3, I>(runs, dims, block, out),
                _ => avx512::tile::<4, I>(runs, dims, block, out),
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (runs, dims, block, out);
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::{
        _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_mask_storeu_ps, _mm512_set1_ps, _mm512_setzero_ps,
    };

    use super::{Block, Dims, LANES, MR};

    /// `out[pixel][block.c0..][..block.width]` for each of the `dims.count` pixels of a tile,
    /// `NV == block.nv`: the sum over runs and their floats of each pixel's input float times
    /// the block's row for that run and float.
    ///
    /// # Safety
    /// The CPU must have AVX-512F; each pointer `runs` yields must have `dims.len` floats to
    /// read, and `block.data` at least as many rows of `NV * LANES` as runs times `dims.len`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn tile<const NV: usize, I: Iterator<Item = [*const f32; MR]>>(
        runs: I,
        dims: Dims,
        block: &Block,
        out: &mut [f32],
    ) {
        let row = NV * LANES;
        let mut acc = [[_mm512_setzero_ps(); NV]; MR];
        let mut w = block.data.as_ptr();
        for runs in runs {
            for c in 0..dims.len {
                // SAFETY: the caller's bounds: `w` walks the block's rows in order, one per
                // (run, c), and each run has `dims.len` floats.
                unsafe {
                    let mut b = [_mm512_setzero_ps(); NV];
                    for (v, bv) in b.iter_mut().enumerate() {
                        *bv = _mm512_loadu_ps(w.add(v * LANES));
                    }
                    for (acc_i, run) in acc.iter_mut().zip(&runs) {
                        let a = _mm512_set1_ps(*run.add(c));
                        for (acc_iv, bv) in acc_i.iter_mut().zip(&b) {
                            *acc_iv = _mm512_fmadd_ps(a, *bv, *acc_iv);
                        }
                    }
                    w = w.add(row);
                }
            }
        }
        for (acc_i, dst) in acc.iter().zip(out.chunks_mut(dims.out_c)).take(dims.count) {
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
