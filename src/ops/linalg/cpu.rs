//! CPU kernels of the matrix products: the SIMD GEMM (`runtime::cpu::gemm`) per float32
//! batch, a plain loop for float64 and int32, and the run-time shape checks both devices use.

use ndarray::{ArcArray, ArrayD, IxDyn};
use rayon::prelude::*;

use crate::error::{invalid, Error, Result};
use crate::runtime::cpu::gemm::{matmul, MatRef};
use crate::tensor::{dims_string, try_zeros, Tensor, ZeroBits};

/// The CPU kernel of both ops for any supported dtype (rank >= 2 checked by the caller).
pub(super) fn matmul_any(a: &Tensor, b: &Tensor, ta: bool, tb: bool) -> Result<Tensor> {
    Ok(match (a, b) {
        (Tensor::F32(a), Tensor::F32(b)) => batch_matmul(a, b, ta, tb)?.into(),
        (Tensor::F64(a), Tensor::F64(b)) => plain_matmul(a, b, ta, tb, |acc, x, y| acc + x * y)?.into(),
        // Wrapping, as TF's int32 kernel does in two's complement.
        (Tensor::I32(a), Tensor::I32(b)) => {
            plain_matmul(a, b, ta, tb, |acc: i32, x: i32, y| acc.wrapping_add(x.wrapping_mul(y)))?.into()
        }
        (a, b) => {
            return Err(Error::unimplemented(format!(
                "MatMul: only float32, float64 and int32 are supported, got {} and {}",
                a.dtype(),
                b.dtype()
            )))
        }
    })
}

/// Per-batch work (m*n*k) below which batches run in parallel, each GEMM on one thread;
/// above it, batches run one after another and each GEMM uses every thread.
pub(super) const BATCH_PARALLEL_MAX_WORK: usize = 1 << 18;

/// The offset (in matrices) into an operand of batch shape `dims` of batch `i` of the
/// broadcast batch shape `out`; size-1 (and missing leading) dimensions repeat. Computed per
/// matrix, so no table the size of the batch is allocated.
pub(super) fn batch_offset(i: usize, dims: &[usize], out: &[usize]) -> usize {
    let lead = out.len() - dims.len();
    let (mut rest, mut offset, mut stride) = (i, 0, 1);
    for d in (0..out.len()).rev() {
        let size = out[d].max(1);
        let idx = rest % size;
        rest /= size;
        if d >= lead {
            let dim = dims[d - lead];
            if dim != 1 {
                offset += idx * stride;
            }
            stride *= dim;
        }
    }
    offset
}

/// The run-time shape checks of `MatMul` and `BatchMatMulV2` (rank >= 2 checked by the
/// caller): `(m, k, n)` and the broadcast batch dimensions.
pub(super) fn matmul_dims(
    sa: &[usize],
    sb: &[usize],
    ta: bool,
    tb: bool,
) -> Result<((usize, usize, usize), Vec<usize>)> {
    let (ra, rb) = (sa.len(), sb.len());
    let (m, k) = if ta { (sa[ra - 1], sa[ra - 2]) } else { (sa[ra - 2], sa[ra - 1]) };
    let (k2, n) = if tb { (sb[rb - 1], sb[rb - 2]) } else { (sb[rb - 2], sb[rb - 1]) };
    if k != k2 {
        invalid!("Matrix size-incompatible: In[0]: {}, In[1]: {}", dims_string(sa), dims_string(sb));
    }
    let batch = crate::ops::elementwise::broadcast_shapes(&sa[..ra - 2], &sb[..rb - 2]).map_err(|_| {
        Error::invalid_argument(format!(
            "In[0] and In[1] must have compatible batch dimensions: {} vs. {}",
            dims_string(sa),
            dims_string(sb)
        ))
    })?;
    Ok(((m, k, n), batch))
}

