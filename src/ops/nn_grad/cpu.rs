//! CPU kernels of the NN gradients kept beside them (the convolution and pool gradients are
//! `runtime::cpu::{conv_grad, pool_grad}`): the typed pool-gradient call and `BiasAddGrad`.

use super::PoolGrad;
use crate::error::{invalid, Error, Result};
use crate::runtime::cpu::conv::{array, contiguous};
use crate::runtime::cpu::pool::PoolElem;
use crate::runtime::cpu::pool_grad;
use crate::tensor::Tensor;

/// Runs a pool gradient kernel on float tensors of one dtype.
pub(super) fn pool_grad_typed<T: PoolElem>(
    op: &PoolGrad,
    g: &crate::runtime::cpu::pool::PoolGeom,
    arrays: &[&ndarray::ArcArray<T, ndarray::IxDyn>],
) -> Result<Tensor>
where
    ndarray::ArrayD<T>: Into<Tensor>,
{
    let xs = [g.batch, g.in_h, g.in_w, g.chan];
    let mut dx = crate::tensor::try_full(&xs, T::ZERO)?;
    match (op.avg_shape, arrays) {
        (Some(_), [dy]) => pool_grad::avg_pool_grad(&contiguous(dy), g, &mut dx)?,
        (None, [x, _, dy]) => pool_grad::max_pool_grad(&contiguous(x), &contiguous(dy), g, &mut dx)?,
        _ => return Err(Error::internal("pool gradient: wrong inputs")),
    }
    Ok(array(&xs, dx)?.into())
}

/// TF's run-time check of `BiasAddGrad`'s input.
pub(super) fn check_bias_grad_shape(s: &[usize]) -> Result<()> {
    if s.len() < 2 {
        invalid!("Input tensor must be at least 2D: {}", crate::tensor::dims_string(s));
    }
    Ok(())
}

/// Channel sums, rows added in order (the GPU kernel's order, so both agree exactly).
pub(super) fn bias_add_grad<T: crate::tensor::ZeroBits + std::ops::Add<Output = T>>(
    dy: &[T],
    channels: usize,
) -> Result<Vec<T>> {
    let mut acc = crate::tensor::try_zeros::<T>(&[channels])?;
    if channels > 0 {
        for row in dy.chunks_exact(channels) {
            acc.iter_mut().zip(row).for_each(|(a, &v)| *a = *a + v);
        }
    }
    Ok(acc)
}
