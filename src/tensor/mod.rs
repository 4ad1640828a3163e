//! Host tensors: [`Tensor`], an n-dimensional array of one of the supported element types,
//! with its conversions from Rust values.
//!
//! The element types ([`DType`]) are in `dtype.rs`, static shapes and specs ([`Shape`],
//! [`TensorSpec`]) in `shape.rs`, and the fallible host allocation that kernels use, with the
//! host allocation limit ([`set_host_allocation_limit`]), in `alloc.rs`.

mod alloc;
mod dtype;
mod shape;

use ndarray::{ArcArray, ArrayD, IxDyn};

use crate::error::{invalid, Error, Result};

pub(crate) use alloc::{
    check_host_alloc, try_capacity, try_filled_array, try_full, try_to_owned, try_vec, try_zeros, HostElem, ZeroBits,
};
pub use alloc::{checked_elements, host_allocation_limit, set_host_allocation_limit};
pub use dtype::DType;
pub(crate) use shape::dims_string;
pub use shape::{Shape, TensorSpec};

/// A host tensor: an n-dimensional array of one of the supported element types.
///
/// Storage is reference counted (`ArcArray`), so cloning a tensor is cheap and
/// copies happen only on write.
#[derive(Clone, Debug, PartialEq)]
pub enum Tensor {
    /// float32 data.
    F32(ArcArray<f32, IxDyn>),
    /// int32 data.
    I32(ArcArray<i32, IxDyn>),
    /// float64 data.
    F64(ArcArray<f64, IxDyn>),
    /// bool data.
    Bool(ArcArray<bool, IxDyn>),
    /// string data.
    Str(ArcArray<String, IxDyn>),
}

/// Implements the conversions between a Rust element type and a `Tensor` variant.
macro_rules! element {
    ($t:ty, $variant:ident, $as:ident, $dtype:ident) => {
        /// The tensor's elements as an owned array, or `InvalidArgument` on a dtype mismatch.
        impl TryFrom<&Tensor> for ArrayD<$t> {
            type Error = Error;
            fn try_from(t: &Tensor) -> Result<Self> {
                Ok(t.$as()?.to_owned())
            }
        }
        /// The tensor's elements in row-major order, or `InvalidArgument` on a dtype mismatch.
        impl TryFrom<&Tensor> for Vec<$t> {
            type Error = Error;
            fn try_from(t: &Tensor) -> Result<Self> {
                Ok(t.$as()?.iter().cloned().collect())
            }
        }
        impl From<ArrayD<$t>> for Tensor {
            fn from(a: ArrayD<$t>) -> Self {
                Tensor::$variant(a.into_shared())
            }
        }
        impl From<ArcArray<$t, IxDyn>> for Tensor {
            fn from(a: ArcArray<$t, IxDyn>) -> Self {
                Tensor::$variant(a)
            }
        }
        impl From<$t> for Tensor {
            fn from(v: $t) -> Self {
                Tensor::$variant(ArrayD::from_elem(IxDyn(&[]), v).into_shared())
            }
        }
        impl From<Vec<$t>> for Tensor {
            fn from(v: Vec<$t>) -> Self {
                let n = v.len();
                Tensor::$variant(ArrayD::from_shape_vec(IxDyn(&[n]), v).unwrap_or_default().into_shared())
            }
        }
        impl<const N: usize> From<[$t; N]> for Tensor {
            fn from(v: [$t; N]) -> Self {
                Tensor::from(v.to_vec())
            }
        }
        impl Tensor {
            /// The data as an array of this element type, or `InvalidArgument` on a dtype mismatch.
            pub fn $as(&self) -> Result<&ArcArray<$t, IxDyn>> {
                match self {
                    Tensor::$variant(a) => Ok(a),
                    other => invalid!("expected a {} tensor, got {}", DType::$dtype, other.dtype()),
                }
            }
        }
    };
}

element!(f32, F32, as_f32, F32);
element!(i32, I32, as_i32, I32);
element!(f64, F64, as_f64, F64);
element!(bool, Bool, as_bool, Bool);
element!(String, Str, as_str, Str);

impl From<&str> for Tensor {
    fn from(v: &str) -> Self {
        Tensor::from(v.to_string())
    }
}

