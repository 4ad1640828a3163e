//! Variables' values as safetensors tensors: little-endian bytes out, checked values back.

use std::path::Path;

use ndarray::{ArrayD, IxDyn};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, View};

use super::saver::Entry;
use crate::error::{Error, Result};
use crate::tensor::{DType, Shape, Tensor};

/// A variable's value in safetensors' terms.
pub(super) struct Blob {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl Blob {
    /// Little-endian bytes of `value` (bools as one byte, 0 or 1).
    pub(super) fn encode(name: &str, value: &Tensor) -> Result<Blob> {
        let (dtype, data): (Dtype, Vec<u8>) = match value {
            Tensor::F32(a) => (Dtype::F32, a.iter().flat_map(|x| x.to_le_bytes()).collect()),
            Tensor::I32(a) => (Dtype::I32, a.iter().flat_map(|x| x.to_le_bytes()).collect()),
            Tensor::F64(a) => (Dtype::F64, a.iter().flat_map(|x| x.to_le_bytes()).collect()),
            Tensor::Bool(a) => (Dtype::BOOL, a.iter().map(|&b| u8::from(b)).collect()),
            Tensor::Str(_) => {
                return Err(Error::unimplemented(format!(
                    "Variable {name} has dtype string, which wgflow checkpoints do not support"
                )))
            }
        };
        Ok(Blob { dtype, shape: value.shape().to_vec(), data })
    }
}

impl View for Blob {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// The wgflow dtype of a safetensors dtype, if wgflow has it.
fn wgflow_dtype(d: Dtype) -> Option<DType> {
    match d {
        Dtype::F32 => Some(DType::F32),
        Dtype::I32 => Some(DType::I32),
        Dtype::F64 => Some(DType::F64),
        Dtype::BOOL => Some(DType::Bool),
        _ => None,
    }
}

/// The checkpoint's value for `e`, checked against the variable's dtype and static shape.
pub(super) fn decode(e: &Entry, view: &TensorView<'_>, path: &Path) -> Result<Tensor> {
    let dtype = wgflow_dtype(view.dtype());
    if dtype != Some(e.spec.dtype) {
        let got = dtype.map_or_else(|| view.dtype().to_string(), |d| d.tf_name().to_string());
        return Err(Error::invalid_argument(format!(
            "tensor_name = {}; expected dtype {} does not equal original dtype {got}",
            e.name,
            e.spec.dtype.tf_name()
        ))
        .at(&e.assign));
    }
    let shape = view.shape();
    if !e.spec.shape.is_compatible_with(shape) {
        return Err(Error::invalid_argument(format!(
            "Restoring {}: the checkpoint holds shape {}, the variable has shape {}",
            e.name,
            Shape::known(shape).tf_string(),
            e.spec.shape.tf_string()
        ))
        .at(&e.assign));
    }
    let data = view.data();
    let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if n.and_then(|n| n.checked_mul(e.spec.dtype.size())) != Some(data.len()) {
        return Err(Error::data_loss(format!(
            "Checkpoint {}: {} holds {} bytes, which do not fit shape {}",
            path.display(),
            e.name,
            data.len(),
            Shape::known(shape).tf_string()
        )));
    }
    let corrupt = |what: String| Error::data_loss(format!("Checkpoint {}: {}: {what}", path.display(), e.name));
    let dims = IxDyn(shape);
    let tensor = match e.spec.dtype {
        DType::F32 => ArrayD::from_shape_vec(dims, le_values(data, f32::from_le_bytes)).map(Tensor::from),
        DType::I32 => ArrayD::from_shape_vec(dims, le_values(data, i32::from_le_bytes)).map(Tensor::from),
        DType::F64 => ArrayD::from_shape_vec(dims, le_values(data, f64::from_le_bytes)).map(Tensor::from),
        DType::Bool => {
            let values = data
                .iter()
                .map(|&b| match b {
                    0 => Ok(false),
                    1 => Ok(true),
                    b => Err(corrupt(format!("byte {b} is not a bool"))),
                })
                .collect::<Result<Vec<bool>>>()?;
            ArrayD::from_shape_vec(dims, values).map(Tensor::from)
        }
        DType::Str => return Err(Error::unimplemented("string checkpoints are not supported")),
    };
    tensor.map_err(|err| corrupt(err.to_string()))
}

/// The values of little-endian bytes, `N` bytes each.
fn le_values<T, const N: usize>(data: &[u8], from: fn([u8; N]) -> T) -> Vec<T> {
    data.chunks_exact(N)
        .map(|c| {
            let mut b = [0u8; N];
            b.copy_from_slice(c);
            from(b)
        })
        .collect()
}
