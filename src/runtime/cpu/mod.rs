//! CPU kernel helpers shared by several ops.

pub(crate) mod conv;
pub(crate) mod gemm;
pub(crate) mod pool;
