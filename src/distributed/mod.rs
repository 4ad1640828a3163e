//! Data-parallel training over MPI (cargo feature `mpi`).
//!
//! Every rank of an MPI job (`mpirun -np N program`) builds the same graph, runs it on its
//! shard of each batch, and applies the same update, computed from the gradients averaged
//! over the ranks, so the replicas stay identical:
//!
//! - [`Communicator`]: MPI initialized for this process, its rank and the job's size, and
//!   the collectives (all-reduce, broadcast from rank 0, barrier). Each collective fails with
//!   a typed error (`DeadlineExceeded` after [`Communicator::timeout`], `Unavailable` when
//!   MPI reports an error) instead of hanging when a rank dies or stalls.
//! - [`BroadcastVariables`]: rank 0's initial values copied to every rank.
//! - [`SyncReplicasOptimizer`]: any [`Optimizer`](crate::train::Optimizer) whose step
//!   all-reduces the gradients (one flat float32 buffer, one `MPI_Allreduce`, averaged)
//!   before the update; the all-reduce works on host copies of the gradients.
//! - [`ChiefSaver`]: checkpoints written by rank 0 only; any rank restores.
//!
//! ```no_run
//! use wgflow::distributed::{BroadcastVariables, Communicator, SyncReplicasOptimizer};
//! use wgflow::train::Optimizer;
//! use wgflow::{ConfigProto, DType, Graph, Session, Shape, Tensor};
//!
//! # fn main() -> wgflow::Result<()> {
//! let comm = Communicator::init()?;
//! let g = Graph::new();
//! let x = g.placeholder(DType::F32, Shape::partial(&[None, Some(2)]))?;
//! let w = g.variable(Tensor::from_f32(&[2, 1], vec![0.5, -0.5])?, "w")?;
//! let loss = g.reduce_mean(g.square(g.matmul(&x, &w, false, false)?)?, None, false)?;
//! let mut step = SyncReplicasOptimizer::new(Optimizer::gradient_descent(0.1)).minimize(&loss, None, None)?;
//! let broadcast = BroadcastVariables::new(&g)?;
//!
//! let sess = Session::new(&g, ConfigProto::cpu_only())?;
//! sess.run(&[g.global_variables_initializer()?])?;
//! broadcast.run(&sess, &comm)?;
//! // This rank's shard of the batch.
//! let shard = Tensor::from_f32(&[1, 2], vec![comm.rank() as f32, 1.0])?;
//! let done = step.run(&sess, &comm, &[(&x, shard)], &[(&loss).into()])?;
//! println!("rank {}: loss {:?}, all-reduce {:?}", comm.rank(), done.fetched[0], done.all_reduce);
//! # Ok(())
//! # }
//! ```
//!
//! Run it with `mpirun -np 2 target/release/examples/NAME` (as root, OpenMPI also wants
//! `--allow-run-as-root`). The README's section "Several devices and machines" tells how
//! it scales past one machine.

mod broadcast;
mod chief_saver;
mod communicator;
mod mpi_calls;
mod sync_replicas;

pub use broadcast::BroadcastVariables;
pub use chief_saver::ChiefSaver;
pub use communicator::{Communicator, DEFAULT_TIMEOUT};
pub use sync_replicas::{SyncReplicasOptimizer, SyncStep, SyncTrainStep};
