//! Softmax cross-entropy losses on `[batch, classes]` logits, with their backprops:
//! `SoftmaxCrossEntropyWithLogits` (dense labels, one distribution per row) and
//! `SparseSoftmaxCrossEntropyWithLogits` (int32 class indices).
//!
//! TF's ops return two outputs from one node, the loss `[batch]` and the backprop
//! `softmax(logits) - labels` `[batch, classes]`. wgflow's GPU lowering writes one output per
//! kernel, so each is split in two single-output ops: the loss keeps TF's op name, and the
//! backprop is the internal `SoftmaxCrossEntropyWithLogitsGrad` /
//! `SparseSoftmaxCrossEntropyWithLogitsGrad` with the same inputs `(features, labels)`.
//!
//! Both are numerically stable: with `s = logits - max(logits)`, the loss of a row is
//! `sum(labels * (log(sum(exp(s))) - s))` and the backprop `exp(s) / sum(exp(s)) - labels`.
//! Dense labels must have the logits' shape (TF also broadcasts them; wgflow does not).

use ndarray::{ArcArray, IxDyn, NdFloat};
use rayon::prelude::*;

use super::gpu_passes::{tree_passes, Axes, Fold, MAX_LOOP_TRIPS, OVERHEAD_TRIPS};
use super::nn::gpu::{kernel, nn_wgsl, word};
use super::nn::{bad_dtype, bad_dtype_run, with_rank};
use super::reduce::PARALLEL_MIN;
use super::{compute, same_dtype, shape_err, GpuLowering, InferResult, Op, Pass, PassBuf, Passes};
use crate::error::{invalid, Result};
use crate::graph::{Graph, Operand, Output};
use crate::runtime::cpu::conv::{array, contiguous};
use crate::runtime::gpu::flags::error_flag_wgsl;
use crate::tensor::{dims_string, DType, Shape, Tensor, TensorSpec};

const XENT_TEMPLATE: &str = include_str!("../../shaders/xent.wgsl");
const SPARSE_XENT_TEMPLATE: &str = include_str!("../../shaders/sparse_xent.wgsl");
const XENT_ROWS_TEMPLATE: &str = include_str!("../../shaders/xent_rows.wgsl");
const SPARSE_XENT_ROWS_TEMPLATE: &str = include_str!("../../shaders/sparse_xent_rows.wgsl");

/// One of the four cross-entropy ops; inputs are always `(features, labels)`.
#[derive(Debug)]
struct Xent {
    /// Labels are int32 class indices `[batch]` rather than distributions `[batch, classes]`.
    sparse: bool,
    /// The backprop `[batch, classes]` rather than the loss `[batch]`.
    grad: bool,
}

impl Xent {
    /// TF's run-time shape checks, in its words: `(batch, classes)`.
    fn shapes(&self, fs: &[usize], ls: &[usize]) -> Result<(usize, usize)> {
        if !self.sparse {
            if fs.len() != 2 || ls.len() != 2 {
                invalid!("logits and labels must be either 2-dimensional, or broadcasted to be 2-dimensional");
            }
            if fs != ls {
                invalid!(
                    "logits and labels must be broadcastable: logits_size={} labels_size={}",
                    dims_string(fs),
                    dims_string(ls)
                );
            }
            return Ok((fs[0], fs[1]));
        }
        if fs.len() != 2 {
            invalid!("logits must be 2-D, but got shape {}", dims_string(fs));
        }
        if ls.len() != 1 {
            invalid!("labels must be 1-D, but got shape {}", dims_string(ls));
        }
        if fs[0] != ls[0] {
            invalid!(
                "logits and labels must have the same first dimension, got logits shape {} and labels shape {}",
                dims_string(fs),
                dims_string(ls)
            );
        }
        if fs[1] == 0 {
            invalid!("Must have at least one class, but got logits shape {}", dims_string(fs));
        }
        Ok((fs[0], fs[1]))
    }
}

/// The labels of one row.
#[derive(Clone, Copy)]
enum RowLabels<'a, T> {
    Dense(&'a [T]),
    Sparse(usize),
}

