//! CPU kernels of the cross-entropy losses: one stable pass per row (parallel over rows).

use ndarray::{ArcArray, IxDyn, NdFloat};
use rayon::prelude::*;

use super::Xent;
use crate::error::{invalid, Result};
use crate::ops::nn::bad_dtype_run;
use crate::ops::reduce::PARALLEL_MIN;
use crate::ops::Op;
use crate::runtime::cpu::conv::{array, contiguous};
use crate::tensor::Tensor;

/// The labels of one row.
#[derive(Clone, Copy)]
pub(super) enum RowLabels<'a, T> {
    Dense(&'a [T]),
    Sparse(usize),
}

/// One row: returns the loss, or writes the backprop into `grad` (and returns zero).
pub(super) fn xent_row<T: NdFloat>(x: &[T], labels: RowLabels<'_, T>, grad: Option<&mut [T]>) -> T {
    let max = x.iter().fold(T::neg_infinity(), |m, &v| if v > m { v } else { m });
    let sum = x.iter().fold(T::zero(), |s, &v| s + (v - max).exp());
    let label = |j: usize| match labels {
        RowLabels::Dense(l) => l[j],
        RowLabels::Sparse(c) if c == j => T::one(),
        RowLabels::Sparse(_) => T::zero(),
    };
    if let Some(g) = grad {
        g.iter_mut().zip(x).enumerate().for_each(|(j, (o, &v))| *o = (v - max).exp() / sum - label(j));
        return T::zero();
    }
    let lse = sum.ln();
    match labels {
        RowLabels::Dense(l) => x.iter().zip(l).fold(T::zero(), |acc, (&v, &p)| acc + p * (lse - (v - max))),
        RowLabels::Sparse(c) => lse - (x[c] - max),
    }
}

/// TF's check of sparse labels (`CheckInvalidLabelIndex`): the class indices, or the error
/// naming the smallest label if it is negative, else the largest if it is `classes` or more
/// (with every label value, as TF lists them).
pub(super) fn class_indices(labels: &[i32], classes: usize) -> Result<Vec<usize>> {
    let (min, max) = (labels.iter().min().copied(), labels.iter().max().copied());
    let bad = match (min, max) {
        (Some(lo), _) if lo < 0 => Some(lo),
        (_, Some(hi)) if usize::try_from(hi).is_ok_and(|hi| hi >= classes) => Some(hi),
        _ => None,
    };
    match bad {
        Some(bad) => {
            let all: Vec<String> = labels.iter().map(i32::to_string).collect();
            invalid!(
                "Received a label value of {bad} which is outside the valid range of [0, {classes}).  Label values: {}",
                all.join(" ")
            )
        }
        None => Ok(labels.iter().map(|&l| l as usize).collect()),
    }
}

/// The CPU kernel for one float type.
pub(super) fn xent<T: NdFloat + crate::tensor::ZeroBits>(
    op: &Xent,
    x: &ArcArray<T, IxDyn>,
    labels: &Tensor,
    batch: usize,
    classes: usize,
) -> Result<Tensor>
where
    ndarray::ArrayD<T>: Into<Tensor>,
{
    let x = contiguous(x);
    let dense = match labels {
        Tensor::F32(_) | Tensor::F64(_) if !op.sparse => Some(labels_as::<T>(labels)?),
        _ => None,
    };
    let sparse = match labels {
        Tensor::I32(l) if op.sparse => Some(class_indices(&contiguous(l), classes)?),
        _ => None,
    };
    let row_labels = |r: usize| match (&dense, &sparse) {
        (Some(d), _) => Ok(RowLabels::Dense(&d[r * classes..(r + 1) * classes])),
        (None, Some(s)) => Ok(RowLabels::Sparse(s[r])),
        (None, None) => Err(bad_dtype_run(op.type_name(), labels.dtype())),
    };
    let par = x.len() >= PARALLEL_MIN;
    if op.grad {
        let mut out = crate::tensor::try_zeros::<T>(&[batch, classes])?;
        if classes > 0 {
            let labels: Vec<RowLabels<'_, T>> = (0..batch).map(row_labels).collect::<Result<_>>()?;
            let rows = out.chunks_mut(classes).zip(x.chunks(classes)).zip(labels);
            if par {
                rows.collect::<Vec<_>>().into_par_iter().for_each(|((g, xr), l)| {
                    xent_row(xr, l, Some(g));
                });
            } else {
                rows.for_each(|((g, xr), l)| {
                    xent_row(xr, l, Some(g));
                });
            }
        }
        return Ok(array(&[batch, classes], out)?.into());
    }
    let mut out = crate::tensor::try_zeros::<T>(&[batch])?;
    if classes > 0 {
        let labels: Vec<RowLabels<'_, T>> = (0..batch).map(row_labels).collect::<Result<_>>()?;
        let rows = out.iter_mut().zip(x.chunks(classes)).zip(labels);
        if par {
            rows.collect::<Vec<_>>().into_par_iter().for_each(|((o, xr), l)| *o = xent_row(xr, l, None));
        } else {
            rows.for_each(|((o, xr), l)| *o = xent_row(xr, l, None));
        }
    }
    Ok(array(&[batch], out)?.into())
}

/// Dense labels as row-major data of the logits' float type.
pub(super) fn labels_as<T: NdFloat>(labels: &Tensor) -> Result<Vec<T>> {
    let cast = |v: f64| T::from(v).unwrap_or_else(T::nan);
    match labels {
        Tensor::F32(a) => Ok(contiguous(a).iter().map(|&v| cast(f64::from(v))).collect()),
        Tensor::F64(a) => Ok(contiguous(a).iter().map(|&v| cast(v)).collect()),
        other => Err(bad_dtype_run("SoftmaxCrossEntropyWithLogits", other.dtype())),
    }
}
