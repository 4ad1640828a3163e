//! From TF's messages to wgflow's values: data types, shapes, tensors. Every size comes from
//! the file, so each is checked (and the host allocation limit applied) before anything is
//! allocated.

use ndarray::{ArrayD, IxDyn};

use super::proto::{data_type as dt, TensorProto, TensorShapeProto};
use crate::error::{Error, Result};
use crate::tensor::{check_host_alloc, DType, Shape, Tensor};

/// The wgflow type of TF type `v` (a `_REF` type as its value type). `INT64` reads as int32
/// (wgflow computes indices in int32; values outside its range are refused where they are
/// read). `node` names the node in errors.
pub(crate) fn dtype(v: i32, node: &str) -> Result<DType> {
    let v = if v > dt::REF_OFFSET { v - dt::REF_OFFSET } else { v };
    Ok(match v {
        dt::FLOAT => DType::F32,
        dt::DOUBLE => DType::F64,
        dt::INT32 | dt::INT64 | dt::INT16 | dt::INT8 | dt::UINT8 => DType::I32,
        dt::BOOL => DType::Bool,
        dt::STRING => DType::Str,
        other => {
            return Err(Error::unimplemented(format!(
                "Node '{node}': wgflow has no tensors of TF data type {other} ({})",
                type_name(other)
            )))
        }
    })
}

fn type_name(v: i32) -> &'static str {
    match v {
        8 => "complex64",
        14 => "bfloat16",
        17 => "uint16",
        18 => "complex128",
        19 => "half",
        20 => "resource",
        21 => "variant",
        22 => "uint32",
        23 => "uint64",
        _ => "unknown",
    }
}

/// A shape attr or a placeholder's shape: unknown rank, or dims with `-1` unknown.
pub(crate) fn shape(p: &TensorShapeProto, node: &str) -> Result<Shape> {
    if p.unknown_rank {
        return Ok(Shape::unknown());
    }
    let dims = p
        .dim
        .iter()
        .map(|d| match d.size {
            -1 => Ok(None),
            s if s >= 0 => usize::try_from(s).map(Some).map_err(|_| bad_dim(node, s)),
            s => Err(bad_dim(node, s)),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Shape::partial(&dims))
}

fn bad_dim(node: &str, s: i64) -> Error {
    Error::invalid_argument(format!("Node '{node}': invalid dimension {s} in a shape"))
}

/// The value of a `TensorProto`: its `tensor_content` bytes, or its typed values, where fewer
/// values than elements repeat the last one (a scalar splatted to the shape) and none means
/// zeros, as TF reads them.
pub(crate) fn tensor(p: &TensorProto, node: &str) -> Result<Tensor> {
    let dtype = dtype(p.dtype, node)?;
    let shape = match &p.tensor_shape {
        Some(s) => shape(s, node)?
            .to_vec()
            .ok_or_else(|| Error::invalid_argument(format!("Node '{node}': a constant's shape must be fully known")))?,
        None => Vec::new(),
    };
    let n = check_host_alloc::<f64>(dtype, &shape)?;
    let bad = |what: &str| Error::invalid_argument(format!("Node '{node}': {what} for a tensor of shape {shape:?}"));
    let raw = &p.tensor_content;
    let t = match p.dtype % dt::REF_OFFSET {
        dt::FLOAT => Tensor::F32(array(&shape, values(raw, &p.float_val, n, f32::from_le_bytes).map_err(bad)?)?),
        dt::DOUBLE => Tensor::F64(array(&shape, values(raw, &p.double_val, n, f64::from_le_bytes).map_err(bad)?)?),
        dt::INT32 | dt::INT16 | dt::INT8 | dt::UINT8 => {
            let width = match p.dtype % dt::REF_OFFSET {
                dt::INT32 => 4,
                dt::INT16 => 2,
                _ => 1,
            };
            let v = if raw.is_empty() {
                values(&[], &p.int_val, n, i32::from_le_bytes).map_err(bad)?
            } else {
                narrow_ints(raw, width, p.dtype % dt::REF_OFFSET == dt::UINT8, n).map_err(bad)?
            };
            Tensor::I32(array(&shape, v)?)
        }
        dt::INT64 => {
            let wide = values(raw, &p.int64_val, n, i64::from_le_bytes).map_err(bad)?;
            let v = wide.into_iter().map(|x| i32::try_from(x).map_err(|_| int64_range(node, x)));
            Tensor::I32(array(&shape, v.collect::<Result<Vec<_>>>()?)?)
        }
        dt::BOOL => {
            let v = if raw.is_empty() {
                values(&[], &p.bool_val, n, |b: [u8; 1]| b[0] != 0).map_err(bad)?
            } else {
                values(raw, &[], n, |b: [u8; 1]| b[0] != 0).map_err(bad)?
            };
            Tensor::Bool(array(&shape, v)?)
        }
        dt::STRING => {
            let strings: Vec<String> = p.string_val.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect();
            Tensor::Str(array(&shape, splat(strings, n).map_err(bad)?)?)
        }
        _ => return Err(Error::internal(format!("Node '{node}': dtype {dtype:?} has no decoder"))),
    };
    Ok(t)
}

fn int64_range(node: &str, x: i64) -> Error {
    Error::unimplemented(format!("Node '{node}': int64 value {x} is outside int32, the index type of wgflow"))
}

fn array<T: Clone>(shape: &[usize], v: Vec<T>) -> Result<ndarray::ArcArray<T, IxDyn>> {
    ArrayD::from_shape_vec(IxDyn(shape), v).map(ArrayD::into_shared).map_err(|e| Error::internal(e.to_string()))
}

/// `n` values from little-endian `raw` (exactly `n * W` bytes) or, when `raw` is empty, from
/// `typed` splatted to `n`.
fn values<T: Clone + Default, const W: usize>(
    raw: &[u8],
    typed: &[T],
    n: usize,
    from: impl Fn([u8; W]) -> T,
) -> std::result::Result<Vec<T>, &'static str> {
    if raw.is_empty() {
        return splat(typed.to_vec(), n);
    }
    if raw.len() != n.checked_mul(W).ok_or("too many elements")? {
        return Err("tensor_content has the wrong number of bytes");
    }
    Ok(raw.chunks_exact(W).map(|c| from(c.try_into().unwrap_or([0; W]))).collect())
}

