//! Matrix products: `MatMul` (two matrices) and `BatchMatMulV2` (stacks of matrices with
//! numpy-broadcast batch dimensions): their shape rules, costs and builder. `cpu.rs` runs the
//! SIMD GEMM once per batch, `gpu.rs` holds the tiled and subgroup WGSL kernels, `grad.rs`
//! the gradients.

mod cpu;
mod gpu;
mod gpu_coop;
mod gpu_rb;
mod grad;

pub(crate) use gpu::{instantiations, k_split};

use super::elementwise::broadcast_static;
use super::fused::Epilogue;
use super::{compute, shape_err, Attr, GpuLowering, InferError, InferResult, Op};
use crate::error::{invalid, Error, Result};
use crate::graph::{Graph, Operand, Output};
use crate::tensor::{dims_string, DType, Shape, Tensor, TensorSpec};
use cpu::matmul_any;

/// The TF op types of this family (see `ops::registry`).
pub(crate) fn types() -> Vec<&'static str> {
    vec!["MatMul", "BatchMatMulV2"]
}

/// `MatMul`: the product of two rank-2 tensors, either of them optionally transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MatMul {
    /// Use the transpose of the first input.
    pub(crate) transpose_a: bool,
    /// Use the transpose of the second input.
    pub(crate) transpose_b: bool,
}

/// `BatchMatMulV2`: matrix products over the last two dimensions, batch dimensions broadcast.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BatchMatMul {
    /// Use the transpose (adjoint) of each matrix of the first input.
    pub(crate) adj_x: bool,
    /// Use the transpose (adjoint) of each matrix of the second input.
    pub(crate) adj_y: bool,
}

/// Both inputs must have one dtype with a kernel: float32 (the GEMM, and the GPU), float64
/// and int32 (a plain CPU kernel).
fn check_dtypes(op: &str, arg0: &str, arg1: &str, a: DType, b: DType) -> Result<()> {
    super::same_dtype(op, (arg0, a), (arg1, b))?;
    if !matches!(a, DType::F32 | DType::F64 | DType::I32) {
        return Err(Error::unimplemented(format!("{op}: only float32, float64 and int32 are supported, got {a}")));
    }
    Ok(())
}

/// TF's `Merge` of two dimensions: equal when both are known.
fn merge_dim(a: Option<usize>, b: Option<usize>) -> std::result::Result<Option<usize>, String> {
    match (a, b) {
        (Some(x), Some(y)) if x != y => Err(format!("Dimensions must be equal, but are {x} and {y}")),
        (Some(x), _) | (_, Some(x)) => Ok(Some(x)),
        (None, None) => Ok(None),
    }
}

