//! Operations, one folder per op family (`elementwise`, `linalg`, `reduce`, `nn`, `nn_grad`,
//! `losses`, `array`, `state`, `fused`). Each family's `mod.rs` declares its ops (TF type
//! name, attributes, shape rule, cost, builders); `cpu.rs` holds the CPU kernels, `gpu.rs` the
//! WGSL lowering, `grad.rs` the gradient rules. `registry` names every family once;
//! `kernel` and `wgsl` are the GPU helpers and shader files every family shares.
//!
//! This root holds what all families share: the [`Op`] trait, [`OpKind`] (whose variants are
//! the stateful and structural ops: constants, placeholders, variables, assignments, no-ops),
//! attributes, shape-inference errors and the [`GpuLowering`] types.

pub(crate) mod array;
pub(crate) mod coop_tile;
pub(crate) mod elementwise;
pub(crate) mod fused;
pub(crate) mod kernel;
pub(crate) mod linalg;
pub(crate) mod losses;
pub(crate) mod nn;
pub(crate) mod nn_grad;
pub(crate) mod rb_tile;
pub(crate) mod reduce;
pub(crate) mod registry;
pub(crate) mod sg_tile;
pub(crate) mod state;
mod wgsl_cache;
/// The WGSL files (embedded once, in the GPU runtime).
pub(crate) use crate::runtime::gpu::shader_files as wgsl;

/// The multi-pass GPU machinery (workgroup trees, loop budgets); it lives with the
/// reductions, its main user.
pub(crate) use reduce::passes as gpu_passes;

use std::fmt;
use std::sync::Arc;

pub use array::SliceSpec;
pub use elementwise::{BinaryKind, UnaryKind};
pub use nn::Padding;

use crate::error::{Error, Result};
use crate::tensor::{DType, Tensor, TensorSpec};

/// An attribute value, printed as TF prints NodeDefs in its error messages.
#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A list of integers.
    Ints(Vec<i64>),
    /// A string.
    Str(String),
    /// A dtype.
    Type(DType),
}

impl fmt::Display for Attr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attr::Bool(b) => write!(f, "{b}"),
            Attr::Int(i) => write!(f, "{i}"),
            Attr::Ints(v) => {
                let s: Vec<String> = v.iter().map(i64::to_string).collect();
                write!(f, "[{}]", s.join(", "))
            }
            Attr::Str(s) => write!(f, "\"{s}\""),
            Attr::Type(t) => f.write_str(t.tf_enum()),
        }
    }
}

/// Why shape inference refused a node.
#[derive(Debug)]
pub enum InferError {
    /// A shape error from TF's C++ shape functions; the graph appends the NodeDef and the
    /// input shapes to the message, as TF does.
    Shape(String),
    /// Any other error, reported as it is.
    Other(Error),
}

impl From<Error> for InferError {
    fn from(e: Error) -> Self {
        InferError::Other(e)
    }
}

/// Result of shape inference.
pub type InferResult = std::result::Result<Vec<TensorSpec>, InferError>;

/// Returns early with a shape error.
macro_rules! shape_err {
    ($($arg:tt)*) => {
        return Err($crate::ops::InferError::Shape(format!($($arg)*)))
    };
}
pub(crate) use shape_err;

