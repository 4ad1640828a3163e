//! Fused ops, made by the planner (`session::fuse`) after placement: a chain of elementwise
//! ops run as one kernel, optionally as the epilogue of the `Conv2D` or `MatMul` whose output
//! it consumes (TF's remapper makes `_FusedConv2D` and `_FusedMatMul` the same way).
//!
//! A chain is an expression tree over its inputs (the leaves). Each elementwise op is still
//! declared once, in its table row: the CPU twin evaluates the tree block by block with each
//! row's slice kernel, the GPU kernel nests each row's WGSL expression. Anything the fast
//! paths do not cover (other dtypes, shapes that do not broadcast) runs op by op through each
//! op's own kernel, so results and errors are those of the unfused graph.

mod cpu;
pub(crate) mod wgsl;

use std::sync::Arc;

use super::{GpuLowering, InferError, InferResult, Op};
use crate::error::{Error, Result};
use crate::tensor::{DType, Tensor, TensorSpec};

pub use super::elementwise::ElemKind;
pub use wgsl::Epilogue;

/// The TF op types of this family (see `ops::registry`): wgflow's fused kernels.
pub(crate) fn types() -> Vec<&'static str> {
    vec!["_FusedElementwise", "_FusedConv2D", "_FusedMatMul", "_FusedBatchMatMulV2"]
}

/// Every instantiation of the fused kernels, named, for the naga validation test.
pub(crate) fn instantiations() -> Result<Vec<(String, String)>> {
    Ok(wgsl::instantiations())
}

/// A fused chain: an op (and its kind) applied to sub-expressions, or input `k` of the chain.
#[derive(Clone, Debug)]
pub(crate) enum Expr {
    /// The chain's input `k`.
    Leaf(usize),
    /// An elementwise op of the graph applied to its arguments.
    Node { op: Arc<dyn Op>, kind: ElemKind, args: Vec<Expr> },
}

impl Expr {
    /// The output shape for leaves of `shapes`, when every op's broadcast is valid for them.
    pub(crate) fn shape(&self, shapes: &[&[usize]]) -> Option<Vec<usize>> {
        match self {
            Expr::Leaf(k) => shapes.get(*k).map(|s| s.to_vec()),
            Expr::Node { kind, args, .. } => {
                let dims: Vec<Vec<usize>> = args.iter().map(|a| a.shape(shapes)).collect::<Option<_>>()?;
                match (kind, dims.as_slice()) {
                    (ElemKind::Unary(_), [a]) => Some(a.clone()),
                    (ElemKind::Binary(_), [a, b]) => super::elementwise::broadcast_shapes(a, b).ok(),
                    (ElemKind::BiasAdd, [x, b]) => super::elementwise::check_bias_shapes(x, b).ok().map(|()| x.clone()),
                    _ => None,
                }
            }
        }
    }

    /// Runs the chain op by op with each op's own kernel (any dtype; the unfused errors).
    fn eval_ops(&self, leaves: &[&Tensor]) -> Result<Tensor> {
        match self {
            Expr::Leaf(k) => leaves.get(*k).map(|t| (*t).clone()).ok_or_else(|| Error::internal("fused leaf missing")),
            Expr::Node { op, args, .. } => {
                let values = args.iter().map(|a| a.eval_ops(leaves)).collect::<Result<Vec<_>>>()?;
                let refs: Vec<&Tensor> = values.iter().collect();
                op.compute(&refs)?.pop().ok_or_else(|| Error::internal("an elementwise op produced no output"))
            }
        }
    }

    /// The structure, for kernel cache keys: ops by kind, leaves by number.
    pub(crate) fn signature(&self) -> String {
        match self {
            Expr::Leaf(k) => format!("L{k}"),
            Expr::Node { kind, args, .. } => {
                let args: Vec<String> = args.iter().map(Expr::signature).collect();
                format!("{kind:?}({})", args.join(","))
            }
        }
    }

    /// The same chain with every leaf `k` renumbered to `map(k)`.
    pub(crate) fn renumber(&self, map: &impl Fn(usize) -> usize) -> Expr {
        match self {
            Expr::Leaf(k) => Expr::Leaf(map(*k)),
            Expr::Node { op, kind, args } => {
                Expr::Node { op: op.clone(), kind: *kind, args: args.iter().map(|a| a.renumber(map)).collect() }
            }
        }
    }

