//! The small model the MPI tests train: a two-layer MLP (4 -> 8 tanh -> 3) with a mean
//! softmax cross-entropy, on batches of made-up data that each step draws the same way on
//! every rank, so that the ranks and the single-process reference see the same numbers.

use wgflow::train::Optimizer;
use wgflow::{DType, Graph, Output, Shape, Tensor, Variable};

/// Samples per step, over all ranks (divisible by 2 and by 3).
pub const GLOBAL_BATCH: usize = 12;
/// Training steps.
pub const STEPS: usize = 20;

/// The optimizer: momentum keeps a slot per variable, so slots are checked too, and its
/// update is linear in the gradient, so float32 rounding stays small over the steps.
pub fn optimizer() -> Optimizer {
    Optimizer::momentum(0.2, 0.9)
}

/// The graph's handles.
pub struct Model {
    pub graph: Graph,
    pub x: Output,
    pub y: Output,
    pub loss: Output,
    pub step: Variable,
    /// The trained variables, in a fixed order.
    pub weights: Vec<Variable>,
}

/// Pseudo-random floats in [-1, 1) from `seed`.
fn uniform(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// The model with initial values drawn from `seed` (the MPI ranks use different seeds, so
/// that only the broadcast of rank 0's values makes them agree).
pub fn build(seed: u64) -> wgflow::Result<Model> {
    let g = Graph::new();
    let x = g.placeholder(DType::F32, Shape::partial(&[None, Some(4)]))?;
    let y = g.placeholder(DType::I32, Shape::partial(&[None]))?;
    let w1 = g.variable(Tensor::from_f32(&[4, 8], uniform(seed, 32))?, "w1")?;
    let b1 = g.variable(Tensor::from_f32(&[8], uniform(seed + 1, 8))?, "b1")?;
    let w2 = g.variable(Tensor::from_f32(&[8, 3], uniform(seed + 2, 24))?, "w2")?;
    let b2 = g.variable(Tensor::from_f32(&[3], uniform(seed + 3, 3))?, "b2")?;
    let hidden = g.tanh(g.bias_add(g.matmul(&x, &w1, false, false)?, &b1)?)?;
    let logits = g.bias_add(g.matmul(&hidden, &w2, false, false)?, &b2)?;
    let loss = g.reduce_mean(g.sparse_softmax_cross_entropy_with_logits(&y, &logits)?, None, false)?;
    let step = g.variable(Tensor::from(seed as i32), "global_step")?;
    Ok(Model { graph: g, x, y, loss, step, weights: vec![w1, w2, b1, b2] })
}

/// Rows `rows` of step `step`'s global batch: features and labels (the label is the
/// argmax of the first three features, so the model can learn it).
pub fn batch(step: usize, rows: std::ops::Range<usize>) -> wgflow::Result<(Tensor, Tensor)> {
    let all = uniform(1000 + step as u64, GLOBAL_BATCH * 4);
    let n = rows.len();
    let mut xs = Vec::with_capacity(n * 4);
    let mut ys = Vec::with_capacity(n);
    for r in rows {
        let row = &all[r * 4..r * 4 + 4];
        xs.extend_from_slice(row);
        let label = (0..3).fold(0, |best, i| if row[i] > row[best] { i } else { best });
        ys.push(label as i32);
    }
    Ok((Tensor::from_f32(&[n, 4], xs)?, Tensor::from(ys)))
}

/// The shard of the global batch that `rank` of `size` trains on.
pub fn shard(rank: usize, size: usize) -> std::ops::Range<usize> {
    rank * GLOBAL_BATCH / size..(rank + 1) * GLOBAL_BATCH / size
}

/// The variables' values as little-endian float32 bytes, in `weights` order.
pub fn weight_bytes(values: &[Tensor]) -> wgflow::Result<Vec<u8>> {
    let mut out = Vec::new();
    for v in values {
        out.extend(v.as_f32()?.iter().flat_map(|x| x.to_le_bytes()));
    }
    Ok(out)
}

/// The float32 values of `bytes`.
pub fn floats(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}
