//! (to be written)

/// Padding of convolutions and pools.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// Output size `ceil(in / stride)`; the odd pad goes after (bottom/right).
    Same,
    /// No padding.
    Valid,
}
