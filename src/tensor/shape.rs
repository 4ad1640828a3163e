//! Static shapes: [`Shape`] (unknown rank, or a rank with some dimensions unknown), the
//! [`TensorSpec`] of a graph tensor, and their TF and Python string forms.

use std::fmt;

use super::DType;

/// A static shape: unknown rank, or a rank with some dimensions unknown.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Shape(Option<Vec<Option<usize>>>);

impl Shape {
    /// A shape whose rank is unknown.
    pub fn unknown() -> Self {
        Shape(None)
    }
    /// A fully known shape.
    pub fn known(dims: &[usize]) -> Self {
        Shape(Some(dims.iter().map(|&d| Some(d)).collect()))
    }
    /// A shape of known rank with `None` for unknown dimensions.
    pub fn partial(dims: &[Option<usize>]) -> Self {
        Shape(Some(dims.to_vec()))
    }
    /// A shape of known rank whose dimensions are all unknown.
    pub fn unknown_dims(rank: usize) -> Self {
        Shape(Some(vec![None; rank]))
    }
    /// The rank, if known.
    pub fn rank(&self) -> Option<usize> {
        self.0.as_ref().map(Vec::len)
    }
    /// The dimensions, if the rank is known.
    pub fn dims(&self) -> Option<&[Option<usize>]> {
        self.0.as_deref()
    }
    /// Dimension `i` (negative counts from the end), if known.
    pub fn dim(&self, i: isize) -> Option<usize> {
        let dims = self.0.as_ref()?;
        let i = if i < 0 { dims.len() as isize + i } else { i };
        dims.get(usize::try_from(i).ok()?).copied().flatten()
    }
    /// The dimensions when every one is known.
    pub fn to_vec(&self) -> Option<Vec<usize>> {
        self.0.as_ref()?.iter().copied().collect()
    }
    /// Whether a concrete shape fits this partial one.
    pub fn is_compatible_with(&self, dims: &[usize]) -> bool {
        match &self.0 {
            None => true,
            Some(d) => d.len() == dims.len() && d.iter().zip(dims).all(|(a, b)| a.is_none_or(|a| a == *b)),
        }
    }
    /// TF's C++ form used in op error messages: `[2,3]`, `[?,3]`, `?`.
    pub fn tf_string(&self) -> String {
        match &self.0 {
            None => "?".to_string(),
            Some(d) => {
                let parts: Vec<String> = d.iter().map(|x| x.map_or("?".to_string(), |v| v.to_string())).collect();
                format!("[{}]", parts.join(","))
            }
        }
    }
    /// Python's `TensorShape` form: `(2,)`, `(None, 3)`, `<unknown>`.
    pub fn python_string(&self) -> String {
        match &self.0 {
            None => "<unknown>".to_string(),
            Some(d) => python_tuple(d.iter().map(|x| x.map_or("None".to_string(), |v| v.to_string()))),
        }
    }
}

/// Formats items as a Python tuple: `()`, `(3,)`, `(2, 3)`.
fn python_tuple(items: impl Iterator<Item = String>) -> String {
    let v: Vec<String> = items.collect();
    match v.len() {
        1 => format!("({},)", v[0]),
        _ => format!("({})", v.join(", ")),
    }
}

/// Formats a concrete shape TF's C++ way: `[2,3]`.
pub(crate) fn dims_string(dims: &[usize]) -> String {
    Shape::known(dims).tf_string()
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.tf_string())
    }
}

impl From<&[usize]> for Shape {
    fn from(d: &[usize]) -> Self {
        Shape::known(d)
    }
}

/// The static description of a tensor: its dtype and (possibly partial) shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorSpec {
    /// Element type.
    pub dtype: DType,
    /// Static shape.
    pub shape: Shape,
}

impl TensorSpec {
    /// A spec from a dtype and shape.
    pub fn new(dtype: DType, shape: Shape) -> Self {
        TensorSpec { dtype, shape }
    }
}
