//! `Tile`: the input repeated `multiples[i]` times along each dimension `i` (`tf.tile`). TF
//! takes the multiples as an int tensor; wgflow holds them as the op's attribute (an imported
//! graph's `Const` multiples are read at import). The GPU kernel is shaders/tile.wgsl; the
//! gradient sums the tiles back.

use ndarray::{ArcArray, ArrayD, IxDyn};

use crate::error::{invalid, Error, Result};
use crate::gradients::GradContext;
use crate::graph::{Graph, Operand, Output};
use crate::ops::kernel::{kernel, slots, with_prelude, word, MAX_RANK};
use crate::ops::{cached_wgsl, compute, shape_err, wgsl, Attr, GpuLowering, InferResult, Op};
use crate::tensor::{check_host_alloc, try_capacity, DType, HostElem, Shape, Tensor, TensorSpec};

/// `Tile` by `multiples`, one per input dimension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Tile {
    pub(crate) multiples: Vec<usize>,
}

impl Tile {
    /// The output's dimensions for an input of `dims` (checked: rank and size).
    fn out_dims(&self, dims: &[usize]) -> Result<Vec<usize>> {
        if dims.len() != self.multiples.len() {
            invalid!(
                "Expected multiples argument to be a vector of length {} but got length {}",
                dims.len(),
                self.multiples.len()
            );
        }
        let out: Option<Vec<usize>> = dims.iter().zip(&self.multiples).map(|(&d, &m)| d.checked_mul(m)).collect();
        match out.filter(|o| o.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).is_some()) {
            Some(out) => Ok(out),
            None => invalid!("Tile: the tiled shape overflows"),
        }
    }
}

/// The tile kernel (any 4-byte element type), prelude included.
pub(crate) fn tile_wgsl() -> String {
    with_prelude(wgsl::TILE)
}

impl Op for Tile {
    fn type_name(&self) -> &'static str {
        "Tile"
    }
    fn attrs(&self) -> Vec<(&'static str, Attr)> {
        vec![("Tmultiples", Attr::Type(DType::I32))]
    }
    fn const_inputs(&self, _inputs: &[TensorSpec]) -> Result<Vec<(usize, &'static str, Tensor)>> {
        Ok(vec![(1, "multiples", crate::ops::i32_vector(self.multiples.iter().map(|&m| m as i64))?)])
    }
    fn infer(&self, inputs: &[TensorSpec]) -> InferResult {
        let x = &inputs[0];
        let shape = match x.shape.dims() {
            Some(dims) => {
                if dims.len() != self.multiples.len() {
                    shape_err!("Shape must be rank {} but is rank {}", dims.len(), self.multiples.len());
                }
                let out: Vec<Option<usize>> =
                    dims.iter().zip(&self.multiples).map(|(d, &m)| d.and_then(|d| d.checked_mul(m))).collect();
                Shape::partial(&out)
            }
            None => Shape::unknown_dims(self.multiples.len()),
        };
        Ok(vec![TensorSpec::new(x.dtype, shape)])
    }
    fn compute(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let x = inputs[0];
        let out = self.out_dims(x.shape())?;
        check_host_alloc::<f64>(x.dtype(), &out)?;
        let t = match x {
            Tensor::F32(a) => Tensor::from(tile_array(a, &out)?),
            Tensor::I32(a) => Tensor::from(tile_array(a, &out)?),
            Tensor::F64(a) => Tensor::from(tile_array(a, &out)?),
            Tensor::Bool(a) => Tensor::from(tile_array(a, &out)?),
            Tensor::Str(a) => Tensor::from(tile_array(a, &out)?),
        };
        Ok(vec![t])
    }
    fn gpu(&self, inputs: &[(DType, &[usize])]) -> Option<Result<GpuLowering>> {
        let (dtype, dims) = inputs[0];
        if !self.gpu_supports(inputs) {
            return None;
        }
        Some((|| {
            let out = self.out_dims(dims)?;
            let count: usize = out.iter().product();
            word(count)?;
            let wgsl = cached_wgsl("tile".into(), || Ok(tile_wgsl()))?;
            let mut uniforms = vec![word(dims.len())?, 0, 0];
            uniforms.extend(slots(&out, 1)?);
            uniforms.extend(slots(dims, 1)?);
            Ok(kernel(wgsl, uniforms, count, dtype, out))
        })())
    }
    fn gpu_supports(&self, inputs: &[(DType, &[usize])]) -> bool {
        let (dtype, dims) = inputs[0];
        matches!(dtype, DType::F32 | DType::I32) && dims.len() <= MAX_RANK
    }
    fn gradient(&self, ctx: &GradContext) -> Result<Vec<Option<Output>>> {
        // TF's `_TileGrad`: dy of [m0 * d0, m1 * d1, ...] seen as [m0, d0, m1, d1, ...], summed
        // over the multiples' axes.
        let dims = ctx.inputs[0]
            .shape()
            .to_vec()
            .ok_or_else(|| Error::unimplemented("the gradient of Tile needs the input's static shape"))?;
        let dy = ctx.dy()?;
        if dims.is_empty() {
            return Ok(vec![Some(dy), None]);
        }
        let split: Vec<i64> = self.multiples.iter().zip(&dims).flat_map(|(&m, &d)| [m as i64, d as i64]).collect();
        let axes: Vec<i64> = (0..dims.len() as i64).map(|i| 2 * i).collect();
        let g = ctx.graph.reduce_sum(ctx.graph.reshape(&dy, &split)?, Some(&axes), false)?;
        Ok(vec![Some(g), None])
    }
}

