//! What an elementwise op computes per element ([`ElemKind`]): the vocabulary of the fused
//! chains (`ops::fused`), declared here so that the fused kernels build on this family and not
//! the other way round.

use super::{BinaryKind, UnaryKind};

/// What an elementwise op computes per element.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ElemKind {
    /// A unary op of the table.
    Unary(UnaryKind),
    /// A binary op of the table, with numpy broadcasting.
    Binary(BinaryKind),
    /// `BiasAdd` (NHWC): an add whose bias is a vector along the last dimension.
    BiasAdd,
}

impl ElemKind {
    /// The WGSL expression of `a` (and `b`).
    pub(crate) fn wgsl(self) -> &'static str {
        match self {
            ElemKind::Unary(k) => k.wgsl(),
            ElemKind::Binary(k) => k.wgsl(),
            ElemKind::BiasAdd => "a + b",
        }
    }
}
