//! CPU kernel helpers shared by several ops.

pub(crate) mod conv;
pub(crate) mod conv_grad;
pub(crate) mod gemm;
pub(crate) mod pool;
pub(crate) mod pool_grad;
pub(crate) mod recycle;
