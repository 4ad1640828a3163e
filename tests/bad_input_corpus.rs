//! The bad-input corpus: well over 100 hostile inputs, each run on a CPU session and on a GPU
//! session. A case either expects a typed error (its `Code`), or expects the run to succeed
//! with the values it checks (empty tensors through every family, NaN and infinities). Every
//! case runs on its own thread under `catch_unwind` and a watchdog, so a panic or a hang is
//! counted rather than stopping the suite; the test prints
//! `bad-input corpus: N cases x D devices, 0 panics, 0 hangs` and fails on any wrong outcome.
//!
//! The cases live in `corpus/`: feeds and fetches, shapes and attributes, values (empty,
//! NaN/inf), session state (variables, closed sessions, gradients), files (checkpoints and
//! GraphDefs).

mod common;

#[path = "corpus/feeds.rs"]
mod feeds;
#[path = "corpus/files.rs"]
mod files;
#[path = "corpus/shapes.rs"]
mod shapes;
#[path = "corpus/state.rs"]
mod state;
#[path = "corpus/values.rs"]
mod values;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use wgflow::{Code, ConfigProto, Error, Graph, Output, Result, Session, Tensor};

/// What a case runs: build and run on a session of the given config.
pub type Run = Box<dyn Fn(&ConfigProto) -> Result<()> + Send + Sync>;

/// One corpus entry.
pub struct Case {
    pub name: String,
    /// The error code it must give, or `None`: it must succeed (its own checks passing).
    pub want: Option<Code>,
    pub run: Run,
}

/// A case that must fail with `code`.
pub fn err(
    name: impl Into<String>,
    code: Code,
    run: impl Fn(&ConfigProto) -> Result<()> + Send + Sync + 'static,
) -> Case {
    Case { name: name.into(), want: Some(code), run: Box::new(run) }
}

/// A case that must succeed.
pub fn ok(name: impl Into<String>, run: impl Fn(&ConfigProto) -> Result<()> + Send + Sync + 'static) -> Case {
    Case { name: name.into(), want: None, run: Box::new(run) }
}

/// Evaluates `out` in a new session of `config`.
pub fn eval(config: &ConfigProto, g: &Graph, out: &Output) -> Result<Tensor> {
    Session::new(g, config.clone())?.eval(out)
}

/// An `Internal` error for a check that failed inside a case that must succeed.
pub fn mismatch(what: impl Into<String>) -> Error {
    Error::internal(format!("corpus check failed: {}", what.into()))
}

/// Checks that `got` equals `want` (NaN equal to NaN).
pub fn expect_eq(got: &Tensor, want: &Tensor) -> Result<()> {
    let same = got.shape() == want.shape()
        && got.dtype() == want.dtype()
        && match (got.as_f32(), want.as_f32()) {
            (Ok(a), Ok(b)) => {
                a.iter().zip(b.iter()).all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
            }
            _ => got == want,
        };
    if same {
        Ok(())
    } else {
        Err(mismatch(format!("got {got:?}, want {want:?}")))
    }
}

/// How one case ended on one device.
enum Outcome {
    Right,
    Wrong(String),
    Panicked(String),
    Hung,
}

/// How long a case may run before it counts as a hang.
const WATCHDOG: Duration = Duration::from_secs(120);

fn run_case(case: &Arc<Case>, config: &ConfigProto) -> Outcome {
    let (tx, rx) = mpsc::channel();
    let (case2, config2) = (case.clone(), config.clone());
    std::thread::spawn(move || {
        let result = catch_unwind(AssertUnwindSafe(|| (case2.run)(&config2)));
        let _ = tx.send(result);
    });
    match rx.recv_timeout(WATCHDOG) {
        Err(_) => Outcome::Hung,
        Ok(Err(p)) => {
            let msg = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
            Outcome::Panicked(msg.unwrap_or_default())
        }
        Ok(Ok(result)) => match (case.want, result) {
            (Some(want), Err(e)) if e.code == want => Outcome::Right,
            (Some(want), Err(e)) => Outcome::Wrong(format!("want {want:?}, got {:?}: {e}", e.code)),
            (Some(want), Ok(())) => Outcome::Wrong(format!("want {want:?}, got success")),
            (None, Ok(())) => Outcome::Right,
            (None, Err(e)) => Outcome::Wrong(format!("want success, got {:?}: {e}", e.code)),
        },
    }
}

fn corpus() -> Vec<Case> {
    let mut all = Vec::new();
    all.extend(feeds::cases());
    all.extend(shapes::cases());
    all.extend(values::cases());
    all.extend(state::cases());
    all.extend(files::cases());
    all
}

#[test]
fn every_bad_input_gives_its_typed_error_without_a_panic_or_a_hang() {
    // 64 MiB per host tensor: requests of 2^31 float32 and more are refused before allocating.
    wgflow::tensor::set_host_allocation_limit(Some(64 << 20));
    let cases: Vec<Arc<Case>> = corpus().into_iter().map(Arc::new).collect();
    let mut devices = vec![("cpu", ConfigProto::cpu_only())];
    if common::gpu_ready() {
        devices.push(("gpu", ConfigProto::default()));
    }
    let (mut panics, mut hangs, mut wrong) = (0, 0, Vec::new());
    for case in &cases {
        for (dev, config) in &devices {
            match run_case(case, config) {
                Outcome::Right => {}
                Outcome::Wrong(w) => wrong.push(format!("{} on {dev}: {w}", case.name)),
                Outcome::Panicked(m) => {
                    panics += 1;
                    wrong.push(format!("{} on {dev}: PANIC {m}", case.name));
                }
                Outcome::Hung => {
                    hangs += 1;
                    wrong.push(format!("{} on {dev}: HANG (over {WATCHDOG:?})", case.name));
                }
            }
        }
    }
    let errors = cases.iter().filter(|c| c.want.is_some()).count();
    println!(
        "bad-input corpus: {} cases ({errors} typed errors, {} must succeed) x {} devices, {panics} panics, {hangs} hangs",
        cases.len(),
        cases.len() - errors,
        devices.len()
    );
    for w in &wrong {
        println!("  WRONG {w}");
    }
    assert!(cases.len() >= 100, "the corpus has {} cases", cases.len());
    let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names are unique");
    assert!(wrong.is_empty(), "{} wrong outcomes", wrong.len());
}
