//! Data-parallel training over MPI (`wgflow::distributed`, feature `mpi`), checked by
//! running this test binary under `mpirun` on localhost: the ignored test `rank_process` is
//! what each rank runs (`mpi/rank.rs`), the other tests start the jobs and read what the
//! ranks wrote and printed.
//!
//! Needs OpenMPI's `mpirun` (Debian: openmpi-bin); scripts/test.sh installs it. Every job
//! keeps its traffic on the loopback (`btl_tcp_if_include lo`, `oob_tcp_if_include lo`),
//! may run as root (OMPI_ALLOW_RUN_AS_ROOT) and is killed if it outlives its limit.

#[path = "mpi/model.rs"]
mod model;
#[path = "mpi/rank.rs"]
mod rank;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use model::{floats, STEPS};
use wgflow::{ConfigProto, Session, Tensor};

/// What each rank runs; ignored in a plain `cargo test`, started by `mpirun` below.
#[test]
#[ignore = "one MPI rank: started by the other tests of this file through mpirun"]
fn rank_process() -> Result<(), Box<dyn std::error::Error>> {
    rank::run()
}

/// MCA parameters that keep every byte on the loopback: OpenMPI's shared memory (vader)
/// between ranks of one host, TCP only on `lo`, and mpirun's own out-of-band channel on `lo`.
const LOOPBACK: [&str; 6] = ["--mca", "btl_tcp_if_include", "lo", "--mca", "oob_tcp_if_include", "lo"];

/// A finished (or killed) mpirun.
struct Job {
    success: bool,
    /// mpirun's exit code: a failed rank's, or the code given to MPI_Abort.
    code: Option<i32>,
    output: String,
    elapsed: Duration,
    dir: PathBuf,
}

