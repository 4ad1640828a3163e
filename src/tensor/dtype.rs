//! Element types: [`DType`] and its names in TF's and numpy's words.

use std::fmt;

/// The element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit float (`tf.float32`).
    F32,
    /// 32-bit signed integer (`tf.int32`).
    I32,
    /// 64-bit float (`tf.float64`), produced by `div` of int32 tensors.
    F64,
    /// Boolean (`tf.bool`).
    Bool,
    /// Strings (`tf.string`), used for variable names in reports.
    Str,
}

impl DType {
    /// TF's short name, as in "with dtype float".
    pub fn tf_name(self) -> &'static str {
        match self {
            DType::F32 => "float",
            DType::I32 => "int32",
            DType::F64 => "double",
            DType::Bool => "bool",
            DType::Str => "string",
        }
    }
    /// TF's enum name, as in "T=DT_FLOAT".
    pub fn tf_enum(self) -> &'static str {
        match self {
            DType::F32 => "DT_FLOAT",
            DType::I32 => "DT_INT32",
            DType::F64 => "DT_DOUBLE",
            DType::Bool => "DT_BOOL",
            DType::Str => "DT_STRING",
        }
    }
    /// numpy's name, as in "dtype=float32".
    pub fn numpy_name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::I32 => "int32",
            DType::F64 => "float64",
            DType::Bool => "bool",
            DType::Str => "string",
        }
    }
    /// Bytes per element (strings count as pointers).
    pub fn size(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::F64 | DType::Str => 8,
            DType::Bool => 1,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.numpy_name())
    }
}
