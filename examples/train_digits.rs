//! A small CNN on the 8x8 handwritten digits (`data/digits.csv.gz`, 1,797 real images): conv2d
//! 3x3 SAME + relu, 2x2 max pool, dense, softmax cross-entropy, trained with Adam on the GPU
//! (the CPU without one). It holds out a test split, prints the test accuracy, saves a
//! checkpoint, restores it into a fresh session and shows the same accuracy, then writes the
//! trained model as a frozen GraphDef (`frozen_digits.pb`, weights as constants) that TF can
//! load, and reads it back.

#[path = "common/digits.rs"]
mod digits;

use digits::{accuracy, BATCH, EPOCHS};
use wgflow::train::{Optimizer, Saver};
use wgflow::{ConfigProto, Fetch, Graph, Session};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    wgflow::gpu::ensure_runtime_dir();
    env_logger::init();
    let (train, test) = digits::load()?;
    let digits::Model { graph: g, x, y, logits, loss, step } = digits::model()?;
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
        digits::shuffle(&mut order, epoch);
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