impl Tensor {
    /// A float32 tensor of `shape` from row-major `data`.
    pub fn from_f32(shape: &[usize], data: Vec<f32>) -> Result<Self> {
        from_vec(shape, data).map(Tensor::F32)
    }
    /// An int32 tensor of `shape` from row-major `data`.
    pub fn from_i32(shape: &[usize], data: Vec<i32>) -> Result<Self> {
        from_vec(shape, data).map(Tensor::I32)
    }
    /// A float64 tensor of `shape` from row-major `data`.
    pub fn from_f64(shape: &[usize], data: Vec<f64>) -> Result<Self> {
        from_vec(shape, data).map(Tensor::F64)
    }
    /// A bool tensor of `shape` from row-major `data`.
    pub fn from_bool(shape: &[usize], data: Vec<bool>) -> Result<Self> {
        from_vec(shape, data).map(Tensor::Bool)
    }
    /// A string tensor of `shape` from row-major `data` (named so as not to read as
    /// `FromStr::from_str`, which parses one value).
    pub fn from_strings(shape: &[usize], data: Vec<String>) -> Result<Self> {
        from_vec(shape, data).map(Tensor::Str)
    }
    /// A tensor of `shape` filled with `value`, or `InvalidArgument` when the element count
    /// overflows and `ResourceExhausted` (TF's "OOM when allocating tensor …") when the host
    /// cannot or may not hold it (see [`set_host_allocation_limit`]). Nothing is allocated
    /// before those checks.
    pub fn try_filled(dtype: DType, shape: &[usize], value: f64) -> Result<Self> {
        Ok(match dtype {
            DType::F32 => Tensor::F32(try_filled_array(shape, value as f32)?),
            DType::I32 => Tensor::I32(try_filled_array(shape, value as i32)?),
            DType::F64 => Tensor::F64(try_filled_array(shape, value)?),
            DType::Bool => Tensor::Bool(try_filled_array(shape, value != 0.0)?),
            DType::Str => Tensor::Str(try_filled_array(shape, String::new())?),
        })
    }
    /// A tensor of `shape` filled with `value`, for small shapes the caller knows to be
    /// reasonable.
    ///
    /// # Panics
    /// When the shape's element count overflows or the allocation fails; use
    /// [`Tensor::try_filled`] for shapes that come from input.
    pub fn filled(dtype: DType, shape: &[usize], value: f64) -> Self {
        let d = IxDyn(shape);
        match dtype {
            DType::F32 => Tensor::F32(ArrayD::from_elem(d, value as f32).into_shared()),
            DType::I32 => Tensor::I32(ArrayD::from_elem(d, value as i32).into_shared()),
            DType::F64 => Tensor::F64(ArrayD::from_elem(d, value).into_shared()),
            DType::Bool => Tensor::Bool(ArrayD::from_elem(d, value != 0.0).into_shared()),
            DType::Str => Tensor::Str(ArrayD::from_elem(d, String::new()).into_shared()),
        }
    }
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            Tensor::F32(_) => DType::F32,
            Tensor::I32(_) => DType::I32,
            Tensor::F64(_) => DType::F64,
            Tensor::Bool(_) => DType::Bool,
            Tensor::Str(_) => DType::Str,
        }
    }
    /// The concrete shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            Tensor::F32(a) => a.shape(),
            Tensor::I32(a) => a.shape(),
            Tensor::F64(a) => a.shape(),
            Tensor::Bool(a) => a.shape(),
            Tensor::Str(a) => a.shape(),
        }
    }
    /// The number of elements.
    pub fn len(&self) -> usize {
        self.shape().iter().product()
    }
    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The size of the data in bytes.
    pub fn byte_len(&self) -> usize {
        self.len() * self.dtype().size()
    }
    /// The static spec of this tensor.
    pub fn spec(&self) -> TensorSpec {
        TensorSpec::new(self.dtype(), Shape::known(self.shape()))
    }
    /// The float32 elements in row-major order.
    pub fn to_f32_vec(&self) -> Result<Vec<f32>> {
        Ok(self.as_f32()?.iter().copied().collect())
    }
    /// The single float32 value of a one-element tensor.
    pub fn scalar_f32(&self) -> Result<f32> {
        let a = self.as_f32()?;
        match a.len() {
            1 => Ok(a.iter().copied().next().unwrap_or_default()),
            n => invalid!("expected one element, got {n}"),
        }
    }
    /// A view of the same data with a new shape of the same size.
    pub fn reshaped(&self, shape: &[usize]) -> Result<Tensor> {
        let n = checked_elements(shape)?;
        if n != self.len() {
            invalid!("Input to reshape is a tensor with {} values, but the requested shape has {}", self.len(), n);
        }
        let d = IxDyn(shape);
        let r = match self {
            Tensor::F32(a) => a.to_shape(d).map(|v| Tensor::F32(v.to_owned().into_shared())),
            Tensor::I32(a) => a.to_shape(d).map(|v| Tensor::I32(v.to_owned().into_shared())),
            Tensor::F64(a) => a.to_shape(d).map(|v| Tensor::F64(v.to_owned().into_shared())),
            Tensor::Bool(a) => a.to_shape(d).map(|v| Tensor::Bool(v.to_owned().into_shared())),
            Tensor::Str(a) => a.to_shape(d).map(|v| Tensor::Str(v.to_owned().into_shared())),
        };
        r.map_err(|e| Error::internal(format!("reshape: {e}")))
    }
}

/// Builds a shared array from a shape and row-major data, checking the size.
pub(crate) fn from_vec<T: Clone>(shape: &[usize], data: Vec<T>) -> Result<ArcArray<T, IxDyn>> {
    let n = checked_elements(shape)?;
    if n != data.len() {
        invalid!("shape {} needs {} values, got {}", dims_string(shape), n, data.len());
    }
    ArrayD::from_shape_vec(IxDyn(shape), data)
        .map(ArrayD::into_shared)
        .map_err(|e| Error::invalid_argument(e.to_string()))
}
