//! Streaming stores for outputs far larger than the caches. A plain store to a line not in
//! the cache first reads the line from memory (to own it), so a kernel that writes a huge
//! output moves its bytes twice; a non-temporal store writes whole lines without reading
//! them and without evicting the inputs still to be read. So an elementwise pass over
//! arrays of [`MIN_ELEMS`] or more computes each block in L1 and streams it out.

use std::mem::MaybeUninit;

/// Outputs of at least this many floats (16 MiB, half the L3 of this class of machine) are
/// streamed; smaller ones are likely read again soon, from the cache.
pub(crate) const MIN_ELEMS: usize = 1 << 22;

/// Copies `src` into `dst` (the shorter's length) with non-temporal stores where the CPU has
/// them (x86-64), else with plain ones. Call [`fence`] once the task's last copy is done.
pub(crate) fn copy(dst: &mut [MaybeUninit<f32>], src: &[f32]) {
    let n = dst.len().min(src.len());
    let (dst, src) = (&mut dst[..n], &src[..n]);
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_loadu_ps, _mm_stream_ps};
        // Plain stores up to the first 16-byte boundary, then four floats per store.
        let head = dst.as_ptr().align_offset(16).min(n);
        copy_plain(&mut dst[..head], &src[..head]);
        let body = (n - head) / 4 * 4;
        let (d, s) = (&mut dst[head..head + body], &src[head..head + body]);
        for (d, s) in d.chunks_exact_mut(4).zip(s.chunks_exact(4)) {
            // SAFETY: `d` is 4 floats starting on a 16-byte boundary (the head aligned the
            // first chunk, each is 16 bytes long), `s` 4 readable floats; SSE is part of
            // x86-64.
            unsafe { _mm_stream_ps(d.as_mut_ptr().cast::<f32>(), _mm_loadu_ps(s.as_ptr())) };
        }
        copy_plain(&mut dst[head + body..], &src[head + body..]);
    }
    #[cfg(not(target_arch = "x86_64"))]
    copy_plain(dst, src);
}

fn copy_plain(dst: &mut [MaybeUninit<f32>], src: &[f32]) {
    dst.iter_mut().zip(src).for_each(|(d, &s)| {
        d.write(s);
    });
}

/// Orders this thread's streamed stores before its later stores (so that whoever is told the
/// work is done sees them).
pub(crate) fn fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `sfence` has no preconditions; SSE is part of x86-64.
    unsafe {
        std::arch::x86_64::_mm_sfence()
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_every_float_at_any_alignment() {
        let src: Vec<f32> = (0..103).map(|i| i as f32 * 0.5 - 7.0).collect();
        for skip in 0..4 {
            let mut dst = vec![MaybeUninit::new(f32::NAN); 104];
            copy(&mut dst[skip..skip + 99], &src[..99]);
            fence();
            // SAFETY: every element was initialised with NaN, then some overwritten.
            let got: Vec<f32> = dst.iter().map(|v| unsafe { v.assume_init() }).collect();
            assert!(got[..skip].iter().all(|v| v.is_nan()));
            assert_eq!(&got[skip..skip + 99], &src[..99]);
            assert!(got[skip + 99..].iter().all(|v| v.is_nan()));
        }
    }
}
