//! What each MPI rank runs, in the test binary started again by `mpirun` (see `mpi.rs`).
//!
//! The environment says what to do: `WGFLOW_MPI_MODE` is `train` (20 synchronous steps,
//! then a checkpoint written by rank 0 and restored on every rank), `die` (rank 1 exits at
//! step 5) or `stall` (rank 1 sleeps at step 5); `WGFLOW_MPI_OUT` is the directory for the
//! variables' bytes (`rank-R.weights`, `rank-R.all`) and the checkpoint;
//! `WGFLOW_MPI_TIMEOUT_SECS` sets the collectives' deadline.

use std::error::Error;
use std::path::Path;
use std::time::Duration;

use wgflow::distributed::{BroadcastVariables, ChiefSaver, Communicator, SyncReplicasOptimizer};
use wgflow::train::Saver;
use wgflow::{ConfigProto, Session, Tensor};

use super::model::{self, STEPS};

/// Runs this rank; on an error, prints it and aborts the whole job (`MPI_Abort`), so that
/// the other ranks do not wait for this one.
pub fn run() -> Result<(), Box<dyn Error>> {
    let mode = std::env::var("WGFLOW_MPI_MODE")?;
    let out = std::path::PathBuf::from(std::env::var("WGFLOW_MPI_OUT")?);
    let mut comm = Communicator::init()?;
    if let Ok(secs) = std::env::var("WGFLOW_MPI_TIMEOUT_SECS") {
        comm.set_timeout(Duration::from_secs_f64(secs.parse()?));
    }
    if let Err(e) = train(&comm, &mode, &out) {
        eprintln!("rank {} of {} failed: {e}", comm.rank(), comm.size());
        comm.abort(2);
    }
    Ok(())
}

fn train(comm: &Communicator, mode: &str, out: &Path) -> Result<(), Box<dyn Error>> {
    let (rank, size) = (comm.rank(), comm.size());
    // A different start on every rank: only the broadcast makes them agree.
    let m = model::build(1 + 7 * rank as u64)?;
    let mut step = SyncReplicasOptimizer::new(model::optimizer()).minimize(&m.loss, Some(&m.step), None)?;
    let broadcast = BroadcastVariables::new(&m.graph)?;
    let mut saver = ChiefSaver::new(Saver::new(&m.graph)?, comm);
    let sess = Session::new(&m.graph, ConfigProto::cpu_only())?;
    sess.run(&[m.graph.global_variables_initializer()?])?;
    let bytes = broadcast.run(&sess, comm)?;
    println!("rank {rank}: broadcast {bytes} bytes; all-reduce {} bytes per step", step.bytes_per_step());
    for i in 0..STEPS {
        if i == 5 && rank == 1 {
            match mode {
                "die" => {
                    println!("rank 1: exiting at step 5 (test)");
                    std::process::exit(3);
                }
                "stall" => {
                    println!("rank 1: stalling at step 5 (test)");
                    std::thread::sleep(Duration::from_secs(120));
                }
                _ => {}
            }
        }
        let (x, y) = model::batch(i, model::shard(rank, size))?;
        let done = step.run(&sess, comm, &[(&m.x, x), (&m.y, y)], &[(&m.loss).into()])?;
        let loss = done.fetched.first().cloned().flatten().ok_or("no loss")?.scalar_f32()?;
        println!("rank {rank}: step {i} loss {loss:.6} all-reduce {:?}", done.all_reduce);
    }

    let weights: Vec<&wgflow::Output> = m.weights.iter().map(|v| v.tensor()).collect();
    let values: Vec<Tensor> = sess.run(&weights)?.into_iter().flatten().collect();
    std::fs::write(out.join(format!("rank-{rank}.weights")), model::weight_bytes(&values)?)?;
    let all = all_variables(&sess)?;
    std::fs::write(out.join(format!("rank-{rank}.all")), &all)?;

    // Rank 0 alone writes the checkpoint; after a barrier, every rank restores it into a new
    // session and finds its own values.
    let saved = saver.save(&sess, out.join("model.ckpt"), Some(STEPS as u64))?;
    println!("rank {rank}: saved {saved:?}");
    comm.barrier()?;
    let path = out.join(format!("model.ckpt-{STEPS}"));
    let fresh = Session::new(&m.graph, ConfigProto::cpu_only())?;
    saver.restore(&fresh, &path)?;
    if all_variables(&fresh)? != all {
        return Err("the restored checkpoint differs from this rank's variables".into());
    }
    println!("rank {rank}: restored {} with the same values", path.display());
    report_sockets(rank);
    Ok(())
}

/// Every global variable's value (slots and global_step included) as little-endian bytes.
fn all_variables(sess: &Session) -> Result<Vec<u8>, Box<dyn Error>> {
    let vars = sess.graph().global_variables();
    let fetches: Vec<&wgflow::Output> = vars.iter().map(|v| v.tensor()).collect();
    let mut out = Vec::new();
    for v in sess.run(&fetches)?.into_iter().flatten() {
        match &v {
            Tensor::F32(a) => out.extend(a.iter().flat_map(|x| x.to_le_bytes())),
            Tensor::I32(a) => out.extend(a.iter().flat_map(|x| x.to_le_bytes())),
            other => return Err(format!("unexpected variable dtype {}", other.dtype()).into()),
        }
    }
    Ok(out)
}

/// Prints the MCA settings this rank got from mpirun and the TCP connections it holds, as
/// `rank R: tcp LOCAL -> REMOTE STATE` lines (addresses from /proc/net/tcp{,6}, matched to
/// this process's socket descriptors), for the loopback test.
fn report_sockets(rank: usize) {
    for (k, v) in std::env::vars().filter(|(k, _)| k.starts_with("OMPI_MCA_btl") || k.starts_with("OMPI_MCA_oob")) {
        println!("rank {rank}: env {k}={v}");
    }
    let inodes: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter_map(|l| l.to_string_lossy().strip_prefix("socket:[")?.strip_suffix(']').map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for fields in text.lines().skip(1).map(|l| l.split_whitespace().collect::<Vec<_>>()) {
            if fields.len() > 9 && inodes.iter().any(|i| i == fields[9]) {
                let state = if fields[3] == "01" {
                    "ESTABLISHED"
                } else if fields[3] == "0A" {
                    "LISTEN"
                } else {
                    "OTHER"
                };
                println!("rank {rank}: tcp {} -> {} {state}", address(fields[1]), address(fields[2]));
            }
        }
    }
}

/// `0100007F:1F90` (or the 32-hex-digit IPv6 form) as `127.0.0.1:8080`.
fn address(hex: &str) -> String {
    let (ip, port) = hex.split_once(':').unwrap_or((hex, "0"));
    let port = u16::from_str_radix(port, 16).unwrap_or(0);
    let bytes: Vec<u8> = (0..ip.len() / 2).filter_map(|i| u8::from_str_radix(&ip[2 * i..2 * i + 2], 16).ok()).collect();
    // The kernel prints each 32-bit word in host (little-endian) order.
    let words: Vec<u8> = bytes.chunks(4).flat_map(|w| w.iter().rev().copied().collect::<Vec<_>>()).collect();
    match words.len() {
        4 => format!("{}:{port}", std::net::Ipv4Addr::new(words[0], words[1], words[2], words[3])),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&words);
            format!("[{}]:{port}", std::net::Ipv6Addr::from(a))
        }
        _ => format!("{hex}:?"),
    }
}
