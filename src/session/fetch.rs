//! What a run may fetch and feed: handles or names.

use crate::graph::{Operation, Output, Variable};

/// Something to fetch: a tensor (yields its value) or an operation (yields `None`).
#[derive(Clone, Debug)]
pub enum Fetch {
    /// A tensor handle.
    Tensor(Output),
    /// An operation handle: it runs, and yields no value.
    Operation(Operation),
    /// A name: `"op:0"` names a tensor, `"op"` an operation.
    Name(String),
}

impl From<&Output> for Fetch {
    fn from(t: &Output) -> Self {
        Fetch::Tensor(t.clone())
    }
}
impl From<Output> for Fetch {
    fn from(t: Output) -> Self {
        Fetch::Tensor(t)
    }
}
impl From<&Operation> for Fetch {
    fn from(op: &Operation) -> Self {
        Fetch::Operation(op.clone())
    }
}
impl From<Operation> for Fetch {
    fn from(op: Operation) -> Self {
        Fetch::Operation(op)
    }
}
impl From<&Variable> for Fetch {
    fn from(v: &Variable) -> Self {
        Fetch::Tensor(v.tensor().clone())
    }
}
impl From<&str> for Fetch {
    fn from(name: &str) -> Self {
        Fetch::Name(name.to_string())
    }
}
impl From<String> for Fetch {
    fn from(name: String) -> Self {
        Fetch::Name(name)
    }
}
impl From<&Fetch> for Fetch {
    fn from(f: &Fetch) -> Self {
        f.clone()
    }
}

/// A tensor to feed: by handle or by name (`"Placeholder:0"`).
#[derive(Clone, Debug)]
pub enum FeedKey {
    /// A tensor handle.
    Tensor(Output),
    /// A tensor name.
    Name(String),
}

impl From<&Output> for FeedKey {
    fn from(t: &Output) -> Self {
        FeedKey::Tensor(t.clone())
    }
}
impl From<Output> for FeedKey {
    fn from(t: Output) -> Self {
        FeedKey::Tensor(t)
    }
}
impl From<&str> for FeedKey {
    fn from(name: &str) -> Self {
        FeedKey::Name(name.to_string())
    }
}
impl From<&FeedKey> for FeedKey {
    fn from(k: &FeedKey) -> Self {
        k.clone()
    }
}
