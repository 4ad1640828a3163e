//! The benchmark suite: each entry builds one graph and says what a run of it computes.

use wgflow::train::Optimizer;
use wgflow::{DType, Fetch, Graph, Output, Padding, Result, Shape, Tensor};

/// What one run of a case feeds and fetches.
pub struct Case {
    pub fetches: Vec<Fetch>,
    pub feeds: Vec<(Output, Tensor)>,
}

/// How an entry's speed is stated.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    /// Arithmetic: GFLOP/s.
    Flops,
    /// Memory: GB/s, compared with a copy of the same bytes.
    Bytes,
    /// Neither: the time is the figure (run overhead).
    Time,
}

/// Builds an entry's graph into the given graph.
pub type Builder = Box<dyn Fn(&Graph) -> Result<Case>>;

/// One suite entry.
pub struct Entry {
    pub name: String,
    /// Floating-point operations of one run.
    pub flops: f64,
    /// Bytes one run's kernels must read and write at least.
    pub bytes: f64,
    pub rate: Rate,
    /// Whether the session fuses elementwise chains (`graph_options.remapping`).
    pub fused: bool,
    pub build: Builder,
}

impl Entry {
    /// Whether a run moves only a few bytes, so that its time is overhead: such an entry gets
    /// ten times the warm-up runs and more runs.
    pub fn is_tiny(&self) -> bool {
        self.rate == Rate::Time && self.bytes < 4096.0
    }
}

/// A reproducible pseudo-random tensor in [lo, hi).
pub fn random(shape: &[usize], lo: f32, hi: f32, seed: u64) -> Result<Tensor> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let n: usize = shape.iter().product();
    let values = (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            lo + (hi - lo) * ((state >> 40) as f32 / (1u64 << 24) as f32)
        })
        .collect();
    Tensor::from_f32(shape, values)
}

fn label(n: usize) -> String {
    if n >= 1 << 20 {
        format!("{}M", n >> 20)
    } else {
        format!("{n}")
    }
}

/// `a + b` on `n` float32s, the operands `how` ("fed" or "resident") and built by `build`.
fn add(n: usize, how: &str, build: Builder) -> Entry {
    Entry {
        name: format!("add {} {how}", label(n)),
        flops: n as f64,
        bytes: 12.0 * n as f64,
        rate: Rate::Bytes,
        fused: true,
        build,
    }
}

fn add_fed(n: usize) -> Entry {
    add(
        n,
        "fed",
        Box::new(move |g| {
            let a = g.placeholder(DType::F32, Shape::from(&[n][..]))?;
            let b = g.placeholder(DType::F32, Shape::from(&[n][..]))?;
            let sum = g.add(&a, &b)?;
            Ok(Case {
                fetches: vec![sum.into()],
                feeds: vec![(a, random(&[n], -1.0, 1.0, 1)?), (b, random(&[n], -1.0, 1.0, 2)?)],
            })
        }),
    )
}

fn add_resident(n: usize) -> Entry {
    add(
        n,
        "resident",
        Box::new(move |g| {
            let a = g.variable(random(&[n], -1.0, 1.0, 1)?, "a")?;
            let b = g.variable(random(&[n], -1.0, 1.0, 2)?, "b")?;
            let sum = g.add(a.value(), b.value())?;
            Ok(Case { fetches: vec![sum.op().into()], feeds: vec![] })
        }),
    )
}

/// `relu(a*b+c)`: one fused kernel, or three (`fused` false).
fn chain(n: usize, fused: bool) -> Entry {
    Entry {
        name: format!("relu(a*b+c) {} resident {}", label(n), if fused { "fused" } else { "unfused" }),
        flops: 3.0 * n as f64,
        bytes: 16.0 * n as f64,
        rate: Rate::Bytes,
        fused,
        build: Box::new(move |g| {
            let a = g.variable(random(&[n], -1.0, 1.0, 1)?, "a")?;
            let b = g.variable(random(&[n], -1.0, 1.0, 2)?, "b")?;
            let c = g.variable(random(&[n], -1.0, 1.0, 3)?, "c")?;
            let y = g.relu(g.add(g.mul(a.value(), b.value())?, c.value())?)?;
            Ok(Case { fetches: vec![y.op().into()], feeds: vec![] })
        }),
    }
}

fn conv(x: [usize; 4], f: [usize; 4], stride: usize) -> Entry {
    let (oh, ow) = (x[1].div_ceil(stride), x[2].div_ceil(stride));
    let out = x[0] * oh * ow * f[3];
    Entry {
        name: format!("conv2d {}x{}x{}x{} * {}x{}x{}x{} s{stride}", x[0], x[1], x[2], x[3], f[0], f[1], f[2], f[3]),
        flops: 2.0 * (out * f[0] * f[1] * f[2]) as f64,
        bytes: 4.0 * (x.iter().product::<usize>() + f.iter().product::<usize>() + out) as f64,
        rate: Rate::Flops,
        fused: true,
        build: Box::new(move |g| {
            let input = g.variable(random(&x, 0.0, 1.0, 1)?, "input")?;
            let filter = g.variable(random(&f, -0.1, 0.1, 2)?, "filter")?;
            let s = [1, stride, stride, 1];
            let y = g.conv2d(input.value(), filter.value(), &s, Padding::Same, &[1, 1, 1, 1])?;
            Ok(Case { fetches: vec![y.op().into()], feeds: vec![] })
        }),
    }
}

