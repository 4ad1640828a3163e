//! A small CNN on the 8x8 handwritten digits (`data/digits.csv.gz`, 1,797 real images): conv2d
//! 3x3 SAME + relu, 2x2 max pool, dense, softmax cross-entropy, trained with Adam on the GPU
//! (the CPU without one). It holds out a test split, prints the test accuracy, saves a
//! checkpoint, restores it into a fresh session and shows the same accuracy, then writes the
//! trained model as a frozen GraphDef (`frozen_digits.pb`, weights as constants) that TF can
//! load, and reads it back.

use std::io::Read;

use wgflow::train::{Optimizer, Saver};
use wgflow::{ConfigProto, DType, Fetch, Graph, Output, Padding, Session, Shape, Tensor};

const TEST: usize = 360;
const BATCH: usize = 64;
const EPOCHS: usize = 30;

struct Split {
    images: Vec<f32>,
    labels: Vec<i32>,
}

impl Split {
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn batch(&self, order: &[usize]) -> wgflow::Result<(Tensor, Tensor)> {
        let images = order.iter().flat_map(|&i| self.images[i * 64..(i + 1) * 64].iter().copied()).collect();
        let labels: Vec<i32> = order.iter().map(|&i| self.labels[i]).collect();
        Ok((Tensor::from_f32(&[order.len(), 8, 8, 1], images)?, Tensor::from(labels)))
    }
}

/// Reads the CSV (64 pixels 0..16, then the label) and splits off every fifth image for the
/// test set, up to `TEST` images.
fn load() -> Result<(Split, Split), Box<dyn std::error::Error>> {
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

fn accuracy(s: &Session, x: &Output, logits: &Output, data: &Split) -> wgflow::Result<f64> {
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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    wgflow::gpu::ensure_runtime_dir();
    env_logger::init();
    let (train, test) = load()?;
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
    let train_op = Optimizer::adam(0.01).minimize(&loss, Some(&step), None)?;
    let mut saver = Saver::new(&g)?;

    let s = Session::new(&g, ConfigProto::default())?;
    println!("training on {} ({} train / {} test images)", s.device(), train.len(), test.len());
    s.run(&[g.global_variables_initializer()?])?;
    let steps_per_epoch = train.len().div_ceil(BATCH);
    let bar = indicatif::ProgressBar::new((EPOCHS * steps_per_epoch) as u64);
    bar.set_style(indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} steps, loss {msg}")?);
    let mut order: Vec<usize> = (0..train.len()).collect();
    let fetches = [Fetch::from(&train_op), (&loss).into()];
    for epoch in 0..EPOCHS {
        // A fixed permutation per epoch (a multiplicative shuffle), so runs are reproducible.
        order.sort_by_key(|&i| (i * 7919 + epoch * 104729) % train.len());
        for chunk in order.chunks(BATCH) {
            let (images, labels) = train.batch(chunk)?;
            let out = s.run_feed(&fetches, &[(x.clone(), images), (y.clone(), labels)])?;
            if let Some(Some(l)) = out.get(1) {
                bar.set_message(format!("{:.4}", l.as_f32()?.sum()));
            }
            bar.inc(1);
        }
    }
    bar.finish();
    let acc = accuracy(&s, &x, &logits, &test)?;
    println!("test accuracy: {:.2}%", acc * 100.0);

    let dir = std::env::temp_dir().join("wgflow-train-digits");
    std::fs::create_dir_all(&dir)?;
    let global_step = s.eval(step.tensor())?.as_i32()?.sum();
    let path = saver.save(&s, dir.join("model.ckpt"), Some(global_step as u64))?;
    println!("saved {}", path.display());
    let fresh = Session::new(&g, ConfigProto::default())?;
    saver.restore(&fresh, &path)?;
    let restored = accuracy(&fresh, &x, &logits, &test)?;
    println!("restored into a fresh session: test accuracy {:.2}%", restored * 100.0);
    if restored != acc {
        return Err("the restored model does not match".into());
    }

    // A frozen GraphDef (weights as constants) that TF loads with tf.import_graph_def; read
    // back here into a new graph, on the CPU, it gives the same accuracy.
    let frozen = dir.join("frozen_digits.pb");
    std::fs::write(&frozen, g.freeze(&s, &[&logits.op().name()])?)?;
    let g2 = Graph::from_pb_file(&frozen)?;
    let (x2, logits2) = (g2.tensor_by_name(&x.name())?, g2.tensor_by_name(&logits.name())?);
    let cpu = Session::new(&g2, ConfigProto::cpu_only())?;
    let thawed = accuracy(&cpu, &x2, &logits2, &test)?;
    println!("froze {} ({} nodes): test accuracy {:.2}% on the CPU", frozen.display(), g2.len(), thawed * 100.0);
    if (thawed - acc).abs() > 0.01 {
        return Err("the frozen model does not match".into());
    }
    Ok(())
}
