//! Neural-network ops on NHWC tensors: `Conv2D`, `MaxPool`, `AvgPool`, `BiasAdd` (and
//! `Softmax` in `softmax.rs`), with TF's shape functions, run-time checks and messages. The
//! heavy CPU kernels live in `runtime::cpu::{conv, pool}` (called from `cpu.rs` and the ops
//! here); `gpu.rs` and `conv_gpu.rs` hold the WGSL lowerings, `grad.rs` the gradients.

mod conv_gpu;
mod conv_rb;
mod cpu;
mod depthwise;
mod depthwise_gpu;
pub(crate) mod gpu;
mod grad;
mod softmax;
mod softmax_gpu;

pub(crate) use gpu::instantiations;
pub(crate) use softmax::Softmax;

pub(crate) use super::elementwise::check_bias_shapes;
use super::{compute, shape_err, Attr, GpuLowering, InferError, InferResult, Op};
use crate::error::{invalid, Error, Result};
use crate::graph::{Graph, Operand, Output};
use crate::runtime::cpu::conv;
use crate::runtime::cpu::pool;
pub use crate::runtime::padding::Padding;
use crate::tensor::{DType, Shape, Tensor, TensorSpec};
use cpu::bias_add;

/// The TF op types of this family (see `ops::registry`).
pub(crate) fn types() -> Vec<&'static str> {
    vec!["Conv2D", "MaxPool", "AvgPool", "BiasAdd", "Softmax"]
}

/// Expands a 1-, 2- or 4-long spatial sequence to NHWC's 4 values, as TF's Python does.
pub(crate) fn nhwc_sequence(name: &str, v: &[usize]) -> Result<[usize; 4]> {
    match *v {
        [s] => Ok([1, s, s, 1]),
        [h, w] => Ok([1, h, w, 1]),
        [n, h, w, c] => Ok([n, h, w, c]),
        _ => {
            let items: Vec<String> = v.iter().map(usize::to_string).collect();
            invalid!(
                "{name} should be of length 1, 2 or 4. Received: {name}={} of length {}",
                format!("[{}]", items.join(", ")),
                v.len()
            )
        }
    }
}

/// A 4-value list attribute.
pub(crate) fn ints(v: &[usize; 4]) -> Attr {
    Attr::Ints(v.iter().map(|&x| x as i64).collect())
}

/// TF's `GetWindowedOutputSizeFromDimsV2`: the static output size along one axis.
fn windowed_static(
    input: Option<usize>,
    k: Option<usize>,
    dilation: usize,
    stride: usize,
    padding: Padding,
) -> std::result::Result<Option<usize>, String> {
    if stride == 0 {
        return Err("Stride must be > 0, but got 0".to_string());
    }
    if dilation == 0 {
        return Err("Dilation rate must be >= 1, but got 0".to_string());
    }
    if padding == Padding::Same {
        return Ok(input.map(|i| i.div_ceil(stride)));
    }
    let window = match k {
        Some(0) if dilation > 1 => return Err("Negative dimension size caused by subtracting 1 from 0".to_string()),
        Some(0) => Some(0),
        Some(k) => Some((k - 1) * dilation + 1),
        None => None,
    };
    match (input, window) {
        (Some(i), Some(w)) if i < w => Err(format!("Negative dimension size caused by subtracting {w} from {i}")),
        (Some(i), Some(w)) => Ok(Some((i - w + stride) / stride)),
        _ => Ok(None),
    }
}

/// TF's Python message for an input dtype an op does not accept.
pub(crate) fn bad_dtype(param: &str, dtype: DType, allowed: &str) -> InferError {
    let msg =
        format!("Value passed to parameter '{param}' has DataType {dtype} not in list of allowed values: {allowed}");
    Error::invalid_argument(msg).into()
}

/// The dims of a rank-`rank` static shape (all unknown when the rank is), or TF's rank error.
pub(crate) fn with_rank(s: &Shape, rank: usize) -> std::result::Result<Vec<Option<usize>>, InferError> {
    match s.dims() {
        None => Ok(vec![None; rank]),
        Some(d) if d.len() == rank => Ok(d.to_vec()),
        Some(d) => shape_err!("Shape must be rank {rank} but is rank {}", d.len()),
    }
}

/// `Conv2D`: NHWC input, filter `[KH, KW, Cin, Cout]`, grouped when the input depth is a
/// multiple of `Cin`.
#[derive(Debug)]
struct Conv2D {
    strides: [usize; 4],
    dilations: [usize; 4],
    padding: Padding,
}