/// The shared kernel of `MatMul` and `BatchMatMulV2` (rank >= 2 checked by the caller).
pub(super) fn batch_matmul(
    a: &ArcArray<f32, IxDyn>,
    b: &ArcArray<f32, IxDyn>,
    ta: bool,
    tb: bool,
) -> Result<ArrayD<f32>> {
    let (sa, sb) = (a.shape(), b.shape());
    let (ra, rb) = (sa.len(), sb.len());
    let (a_rows, a_cols, b_rows, b_cols) = (sa[ra - 2], sa[ra - 1], sb[rb - 2], sb[rb - 1]);
    let ((m, k, n), batch) = matmul_dims(sa, sb, ta, tb)?;
    let (ba, bb) = (&sa[..ra - 2], &sb[..rb - 2]);
    let mut out_shape = batch.clone();
    out_shape.extend([m, n]);
    let nbatch: usize = batch.iter().product();
    // The output can be far larger than the inputs (an outer product): checked. The GEMM
    // writes every element, so a recycled buffer needs no zeroing.
    let mut out = crate::runtime::cpu::recycle::take_full(&out_shape)?;
    if !out.is_empty() {
        let (ca, cb) = (a.as_standard_layout(), b.as_standard_layout());
        let da = ca.as_slice().ok_or_else(|| Error::internal("matmul: input 0 not contiguous"))?;
        let db = cb.as_slice().ok_or_else(|| Error::internal("matmul: input 1 not contiguous"))?;
        let (size_a, size_b) = (a_rows * a_cols, b_rows * b_cols);
        let one = |i: usize, o: &mut [f32]| -> Result<()> {
            let (oa, ob) = (batch_offset(i, ba, &batch), batch_offset(i, bb, &batch));
            let ma = MatRef { data: &da[oa * size_a..][..size_a], rows: a_rows, cols: a_cols, transpose: ta };
            let mb = MatRef { data: &db[ob * size_b..][..size_b], rows: b_rows, cols: b_cols, transpose: tb };
            matmul(ma, mb, o, false)
        };
        if nbatch > 1 && m * n * k < BATCH_PARALLEL_MAX_WORK {
            out.par_chunks_mut(m * n).enumerate().try_for_each(|(i, o)| one(i, o))?;
        } else {
            out.chunks_mut(m * n).enumerate().try_for_each(|(i, o)| one(i, o))?;
        }
    }
    ArrayD::from_shape_vec(IxDyn(&out_shape), out).map_err(|e| Error::internal(e.to_string()))
}

/// A plain kernel for the dtypes the GEMM does not take: `acc(sum, x, y)` adds one product.
pub(super) fn plain_matmul<T>(
    a: &ArcArray<T, IxDyn>,
    b: &ArcArray<T, IxDyn>,
    ta: bool,
    tb: bool,
    acc: impl Fn(T, T, T) -> T + Sync,
) -> Result<ArrayD<T>>
where
    T: ZeroBits + Default + Send + Sync,
{
    let (sa, sb) = (a.shape(), b.shape());
    let (ra, rb) = (sa.len(), sb.len());
    let (a_cols, b_cols) = (sa[ra - 1], sb[rb - 1]);
    let ((m, k, n), batch) = matmul_dims(sa, sb, ta, tb)?;
    let mut out_shape = batch.clone();
    out_shape.extend([m, n]);
    let mut out = try_zeros::<T>(&out_shape)?;
    if !out.is_empty() {
        let (ca, cb) = (a.as_standard_layout(), b.as_standard_layout());
        let da = ca.as_slice().ok_or_else(|| Error::internal("matmul: input 0 not contiguous"))?;
        let db = cb.as_slice().ok_or_else(|| Error::internal("matmul: input 1 not contiguous"))?;
        let (size_a, size_b) = (sa[ra - 2] * a_cols, sb[rb - 2] * b_cols);
        out.par_chunks_mut(m * n).enumerate().for_each(|(i, o)| {
            let (oa, ob) = (batch_offset(i, &sa[..ra - 2], &batch), batch_offset(i, &sb[..rb - 2], &batch));
            let (ma, mb) = (&da[oa * size_a..][..size_a], &db[ob * size_b..][..size_b]);
            for (r, row) in o.chunks_mut(n).enumerate() {
                for (c, v) in row.iter_mut().enumerate() {
                    *v = (0..k).fold(T::default(), |s, p| {
                        let x = if ta { ma[p * a_cols + r] } else { ma[r * a_cols + p] };
                        let y = if tb { mb[c * b_cols + p] } else { mb[p * b_cols + c] };
                        acc(s, x, y)
                    });
                }
            }
        });
    }
    ArrayD::from_shape_vec(IxDyn(&out_shape), out).map_err(|e| Error::internal(e.to_string()))
}