/// One row: returns the loss, or writes the backprop into `grad` (and returns zero).
fn xent_row<T: NdFloat>(x: &[T], labels: RowLabels<'_, T>, grad: Option<&mut [T]>) -> T {
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
fn class_indices(labels: &[i32], classes: usize) -> Result<Vec<usize>> {
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
fn xent<T: NdFloat + crate::tensor::ZeroBits>(
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
fn labels_as<T: NdFloat>(labels: &Tensor) -> Result<Vec<T>> {
    let cast = |v: f64| T::from(v).unwrap_or_else(T::nan);
    match labels {
        Tensor::F32(a) => Ok(contiguous(a).iter().map(|&v| cast(f64::from(v))).collect()),
        Tensor::F64(a) => Ok(contiguous(a).iter().map(|&v| cast(v)).collect()),
        other => Err(bad_dtype_run("SoftmaxCrossEntropyWithLogits", other.dtype())),
    }
}

impl Op for Xent {
    fn gradient(&self, ctx: &crate::gradients::GradContext) -> Result<Vec<Option<crate::graph::Output>>> {
        if self.grad {
            return Err(crate::error::Error::unimplemented("No gradient defined for the cross-entropy backprop"));
        }
        super::grads::xent(ctx, self.sparse)
    }
    fn type_name(&self) -> &'static str {
        match (self.sparse, self.grad) {
            (false, false) => "SoftmaxCrossEntropyWithLogits",
            (false, true) => "SoftmaxCrossEntropyWithLogitsGrad",
            (true, false) => "SparseSoftmaxCrossEntropyWithLogits",
            (true, true) => "SparseSoftmaxCrossEntropyWithLogitsGrad",
        }
    }
    fn attrs(&self) -> Vec<(&'static str, super::Attr)> {
        match self.sparse {
            true => vec![("Tlabels", super::Attr::Type(DType::I32))],
            false => Vec::new(),
        }
    }
    fn infer(&self, inputs: &[TensorSpec]) -> InferResult {
        let (f, l) = (&inputs[0], &inputs[1]);
        if !matches!(f.dtype, DType::F32 | DType::F64) {
            return Err(bad_dtype("features", f.dtype, "float16, bfloat16, float32, float64"));
        }
        let fd = with_rank(&f.shape, 2)?;
        let batch = if self.sparse {
            if l.dtype != DType::I32 {
                return Err(bad_dtype("labels", l.dtype, "int32, int64"));
            }
            merge(fd[0], with_rank(&l.shape, 1)?[0])?
        } else {
            same_dtype(self.type_name(), ("features", f.dtype), ("labels", l.dtype))?;
            let ld = with_rank(&l.shape, 2)?;
            merge(fd[1], ld[1])?;
            merge(fd[0], ld[0])?
        };
        let shape = match self.grad {
            true => Shape::partial(&[batch, fd[1]]),
            false => Shape::partial(&[batch]),
        };
        Ok(vec![TensorSpec::new(f.dtype, shape)])
    }
    fn compute(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let (f, l) = (inputs[0], inputs[1]);
        let (batch, classes) = self.shapes(f.shape(), l.shape())?;
        let out = match f {
            Tensor::F32(x) => xent(self, x, l, batch, classes)?,
            Tensor::F64(x) => xent(self, x, l, batch, classes)?,
            other => return Err(bad_dtype_run(self.type_name(), other.dtype())),
        };
        Ok(vec![out])
    }
    fn gpu(&self, inputs: &[(DType, &[usize])]) -> Option<Result<GpuLowering>> {
        let label_type = if self.sparse { DType::I32 } else { DType::F32 };
        let [(DType::F32, fs), (lt, ls)] = inputs else {
            return None;
        };
        if *lt != label_type {
            return None;
        }
        Some(self.shapes(fs, ls).and_then(|(batch, classes)| {
            word(batch * classes)?;
            // One thread per row walks its classes four times: long rows run in passes.
            if classes.saturating_mul(4).saturating_add(OVERHEAD_TRIPS) > MAX_LOOP_TRIPS {
                return self.long_rows(batch, classes);
            }
            let wgsl = match self.sparse {
                true => sparse_xent_wgsl()?,
                false => nn_wgsl("xent", XENT_TEMPLATE)?,
            };
            let out = if self.grad { vec![batch, classes] } else { vec![batch] };
            kernel(wgsl, vec![word(classes)?, u32::from(self.grad)], batch, out)
        }))
    }
}

impl Xent {
    /// The lowering for rows too long for one thread: the rows' maxima and sums of exponentials
    /// as workgroup trees, then one thread per element (the backprop, or the dense loss's terms,
    /// which a last tree sums) or per row (the sparse loss).
    fn long_rows(&self, batch: usize, classes: usize) -> Result<GpuLowering> {
        let out = if self.grad { vec![batch, classes] } else { vec![batch] };
        let mut p = Passes::new(DType::F32, out);
        let axes = Axes { kept: (vec![batch], vec![classes]), red: (vec![classes], vec![1]) };
        let (max, sum) = (p.temp(DType::F32, vec![batch]), p.temp(DType::F32, vec![batch]));
        tree_passes(&mut p, &Fold::SOFTMAX_MAX, &axes, PassBuf::Input(0), None, max)?;
        tree_passes(&mut p, &Fold::SUM_F32, &axes, PassBuf::Input(0), Some(max), sum)?;
        let wgsl = match self.sparse {
            true => sparse_xent_rows_wgsl()?,
            false => xent_rows_wgsl()?,
        };
        // The dense loss: its terms into a temporary, summed per row below.
        let terms = (!self.sparse && !self.grad).then(|| p.temp(DType::F32, vec![batch, classes]));
        let threads = if self.sparse && !self.grad { batch } else { batch * classes };
        p.passes.push(Pass {
            wgsl: wgsl.into(),
            uniforms: vec![word(classes)?, u32::from(self.grad), 0],
            invocations: u64::from(word(threads)?),
            workgroup_size: 64,
            inputs: vec![PassBuf::Input(0), PassBuf::Input(1), max, sum],
            output: terms.unwrap_or(PassBuf::Out),
        });
        if let Some(terms) = terms {
            tree_passes(&mut p, &Fold::SUM_F32, &axes, terms, None, PassBuf::Out)?;
        }
        Ok(p.lowering())
    }
}

/// The last pass of the sparse cross-entropy over long rows, with its label check's error flag
/// (after its output, binding 5).
pub(crate) fn sparse_xent_rows_wgsl() -> Result<&'static str> {
    let body = nn_wgsl("sparse_xent_rows", SPARSE_XENT_ROWS_TEMPLATE)?;
    super::cached_wgsl("sparse_xent_rows checked".into(), || Ok(format!("{body}\n{}", error_flag_wgsl(5))))
}

/// The dense cross-entropy's last pass over long rows.
pub(crate) fn xent_rows_wgsl() -> Result<&'static str> {
    nn_wgsl("xent_rows", XENT_ROWS_TEMPLATE)
}

