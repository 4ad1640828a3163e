//! The digits CNN of `train_digits`, trained data-parallel over MPI ranks (feature `mpi`):
//!
//! ```text
//! cargo build --release --features mpi --example train_digits_mpi
//! mpirun -np 2 --oversubscribe target/release/examples/train_digits_mpi [--cpu]
//! ```
//!
//! (as root, add `--allow-run-as-root`, or set OMPI_ALLOW_RUN_AS_ROOT=1 and
//! OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1). Every rank builds the same graph and session (on its
//! GPU, or the CPU with `--cpu` or without a GPU); rank 0's initial variables are broadcast;
//! each step of 64 images gives every rank its share (every N-th image of the batch), the
//! gradients are averaged over the ranks with one all-reduce, and every rank applies the
//! same Adam update. Each rank prints its loss per epoch and the time its all-reduces took;
//! at the end every rank tests the model (the same on every rank), rank 0 writes the
//! checkpoint, every rank restores it, and a last loop times the all-reduce alone.

#[path = "common/digits.rs"]
mod digits;

use std::time::{Duration, Instant};

use digits::{accuracy, BATCH, EPOCHS};
use wgflow::distributed::{BroadcastVariables, ChiefSaver, Communicator, SyncReplicasOptimizer};
use wgflow::train::{Optimizer, Saver};
use wgflow::{ConfigProto, Session};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    wgflow::gpu::ensure_runtime_dir();
    env_logger::init();
    let comm = Communicator::init()?;
    if let Err(e) = run(&comm) {
        // The other ranks would wait for this one at their next all-reduce: end them all.
        eprintln!("rank {} of {} failed: {e}", comm.rank(), comm.size());
        comm.abort(1);
    }
    Ok(())
}

