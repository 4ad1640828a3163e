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
//!
//! `cpu.rs` holds the CPU kernels, `gpu.rs` the WGSL lowering, `grad.rs` the gradients.

mod cpu;
mod gpu;
mod grad;

pub(crate) use gpu::instantiations;

use super::gpu_passes::{MAX_LOOP_TRIPS, OVERHEAD_TRIPS};
use super::kernel::{f32_kernel, word};
use super::nn::{bad_dtype, bad_dtype_run, with_rank};
use super::reduce::combine::COMBINE_TRIPS;
use super::{compute, same_dtype, shape_err, GpuLowering, InferResult, Op};
use crate::error::{invalid, Result};
use crate::graph::{Graph, Operand, Output};
use crate::runtime::gpu::variant::{self, subgroup_reductions};
use crate::tensor::{dims_string, DType, Shape, Tensor, TensorSpec};
use cpu::xent;
use gpu::xent_wgsl;

/// The workgroup size of the workgroup-per-row kernel (shaders/xent_wg.wgsl).
const XENT_WG: usize = 64;
/// On GPUs, rows of at least this many classes take a workgroup each, shorter ones a thread
/// (as softmax's rows of 64 vec4 loads).
const WG_ROW_MIN: usize = 256;

/// The TF op types of this family (see `ops::registry`).
pub(crate) fn types() -> Vec<&'static str> {
    vec![
        "SoftmaxCrossEntropyWithLogits",
        "SoftmaxCrossEntropyWithLogitsGrad",
        "SparseSoftmaxCrossEntropyWithLogits",
        "SparseSoftmaxCrossEntropyWithLogitsGrad",
    ]
}

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

impl Op for Xent {
    fn gradient(&self, ctx: &crate::gradients::GradContext) -> Result<Vec<Option<crate::graph::Output>>> {
        if self.grad {
            return Err(crate::error::Error::unimplemented("No gradient defined for the cross-entropy backprop"));
        }
        grad::xent(ctx, self.sparse)
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
            // One thread per row walks its classes four times, a workgroup's threads a 64th of
            // them each (after three combines); rows past both budgets run in passes. On a CPU
            // driver a thread per row, where it fits, measured 2.1-2.2x faster than a workgroup
            // (lavapipe, 32 and 256 rows of 1000 classes); on GPUs it would leave most of the
            // GPU idle.
            let out = if self.grad { vec![batch, classes] } else { vec![batch] };
            let one_thread = classes.saturating_mul(4).saturating_add(OVERHEAD_TRIPS) <= MAX_LOOP_TRIPS;
            let per_thread = classes.div_ceil(XENT_WG);
            let workgroup = per_thread * 4 + 3 * COMBINE_TRIPS + OVERHEAD_TRIPS <= MAX_LOOP_TRIPS;
            let prefer_workgroup = classes >= WG_ROW_MIN && !variant::cpu_driver();
            if workgroup && (prefer_workgroup || !one_thread) {
                let wgsl = gpu::xent_wg_wgsl(self.sparse, subgroup_reductions())?;
                let invocations = word(batch.saturating_mul(XENT_WG))?;
                return Ok(GpuLowering::Kernel {
                    wgsl: wgsl.into(),
                    uniforms: vec![word(classes)?, u32::from(self.grad)],
                    invocations: u64::from(invocations),
                    workgroup_size: XENT_WG as u32,
                    out: (DType::F32, out),
                });
            }
            if !one_thread {
                return self.long_rows(batch, classes);
            }
            f32_kernel(xent_wgsl(self.sparse)?, vec![word(classes)?, u32::from(self.grad)], batch, out)
        }))
    }
    fn gpu_supports(&self, inputs: &[(DType, &[usize])]) -> bool {
        let label_type = if self.sparse { DType::I32 } else { DType::F32 };
        matches!(inputs, [(DType::F32, _), (lt, _)] if *lt == label_type)
    }
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
