//! CPU kernels of the NN ops kept beside them (the convolution and pool kernels are
//! `runtime::cpu::{conv, pool}`): `BiasAdd`.

use ndarray::{ArcArray, ArrayD, IxDyn};
use rayon::prelude::*;

use crate::error::Result;
use crate::runtime::cpu::conv::{array, contiguous};

/// `x + bias` along the last axis, in parallel over blocks of rows.
pub(super) fn bias_add<T: Copy + Send + Sync + std::ops::Add<Output = T> + crate::tensor::HostElem>(
    x: &ArcArray<T, IxDyn>,
    b: &ArcArray<T, IxDyn>,
) -> Result<ArrayD<T>> {
    let (xd, bd) = (contiguous(x), contiguous(b));
    let mut out = crate::tensor::try_capacity::<T>(x.shape())?;
    out.extend_from_slice(&xd);
    if !bd.is_empty() {
        let block = bd.len() * (4096 / bd.len()).max(1);
        out.par_chunks_mut(block).for_each(|c| {
            c.chunks_mut(bd.len()).for_each(|r| r.iter_mut().zip(bd.iter()).for_each(|(o, &v)| *o = *o + v))
        });
    }
    array(x.shape(), out)
}