/// The sparse cross-entropy kernel: the NN template with the error flag its label check raises.
pub(crate) fn sparse_xent_wgsl() -> Result<&'static str> {
    let body = nn_wgsl("sparse_xent", SPARSE_XENT_TEMPLATE)?;
    super::cached_wgsl("sparse_xent checked".into(), || Ok(format!("{body}\n{}", error_flag_wgsl(3))))
}

/// TF's `Merge` of two static dimensions.
fn merge(a: Option<usize>, b: Option<usize>) -> std::result::Result<Option<usize>, super::InferError> {
    match (a, b) {
        (Some(x), Some(y)) if x != y => shape_err!("Dimensions must be equal, but are {x} and {y}"),
        (x, y) => Ok(x.or(y)),
    }
}

/// Value operands as constant nodes of their own dtype, so that an int32 label literal is
/// not cast to the logits' type (or the reverse) by the builder's literal conversion.
fn own_dtype(g: &Graph, o: Operand) -> Result<Operand> {
    match o {
        Operand::Value(v) => Ok(Operand::Tensor(g.constant(v)?)),
        t => Ok(t),
    }
}

impl Graph {
    fn xent(&self, sparse: bool, grad: bool, labels: Operand, logits: Operand) -> Result<Output> {
        let op = Xent { sparse, grad };
        let (labels, logits) =
            if sparse { (own_dtype(self, labels)?, own_dtype(self, logits)?) } else { (labels, logits) };
        self.add_op1(op.type_name(), compute(op), vec![("features", logits), ("labels", labels)])
    }
    /// `tf.nn.softmax_cross_entropy_with_logits(labels, logits)` on `[batch, classes]`
    /// tensors of one shape: `SoftmaxCrossEntropyWithLogits`'s loss output, `[batch]`, the
    /// cross-entropy `-sum(labels * log_softmax(logits))` of each row.
    pub fn softmax_cross_entropy_with_logits(
        &self,
        labels: impl Into<Operand>,
        logits: impl Into<Operand>,
    ) -> Result<Output> {
        self.xent(false, false, labels.into(), logits.into())
    }
    /// The backprop output of `SoftmaxCrossEntropyWithLogits`, `softmax(logits) - labels`
    /// (`[batch, classes]`), as its own node `SoftmaxCrossEntropyWithLogitsGrad` (wgflow's;
    /// TF returns it as the second output of the loss node).
    pub fn softmax_cross_entropy_with_logits_grad(
        &self,
        labels: impl Into<Operand>,
        logits: impl Into<Operand>,
    ) -> Result<Output> {
        self.xent(false, true, labels.into(), logits.into())
    }
    /// `tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)`: int32 class indices
    /// `labels` (`[batch]`) and `[batch, classes]` logits; `SparseSoftmaxCrossEntropyWithLogits`'s
    /// loss output, `[batch]`.
    ///
    /// A label outside `[0, classes)` is TF's `InvalidArgument` error on both devices (on the
    /// GPU through the kernel's error flag, read with the run's fetches; its message names the
    /// label TF names, without TF's list of every label value).
    pub fn sparse_softmax_cross_entropy_with_logits(
        &self,
        labels: impl Into<Operand>,
        logits: impl Into<Operand>,
    ) -> Result<Output> {
        self.xent(true, false, labels.into(), logits.into())
    }
    /// The backprop output of `SparseSoftmaxCrossEntropyWithLogits`,
    /// `softmax(logits) - one_hot(labels)` (`[batch, classes]`), as its own node
    /// `SparseSoftmaxCrossEntropyWithLogitsGrad` (wgflow's; TF returns it as the second
    /// output of the loss node). Out-of-range labels as in
    /// [`Graph::sparse_softmax_cross_entropy_with_logits`].
    pub fn sparse_softmax_cross_entropy_with_logits_grad(
        &self,
        labels: impl Into<Operand>,
        logits: impl Into<Operand>,
    ) -> Result<Output> {
        self.xent(true, true, labels.into(), logits.into())
    }
}
