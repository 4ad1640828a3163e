//! A safe wrapper over the `gemm` crate's multi-threaded SIMD matrix multiply.

use crate::error::{Error, Result};

/// A row-major matrix operand: `rows x cols`, optionally read transposed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MatRef<'a> {
    /// The data, row-major, `rows * cols` elements as stored.
    pub(crate) data: &'a [f32],
    /// Rows as stored.
    pub(crate) rows: usize,
    /// Columns as stored.
    pub(crate) cols: usize,
    /// Use the transpose of the stored matrix.
    pub(crate) transpose: bool,
}

impl MatRef<'_> {
    /// (rows, cols) of the logical (possibly transposed) matrix.
    fn dims(&self) -> (usize, usize) {
        if self.transpose {
            (self.cols, self.rows)
        } else {
            (self.rows, self.cols)
        }
    }
    /// (column stride, row stride) of the logical matrix.
    fn strides(&self) -> (isize, isize) {
        let c = self.cols as isize;
        if self.transpose {
            (c, 1)
        } else {
            (1, c)
        }
    }
}

/// Elements of work (m*n*k) below which threading costs more than it saves.
const PARALLEL_MIN_WORK: usize = 1 << 18;

/// `out = a * b` (or `out += a * b` when `accumulate`), with `out` row-major `m x n`, on all
/// of rayon's threads for large products.
pub(crate) fn matmul(a: MatRef<'_>, b: MatRef<'_>, out: &mut [f32], accumulate: bool) -> Result<()> {
    gemm_on(a, b, out, accumulate, true)
}

/// [`matmul`] on the calling thread only, for callers that already split their work across
/// threads.
pub(crate) fn matmul_serial(a: MatRef<'_>, b: MatRef<'_>, out: &mut [f32], accumulate: bool) -> Result<()> {
    gemm_on(a, b, out, accumulate, false)
}

fn gemm_on(a: MatRef<'_>, b: MatRef<'_>, out: &mut [f32], accumulate: bool, threaded: bool) -> Result<()> {
    let (m, k) = a.dims();
    let (k2, n) = b.dims();
    if k != k2 || a.data.len() < a.rows * a.cols || b.data.len() < b.rows * b.cols || out.len() < m * n {
        return Err(Error::internal(format!("gemm: bad operands {m}x{k} * {k2}x{n} into {}", out.len())));
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if !accumulate {
            out[..m * n].fill(0.0);
        }
        return Ok(());
    }
    let threads = rayon::current_num_threads();
    let par = if threaded && m * n * k >= PARALLEL_MIN_WORK && threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    let (a_cs, a_rs) = a.strides();
    let (b_cs, b_rs) = b.strides();
    // SAFETY: the bounds above guarantee every index gemm touches is inside the slices:
    // `a` is m x k, `b` is k x n and `out` is m x n with the strides given, and `out`
    // does not alias the inputs (it is a unique borrow).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a_cs,
            a_rs,
            b.data.as_ptr(),
            b_cs,
            b_rs,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            par,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut o = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                o[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        o
    }

    #[test]
    fn matches_naive_with_transposes() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.91).cos()).collect();
        let want = naive(&a, &b, m, k, n);
        let mut out = vec![0.0; m * n];
        matmul(
            MatRef { data: &a, rows: m, cols: k, transpose: false },
            MatRef { data: &b, rows: k, cols: n, transpose: false },
            &mut out,
            false,
        )
        .unwrap();
        for (x, y) in out.iter().zip(&want) {
            assert!((x - y).abs() < 1e-5);
        }
        // a^T stored as k x m, b^T stored as n x k.
        let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
        let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        let mut out2 = vec![0.0; m * n];
        matmul(
            MatRef { data: &at, rows: k, cols: m, transpose: true },
            MatRef { data: &bt, rows: n, cols: k, transpose: true },
            &mut out2,
            false,
        )
        .unwrap();
        for (x, y) in out2.iter().zip(&want) {
            assert!((x - y).abs() < 1e-5);
        }
    }
}
