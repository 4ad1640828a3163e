//! The digits data and CNN shared by `train_digits` and `train_digits_mpi`: the 8x8
//! handwritten digits (`data/digits.csv.gz`, 1,797 real images) split into train and test
//! sets, and the model (conv2d 3x3 SAME + relu, 2x2 max pool, dense, softmax cross-entropy).

use std::io::Read;

use wgflow::{DType, Graph, Output, Padding, Session, Shape, Tensor, Variable};

/// Images held out for the test set.
pub const TEST: usize = 360;
/// Images per training step (over all ranks, for the MPI example).
pub const BATCH: usize = 64;
/// Passes over the training set.
pub const EPOCHS: usize = 30;

/// Images (64 pixels each, scaled to 0..1) and their labels.
pub struct Split {
    pub images: Vec<f32>,
    pub labels: Vec<i32>,
}

impl Split {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    /// The images and labels of `order`, as a batch.
    pub fn batch(&self, order: &[usize]) -> wgflow::Result<(Tensor, Tensor)> {
        let images = order.iter().flat_map(|&i| self.images[i * 64..(i + 1) * 64].iter().copied()).collect();
        let labels: Vec<i32> = order.iter().map(|&i| self.labels[i]).collect();
        Ok((Tensor::from_f32(&[order.len(), 8, 8, 1], images)?, Tensor::from(labels)))
    }
}

/// Reads the CSV (64 pixels 0..16, then the label) and splits off every fifth image for the
/// test set, up to `TEST` images.
pub fn load() -> Result<(Split, Split), Box<dyn std::error::Error>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path)?).read_to_string(&mut text)?;
    let (mut train, mut test) = (Split { images: vec![], labels: vec![] }, Split { images: vec![], labels: vec![] });
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<f32> = line.split(',').map(str::parse).collect::<Result<_, _>>()?;
        let (pixels, label) = fields.split_at(64);
        let split = if i % 5 == 0 && test.len() < TEST { &mut test } else { &mut train };
        split.images.extend(pixels.iter().map(|p| p / 16.0));
        split.labels.push(label[0] as i32);
    }
    Ok((train, test))
}

/// The fraction of `data` that the model classifies right.
pub fn accuracy(s: &Session, x: &Output, logits: &Output, data: &Split) -> wgflow::Result<f64> {
    let order: Vec<usize> = (0..data.len()).collect();
    let (images, _) = data.batch(&order)?;
    let out = s.eval_feed(logits, &[(x, images)])?;
    let scores = out.as_f32()?;
    let correct = scores
        .outer_iter()
        .zip(&data.labels)
        .filter(|(row, &label)| {
            let best = row.iter().enumerate().fold((0, f32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b });
            best.0 as i32 == label
        })
        .count();
    Ok(correct as f64 / data.len() as f64)
}

/// The CNN's graph and handles.
pub struct Model {
    pub graph: Graph,
    pub x: Output,
    pub y: Output,
    pub logits: Output,
    pub loss: Output,
    pub step: Variable,
}

/// Builds the CNN, with weights drawn from a fixed seed.
pub fn model() -> wgflow::Result<Model> {
    let g = Graph::new();
    let x = g.placeholder(DType::F32, Shape::partial(&[None, Some(8), Some(8), Some(1)]))?;
    let y = g.placeholder(DType::I32, Shape::partial(&[None]))?;
    let mut seed = 42u64;
    let mut init = |shape: &[usize], scale: f32| {
        let n = shape.iter().product();
        let v = (0..n)
            .map(|_| {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((seed >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
            })
            .collect();
        Tensor::from_f32(shape, v)
    };
    let k = g.variable(init(&[3, 3, 1, 16], 0.4)?, "conv/kernel")?;
    let kb = g.variable(Tensor::filled(DType::F32, &[16], 0.0), "conv/bias")?;
    let w = g.variable(init(&[256, 10], 0.1)?, "dense/kernel")?;
    let wb = g.variable(Tensor::filled(DType::F32, &[10], 0.0), "dense/bias")?;
    let conv = g.relu(g.bias_add(g.conv2d(&x, &k, &[1, 1, 1, 1], Padding::Same, &[1, 1, 1, 1])?, &kb)?)?;
    let pooled = g.max_pool(&conv, &[1, 2, 2, 1], &[1, 2, 2, 1], Padding::Valid)?;
    let logits = g.bias_add(g.matmul(g.reshape(&pooled, &[-1, 256])?, &w, false, false)?, &wb)?;
    let loss = g.reduce_mean(g.sparse_softmax_cross_entropy_with_logits(&y, &logits)?, None, false)?;
    let step = g.variable(Tensor::from(0i32), "global_step")?;
    Ok(Model { graph: g, x, y, logits, loss, step })
}

/// Epoch `epoch`'s order of the training set: a fixed permutation per epoch (a
/// multiplicative shuffle), so runs are reproducible.
pub fn shuffle(order: &mut [usize], epoch: usize) {
    let n = order.len();
    order.sort_by_key(|&i| (i * 7919 + epoch * 104729) % n);
}