/// A pure computation: outputs depend only on inputs.
pub trait Op: Send + Sync + fmt::Debug {
    /// TF's op type, e.g. `AddV2`.
    fn type_name(&self) -> &'static str;
    /// Attributes other than `T`, for NodeDef summaries and DOT output.
    fn attrs(&self) -> Vec<(&'static str, Attr)> {
        Vec::new()
    }
    /// The inputs TF takes as tensors that wgflow holds as attributes (a shape, axes, a
    /// permutation), for export: `(position among the inputs, TF's argument name, value)`, in
    /// order. `inputs` are the node's data inputs, for values that depend on the rank.
    fn const_inputs(&self, _inputs: &[TensorSpec]) -> Result<Vec<(usize, &'static str, Tensor)>> {
        Ok(Vec::new())
    }
    /// Static output specs from static input specs; fails when the mismatch is certain.
    fn infer(&self, inputs: &[TensorSpec]) -> InferResult;
    /// The CPU kernel: checks run-time shapes and computes the outputs.
    fn compute(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>>;
    /// The GPU lowering for inputs of these concrete specs (dtype, shape); `None` when the op
    /// has no GPU kernel for them. Run-time shape errors are returned here, as by `compute`.
    fn gpu(&self, _inputs: &[(DType, &[usize])]) -> Option<Result<GpuLowering>> {
        None
    }
    /// Whether the GPU has a kernel for inputs of these concrete specs (dtype, shape): the
    /// cheap question placement asks, answered without building the lowering (every op with a
    /// GPU kernel answers it from dtypes and ranks). It must agree with [`Op::gpu`] returning
    /// `Some` (the registry's tests check it); the default asks `gpu`, which is as cheap for an
    /// op without GPU kernels.
    fn gpu_supports(&self, inputs: &[(DType, &[usize])]) -> bool {
        self.gpu(inputs).is_some()
    }
    /// Whether the output is the first input with another shape (its buffer reused): placed
    /// with its input, never a kernel of its own.
    fn is_view(&self) -> bool {
        false
    }
    /// Whether the output is the first input itself (`Identity`): a read of a variable through
    /// it aliases the variable, as TF's ref variables do, and is colocated with it.
    fn is_identity(&self) -> bool {
        false
    }
    /// The gradients of the inputs from the gradients of the outputs, as graph ops added under
    /// the current name scope (`None` for an input without one, such as an integer index).
    fn gradient(&self, _ctx: &crate::gradients::GradContext) -> Result<Vec<Option<crate::graph::Output>>> {
        Err(Error::unimplemented(format!("No gradient defined for operation of type {}", self.type_name())))
    }
    /// Floating-point operations for inputs and outputs of these static specs (unknown
    /// dimensions count as 1), for the cost model. Defaults to one per output element.
    fn flops(&self, _inputs: &[TensorSpec], outputs: &[TensorSpec]) -> f64 {
        outputs.iter().map(spec_elements).sum()
    }
    /// What this op computes per element, when it is an elementwise op a fused chain can
    /// hold (see the `fused` module).
    fn elementwise(&self) -> Option<elementwise::ElemKind> {
        None
    }
    /// The op type of this op with a fused chain of elementwise ops in the epilogue of its
    /// kernels (`_FusedConv2D` for `Conv2D`), as TF's remapper names it; `None` when its kernels
    /// take no epilogue. See [`Op::gpu_with_epilogue`].
    fn fused_name(&self) -> Option<&'static str> {
        None
    }
    /// The GPU lowering with `epilogue` applied to each output element before it is stored;
    /// its extra inputs bind after this op's. `None` when there is no such kernel.
    fn gpu_with_epilogue(
        &self,
        _inputs: &[(DType, &[usize])],
        _epilogue: &fused::Epilogue,
    ) -> Option<Result<GpuLowering>> {
        None
    }
}

/// Elements of a static spec, unknown dimensions (or rank) counted as 1.
pub(crate) fn spec_elements(spec: &TensorSpec) -> f64 {
    spec.shape.dims().map(|d| d.iter().map(|x| x.unwrap_or(1) as f64).product()).unwrap_or(1.0)
}