impl Op for Conv2D {
    fn gradient(&self, ctx: &crate::gradients::GradContext) -> Result<Vec<Option<crate::graph::Output>>> {
        grad::conv2d(ctx, &self.strides, &self.dilations, self.padding)
    }
    fn type_name(&self) -> &'static str {
        "Conv2D"
    }
    fn attrs(&self) -> Vec<(&'static str, Attr)> {
        vec![
            ("data_format", Attr::Str("NHWC".into())),
            ("dilations", ints(&self.dilations)),
            ("explicit_paddings", Attr::Ints(Vec::new())),
            ("padding", Attr::Str(self.padding.tf_name().into())),
            ("strides", ints(&self.strides)),
            ("use_cudnn_on_gpu", Attr::Bool(true)),
        ]
    }
    fn infer(&self, inputs: &[TensorSpec]) -> InferResult {
        let (x, f) = (&inputs[0], &inputs[1]);
        super::same_dtype("Conv2D", ("input", x.dtype), ("filter", f.dtype))?;
        if !matches!(x.dtype, DType::F32 | DType::F64 | DType::I32) {
            return Err(bad_dtype("input", x.dtype, "float16, bfloat16, float32, float64, int32"));
        }
        let xd = with_rank(&x.shape, 4)?;
        let fd = with_rank(&f.shape, 4)?;
        if let (Some(c), Some(fc)) = (xd[3], fd[2]) {
            if fc == 0 {
                shape_err!("Depth of filter must not be 0");
            }
            if !c.is_multiple_of(fc) {
                shape_err!("Depth of input ({c}) is not a multiple of input depth of filter ({fc})");
            }
            let groups = c / fc;
            match fd[3] {
                Some(oc) if groups > 1 && !oc.is_multiple_of(groups) => {
                    shape_err!("Depth of output ({oc}) is not a multiple of the number of groups ({groups})")
                }
                _ => {}
            }
        }
        let (s, d, p) = (self.strides, self.dilations, self.padding);
        let oh = windowed_static(xd[1], fd[0], d[1], s[1], p).map_err(InferError::Shape)?;
        let ow = windowed_static(xd[2], fd[1], d[2], s[2], p).map_err(InferError::Shape)?;
        Ok(vec![TensorSpec::new(x.dtype, Shape::partial(&[xd[0], oh, ow, fd[3]]))])
    }
    fn compute(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        Ok(vec![conv::conv2d_nhwc(inputs[0], inputs[1], self.strides, self.dilations, self.padding)?])
    }
    fn gpu(&self, inputs: &[(DType, &[usize])]) -> Option<Result<GpuLowering>> {
        gpu::conv2d(inputs, self.strides, self.dilations, self.padding, None)
    }
    fn gpu_supports(&self, inputs: &[(DType, &[usize])]) -> bool {
        matches!(inputs, [(DType::F32, _), (DType::F32, _)])
    }
    fn fused_name(&self) -> Option<&'static str> {
        Some("_FusedConv2D")
    }
    fn gpu_with_epilogue(
        &self,
        inputs: &[(DType, &[usize])],
        epilogue: &super::fused::Epilogue,
    ) -> Option<Result<GpuLowering>> {
        gpu::conv2d(inputs, self.strides, self.dilations, self.padding, Some(epilogue))
    }
    fn flops(&self, inputs: &[TensorSpec], outputs: &[TensorSpec]) -> f64 {
        // Two FLOPs per output element and filter tap of one group's input depth.
        let taps: f64 = inputs[1].shape.dims().map_or(1.0, |d| d[..3].iter().map(|x| x.unwrap_or(1) as f64).product());
        2.0 * taps * outputs.iter().map(super::spec_elements).sum::<f64>()
    }
}

/// Which pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PoolKind {
    Max,
    Avg,
}

/// `MaxPool` / `AvgPool` on NHWC input.
#[derive(Debug)]
struct Pool {
    kind: PoolKind,
    ksize: [usize; 4],
    strides: [usize; 4],
    padding: Padding,
}

impl Pool {
    fn allowed(&self) -> (&'static [DType], &'static str) {
        match self.kind {
            PoolKind::Max => (
                &[DType::F32, DType::F64, DType::I32],
                "float16, bfloat16, float32, float64, int32, int64, uint8, int16, int8, uint16, qint8",
            ),
            PoolKind::Avg => (&[DType::F32, DType::F64], "float16, bfloat16, float32, float64"),
        }
    }
}

