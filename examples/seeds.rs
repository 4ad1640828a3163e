//! The programs of TensorFlow's classic Session tutorials, run with wgflow.

use wgflow::{ConfigProto, Graph, Padding, Session, Tensor};

fn main() -> wgflow::Result<()> {
    wgflow::gpu::ensure_runtime_dir();
    env_logger::init();
    let config = ConfigProto::default();
    let probe = Session::new(&Graph::new(), config.clone())?;
    match probe.device().strip_prefix("GPU: ") {
        Some(adapter) => println!("running on the GPU: {adapter}"),
        None => println!("no GPU adapter found: running on the CPU"),
    }

    // A variable set to 42, assigned 13, and read in a second session.
    let g = Graph::new();
    let v = g.variable(42.0f32, "v")?;
    let assign = g.assign(&v, 13.0f32)?;
    let init = g.global_variables_initializer()?;
    let s1 = Session::new(&g, config.clone())?;
    s1.run(&[&init])?;
    println!("variable after init:            {}", show(&s1.eval(&v)?));
    println!("assign 13 returns:              {}", show(&s1.eval(&assign)?));
    let s2 = Session::new(&g, config.clone())?;
    s2.run(&[&init])?;
    println!("read in a second session:       {}", show(&s2.eval(&v)?));
    println!("and again in the first:         {}", show(&s1.eval(&v)?));

    // [1, 2] + [2, 3]
    let g = Graph::new();
    let c = (g.constant([1.0f32, 2.0])? + g.constant([2.0f32, 3.0])?)?;
    println!("[1,2] + [2,3] =                 {}", show(&Session::new(&g, config.clone())?.eval(&c)?));

    // x - a with x = [1, 2] (a variable) and a = [3, 3]
    let g = Graph::new();
    let x = g.variable([1.0f32, 2.0], "x")?;
    let a = g.constant([3.0f32, 3.0])?;
    let y = g.sub(&x, &a)?;
    let init = g.global_variables_initializer()?;
    let s = Session::new(&g, config.clone())?;
    s.run(&[&init])?;
    println!("x - a =                         {}", show(&s.eval(&y)?));

    // ones [1,5,5,3] conv2d ones [3,3,3,1], stride 2, SAME
    let g = Graph::new();
    let conv = g.conv2d(&g.ones(&[1, 5, 5, 3])?, &g.ones(&[3, 3, 3, 1])?, &[1, 2, 2, 1], Padding::Same, &[1])?;
    println!("conv2d ones, stride 2, SAME =   {}", show(&Session::new(&g, config)?.eval(&conv)?));
    Ok(())
}

/// Prints a float tensor as nested lists, dropping size-1 leading/trailing dims' noise.
fn show(t: &Tensor) -> String {
    match t.as_f32() {
        Ok(a) if a.ndim() == 0 => format!("{}", a.iter().next().copied().unwrap_or_default()),
        Ok(a) => {
            let shape = t.shape();
            let data: Vec<f32> = a.iter().copied().collect();
            if shape.len() == 4 {
                let (h, w) = (shape[1], shape[2]);
                let rows: Vec<String> =
                    (0..h).map(|i| format!("{:?}", &data[i * w * shape[3]..(i + 1) * w * shape[3]])).collect();
                format!("[{}] (shape {:?})", rows.join(", "), shape)
            } else {
                format!("{data:?}")
            }
        }
        Err(_) => format!("{t:?}"),
    }
}