/// Runs `ranks` copies of `rank_process` in `mode` with the transports `btl`, killing mpirun
/// after `limit`.
fn mpirun(name: &str, ranks: usize, mode: &str, btl: &str, timeout_secs: f64, limit: Duration) -> Job {
    let dir = std::env::temp_dir().join(format!("wgflow-mpi-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let log = dir.join("mpirun.log");
    let file = std::fs::File::create(&log).expect("the log file");
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut cmd = Command::new("mpirun");
    cmd.args(["-np", &ranks.to_string(), "--oversubscribe", "--bind-to", "none", "--mca", "btl", btl])
        .args(LOOPBACK)
        .args([
            "-x",
            "WGFLOW_MPI_MODE",
            "-x",
            "WGFLOW_MPI_OUT",
            "-x",
            "WGFLOW_MPI_TIMEOUT_SECS",
            "-x",
            "RAYON_NUM_THREADS",
        ])
        .arg(&exe)
        .args(["rank_process", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env("WGFLOW_MPI_MODE", mode)
        .env("WGFLOW_MPI_OUT", &dir)
        .env("WGFLOW_MPI_TIMEOUT_SECS", timeout_secs.to_string())
        .env("RAYON_NUM_THREADS", "1")
        // mpirun refuses to start as root without these (the same as --allow-run-as-root).
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("the log file"))
        .stderr(file);
    let start = Instant::now();
    let mut child = cmd.spawn().expect("mpirun (Debian: apt-get install openmpi-bin) starts");
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for mpirun") {
            break Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let elapsed = start.elapsed();
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    // Indented, so that the ranks' own "test result:" lines do not read as this binary's.
    let shown: String = output.lines().map(|l| format!("  | {l}\n")).collect();
    println!("== mpirun -np {ranks} ({mode}, btl {btl}): {status:?} after {elapsed:.1?}\n{shown}");
    assert!(status.is_some(), "mpirun -np {ranks} ({mode}) still ran after {limit:?}: killed");
    Job { success: status.is_some_and(|s| s.success()), code: status.and_then(|s| s.code()), output, elapsed, dir }
}

fn read(dir: &Path, file: &str) -> Vec<u8> {
    std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("reading {file}: {e}"))
}

/// The same model trained in this process, without MPI, on the whole batch of each step.
fn single_process() -> Vec<f32> {
    let m = model::build(1).expect("the model");
    let train = model::optimizer().minimize(&m.loss, Some(&m.step), None).expect("the train op");
    let sess = Session::new(&m.graph, ConfigProto::cpu_only()).expect("a session");
    sess.run(&[m.graph.global_variables_initializer().expect("the initializer")]).expect("init");
    for i in 0..STEPS {
        let (x, y) = model::batch(i, 0..model::GLOBAL_BATCH).expect("a batch");
        sess.run_feed(&[&train], &[(&m.x, x), (&m.y, y)]).expect("a step");
    }
    assert_eq!(sess.eval(m.step.tensor()).expect("global_step"), Tensor::from(1 + STEPS as i32));
    let weights: Vec<&wgflow::Output> = m.weights.iter().map(|v| v.tensor()).collect();
    let values: Vec<Tensor> = sess.run(&weights).expect("the weights").into_iter().flatten().collect();
    floats(&model::weight_bytes(&values).expect("float weights"))
}

/// 2 and 3 ranks: after 20 steps every rank holds bit-identical variables (slots and
/// global_step included), equal within float32 rounding to one process on the whole batch;
/// rank 0 alone wrote the checkpoint and every rank restored it.
#[test]
fn ranks_agree_bit_for_bit_and_match_one_process() {
    let reference = single_process();
    for ranks in [2, 3] {
        let job = mpirun(&format!("train{ranks}"), ranks, "train", "self,vader,tcp", 60.0, Duration::from_secs(120));
        assert!(job.success, "mpirun -np {ranks} failed:\n{}", job.output);
        let all0 = read(&job.dir, "rank-0.all");
        let weights0 = read(&job.dir, "rank-0.weights");
        for r in 1..ranks {
            assert!(read(&job.dir, &format!("rank-{r}.all")) == all0, "rank {r}'s variables differ from rank 0's");
            assert_eq!(read(&job.dir, &format!("rank-{r}.weights")), weights0);
        }
        let got = floats(&weights0);
        assert_eq!(got.len(), reference.len());
        let worst = got.iter().zip(&reference).map(|(a, b)| (a - b).abs() / (1.0 + b.abs())).fold(0.0f32, f32::max);
        println!("{ranks} ranks vs one process: largest relative difference {worst:e}");
        assert!(worst < 1e-5, "{ranks} ranks differ from one process by {worst}");

        let mut files: Vec<String> = std::fs::read_dir(&job.dir)
            .expect("the job's directory")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|f| f.starts_with("model.ckpt") || f == "checkpoint" || f.starts_with(".model"))
            .collect();
        files.sort();
        assert_eq!(files, ["checkpoint", &format!("model.ckpt-{STEPS}")], "only rank 0 writes one checkpoint");
        for r in 0..ranks {
            assert!(job.output.contains(&format!("rank {r}: restored")), "rank {r} did not restore");
            assert_eq!(job.output.contains(&format!("rank {r}: saved Some(")), r == 0, "rank {r}'s save");
        }
        let _ = std::fs::remove_dir_all(&job.dir);
    }
}

/// A rank that exits in the middle of training ends the job, with mpirun's message naming
/// it, within seconds: the others do not hang in their all-reduce.
#[test]
fn a_rank_that_dies_fails_the_job_quickly() {
    let job = mpirun("die", 2, "die", "self,vader,tcp", 60.0, Duration::from_secs(60));
    assert!(!job.success, "the job succeeded although rank 1 died:\n{}", job.output);
    assert_eq!(job.code, Some(3), "mpirun's exit code is not the dead rank's:\n{}", job.output);
    assert!(job.elapsed < Duration::from_secs(30), "the job took {:?} to fail", job.elapsed);
    assert!(job.output.contains("rank 1: exiting at step 5"), "{}", job.output);
    // OpenMPI 4's words: "mpirun detected that one or more processes exited with non-zero
    // status, thus causing the job to be terminated. [...] Exit code:    3".
    let told = job.output.contains("exited with non-zero status")
        && job.output.lines().any(|l| l.trim().starts_with("Exit code:") && l.trim().ends_with(" 3"));
    assert!(told, "mpirun's output does not say that a rank died with exit code 3:\n{}", job.output);
    let _ = std::fs::remove_dir_all(&job.dir);
}

/// A rank that stops answering (alive, but never reaching the next all-reduce) makes the
/// others fail with DeadlineExceeded after their timeout (3 s here) and abort the job.
#[test]
fn a_stalled_rank_gives_deadline_exceeded_then_abort() {
    let job = mpirun("stall", 2, "stall", "self,vader,tcp", 3.0, Duration::from_secs(60));
    assert!(!job.success, "the job succeeded although rank 1 stalled:\n{}", job.output);
    assert!(job.elapsed < Duration::from_secs(40), "the job took {:?} to fail", job.elapsed);
    assert!(
        job.output.contains(
            "rank 0 of 2 failed: DeadlineExceeded: MPI_Allreduce on rank 0 of 2 did not complete within 3.0 s"
        ),
        "rank 0 did not report the deadline:\n{}",
        job.output
    );
    // The rank's MPI_Abort(2) is mpirun's exit code (its help text about MPI_ABORT is not a
    // reliable sign: OpenMPI 4.1 sometimes fails to print it, "Data unpack would read past end
    // of buffer in file show_help.c").
    assert_eq!(job.code, Some(2), "rank 0 did not abort the job with its code:\n{}", job.output);
    let _ = std::fs::remove_dir_all(&job.dir);
}

/// With shared memory left out, the ranks talk over TCP: they got the loopback-only
/// settings, hold at least one established TCP connection, and every connection they hold
/// is between loopback addresses.
#[test]
fn traffic_stays_on_the_loopback() {
    let job = mpirun("loopback", 2, "train", "self,tcp", 60.0, Duration::from_secs(120));
    assert!(job.success, "mpirun over TCP on lo failed:\n{}", job.output);
    for r in 0..2 {
        for setting in ["OMPI_MCA_btl=self,tcp", "OMPI_MCA_btl_tcp_if_include=lo", "OMPI_MCA_oob_tcp_if_include=lo"] {
            assert!(job.output.contains(&format!("rank {r}: env {setting}")), "rank {r} lacks {setting}");
        }
    }
    let conns: Vec<&str> = job.output.lines().filter(|l| l.contains(": tcp ")).collect();
    let established: Vec<&&str> = conns.iter().filter(|l| l.ends_with("ESTABLISHED")).collect();
    assert!(!established.is_empty(), "no TCP connection between the ranks:\n{}", job.output);
    let loopback = |a: &str| a.starts_with("127.") || a.starts_with("[::1]") || a.starts_with("[::ffff:127.");
    for line in &established {
        let addrs: Vec<&str> = line.split(": tcp ").nth(1).unwrap_or("").split(" -> ").collect();
        assert!(addrs.len() == 2 && addrs.iter().all(|a| loopback(a)), "a connection off the loopback: {line}");
    }
    let _ = std::fs::remove_dir_all(&job.dir);
}