/// Narrow little-endian integers (`width` bytes, signed unless `unsigned`) widened to i32.
fn narrow_ints(raw: &[u8], width: usize, unsigned: bool, n: usize) -> std::result::Result<Vec<i32>, &'static str> {
    if raw.len() != n.checked_mul(width).ok_or("too many elements")? {
        return Err("tensor_content has the wrong number of bytes");
    }
    Ok(raw
        .chunks_exact(width)
        .map(|c| match (width, unsigned) {
            (4, _) => i32::from_le_bytes([c[0], c[1], c[2], c[3]]),
            (2, _) => i16::from_le_bytes([c[0], c[1]]) as i32,
            (_, true) => c[0] as i32,
            _ => c[0] as i8 as i32,
        })
        .collect())
}

/// `v` grown to `n` by repeating its last value (zeros when empty); more than `n` is an error.
fn splat<T: Clone + Default>(mut v: Vec<T>, n: usize) -> std::result::Result<Vec<T>, &'static str> {
    if v.len() > n {
        return Err("more values than elements");
    }
    let last = v.last().cloned().unwrap_or_default();
    v.resize(n, last);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::super::proto::Dim;
    use super::*;

    fn shape_of(dims: &[i64]) -> Option<TensorShapeProto> {
        Some(TensorShapeProto {
            dim: dims.iter().map(|&size| Dim { size, name: String::new() }).collect(),
            unknown_rank: false,
        })
    }

    #[test]
    fn a_scalar_value_is_splatted_and_content_is_read_little_endian() {
        let p = TensorProto {
            dtype: dt::FLOAT,
            tensor_shape: shape_of(&[2, 2]),
            float_val: vec![1.5],
            ..Default::default()
        };
        assert_eq!(tensor(&p, "c").unwrap(), Tensor::from_f32(&[2, 2], vec![1.5; 4]).unwrap());
        let bytes: Vec<u8> = [1i32, -2, 3].iter().flat_map(|v| v.to_le_bytes()).collect();
        let p =
            TensorProto { dtype: dt::INT32, tensor_shape: shape_of(&[3]), tensor_content: bytes, ..Default::default() };
        assert_eq!(tensor(&p, "c").unwrap(), Tensor::from_i32(&[3], vec![1, -2, 3]).unwrap());
        let p = TensorProto {
            dtype: dt::INT64,
            tensor_shape: shape_of(&[2]),
            int64_val: vec![-1, 7],
            ..Default::default()
        };
        assert_eq!(tensor(&p, "c").unwrap(), Tensor::from_i32(&[2], vec![-1, 7]).unwrap());
    }

    #[test]
    fn sizes_from_the_file_are_checked_before_allocating() {
        let p = TensorProto {
            dtype: dt::FLOAT,
            tensor_shape: shape_of(&[1 << 40, 1 << 30]),
            float_val: vec![1.0],
            ..Default::default()
        };
        assert!(tensor(&p, "big").is_err());
        let p = TensorProto {
            dtype: dt::FLOAT,
            tensor_shape: shape_of(&[3]),
            tensor_content: vec![0; 7],
            ..Default::default()
        };
        let e = tensor(&p, "short").unwrap_err();
        assert!(e.message.contains("Node 'short'") && e.message.contains("wrong number of bytes"), "{e}");
        let p = TensorProto {
            dtype: dt::INT64,
            tensor_shape: shape_of(&[1]),
            int64_val: vec![1 << 40],
            ..Default::default()
        };
        assert_eq!(tensor(&p, "wide").unwrap_err().code, crate::error::Code::Unimplemented);
        let p = TensorProto { dtype: 19, tensor_shape: shape_of(&[1]), ..Default::default() };
        let e = tensor(&p, "half").unwrap_err();
        assert!(e.message.contains("half"), "{e}");
    }
}
