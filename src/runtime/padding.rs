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

impl std::fmt::Display for Padding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.tf_name())
    }
}

/// TF's names, `"SAME"` and `"VALID"` (any case): `"SAME".parse::<Padding>()`. Anything else
/// is `InvalidArgument` naming the value, in TF's words for the `padding` attribute.
impl std::str::FromStr for Padding {
    type Err = crate::error::Error;
    fn from_str(s: &str) -> crate::error::Result<Padding> {
        match s.to_ascii_uppercase().as_str() {
            "SAME" => Ok(Padding::Same),
            "VALID" => Ok(Padding::Valid),
            _ => Err(crate::error::Error::invalid_argument(format!(
                "Value for attr 'padding' of \"{s}\" is not in the list of allowed values: \"SAME\", \"VALID\""
            ))),
        }
    }
}
