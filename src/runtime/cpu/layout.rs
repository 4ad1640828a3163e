//! Row-major layout helpers the CPU kernels share: borrowing an array's elements in row-major
//! order, and building an array back from row-major data.

use std::borrow::Cow;

use ndarray::{ArcArray, ArrayD, IxDyn};

use crate::error::{Error, Result};

/// Row-major data of an array, borrowed when it is already contiguous.
pub(crate) fn contiguous<T: Clone>(a: &ArcArray<T, IxDyn>) -> Cow<'_, [T]> {
    match a.as_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(a.iter().cloned().collect()),
    }
}

/// An array of `shape` from row-major `data`.
pub(crate) fn array<T>(shape: &[usize], data: Vec<T>) -> Result<ArrayD<T>> {
    ArrayD::from_shape_vec(IxDyn(shape), data).map_err(|e| Error::internal(e.to_string()))
}
