//! Linear regression with GradientDescent, as in TF's golden run: y = 2x + 1 on six points
//! of [0, 1], W and b from zero, learning rate 0.1, five steps of `run([train, loss])`.

use wgflow::train::Optimizer;
use wgflow::{ConfigProto, DType, Fetch, Graph, Session, Shape, Tensor};

fn main() -> wgflow::Result<()> {
    wgflow::gpu::ensure_runtime_dir();
    env_logger::init();
    let xs: Vec<f32> = (0..6).map(|i| i as f32 * 0.2).collect();
    let ys: Vec<f32> = xs.iter().map(|x| 2.0 * x + 1.0).collect();
    let g = Graph::new();
    let x = g.placeholder(DType::F32, Shape::partial(&[None, Some(1)]))?;
    let y = g.placeholder(DType::F32, Shape::partial(&[None, Some(1)]))?;
    let w = g.variable(Tensor::from_f32(&[1, 1], vec![0.0])?, "W")?;
    let b = g.variable(Tensor::from(vec![0.0f32]), "b")?;
    let pred = g.add(g.matmul(&x, &w, false, false)?, &b)?;
    let loss = g.reduce_mean(g.square(g.sub(&pred, &y)?)?, None, false)?;
    let train = Optimizer::gradient_descent(0.1).minimize(&loss, None, None)?;
    let init = g.global_variables_initializer()?;

    let s = Session::new(&g, ConfigProto::default())?;
    println!("device: {}", s.device());
    s.run(&[&init])?;
    let feeds = [(x.clone(), Tensor::from_f32(&[6, 1], xs)?), (y.clone(), Tensor::from_f32(&[6, 1], ys)?)];
    for step in 0..5 {
        let out = s.run_feed(&[Fetch::from(&train), (&loss).into()], &feeds)?;
        if let Some(Some(l)) = out.get(1) {
            println!("step {step} loss {:.7}", l.as_f32()?.iter().copied().sum::<f32>());
        }
    }
    let (w, b) = (s.eval(w.tensor())?, s.eval(b.tensor())?);
    println!("W = {:.7}, b = {:.7}", w.as_f32()?.sum(), b.as_f32()?.sum());
    Ok(())
}
