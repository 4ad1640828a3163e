//! CPU kernel helpers shared by several ops.

pub(crate) mod gemm;