/// How an op runs on the GPU: one compute dispatch, or a view of its first input.
#[derive(Debug)]
pub enum GpuLowering {
    /// A WGSL kernel writing one output. Its uniform (binding 0) gets the invocation count
    /// followed by `uniforms`; inputs bind to 1..=n, the output to n+1.
    Kernel {
        /// The kernel source, prelude included.
        wgsl: std::borrow::Cow<'static, str>,
        /// Uniform words after the count.
        uniforms: Vec<u32>,
        /// Invocations (threads) to launch.
        invocations: u64,
        /// The kernel's 1-D `@workgroup_size`.
        workgroup_size: u32,
        /// The output's dtype and shape.
        out: (DType, Vec<usize>),
    },
    /// The output is the first input's buffer with another shape (reshape, identity).
    View(Vec<usize>),
    /// Several dispatches in order, through temporaries the executor allocates for the op and
    /// releases after it: kernels whose work would loop past `gpu_passes::MAX_LOOP_TRIPS` in one
    /// invocation (long reductions, long-k matmuls) split it into passes.
    Passes(Passes),
}

/// A buffer a [`Pass`] binds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassBuf {
    /// The op's input of this index.
    Input(usize),
    /// The temporary of this index.
    Temp(usize),
    /// The op's output.
    Out,
}

/// One dispatch of a [`GpuLowering::Passes`]: its uniform (binding 0) gets the invocation
/// count followed by `uniforms`; `inputs` bind to 1..=n, `output` to n+1.
#[derive(Debug)]
pub struct Pass {
    /// The kernel source, prelude included.
    pub wgsl: std::borrow::Cow<'static, str>,
    /// Uniform words after the count.
    pub uniforms: Vec<u32>,
    /// Invocations (threads) to launch.
    pub invocations: u64,
    /// The kernel's 1-D `@workgroup_size`.
    pub workgroup_size: u32,
    /// The buffers bound as the kernel's inputs.
    pub inputs: Vec<PassBuf>,
    /// The buffer bound as its output (never one of `inputs`).
    pub output: PassBuf,
}

/// The dispatches of a multi-pass lowering, with the temporaries they pass results through.
#[derive(Debug)]
pub struct Passes {
    /// The temporaries' dtypes and shapes.
    pub temps: Vec<(DType, Vec<usize>)>,
    /// The dispatches, in order.
    pub passes: Vec<Pass>,
    /// The output's dtype and shape.
    pub out: (DType, Vec<usize>),
}

impl Passes {
    /// An empty list writing an output of `out`.
    pub(crate) fn new(dtype: DType, shape: Vec<usize>) -> Self {
        Passes { temps: Vec::new(), passes: Vec::new(), out: (dtype, shape) }
    }

    /// A new temporary.
    pub(crate) fn temp(&mut self, dtype: DType, shape: Vec<usize>) -> PassBuf {
        self.temps.push((dtype, shape));
        PassBuf::Temp(self.temps.len() - 1)
    }

    /// The lowering.
    pub(crate) fn lowering(self) -> GpuLowering {
        GpuLowering::Passes(self)
    }
}

/// How an assignment combines the old value and the new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssignMode {
    /// `Assign`: replace.
    Set,
    /// `AssignAdd`: add.
    Add,
    /// `AssignSub`: subtract.
    Sub,
    /// `ApplyGradientDescent(var, alpha, delta)`: `var -= alpha * delta`.
    GradientDescent,
}

/// What a node does.
#[derive(Clone, Debug)]
pub enum OpKind {
    /// A constant value (`Const`).
    Const(Tensor),
    /// A value that must be fed (`Placeholder`).
    Placeholder(TensorSpec),
    /// A variable held by each session (`VariableV2`).
    Variable(TensorSpec),
    /// An update of a variable, returning the new value (`Assign`, `AssignAdd`, `AssignSub`).
    Assign(AssignMode),
    /// Whether a variable holds a value (`IsVariableInitialized`).
    IsVariableInitialized,
    /// The names of the graph's uninitialized variables, as a string vector.
    ReportUninitialized,
    /// Nothing; used for grouping control dependencies (`NoOp`).
    NoOp,
    /// A pure computation.
    Compute(Arc<dyn Op>),
}

