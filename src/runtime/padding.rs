//! The padding rule of windowed kernels (convolutions and pools), shared by the CPU and GPU
//! kernels and by the ops that declare them.

/// Padding of convolutions and pools.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// Output size `ceil(in / stride)`; the odd pad goes after (bottom/right).
    Same,
    /// No padding.
    Valid,
}

impl Padding {
    /// TF's attribute value: `SAME` or `VALID`.
    pub fn tf_name(self) -> &'static str {
        match self {
            Padding::Same => "SAME",
            Padding::Valid => "VALID",
        }
    }
}
