//! One error type for the whole crate, with TensorFlow's status codes.

use std::fmt;

/// TensorFlow's status codes, as far as wgflow uses them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    /// Bad input: wrong shape, dtype, name or attribute.
    InvalidArgument,
    /// The session is not in a state to do this (uninitialized variable, closed session).
    FailedPrecondition,
    /// A name that does not exist.
    NotFound,
    /// Out of memory or over a device limit.
    ResourceExhausted,
    /// Valid input that wgflow (like TF) does not implement.
    Unimplemented,
    /// A bug or a device failure.
    Internal,
    /// The device was lost or timed out.
    Unavailable,
    /// A run exceeded its deadline.
    DeadlineExceeded,
    /// Stored data is corrupt or truncated (a damaged checkpoint file).
    DataLoss,
}

impl Code {
    /// TF's name of the code (`tf.errors`' class names without `Error`): `InvalidArgument`,
    /// `FailedPrecondition`, `NotFound`, `ResourceExhausted`, `Unimplemented`, `Internal`,
    /// `Unavailable`, `DeadlineExceeded`, `DataLoss`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidArgument => "InvalidArgument",
            Code::FailedPrecondition => "FailedPrecondition",
            Code::NotFound => "NotFound",
            Code::ResourceExhausted => "ResourceExhausted",
            Code::Unimplemented => "Unimplemented",
            Code::Internal => "Internal",
            Code::Unavailable => "Unavailable",
            Code::DeadlineExceeded => "DeadlineExceeded",
            Code::DataLoss => "DataLoss",
        }
    }
}

/// TF's name of the code ([`Code::as_str`]).
impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error with a TF code, TF's message text and, where it applies, the node that raised it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct Error {
    /// The status code.
    pub code: Code,
    /// The message, in TensorFlow's words where TF has them.
    pub message: String,
    /// The node the error belongs to, if any.
    pub node: Option<String>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(node) = &self.node {
            write!(f, "\n\t [[{{{{node {node}}}}}]]")?;
        }
        Ok(())
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error with `code` and `message`, not yet tied to a node.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Error { code, message: message.into(), node: None }
    }
    /// `InvalidArgument`.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, message)
    }
    /// `FailedPrecondition`.
    pub fn failed_precondition(message: impl Into<String>) -> Self {
        Self::new(Code::FailedPrecondition, message)
    }
    /// `NotFound`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Code::NotFound, message)
    }
    /// `ResourceExhausted`.
    pub fn resource_exhausted(message: impl Into<String>) -> Self {
        Self::new(Code::ResourceExhausted, message)
    }
    /// `Unimplemented`.
    pub fn unimplemented(message: impl Into<String>) -> Self {
        Self::new(Code::Unimplemented, message)
    }
    /// `Internal`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Code::Internal, message)
    }
    /// `DataLoss`.
    pub fn data_loss(message: impl Into<String>) -> Self {
        Self::new(Code::DataLoss, message)
    }
    /// Ties the error to `node` unless it already names one.
    pub fn at(mut self, node: &str) -> Self {
        if self.node.is_none() {
            self.node = Some(node.to_string());
        }
        self
    }
}

/// Returns early with an `InvalidArgument` error built from a format string.
macro_rules! invalid {
    ($($arg:tt)*) => {
        return Err($crate::error::Error::invalid_argument(format!($($arg)*)))
    };
}
pub(crate) use invalid;