/// The attrs every pool and pool gradient has (in TF's order; the ops add their own after).
pub(crate) fn pool_attrs(ksize: &[usize; 4], strides: &[usize; 4], padding: Padding) -> Vec<(&'static str, Attr)> {
    vec![
        ("data_format", Attr::Str("NHWC".into())),
        ("ksize", ints(ksize)),
        ("padding", Attr::Str(padding.tf_name().into())),
        ("strides", ints(strides)),
    ]
}

impl Op for Pool {
    fn gradient(&self, ctx: &crate::gradients::GradContext) -> Result<Vec<Option<crate::graph::Output>>> {
        grad::pool(ctx, self.kind == PoolKind::Max, &self.ksize, &self.strides, self.padding)
    }
    fn type_name(&self) -> &'static str {
        match self.kind {
            PoolKind::Max => "MaxPool",
            PoolKind::Avg => "AvgPool",
        }
    }
    fn attrs(&self) -> Vec<(&'static str, Attr)> {
        let mut a = pool_attrs(&self.ksize, &self.strides, self.padding);
        if self.kind == PoolKind::Max {
            a.push(("explicit_paddings", Attr::Ints(Vec::new())));
        }
        a
    }
    fn infer(&self, inputs: &[TensorSpec]) -> InferResult {
        let x = &inputs[0];
        let (allowed, names) = self.allowed();
        if !allowed.contains(&x.dtype) {
            return Err(bad_dtype("input", x.dtype, names));
        }
        let xd = with_rank(&x.shape, 4)?;
        let (k, s, p) = (self.ksize, self.strides, self.padding);
        let oh = windowed_static(xd[1], Some(k[1]), 1, s[1], p).map_err(InferError::Shape)?;
        let ow = windowed_static(xd[2], Some(k[2]), 1, s[2], p).map_err(InferError::Shape)?;
        let oc = match self.kind {
            PoolKind::Max => windowed_static(xd[3], Some(k[3]), 1, s[3], p).map_err(InferError::Shape)?,
            PoolKind::Avg => xd[3],
        };
        Ok(vec![TensorSpec::new(x.dtype, Shape::partial(&[xd[0], oh, ow, oc]))])
    }
    fn compute(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let (max, k, st, p) = (self.kind == PoolKind::Max, self.ksize, self.strides, self.padding);
        let out: Tensor = match inputs[0] {
            Tensor::F32(a) => pool::pool_nhwc(max, a, k, st, p)?.into(),
            Tensor::F64(a) => pool::pool_nhwc(max, a, k, st, p)?.into(),
            Tensor::I32(a) if max => pool::pool_nhwc(max, a, k, st, p)?.into(),
            other => return Err(bad_dtype_run(self.type_name(), other.dtype())),
        };
        Ok(vec![out])
    }
    fn gpu(&self, inputs: &[(DType, &[usize])]) -> Option<Result<GpuLowering>> {
        gpu::pool(inputs, self.kind == PoolKind::Max, self.ksize, self.strides, self.padding)
    }
    fn gpu_supports(&self, inputs: &[(DType, &[usize])]) -> bool {
        matches!(inputs, [(DType::F32, _)])
    }
}

/// The run-time error for a dtype wgflow's CPU kernel does not handle.
pub(crate) fn bad_dtype_run(op: &str, dtype: DType) -> Error {
    Error::unimplemented(format!("wgflow has no CPU {op} kernel for {dtype}"))
}

/// TF's `numbertype`: the dtypes `BiasAdd` accepts.
pub(crate) const NUMBER_TYPES: &str =
    "float32, float64, int32, uint8, int16, int8, complex64, int64, qint8, quint8, qint32, \
    bfloat16, qint16, quint16, uint16, complex128, float16, uint32, uint64";

/// `BiasAdd`: adds a rank-1 bias along the last dimension.
#[derive(Debug)]
struct BiasAdd;

