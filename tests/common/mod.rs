//! Shared helpers of the golden tests: loading TF's cases, comparing tensors, tallying.
#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::Value;
use wgflow::{ConfigProto, DType, Tensor};

/// The devices a golden suite runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    Cpu,
    Gpu,
    /// A GPU session where every other node is placed on the CPU by a device function.
    Mixed,
    /// A session with two GPUs (two wgpu devices of one adapter, `GpuOptions::virtual_devices`)
    /// where nodes alternate between `/device:GPU:0` and `/device:GPU:1`.
    TwoGpus,
}

impl Device {
    pub fn name(self) -> &'static str {
        match self {
            Device::Cpu => "cpu",
            Device::Gpu => "gpu",
            Device::Mixed => "mixed",
            Device::TwoGpus => "two-gpus",
        }
    }
    /// The session config that runs everything on this device.
    pub fn config(self) -> ConfigProto {
        match self {
            Device::Cpu => ConfigProto::cpu_only(),
            Device::Gpu | Device::Mixed => ConfigProto::default(),
            Device::TwoGpus => {
                let mut c = ConfigProto::default();
                c.gpu_options.virtual_devices = vec![wgflow::VirtualDevices::split(2)];
                c
            }
        }
    }
    /// The placement scope a graph is built under on this device (TF's device function): for
    /// `Mixed`, every other node is put on `/cpu:0`, the rest go to the GPU; for `TwoGpus`,
    /// nodes alternate between `/device:GPU:0` and `/device:GPU:1`.
    pub fn scope(self, g: &wgflow::Graph) -> Option<wgflow::ScopeGuard> {
        let (even, odd) = match self {
            Device::Mixed => ("", "/cpu:0"),
            Device::TwoGpus => ("/device:GPU:0", "/device:GPU:1"),
            Device::Cpu | Device::Gpu => return None,
        };
        let n = std::sync::atomic::AtomicUsize::new(0);
        Some(g.device_fn(move |_, _| {
            let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if i % 2 == 1 { odd } else { even }.to_string()
        }))
    }
    /// A failure if a session meant for this device ran anything elsewhere.
    pub fn check_ran_here(self, sess: &wgflow::Session) -> Result<(), String> {
        let s = sess.stats();
        match self {
            Device::Gpu | Device::Mixed | Device::TwoGpus if !sess.device().starts_with("GPU") => {
                Err(format!("session runs on {}", sess.device()))
            }
            Device::Gpu | Device::Mixed | Device::TwoGpus if s.cpu_fallbacks > 0 => {
                Err(format!("{} ops fell back to the CPU", s.cpu_fallbacks))
            }
            // A node whose GPU lowering refuses its static shapes is placed on the CPU up
            // front, which no fallback counter sees: the placement log does.
            Device::Gpu | Device::TwoGpus => {
                let log = sess.placement_log();
                if let Some(line) = log.iter().find(|l| l.ends_with("device:CPU:0")) {
                    return Err(format!("a node was placed on the CPU: {line}"));
                }
                // With two GPUs, both ran something (a graph of a single node aside).
                let on_gpu1 = log.iter().any(|l| l.ends_with("device:GPU:1"));
                if self == Device::TwoGpus && log.len() > 1 && !on_gpu1 {
                    return Err(format!("nothing was placed on GPU:1: {log:?}"));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Whether the GPU tests can run: with CI=true a missing adapter is a failure; elsewhere the
/// tests say they skip.
pub fn gpu_ready() -> bool {
    let sess = wgflow::Session::new(&wgflow::Graph::new(), ConfigProto::default()).expect("session");
    let device = sess.device();
    if device.starts_with("GPU") {
        println!("gpu tests run on {device}");
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but no GPU adapter was found (is lavapipe installed?)"
    );
    println!("SKIPPED: no GPU adapter (set CI=true to make this a failure)");
    false
}

/// The golden file `name` from `../shared/goldens/`.
pub fn load(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/goldens").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("cannot parse {}: {e}", path.display()))
}

fn float(v: &Value) -> f64 {
    match v {
        Value::String(s) if s == "nan" => f64::NAN,
        Value::String(s) if s == "inf" => f64::INFINITY,
        Value::String(s) if s == "-inf" => f64::NEG_INFINITY,
        Value::Number(n) => n.as_f64().expect("number"),
        Value::Bool(b) => f64::from(u8::from(*b)),
        other => panic!("not a number: {other}"),
    }
}

/// A golden tensor `{dtype, shape, data}` as a wgflow tensor.
pub fn tensor(v: &Value) -> Tensor {
    let shape: Vec<usize> =
        v["shape"].as_array().expect("shape").iter().map(|d| d.as_u64().expect("dim") as usize).collect();
    let data = v["data"].as_array().expect("data");
    match v["dtype"].as_str().expect("dtype") {
        "float32" => Tensor::from_f32(&shape, data.iter().map(|x| float(x) as f32).collect()).expect("f32 tensor"),
        "int32" => Tensor::from_i32(&shape, data.iter().map(|x| float(x) as i32).collect()).expect("i32 tensor"),
        "float64" => ndarray::ArrayD::from_shape_vec(shape, data.iter().map(float).collect()).expect("f64").into(),
        "bool" => ndarray::ArrayD::from_shape_vec(shape, data.iter().map(|x| x.as_bool().expect("bool")).collect())
            .expect("bool")
            .into(),
        "string" => ndarray::ArrayD::from_shape_vec(
            shape,
            data.iter().map(|x| x.as_str().expect("str").to_string()).collect::<Vec<String>>(),
        )
        .expect("str")
        .into(),
        other => panic!("dtype {other}"),
    }
}

/// How close a result must be.
#[derive(Clone, Copy, Debug)]
pub enum Tol {
    /// Bit-for-bit (NaN matches NaN, -0.0 differs from 0.0).
    Exact,
    /// `|got - want| <= atol + rtol * |want|`; non-finite values must match exactly.
    Close { rtol: f64, atol: f64 },
}

fn values(t: &Tensor) -> Vec<f64> {
    match t {
        Tensor::F32(a) => a.iter().map(|&x| f64::from(x)).collect(),
        Tensor::I32(a) => a.iter().map(|&x| f64::from(x)).collect(),
        Tensor::F64(a) => a.iter().copied().collect(),
        Tensor::Bool(a) => a.iter().map(|&x| f64::from(u8::from(x))).collect(),
        Tensor::Str(_) => Vec::new(),
    }
}

/// Compares a result with the expected tensor: dtype, shape, then values.
pub fn compare(got: &Tensor, want: &Tensor, tol: Tol) -> Result<(), String> {
    if got.dtype() != want.dtype() {
        return Err(format!("dtype {} != {}", got.dtype(), want.dtype()));
    }
    if got.shape() != want.shape() {
        return Err(format!("shape {:?} != {:?}", got.shape(), want.shape()));
    }
    if let (Tensor::Str(a), Tensor::Str(b)) = (got, want) {
        return if a == b { Ok(()) } else { Err(format!("{a:?} != {b:?}")) };
    }
    for (i, (g, w)) in values(got).iter().zip(values(want)).enumerate() {
        let ok = match tol {
            Tol::Exact => (g.is_nan() && w.is_nan()) || g.to_bits() == w.to_bits(),
            Tol::Close { rtol, atol } => {
                if !w.is_finite() || !g.is_finite() {
                    (g.is_nan() && w.is_nan()) || *g == w
                } else {
                    (g - w).abs() <= atol + rtol * w.abs()
                }
            }
        };
        if !ok {
            return Err(format!("element {i}: got {g:e}, want {w:e}"));
        }
    }
    Ok(())
}

/// Counts passes and failures of one golden file on one device, prints the summary line
/// (`golden conv2d.json cpu: 116/116 passed`) and fails the test if anything failed.
pub struct Tally {
    file: String,
    device: Device,
    passed: usize,
    failures: Vec<String>,
}

impl Tally {
    pub fn new(file: &str, device: Device) -> Self {
        Tally { file: file.to_string(), device, passed: 0, failures: Vec::new() }
    }
    /// Records one case.
    pub fn record(&mut self, case: &str, result: Result<(), String>) {
        match result {
            Ok(()) => self.passed += 1,
            Err(e) => self.failures.push(format!("{case}: {e}")),
        }
    }
    /// Prints the summary and panics on failures; `expected` is the number of cases in the file.
    pub fn finish(self, expected: usize) {
        let total = self.passed + self.failures.len();
        println!("golden {} {}: {}/{} passed", self.file, self.device.name(), self.passed, total);
        for f in &self.failures {
            println!("  FAILED {f}");
        }
        assert!(self.failures.is_empty(), "{} golden cases failed", self.failures.len());
        assert_eq!(total, expected, "not every case of {} ran", self.file);
    }
}

/// The expected-error check: same code class and the same message text before TF's node suffix.
pub fn check_error(err: &wgflow::Error, class: &str, message: &str) -> Result<(), String> {
    let want_code = match class {
        "InvalidArgumentError" | "ValueError" => wgflow::Code::InvalidArgument,
        "FailedPreconditionError" | "RuntimeError" => wgflow::Code::FailedPrecondition,
        "NotFoundError" | "TypeError" => wgflow::Code::NotFound,
        "UnimplementedError" => wgflow::Code::Unimplemented,
        "ResourceExhaustedError" => wgflow::Code::ResourceExhausted,
        other => return Err(format!("unknown error class {other}")),
    };
    let want = message.split("\n\t [[").next().unwrap_or(message);
    if err.code != want_code {
        return Err(format!("code {:?} != {:?} ({})", err.code, want_code, err.message));
    }
    if err.message != want {
        return Err(format!("message {:?} != {:?}", err.message, want));
    }
    Ok(())
}

/// The dtype of a golden tensor.
pub fn dtype_of(v: &Value) -> DType {
    match v["dtype"].as_str().expect("dtype") {
        "float32" => DType::F32,
        "int32" => DType::I32,
        "float64" => DType::F64,
        "bool" => DType::Bool,
        _ => DType::Str,
    }
}

/// The GPU memory counter of a session, readable after the session is gone.
pub fn pool_bytes_held_of(s: &wgflow::Session) -> wgflow::testing::HeldBytes {
    s.gpu_memory_counter().expect("a GPU session")
}

/// Deterministic pseudo-random values in [-1, 1) (xorshift from `seed`).
pub fn random_values(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s % 2000) as f32 / 1000.0 - 1.0
        })
        .collect()
}

/// A constant of `shape` holding [`random_values`].
pub fn rand(g: &wgflow::Graph, shape: &[usize], seed: u32) -> wgflow::Output {
    let t = Tensor::from_f32(shape, random_values(shape.iter().product(), seed)).expect("tensor");
    g.constant(t).expect("constant")
}