    /// The same chain with leaf `k` replaced by `sub`.
    pub(crate) fn substitute(&self, k: usize, sub: &Expr) -> Expr {
        match self {
            Expr::Leaf(j) if *j == k => sub.clone(),
            Expr::Leaf(j) => Expr::Leaf(*j),
            Expr::Node { op, kind, args } => {
                Expr::Node { op: op.clone(), kind: *kind, args: args.iter().map(|a| a.substitute(k, sub)).collect() }
            }
        }
    }
}

/// How a chain's input of `shape` is read for an output of shape `out` (which it broadcasts to).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Broadcast {
    /// It has the output's elements: element `i` for output element `i`.
    Full,
    /// Its dimensions (leading ones aside) are the output's last ones (a bias, a scalar):
    /// element `i % len`.
    Suffix,
    /// Any other broadcast: element offsets from the output's coordinates and its strides.
    Strided,
}

impl Broadcast {
    pub(crate) fn of(shape: &[usize], out: &[usize]) -> Broadcast {
        if shape.iter().product::<usize>() == out.iter().product::<usize>() {
            return Broadcast::Full;
        }
        let trimmed: Vec<usize> = shape.iter().copied().skip_while(|&d| d == 1).collect();
        if trimmed.len() <= out.len() && out[out.len() - trimmed.len()..] == trimmed[..] {
            Broadcast::Suffix
        } else {
            Broadcast::Strided
        }
    }
}

/// The element strides of an input of `shape` over `rank` output dimensions (right-aligned,
/// `rank` at least the input's): 0 where it broadcasts.
pub(crate) fn broadcast_strides(shape: &[usize], rank: usize) -> Vec<usize> {
    let mut strides = vec![0; rank];
    let mut step = 1;
    for (k, &d) in shape.iter().enumerate().rev() {
        if d != 1 {
            strides[rank - shape.len() + k] = step;
        }
        step *= d;
    }
    strides
}

/// A fused chain as one op. With a head (`Conv2D`, `MatMul`), the head's inputs come first and
/// its output is the chain's leaf 0; the chain's other leaves are the inputs after them.
#[derive(Debug)]
pub(crate) struct Fused {
    pub(crate) head: Option<Arc<dyn Op>>,
    pub(crate) head_inputs: usize,
    pub(crate) expr: Expr,
}

impl Op for Fused {
    fn type_name(&self) -> &'static str {
        self.head.as_ref().map_or(Some("_FusedElementwise"), |h| h.fused_name()).unwrap_or("_Fused")
    }
    fn infer(&self, _inputs: &[TensorSpec]) -> InferResult {
        Err(InferError::Other(Error::internal("fused ops are made by the planner, after shape inference")))
    }
    fn compute(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let split = self.head_inputs.min(inputs.len());
        let head_out = match &self.head {
            Some(h) => Some(
                h.compute(&inputs[..split])?
                    .pop()
                    .ok_or_else(|| Error::internal("the head of a fusion made no output"))?,
            ),
            None => None,
        };
        let leaves: Vec<&Tensor> = head_out.iter().chain(inputs[split..].iter().copied()).collect();
        let out = match cpu::eval_f32(&self.expr, &leaves) {
            Some(t) => t,
            None => self.expr.eval_ops(&leaves)?,
        };
        if let Some(t) = head_out {
            crate::runtime::cpu::recycle::give(t);
        }
        Ok(vec![out])
    }
    fn gpu(&self, inputs: &[(DType, &[usize])]) -> Option<Result<GpuLowering>> {
        if inputs.iter().any(|(d, _)| *d != DType::F32) {
            return None;
        }
        let split = self.head_inputs.min(inputs.len());
        let leaves: Vec<&[usize]> = inputs[split..].iter().map(|(_, s)| *s).collect();
        match &self.head {
            Some(h) => h.gpu_with_epilogue(&inputs[..split], &Epilogue::new(&self.expr, &leaves)),
            None => wgsl::lowering(&self.expr, &leaves),
        }
    }
}
