//! `--device-info`'s last lines: how long the first run of each matmul / conv2d kernel takes
//! against its second run on the GPU (the difference is the pipeline's compile, which on Mesa's
//! drivers happens at the first dispatch; Mesa's disk cache can hide it, so
//! `scripts/device-bench.sh` and the README's figures clear it first).

use std::time::Instant;

use wgflow::{ConfigProto, Graph, Output, Padding, Result, Session, Tensor};

fn constant(g: &Graph, shape: &[usize]) -> Result<Output> {
    let n = shape.iter().product::<usize>();
    g.constant(Tensor::from_f32(shape, (0..n).map(|i| (i % 7) as f32 * 0.1).collect())?)
}

/// One line per kernel: its first and second run times.
pub fn first_runs() -> Result<String> {
    let g = Graph::new();
    let one = [1, 1, 1, 1];
    let cases = [
        ("matmul 512", g.matmul(constant(&g, &[512, 512])?, constant(&g, &[512, 512])?, false, false)?),
        ("matmul 512, B transposed", g.matmul(constant(&g, &[512, 512])?, constant(&g, &[512, 512])?, false, true)?),
        (
            "conv2d 3x3x32x64",
            g.conv2d(constant(&g, &[8, 32, 32, 32])?, constant(&g, &[3, 3, 32, 64])?, &one, Padding::Same, &one)?,
        ),
        (
            "conv2d 7x7x3x64 s2",
            g.conv2d(
                constant(&g, &[1, 224, 224, 3])?,
                constant(&g, &[7, 7, 3, 64])?,
                &[1, 2, 2, 1],
                Padding::Same,
                &one,
            )?,
        ),
        (
            "depthwise 3x3x64",
            g.depthwise_conv2d(
                constant(&g, &[8, 32, 32, 64])?,
                constant(&g, &[3, 3, 64, 1])?,
                &one,
                Padding::Same,
                &one,
            )?,
        ),
    ];
    let session = Session::new(&g, ConfigProto { allow_soft_placement: false, ..ConfigProto::default() })?;
    let mut out = format!("first runs (kernel variant {}):\n", wgflow::gpu::kernel_variant().as_str());
    for (name, y) in &cases {
        let t = Instant::now();
        session.eval(y)?;
        let first = t.elapsed();
        let t = Instant::now();
        session.eval(y)?;
        let second = t.elapsed();
        out.push_str(&format!(
            "  {name}: first run {:.0} ms, second {:.1} ms\n",
            first.as_secs_f64() * 1e3,
            second.as_secs_f64() * 1e3
        ));
    }
    Ok(out)
}