/// `a` tiled to `out` (checked by the caller): each output row (the last dimension) is the
/// input row at the output coordinates modulo the input's, repeated.
fn tile_array<T: Clone + HostElem>(a: &ArcArray<T, IxDyn>, out: &[usize]) -> Result<ArrayD<T>> {
    let a = a.as_standard_layout();
    let src = a.as_slice().ok_or_else(|| Error::internal("tile: input not contiguous"))?;
    let dims = a.shape();
    let mut v = try_capacity::<T>(out)?;
    match dims.split_last() {
        None => v.extend_from_slice(src),
        Some((&row, lead)) if out.iter().all(|&d| d > 0) => {
            let repeats = out[lead.len()] / row;
            let rows: usize = out[..lead.len()].iter().product();
            for r in 0..rows {
                // The input row of output row `r`: its coordinates modulo the input's dims.
                let (mut rem, mut off, mut stride) = (r, 0, row);
                for (&o, &d) in out[..lead.len()].iter().zip(lead).rev() {
                    off += (rem % o % d) * stride;
                    rem /= o;
                    stride *= d;
                }
                for _ in 0..repeats {
                    v.extend_from_slice(&src[off..off + row]);
                }
            }
        }
        Some(_) => {}
    }
    ArrayD::from_shape_vec(IxDyn(out), v).map_err(|e| Error::internal(format!("tile: {e}")))
}

impl Graph {
    /// `tf.tile(x, multiples)` (`Tile`): `x` repeated `multiples[i]` times along dimension `i`
    /// (one multiple per dimension).
    pub fn tile(&self, x: impl Into<Operand>, multiples: &[usize]) -> Result<Output> {
        self.add_op1("Tile", compute(Tile { multiples: multiples.to_vec() }), vec![("input", x.into())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_every_dimension_and_checks_the_multiples() {
        let t = Tile { multiples: vec![2, 3] };
        let x = Tensor::from_i32(&[2, 2], vec![1, 2, 3, 4]).unwrap();
        let out = t.compute(&[&x]).unwrap();
        #[rustfmt::skip]
        let want = vec![
            1, 2, 1, 2, 1, 2,
            3, 4, 3, 4, 3, 4,
            1, 2, 1, 2, 1, 2,
            3, 4, 3, 4, 3, 4,
        ];
        assert_eq!(out[0], Tensor::from_i32(&[4, 6], want).unwrap());
        let s = Tensor::from(vec!["a".to_string(), "b".to_string()]);
        let strings = Tile { multiples: vec![2] }.compute(&[&s]).unwrap();
        assert_eq!(strings[0], Tensor::from(["a", "b", "a", "b"].map(String::from)));
        let empty = Tile { multiples: vec![0, 1] }.compute(&[&x]).unwrap();
        assert_eq!(empty[0].shape(), &[0, 2]);
        let scalar = Tile { multiples: vec![] }.compute(&[&Tensor::from(7.0f32)]).unwrap();
        assert_eq!(scalar[0], Tensor::from(7.0f32));
        let e = Tile { multiples: vec![2] }.compute(&[&x]).unwrap_err();
        assert_eq!(e.message, "Expected multiples argument to be a vector of length 2 but got length 1");
        let huge = Tile { multiples: vec![usize::MAX / 2, 3] }.compute(&[&x]).unwrap_err();
        assert_eq!(huge.code, crate::error::Code::InvalidArgument);
    }

    #[test]
    fn the_shape_rule_and_the_export_constant() {
        let g = Graph::new();
        let x = g.placeholder(DType::F32, Shape::partial(&[Some(3), None])).unwrap();
        assert_eq!(g.tile(&x, &[7, 1]).unwrap().shape(), Shape::partial(&[Some(21), None]));
        assert!(g.tile(&x, &[7]).is_err());
        let consts = Tile { multiples: vec![7, 1] }.const_inputs(&[]).unwrap();
        assert_eq!(consts, vec![(1, "multiples", Tensor::from(vec![7i32, 1]))]);
    }
}