fn run(comm: &Communicator) -> Result<(), Box<dyn std::error::Error>> {
    let (rank, size) = (comm.rank(), comm.size());
    let (train, test) = digits::load()?;
    let m = digits::model()?;
    let mut step = SyncReplicasOptimizer::new(Optimizer::adam(0.01)).minimize(&m.loss, Some(&m.step), None)?;
    let broadcast = BroadcastVariables::new(&m.graph)?;
    let mut saver = ChiefSaver::new(Saver::new(&m.graph)?, comm);

    // One GPU per rank of a host: the rank's local index picks among the host's hardware
    // adapters (software ones such as lavapipe when there are none; WGFLOW_ADAPTER overrides).
    // On the CPU, the host's cores are shared among its ranks.
    let mut config = ConfigProto::default();
    let adapters = wgflow::gpu::adapters();
    let hardware: Vec<usize> = (0..adapters.len()).filter(|&i| !adapters[i].ends_with(", Cpu)")).collect();
    let choices = if hardware.is_empty() { (0..adapters.len()).collect() } else { hardware };
    if std::env::args().any(|a| a == "--cpu") || choices.is_empty() {
        config = ConfigProto::cpu_only();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        config.intra_op_parallelism_threads = (cores / comm.local_size()).max(1);
    } else if std::env::var_os("WGFLOW_ADAPTER").is_none() {
        config.gpu_options.adapter = Some(choices[comm.local_rank() % choices.len()].to_string());
    }
    let s = Session::new(&m.graph, config)?;
    println!(
        "rank {rank} of {size} (local rank {} on {}): training on {}",
        comm.local_rank(),
        comm.host_name(),
        s.device()
    );
    s.run(&[m.graph.global_variables_initializer()?])?;
    let sent = broadcast.run(&s, comm)?;
    if comm.is_root() {
        println!("{}", comm.library_version().lines().next().unwrap_or(""));
        println!(
            "broadcast {sent} bytes of variables; {} train / {} test images, batches of {BATCH} split over {size} ranks; \
             all-reduce of {} bytes per step",
            train.len(),
            test.len(),
            step.bytes_per_step()
        );
    }

    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut reduce_times = Vec::new();
    let (mut compute, mut apply) = (Duration::ZERO, Duration::ZERO);
    let start = Instant::now();
    for epoch in 0..EPOCHS {
        digits::shuffle(&mut order, epoch);
        let (mut loss_sum, mut steps, mut epoch_reduce) = (0.0, 0, Duration::ZERO);
        // Every rank sees the same batches; a batch smaller than the job is skipped by all.
        for chunk in order.chunks(BATCH).filter(|c| c.len() >= size) {
            let mine: Vec<usize> = chunk.iter().copied().skip(rank).step_by(size).collect();
            let (images, labels) = train.batch(&mine)?;
            let done = step.run(&s, comm, &[(&m.x, images), (&m.y, labels)], &[(&m.loss).into()])?;
            loss_sum += done.fetched.first().cloned().flatten().ok_or("no loss")?.scalar_f32()?;
            steps += 1;
            epoch_reduce += done.all_reduce;
            reduce_times.push(done.all_reduce);
            compute += done.compute;
            apply += done.apply;
        }
        println!(
            "rank {rank}: epoch {:>2} loss {:.4} (mean over {steps} steps), all-reduce {:.1} µs/step",
            epoch + 1,
            loss_sum / steps as f32,
            epoch_reduce.as_secs_f64() * 1e6 / steps as f64
        );
    }
    let total = start.elapsed();
    let n = reduce_times.len() as u32;
    reduce_times.sort();
    println!(
        "rank {rank}: {n} steps in {total:.2?}: gradients {:.0} µs/step, all-reduce {:.0} µs/step (median {:.0} µs, \
         waiting for the slower rank included), update {:.0} µs/step",
        (compute / n).as_secs_f64() * 1e6,
        (reduce_times.iter().sum::<Duration>() / n).as_secs_f64() * 1e6,
        reduce_times[reduce_times.len() / 2].as_secs_f64() * 1e6,
        (apply / n).as_secs_f64() * 1e6,
    );

    let acc = accuracy(&s, &m.x, &m.logits, &test)?;
    println!("rank {rank}: test accuracy {:.2}%", acc * 100.0);

    // Rank 0 alone writes the checkpoint; after the barrier every rank can read it.
    let dir = std::env::temp_dir().join("wgflow-train-digits-mpi");
    std::fs::create_dir_all(&dir)?;
    let global_step = s.eval(m.step.tensor())?.as_i32()?.sum();
    if let Some(path) = saver.save(&s, dir.join("model.ckpt"), Some(global_step as u64))? {
        println!("rank {rank}: saved {}", path.display());
    }
    comm.barrier()?;
    let fresh = Session::new(&m.graph, ConfigProto::cpu_only())?;
    saver.restore(&fresh, dir.join(format!("model.ckpt-{global_step}")))?;
    let restored = accuracy(&fresh, &m.x, &m.logits, &test)?;
    println!("rank {rank}: restored the checkpoint: test accuracy {:.2}%", restored * 100.0);

    time_all_reduce(comm, step.bytes_per_step() / 4)?;
    if acc < 0.95 || (restored - acc).abs() > 0.01 {
        return Err(format!(
            "test accuracy {:.2}% (restored {:.2}%): below 95% or not restored",
            acc * 100.0,
            restored * 100.0
        )
        .into());
    }
    Ok(())
}

/// The all-reduce alone: the ranks meet at a barrier, then sum a buffer of the gradients'
/// size 200 times, and one of 4 MiB (a model of a million parameters) 20 times; rank 0
/// prints the median and spread of one.
fn time_all_reduce(comm: &Communicator, floats: usize) -> wgflow::Result<()> {
    for (floats, reps) in [(floats, 200), (1 << 20, 20)] {
        let mut buf = vec![1.0f32; floats];
        comm.barrier()?;
        let mut times: Vec<Duration> = (0..reps)
            .map(|_| {
                let start = Instant::now();
                comm.all_reduce_sum(&mut buf).map(|_| start.elapsed())
            })
            .collect::<wgflow::Result<_>>()?;
        times.sort();
        if comm.is_root() {
            let us = |i: usize| times[i].as_secs_f64() * 1e6;
            println!(
                "all-reduce alone, {} ranks, {} bytes: median {:.1} µs, 10th percentile {:.1} µs, 90th {:.1} µs",
                comm.size(),
                floats * 4,
                us(reps / 2),
                us(reps / 10),
                us(reps * 9 / 10)
            );
        }
    }
    Ok(())
}
