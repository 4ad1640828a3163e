//! The `Graph` builders of the elementwise ops (`g.add`, `g.relu`, ...) and the Python
//! operators on tensors (`&a + &b`).

use std::ops;

use super::{Binary, BinaryKind, Cast, Unary, UnaryKind};
use crate::error::Result;
use crate::graph::{Graph, Operand, Output};
use crate::ops::compute;
use crate::tensor::DType;

impl Graph {
    /// A binary elementwise op by kind, with its default name: the TF op itself, as
    /// `tf.raw_ops` gives it. The named builders are TF's Python functions and may differ:
    /// `binary(BinaryKind::Div, ..)` is the `RealDiv` op, which TF registers for float types
    /// only (int32 operands are `InvalidArgument`, as in TF), while [`Graph::div`] is
    /// `tf.divide`, which casts int32 operands to float64 first.
    pub fn binary(&self, kind: BinaryKind, x: impl Into<Operand>, y: impl Into<Operand>) -> Result<Output> {
        self.add_op1(kind.default_name(), compute(Binary(kind)), vec![("x", x.into()), ("y", y.into())])
    }
    /// A unary elementwise op by kind.
    pub fn unary(&self, kind: UnaryKind, x: impl Into<Operand>) -> Result<Output> {
        self.add_op1(kind.tf_name(), compute(Unary(kind)), vec![("x", x.into())])
    }
    /// `tf.cast(x, dtype)`.
    pub fn cast(&self, x: impl Into<Operand>, dtype: DType) -> Result<Output> {
        self.add_op1("Cast", compute(Cast(dtype)), vec![("x", x.into())])
    }
    /// `tf.add(x, y)` (`AddV2`, named `Add`).
    pub fn add(&self, x: impl Into<Operand>, y: impl Into<Operand>) -> Result<Output> {
        self.binary(BinaryKind::Add, x, y)
    }
    /// `tf.subtract(x, y)`.
    pub fn sub(&self, x: impl Into<Operand>, y: impl Into<Operand>) -> Result<Output> {
        self.binary(BinaryKind::Sub, x, y)
    }
    /// `tf.multiply(x, y)`.
    pub fn mul(&self, x: impl Into<Operand>, y: impl Into<Operand>) -> Result<Output> {
        self.binary(BinaryKind::Mul, x, y)
    }
    /// `tf.divide(x, y)`: `RealDiv`; int32 inputs are cast to float64 first, as in TF.
    pub fn div(&self, x: impl Into<Operand>, y: impl Into<Operand>) -> Result<Output> {
        let (x, y) = (x.into(), y.into());
        let int = |o: &Operand| match o {
            Operand::Tensor(t) => t.dtype() == DType::I32,
            Operand::Value(v) => v.dtype() == DType::I32,
        };
        if int(&x) && int(&y) {
            let _scope = self.name_scope("truediv");
            let cx = self.cast(x, DType::F64)?;
            let cy = self.cast(y, DType::F64)?;
            let scope = self.current_scope();
            return self.named(&format!("{scope}/")).binary(BinaryKind::Div, cx, cy);
        }
        self.binary(BinaryKind::Div, x, y)
    }
    /// `tf.math.floordiv(x, y)`.
    pub fn floordiv(&self, x: impl Into<Operand>, y: impl Into<Operand>) -> Result<Output> {
        self.binary(BinaryKind::FloorDiv, x, y)
    }
    /// `tf.truncatediv(x, y)`.
    pub fn truncatediv(&self, x: impl Into<Operand>, y: impl Into<Operand>) -> Result<Output> {
        self.binary(BinaryKind::TruncateDiv, x, y)
    }
    /// `tf.maximum(x, y)` (NaN from either side propagates).
    pub fn maximum(&self, x: impl Into<Operand>, y: impl Into<Operand>) -> Result<Output> {
        self.binary(BinaryKind::Maximum, x, y)
    }
    /// `tf.minimum(x, y)` (NaN from either side propagates).
    pub fn minimum(&self, x: impl Into<Operand>, y: impl Into<Operand>) -> Result<Output> {
        self.binary(BinaryKind::Minimum, x, y)
    }
    /// `tf.pow(x, y)`.
    pub fn pow(&self, x: impl Into<Operand>, y: impl Into<Operand>) -> Result<Output> {
        self.binary(BinaryKind::Pow, x, y)
    }
    /// `tf.math.squared_difference(x, y)`.
    pub fn squared_difference(&self, x: impl Into<Operand>, y: impl Into<Operand>) -> Result<Output> {
        self.binary(BinaryKind::SquaredDifference, x, y)
    }
    /// `tf.negative(x)`.
    pub fn neg(&self, x: impl Into<Operand>) -> Result<Output> {
        self.unary(UnaryKind::Neg, x)
    }
    /// `tf.abs(x)`.
    pub fn abs(&self, x: impl Into<Operand>) -> Result<Output> {
        self.unary(UnaryKind::Abs, x)
    }
    /// `tf.exp(x)`.
    pub fn exp(&self, x: impl Into<Operand>) -> Result<Output> {
        self.unary(UnaryKind::Exp, x)
    }
    /// `tf.math.log(x)`.
    pub fn log(&self, x: impl Into<Operand>) -> Result<Output> {
        self.unary(UnaryKind::Log, x)
    }
    /// `tf.sqrt(x)`.
    pub fn sqrt(&self, x: impl Into<Operand>) -> Result<Output> {
        self.unary(UnaryKind::Sqrt, x)
    }
    /// `tf.math.rsqrt(x)`.
    pub fn rsqrt(&self, x: impl Into<Operand>) -> Result<Output> {
        self.unary(UnaryKind::Rsqrt, x)
    }
    /// `tf.tanh(x)`.
    pub fn tanh(&self, x: impl Into<Operand>) -> Result<Output> {
        self.unary(UnaryKind::Tanh, x)
    }
    /// `tf.sigmoid(x)`.
    pub fn sigmoid(&self, x: impl Into<Operand>) -> Result<Output> {
        self.unary(UnaryKind::Sigmoid, x)
    }
    /// `tf.nn.relu(x)`.
    pub fn relu(&self, x: impl Into<Operand>) -> Result<Output> {
        self.unary(UnaryKind::Relu, x)
    }
    /// `tf.nn.relu6(x)`: `min(max(x, 0), 6)`.
    pub fn relu6(&self, x: impl Into<Operand>) -> Result<Output> {
        self.unary(UnaryKind::Relu6, x)
    }
    /// `tf.nn.elu(x)`: `x` where positive, else `exp(x) - 1`.
    pub fn elu(&self, x: impl Into<Operand>) -> Result<Output> {
        self.unary(UnaryKind::Elu, x)
    }
    /// `tf.ones_like(x)` (`OnesLike`): the seed of a gradient.
    pub(crate) fn ones_like(&self, x: impl Into<Operand>) -> Result<Output> {
        self.unary(UnaryKind::OnesLike, x)
    }
    /// `tf.square(x)`.
    pub fn square(&self, x: impl Into<Operand>) -> Result<Output> {
        self.unary(UnaryKind::Square, x)
    }
}

/// Implements a Python operator on tensors (`a + b` is named `add`, as in TF).
macro_rules! operator {
    ($trait:ident, $method:ident, $kind:ident, $name:literal) => {
        impl<R: Into<Operand>> ops::$trait<R> for &Output {
            type Output = Result<Output>;
            fn $method(self, rhs: R) -> Result<Output> {
                self.graph.named($name).binary(BinaryKind::$kind, self, rhs)
            }
        }
        impl<R: Into<Operand>> ops::$trait<R> for Output {
            type Output = Result<Output>;
            fn $method(self, rhs: R) -> Result<Output> {
                (&self).$method(rhs)
            }
        }
    };
}

operator!(Add, add, Add, "add");
operator!(Sub, sub, Sub, "sub");
operator!(Mul, mul, Mul, "mul");
operator!(Div, div, Div, "truediv");

impl ops::Neg for &Output {
    type Output = Result<Output>;
    fn neg(self) -> Result<Output> {
        self.graph.named("Neg").unary(UnaryKind::Neg, self)
    }
}