/// The attrs of both products: the transpose flags, then the two `grad_*` flags TF adds
/// (always false here), under the op's own `names`.
fn product_attrs(names: [&'static str; 4], (a, b): (bool, bool)) -> Vec<(&'static str, Attr)> {
    let flags = [a, b, false, false];
    names.into_iter().zip(flags).map(|(name, flag)| (name, Attr::Bool(flag))).collect()
}

/// The (rows, columns) of the product of matrices `a` and `b` (their rows and columns,
/// `None` where unknown), each transposed where flagged; a shape error when the inner
/// dimensions differ.
fn product_dims(
    a: [Option<usize>; 2],
    b: [Option<usize>; 2],
    (ta, tb): (bool, bool),
) -> std::result::Result<[Option<usize>; 2], InferError> {
    let (rows, inner_a) = if ta { (a[1], a[0]) } else { (a[0], a[1]) };
    let (inner_b, cols) = if tb { (b[1], b[0]) } else { (b[0], b[1]) };
    if let Err(msg) = merge_dim(inner_a, inner_b) {
        shape_err!("{msg}");
    }
    Ok([rows, cols])
}

impl Op for MatMul {
    fn gradient(&self, ctx: &crate::gradients::GradContext) -> Result<Vec<Option<crate::graph::Output>>> {
        self.grad(ctx)
    }
    fn type_name(&self) -> &'static str {
        "MatMul"
    }
    fn attrs(&self) -> Vec<(&'static str, Attr)> {
        product_attrs(["transpose_a", "transpose_b", "grad_a", "grad_b"], (self.transpose_a, self.transpose_b))
    }
    fn infer(&self, inputs: &[TensorSpec]) -> InferResult {
        let (a, b) = (&inputs[0], &inputs[1]);
        check_dtypes("MatMul", "a", "b", a.dtype, b.dtype)?;
        let mut dims = Vec::with_capacity(2);
        for s in [&a.shape, &b.shape] {
            match s.dims() {
                Some(d) if d.len() == 2 => dims.push([d[0], d[1]]),
                Some(d) => shape_err!("Shape must be rank 2 but is rank {}", d.len()),
                None => dims.push([None, None]),
            }
        }
        let rows_cols = product_dims(dims[0], dims[1], (self.transpose_a, self.transpose_b))?;
        Ok(vec![TensorSpec::new(a.dtype, Shape::partial(&rows_cols))])
    }
    fn compute(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let (a, b) = (inputs[0], inputs[1]);
        for (i, t) in [a, b].iter().enumerate() {
            if t.shape().len() != 2 {
                invalid!("In[{i}] is not a matrix. Instead it has shape {}", dims_string(t.shape()));
            }
        }
        Ok(vec![matmul_any(a, b, self.transpose_a, self.transpose_b)?])
    }
    fn gpu(&self, inputs: &[(DType, &[usize])]) -> Option<Result<GpuLowering>> {
        self.lower(inputs, None)
    }
    fn gpu_supports(&self, inputs: &[(DType, &[usize])]) -> bool {
        self.supports(inputs)
    }
    fn fused_name(&self) -> Option<&'static str> {
        Some("_FusedMatMul")
    }
    fn gpu_with_epilogue(&self, inputs: &[(DType, &[usize])], epilogue: &Epilogue) -> Option<Result<GpuLowering>> {
        self.lower(inputs, Some(epilogue))
    }
    fn flops(&self, inputs: &[TensorSpec], outputs: &[TensorSpec]) -> f64 {
        matmul_flops(inputs, outputs, self.transpose_a)
    }
}

impl Op for BatchMatMul {
    fn gradient(&self, ctx: &crate::gradients::GradContext) -> Result<Vec<Option<crate::graph::Output>>> {
        self.grad(ctx)
    }
    fn type_name(&self) -> &'static str {
        "BatchMatMulV2"
    }
    fn attrs(&self) -> Vec<(&'static str, Attr)> {
        product_attrs(["adj_x", "adj_y", "grad_x", "grad_y"], (self.adj_x, self.adj_y))
    }
    fn infer(&self, inputs: &[TensorSpec]) -> InferResult {
        let (a, b) = (&inputs[0], &inputs[1]);
        check_dtypes("BatchMatMulV2", "x", "y", a.dtype, b.dtype)?;
        for s in [&a.shape, &b.shape] {
            if let Some(r) = s.rank().filter(|&r| r < 2) {
                shape_err!("Shape must be at least rank 2 but is rank {r}");
            }
        }
        let (Some(da), Some(db)) = (a.shape.dims(), b.shape.dims()) else {
            return Ok(vec![TensorSpec::new(a.dtype, Shape::unknown())]);
        };
        let (ra, rb) = (da.len(), db.len());
        let rows_cols = product_dims([da[ra - 2], da[ra - 1]], [db[rb - 2], db[rb - 1]], (self.adj_x, self.adj_y))?;
        let batch = match broadcast_static(&Shape::partial(&da[..ra - 2]), &Shape::partial(&db[..rb - 2])) {
            Ok(s) => s,
            Err(msg) => shape_err!("{msg}"),
        };
        let mut out = batch.dims().map(<[_]>::to_vec).unwrap_or_default();
        out.extend(rows_cols);
        Ok(vec![TensorSpec::new(a.dtype, Shape::partial(&out))])
    }
    fn compute(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let (a, b) = (inputs[0], inputs[1]);
        for (i, t) in [a, b].iter().enumerate() {
            if t.shape().len() < 2 {
                invalid!("In[{i}] ndims must be >= 2: {}", t.shape().len());
            }
        }
        Ok(vec![matmul_any(a, b, self.adj_x, self.adj_y)?])
    }
    fn gpu(&self, inputs: &[(DType, &[usize])]) -> Option<Result<GpuLowering>> {
        self.lower(inputs, None)
    }
    fn gpu_supports(&self, inputs: &[(DType, &[usize])]) -> bool {
        self.supports(inputs)
    }
    fn fused_name(&self) -> Option<&'static str> {
        Some("_FusedBatchMatMulV2")
    }
    fn gpu_with_epilogue(&self, inputs: &[(DType, &[usize])], epilogue: &Epilogue) -> Option<Result<GpuLowering>> {
        self.lower(inputs, Some(epilogue))
    }
    fn flops(&self, inputs: &[TensorSpec], outputs: &[TensorSpec]) -> f64 {
        matmul_flops(inputs, outputs, self.adj_x)
    }
}

