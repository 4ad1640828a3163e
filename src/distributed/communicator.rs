//! [`Communicator`]: this process's place among the ranks of an MPI job, and the collectives
//! that data-parallel training needs, each with a deadline and a typed error.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use mpi::topology::{Communicator as _, SimpleCommunicator};
use mpi::traits::AsRaw;

use super::mpi_calls::{errors_return, Ctx, Reduce, Staging};
use crate::error::{Code, Error, Result};

/// How long a collective waits for the other ranks unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// MPI, initialized for this process: its rank, the number of ranks, and the collectives
/// (all-reduce, broadcast from rank 0, barrier) on a private duplicate of `MPI_COMM_WORLD`.
///
/// Every collective waits at most [`Communicator::timeout`] for the other ranks, then fails
/// with `DeadlineExceeded`; an error MPI reports is `Unavailable`, with MPI's text. Either
/// leaves the communicator broken: later collectives fail at once (`FailedPrecondition`),
/// and dropping it calls `MPI_Abort`, which ends every rank of the job, rather than
/// `MPI_Finalize`, which would wait forever for the ranks stuck in the failed collective.
/// Dropping it during a panic aborts too. A healthy communicator finalizes MPI when dropped:
/// keep it alive until the end of `main`.
///
/// There is one per process: a second [`Communicator::init`] fails with
/// `FailedPrecondition`.
pub struct Communicator {
    /// Dropped before `universe`, which finalizes MPI.
    comm: SimpleCommunicator,
    universe: mpi::environment::Universe,
    rank: usize,
    size: usize,
    local_rank: usize,
    local_size: usize,
    timeout: Duration,
    staging: RefCell<Staging>,
    broken: Cell<bool>,
}

impl std::fmt::Debug for Communicator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Communicator")
            .field("rank", &self.rank)
            .field("size", &self.size)
            .field("local_rank", &self.local_rank)
            .field("timeout", &self.timeout)
            .field("broken", &self.broken.get())
            .finish()
    }
}

impl Communicator {
    /// Initializes MPI (`MPI_Init`) and joins the job's ranks: those `mpirun` started, or a
    /// job of one rank when run without it. Fails with `FailedPrecondition` if MPI is already
    /// initialized in this process.
    pub fn init() -> Result<Communicator> {
        let universe = mpi::initialize().ok_or_else(|| {
            Error::failed_precondition("MPI is already initialized in this process: make one Communicator only")
        })?;
        let comm = universe.world().duplicate();
        errors_return(comm.as_raw())?;
        // The ranks that share this host's memory, for the rank's place on its host.
        let host = comm.split_shared(comm.rank());
        let ids = [comm.rank(), comm.size(), host.rank(), host.size()].map(usize::try_from);
        let [Ok(rank), Ok(size), Ok(local_rank), Ok(local_size)] = ids else {
            return Err(Error::internal("MPI gave a negative rank or size"));
        };
        drop(host);
        Ok(Communicator {
            comm,
            universe,
            rank,
            size,
            local_rank,
            local_size,
            timeout: DEFAULT_TIMEOUT,
            staging: RefCell::default(),
            broken: Cell::new(false),
        })
    }

    /// This process's rank, `0..size`.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of ranks.
    pub fn size(&self) -> usize {
        self.size
    }

    /// This rank's place among the ranks on its host, `0..local_size` (from
    /// `MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)`): the index of the GPU it should use when
    /// a host runs one rank per GPU.
    pub fn local_rank(&self) -> usize {
        self.local_rank
    }

    /// The number of ranks on this host.
    pub fn local_size(&self) -> usize {
        self.local_size
    }

    /// Whether this is rank 0, TF's chief: the rank that broadcasts the variables and writes
    /// the checkpoints.
    pub fn is_root(&self) -> bool {
        self.rank == 0
    }

    /// How long a collective waits for the other ranks ([`DEFAULT_TIMEOUT`] unless set).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sets how long a collective waits for the other ranks before it fails. It bounds the
    /// skew between ranks too: a rank that compiles its kernels for a minute while the others
    /// wait at their first all-reduce needs a timeout above that.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The name of this rank's host (`MPI_Get_processor_name`).
    pub fn host_name(&self) -> String {
        let name = mpi::environment::processor_name().unwrap_or_else(|_| "unknown host".to_string());
        name.trim_end_matches('\0').to_string()
    }

    /// MPI's version and vendor (`MPI_Get_library_version`).
    pub fn library_version(&self) -> String {
        let version = mpi::environment::library_version().unwrap_or_else(|_| "unknown MPI library".to_string());
        version.trim_end_matches(['\0', '\n', ' ']).to_string()
    }

    /// Whether an earlier collective failed or timed out.
    pub fn is_broken(&self) -> bool {
        self.broken.get()
    }

    /// Sums `data` element-wise over the ranks, in place (`MPI_Allreduce` with `MPI_SUM`):
    /// every rank gets the same sums. Every rank must call it with the same length.
    pub fn all_reduce_sum(&self, data: &mut [f32]) -> Result<()> {
        self.collective(|ctx| ctx.all_reduce(data, Reduce::Sum))
    }

    /// The element-wise maximum of `data` over the ranks, in place.
    pub fn all_reduce_max(&self, data: &mut [u64]) -> Result<()> {
        self.collective(|ctx| ctx.all_reduce(data, Reduce::Max))
    }

    /// Replaces `data` with rank 0's bytes (`MPI_Bcast` from rank 0). Every rank must call it
    /// with the same length.
    pub fn broadcast(&self, data: &mut [u8]) -> Result<()> {
        self.collective(|ctx| ctx.broadcast(data))
    }

    /// Waits until every rank has called it (`MPI_Barrier`).
    pub fn barrier(&self) -> Result<()> {
        self.collective(|ctx| ctx.barrier())
    }

    /// Ends every rank of the job with `code` (`MPI_Abort`): what a rank does on an error
    /// the others cannot know of, so that they do not wait for it at their next collective.
    pub fn abort(&self, code: i32) -> ! {
        self.comm.abort(code)
    }

    fn collective(&self, call: impl FnOnce(&mut Ctx<'_>) -> Result<()>) -> Result<()> {
        if self.broken.get() {
            return Err(Error::failed_precondition(format!(
                "the MPI communicator of rank {} is broken by an earlier failed collective",
                self.rank
            )));
        }
        let mut staging = self
            .staging
            .try_borrow_mut()
            .map_err(|_| Error::new(Code::Internal, "a collective called during another one"))?;
        let mut ctx = Ctx {
            comm: self.comm.as_raw(),
            rank: self.rank,
            size: self.size,
            timeout: self.timeout,
            staging: &mut staging,
        };
        let out = call(&mut ctx);
        if out.is_err() {
            self.broken.set(true);
        }
        out
    }
}

impl Drop for Communicator {
    fn drop(&mut self) {
        if self.broken.get() || std::thread::panicking() {
            log::error!("rank {} of {}: aborting the MPI job after a failure", self.rank, self.size);
            self.universe.world().abort(1);
        }
    }
}