fn matmul(n: usize) -> Entry {
    Entry {
        name: format!("matmul {n}x{n}x{n}"),
        flops: 2.0 * (n * n * n) as f64,
        bytes: 12.0 * (n * n) as f64,
        rate: Rate::Flops,
        fused: true,
        build: Box::new(move |g| {
            let a = g.variable(random(&[n, n], -1.0, 1.0, 1)?, "a")?;
            let b = g.variable(random(&[n, n], -1.0, 1.0, 2)?, "b")?;
            let y = g.matmul(a.value(), b.value(), false, false)?;
            Ok(Case { fetches: vec![y.op().into()], feeds: vec![] })
        }),
    }
}

fn overhead() -> Entry {
    Entry {
        name: "run overhead (1 tiny op, fetched)".into(),
        flops: 1.0,
        bytes: 12.0,
        rate: Rate::Time,
        fused: true,
        build: Box::new(|g| {
            let sum = g.add(g.constant(1.0f32)?, g.constant(2.0f32)?)?;
            Ok(Case { fetches: vec![sum.into()], feeds: vec![] })
        }),
    }
}

/// One training step of the digits CNN of `examples/train_digits.rs` (batch 64): conv 3x3x1x16
/// SAME + bias + relu, 2x2 max pool, dense 256x10, sparse softmax cross-entropy, Adam.
fn digits_step() -> Entry {
    const BATCH: usize = 64;
    // Forward conv + dense, and about twice that for the backward pass.
    let forward = 2.0 * (BATCH * 64 * 16 * 9 + BATCH * 256 * 10) as f64;
    Entry {
        name: "digits CNN training step (batch 64)".into(),
        flops: 3.0 * forward,
        bytes: 4.0 * (BATCH * 64 * 16 * 3) as f64,
        rate: Rate::Flops,
        fused: true,
        build: Box::new(|g| {
            let x = g.placeholder(DType::F32, Shape::partial(&[None, Some(8), Some(8), Some(1)]))?;
            let y = g.placeholder(DType::I32, Shape::partial(&[None]))?;
            let k = g.variable(random(&[3, 3, 1, 16], -0.4, 0.4, 1)?, "conv/kernel")?;
            let kb = g.variable(Tensor::filled(DType::F32, &[16], 0.0), "conv/bias")?;
            let w = g.variable(random(&[256, 10], -0.1, 0.1, 2)?, "dense/kernel")?;
            let wb = g.variable(Tensor::filled(DType::F32, &[10], 0.0), "dense/bias")?;
            let conv =
                g.relu(g.bias_add(g.conv2d(&x, k.value(), &[1, 1, 1, 1], Padding::Same, &[1, 1, 1, 1])?, kb.value())?)?;
            let pooled = g.max_pool(&conv, &[1, 2, 2, 1], &[1, 2, 2, 1], Padding::Valid)?;
            let logits = g.bias_add(g.matmul(g.reshape(&pooled, &[-1, 256])?, w.value(), false, false)?, wb.value())?;
            let loss = g.reduce_mean(g.sparse_softmax_cross_entropy_with_logits(&y, &logits)?, None, false)?;
            let train = Optimizer::adam(0.01).minimize(&loss, None, None)?;
            let labels: Vec<i32> = (0..BATCH).map(|i| (i * 7 % 10) as i32).collect();
            Ok(Case {
                fetches: vec![train.into(), loss.into()],
                feeds: vec![(x, random(&[BATCH, 8, 8, 1], 0.0, 1.0, 3)?), (y, Tensor::from(labels))],
            })
        }),
    }
}

/// The `--sweep` of `scripts/device-bench.sh`, for a real GPU: matmuls up to 4096, conv2d
/// shapes of image models (3x3 at three depths, 1x1, the 7x7 stride-2 stem), 64M-element
/// elementwise ops, and the run overhead.
pub fn sweep() -> Vec<Entry> {
    let mut out: Vec<Entry> = [1024, 2048, 4096].into_iter().map(matmul).collect();
    out.push(conv([8, 56, 56, 64], [3, 3, 64, 64], 1));
    out.push(conv([8, 28, 28, 128], [3, 3, 128, 128], 1));
    out.push(conv([8, 14, 14, 256], [3, 3, 256, 256], 1));
    out.push(conv([8, 56, 56, 64], [1, 1, 64, 256], 1));
    out.push(conv([8, 224, 224, 3], [7, 7, 3, 64], 2));
    out.push(add_resident(64 << 20));
    out.push(chain(64 << 20, true));
    out.push(overhead());
    out
}

/// The suite: the full one, or the reduced `--quick` one (no 16M entries).
pub fn suite(quick: bool) -> Vec<Entry> {
    let mut sizes = vec![1 << 20];
    if !quick {
        sizes.push(16 << 20);
    }
    let mut out = Vec::new();
    for &n in &sizes {
        out.push(add_fed(n));
        out.push(add_resident(n));
        out.push(chain(n, true));
        out.push(chain(n, false));
    }
    out.push(conv([8, 64, 64, 32], [3, 3, 32, 64], 1));
    out.push(conv([1, 224, 224, 3], [7, 7, 3, 64], 2));
    out.push(matmul(1024));
    out.push(overhead());
    out.push(digits_step());
    out.push(crate::models::mobilenet(1));
    if !quick {
        out.push(crate::models::mobilenet(8));
    }
    out
}