impl OpKind {
    /// TF's op type.
    pub fn type_name(&self) -> &'static str {
        match self {
            OpKind::Const(_) => "Const",
            OpKind::Placeholder(_) => "Placeholder",
            OpKind::Variable(_) => "VariableV2",
            OpKind::Assign(AssignMode::Set) => "Assign",
            OpKind::Assign(AssignMode::Add) => "AssignAdd",
            OpKind::Assign(AssignMode::Sub) => "AssignSub",
            OpKind::Assign(AssignMode::GradientDescent) => "ApplyGradientDescent",
            OpKind::IsVariableInitialized => "IsVariableInitialized",
            OpKind::ReportUninitialized => "ReportUninitializedVariables",
            OpKind::NoOp => "NoOp",
            OpKind::Compute(op) => op.type_name(),
        }
    }

    /// The attributes TF would print for this node, sorted by name, `T` included.
    pub(crate) fn attrs(&self, inputs: &[TensorSpec]) -> Vec<(&'static str, Attr)> {
        let mut attrs = match self {
            OpKind::Const(t) => vec![("dtype", Attr::Type(t.dtype()))],
            OpKind::Placeholder(s) | OpKind::Variable(s) => vec![("dtype", Attr::Type(s.dtype))],
            OpKind::Compute(op) => op.attrs(),
            _ => Vec::new(),
        };
        if matches!(self, OpKind::Compute(_) | OpKind::Assign(_)) {
            if let Some(first) = inputs.first() {
                // `Cast` names its input type `SrcT` (beside `DstT`), `GatherV2` `Tparams`; every
                // other op `T`.
                let key = match self.type_name() {
                    _ if attrs.iter().any(|(k, _)| *k == "DstT") => "SrcT",
                    "GatherV2" => "Tparams",
                    _ => "T",
                };
                attrs.push((key, Attr::Type(first.dtype)));
            }
        }
        attrs.sort_by(|a, b| a.0.cmp(b.0));
        attrs
    }
}

/// The rank of `x` for an exported constant input that depends on it.
pub(crate) fn export_rank(op: &str, x: Option<&TensorSpec>) -> Result<usize> {
    x.and_then(|x| x.shape.rank())
        .ok_or_else(|| Error::unimplemented(format!("{op}: exporting it needs its input's rank")))
}

/// An int32 vector constant of `values` (an exported shape, axes or permutation).
pub(crate) fn i32_vector(values: impl IntoIterator<Item = i64>) -> Result<Tensor> {
    let v: std::result::Result<Vec<i32>, _> = values.into_iter().map(i32::try_from).collect();
    v.map(Tensor::from).map_err(|_| Error::invalid_argument("a value over int32 in an exported constant"))
}

/// TF's error when a node's second typed input does not match its first, e.g. "Input 'y' of
/// 'AddV2' Op has type int32 that does not match type float32 of argument 'x'."
pub(crate) fn same_dtype(op: &str, (arg0, a): (&str, DType), (arg1, b): (&str, DType)) -> Result<()> {
    if a == b {
        return Ok(());
    }
    Err(Error::invalid_argument(format!(
        "Input '{arg1}' of '{op}' Op has type {b} that does not match type {a} of argument '{arg0}'."
    )))
}

/// Wraps a pure op as a node kind.
pub(crate) fn compute(op: impl Op + 'static) -> OpKind {
    OpKind::Compute(Arc::new(op))
}

pub(crate) use state::infer_assign;
pub(crate) use wgsl_cache::cached_wgsl;
#[cfg(feature = "test-hooks")]
pub use wgsl_cache::kernels_built;

/// The pure op of a binary elementwise kind.
pub(crate) fn binary_op(kind: BinaryKind) -> impl Op {
    elementwise::Binary(kind)
}

/// The pure op of a unary elementwise kind.
pub(crate) fn unary_op(kind: UnaryKind) -> impl Op {
    elementwise::Unary(kind)
}

/// Runs a binary elementwise kernel on two host tensors.
pub(crate) fn binary_compute(kind: BinaryKind, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let mut out = elementwise::Binary(kind).compute(&[a, b])?;
    out.pop().ok_or_else(|| Error::internal("binary op produced no output"))
}