impl Op for BiasAdd {
    fn gradient(&self, ctx: &crate::gradients::GradContext) -> Result<Vec<Option<crate::graph::Output>>> {
        grad::bias_add(ctx)
    }
    fn type_name(&self) -> &'static str {
        "BiasAdd"
    }
    fn attrs(&self) -> Vec<(&'static str, Attr)> {
        vec![("data_format", Attr::Str("NHWC".into()))]
    }
    fn infer(&self, inputs: &[TensorSpec]) -> InferResult {
        let (x, b) = (&inputs[0], &inputs[1]);
        super::same_dtype("BiasAdd", ("value", x.dtype), ("bias", b.dtype))?;
        if !matches!(x.dtype, DType::F32 | DType::F64 | DType::I32) {
            return Err(bad_dtype("value", x.dtype, NUMBER_TYPES));
        }
        if let Some(r) = x.shape.rank().filter(|&r| r < 2) {
            shape_err!("Shape must be at least rank 2 but is rank {r}");
        }
        let bias = with_rank(&b.shape, 1)?[0];
        let Some(xd) = x.shape.dims() else {
            return Ok(vec![TensorSpec::new(x.dtype, Shape::unknown())]);
        };
        let mut out = xd.to_vec();
        let last = out.len() - 1;
        out[last] = match (out[last], bias) {
            (Some(a), Some(b)) if a != b => shape_err!("Dimensions must be equal, but are {a} and {b}"),
            (a, b) => a.or(b),
        };
        Ok(vec![TensorSpec::new(x.dtype, Shape::partial(&out))])
    }
    fn compute(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let (x, b) = (inputs[0], inputs[1]);
        check_bias_shapes(x.shape(), b.shape())?;
        let out: Tensor = match (x, b) {
            (Tensor::F32(x), Tensor::F32(b)) => bias_add(x, b)?.into(),
            (Tensor::F64(x), Tensor::F64(b)) => bias_add(x, b)?.into(),
            (Tensor::I32(x), Tensor::I32(b)) => bias_add(x, b)?.into(),
            (x, _) => return Err(bad_dtype_run("BiasAdd", x.dtype())),
        };
        Ok(vec![out])
    }
    fn gpu(&self, inputs: &[(DType, &[usize])]) -> Option<Result<GpuLowering>> {
        gpu::bias_add(inputs)
    }
    fn gpu_supports(&self, inputs: &[(DType, &[usize])]) -> bool {
        matches!(inputs, [(DType::F32, _), (DType::F32, _)])
    }
    fn elementwise(&self) -> Option<super::elementwise::ElemKind> {
        Some(super::elementwise::ElemKind::BiasAdd)
    }
}

impl Graph {
    /// `tf.nn.conv2d(input, filter, strides, padding, dilations=dilations)` in NHWC: `Conv2D`.
    /// `strides` and `dilations` have 1, 2 or 4 values, as in TF's Python.
    pub fn conv2d(
        &self,
        input: impl Into<Operand>,
        filter: impl Into<Operand>,
        strides: &[usize],
        padding: Padding,
        dilations: &[usize],
    ) -> Result<Output> {
        let strides = nhwc_sequence("strides", strides)?;
        let dilations = nhwc_sequence("dilations", dilations)?;
        let op = compute(Conv2D { strides, dilations, padding });
        self.add_op1("Conv2D", op, vec![("input", input.into()), ("filter", filter.into())])
    }
    /// `tf.nn.max_pool(x, ksize, strides, padding)` in NHWC: `MaxPool`. Padding never wins
    /// and NaN inputs propagate.
    pub fn max_pool(
        &self,
        x: impl Into<Operand>,
        ksize: &[usize],
        strides: &[usize],
        padding: Padding,
    ) -> Result<Output> {
        self.pool(PoolKind::Max, x, ksize, strides, padding)
    }
    /// `tf.nn.avg_pool(x, ksize, strides, padding)` in NHWC: `AvgPool`; each window's mean
    /// is over its valid (unpadded) cells.
    pub fn avg_pool(
        &self,
        x: impl Into<Operand>,
        ksize: &[usize],
        strides: &[usize],
        padding: Padding,
    ) -> Result<Output> {
        self.pool(PoolKind::Avg, x, ksize, strides, padding)
    }
    fn pool(
        &self,
        kind: PoolKind,
        x: impl Into<Operand>,
        ksize: &[usize],
        strides: &[usize],
        padding: Padding,
    ) -> Result<Output> {
        let ksize = nhwc_sequence("ksize", ksize)?;
        let strides = nhwc_sequence("strides", strides)?;
        let op = Pool { kind, ksize, strides, padding };
        self.add_op1(op.type_name(), compute(op), vec![("input", x.into())])
    }
    /// `tf.nn.bias_add(x, bias)` (NHWC): `BiasAdd`; `bias` is rank 1, the size of the last
    /// dimension of `x`.
    pub fn bias_add(&self, x: impl Into<Operand>, bias: impl Into<Operand>) -> Result<Output> {
        self.add_op1("BiasAdd", compute(BiasAdd), vec![("value", x.into()), ("bias", bias.into())])
    }
}
