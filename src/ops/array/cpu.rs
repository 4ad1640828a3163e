//! CPU kernels of the data movement ops: a reshape of shared data, and concatenation.

use ndarray::{ArcArray, ArrayD, IxDyn};

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Reshapes without copying when the data is in standard layout.
pub(super) fn reshape_arc<T: Clone + crate::tensor::HostElem>(
    a: &ArcArray<T, IxDyn>,
    dims: &[usize],
) -> Result<ArcArray<T, IxDyn>> {
    let shared = match a.is_standard_layout() {
        true => a.clone(),
        false => crate::tensor::try_to_owned(a.view())?.into_shared(),
    };
    shared.into_shape_with_order(IxDyn(dims)).map_err(|e| Error::internal(format!("reshape: {e}")))
}

/// Joins arrays of equal rank (checked) along `axis`: for each outer index, each input's
/// contiguous block in turn.
pub(super) fn concat_arrays<T: Clone + crate::tensor::HostElem>(
    inputs: &[&Tensor],
    axis: usize,
    get: fn(&Tensor) -> Result<&ArcArray<T, IxDyn>>,
) -> Result<ArrayD<T>> {
    let arrays = inputs.iter().map(|t| get(t).map(|a| a.as_standard_layout())).collect::<Result<Vec<_>>>()?;
    let mut shape = arrays[0].shape().to_vec();
    shape[axis] = arrays.iter().map(|a| a.shape()[axis]).sum();
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let mut blocks = Vec::with_capacity(arrays.len());
    for a in &arrays {
        let s = a.as_slice().ok_or_else(|| Error::internal("concat: input not contiguous"))?;
        blocks.push((s, a.shape()[axis] * inner));
    }
    // The output is the sum of the inputs: counted and allocated fallibly.
    let mut out = crate::tensor::try_capacity::<T>(&shape)?;
    for o in 0..outer {
        for &(s, len) in &blocks {
            out.extend_from_slice(&s[o * len..(o + 1) * len]);
        }
    }
    ArrayD::from_shape_vec(IxDyn(&shape), out).map_err(|e| Error::internal(e.to_string()))
}