/// Two FLOPs per output element and step of the inner dimension.
fn matmul_flops(inputs: &[TensorSpec], outputs: &[TensorSpec], transpose_a: bool) -> f64 {
    let inner = inputs[0].shape.dims().and_then(|d| {
        let i = if transpose_a { d.len().checked_sub(2)? } else { d.len().checked_sub(1)? };
        d[i]
    });
    2.0 * inner.unwrap_or(1) as f64 * outputs.iter().map(super::spec_elements).sum::<f64>()
}

impl Graph {
    /// `tf.matmul(a, b, transpose_a, transpose_b)` for float32, float64 and int32 tensors
    /// (float32 also on the GPU; the others run on the CPU).
    ///
    /// Two inputs of static rank 2 make a `MatMul` node; otherwise (a rank above 2 or an
    /// unknown rank) a `BatchMatMulV2` node that multiplies the matrices in the last two
    /// dimensions and broadcasts the leading (batch) dimensions. Either way the node is named
    /// `MatMul`. A static inner-dimension mismatch fails here with TF's message; one found at
    /// run time fails the run with `Matrix size-incompatible: ...`.
    pub fn matmul(
        &self,
        a: impl Into<Operand>,
        b: impl Into<Operand>,
        transpose_a: bool,
        transpose_b: bool,
    ) -> Result<Output> {
        let (a, b) = (a.into(), b.into());
        let rank = |o: &Operand| match o {
            Operand::Tensor(t) => t.shape().rank(),
            Operand::Value(v) => Some(v.shape().len()),
        };
        let batched = [rank(&a), rank(&b)].iter().any(|r| r.is_none_or(|r| r > 2));
        let inputs = if batched { vec![("x", a), ("y", b)] } else { vec![("a", a), ("b", b)] };
        let op = if batched {
            compute(BatchMatMul { adj_x: transpose_a, adj_y: transpose_b })
        } else {
            compute(MatMul { transpose_a, transpose_b })
        };
        self.add_op1("MatMul", op, inputs)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Code, ConfigProto, DType, Graph, Session, Shape, Tensor};

    #[test]
    fn static_mismatch_has_tf_message() {
        let g = Graph::new();
        let a = g.ones(&[2, 3]).unwrap();
        let b = g.ones(&[2, 3]).unwrap();
        let err = g.matmul(&a, &b, false, false).unwrap_err();
        assert_eq!(err.code, Code::InvalidArgument);
        assert_eq!(
            err.message,
            "Dimensions must be equal, but are 3 and 2 for '{{node MatMul}} = MatMul[T=DT_FLOAT, grad_a=false, \
             grad_b=false, transpose_a=false, transpose_b=false](ones, ones_1)' with input shapes: [2,3], [2,3]."
        );
    }

    #[test]
    fn runtime_mismatch_and_broadcast() {
        let g = Graph::new();
        let p = g.placeholder(DType::F32, Shape::unknown()).unwrap();
        let q = g.placeholder(DType::F32, Shape::unknown()).unwrap();
        let m = g.matmul(&p, &q, false, false).unwrap();
        assert_eq!(m.op().op_type(), "BatchMatMulV2");
        let sess = Session::new(&g, ConfigProto::cpu_only()).unwrap();
        let ones = Tensor::filled(DType::F32, &[2, 3], 1.0);
        let err = sess.eval_feed(&m, &[(&p, ones.clone()), (&q, ones.clone())]).unwrap_err();
        assert_eq!(err.message, "Matrix size-incompatible: In[0]: [2,3], In[1]: [2,3]");
        let b = Tensor::filled(DType::F32, &[3, 1, 3, 2], 1.0);
        let got = sess.eval_feed(&m, &[(&p, ones), (&q, b)]).unwrap();
        assert_eq!(got.shape(), &[3, 1, 2, 2]);
        assert!(got.to_f32_vec().unwrap().iter().all(|&x| x == 3.0));
    }
}
