//! The raw MPI calls of the [`Communicator`](super::Communicator): non-blocking collectives
//! (`MPI_Iallreduce`, `MPI_Ibcast`, `MPI_Ibarrier`) waited on with `MPI_Test` up to a
//! deadline, and MPI's error codes turned into [`Error`]s with MPI's own text.
//!
//! rsmpi's collectives ignore MPI's return codes and block without limit, so a rank that died
//! or stalled would hang the others; these calls return `DeadlineExceeded` instead. Their
//! buffers are owned by the caller's [`Staging`], which leaks them when a call does not
//! complete: MPI may still write into them later (another process may copy into them
//! directly over shared memory), so they must never be freed or reused.

use std::ffi::{c_char, c_int, c_void};
use std::time::{Duration, Instant};

use mpi::ffi;

use crate::error::{Code, Error, Result};

/// The elements the collectives carry, with their MPI datatype.
pub(super) trait Element: bytemuck::Pod {
    /// The MPI datatype.
    fn datatype() -> ffi::MPI_Datatype;
}

impl Element for f32 {
    fn datatype() -> ffi::MPI_Datatype {
        // SAFETY: reads an immutable handle that MPI_Init set up.
        unsafe { ffi::RSMPI_FLOAT }
    }
}

impl Element for u64 {
    fn datatype() -> ffi::MPI_Datatype {
        // SAFETY: as above.
        unsafe { ffi::RSMPI_UINT64_T }
    }
}

impl Element for u8 {
    fn datatype() -> ffi::MPI_Datatype {
        // SAFETY: as above.
        unsafe { ffi::RSMPI_UINT8_T }
    }
}

/// A reduction.
#[derive(Clone, Copy, Debug)]
pub(super) enum Reduce {
    Sum,
    Max,
}

impl Reduce {
    fn op(self) -> ffi::MPI_Op {
        // SAFETY: reads immutable handles that MPI_Init set up.
        unsafe {
            match self {
                Reduce::Sum => ffi::RSMPI_SUM,
                Reduce::Max => ffi::RSMPI_MAX,
            }
        }
    }
}

/// The send and receive buffers of the collectives, 8-byte aligned, kept between calls so
/// that a training step allocates nothing. A collective that does not complete leaks them.
#[derive(Debug, Default)]
pub(super) struct Staging {
    send: Vec<u64>,
    recv: Vec<u64>,
}

impl Staging {
    /// Makes both buffers hold at least `bytes` bytes.
    fn reserve(&mut self, bytes: usize) {
        let words = bytes.div_ceil(8);
        if self.send.len() < words {
            self.send.resize(words, 0);
            self.recv.resize(words, 0);
        }
    }

    /// Leaks both buffers (see the module's doc) and leaves empty ones.
    fn leak(&mut self) {
        std::mem::forget(std::mem::take(&mut self.send));
        std::mem::forget(std::mem::take(&mut self.recv));
    }
}

/// What a collective needs to know of its communicator, for its calls and its messages.
pub(super) struct Ctx<'a> {
    pub comm: ffi::MPI_Comm,
    pub rank: usize,
    pub size: usize,
    pub timeout: Duration,
    pub staging: &'a mut Staging,
}

/// MPI's text for an error code.
pub(super) fn error_string(code: c_int) -> String {
    let mut text = vec![0 as c_char; ffi::MPI_MAX_ERROR_STRING as usize + 1];
    let mut len: c_int = 0;
    // SAFETY: the buffer holds MPI_MAX_ERROR_STRING characters, as MPI_Error_string requires.
    let rc = unsafe { ffi::MPI_Error_string(code, text.as_mut_ptr(), &mut len) };
    if rc != ffi::MPI_SUCCESS as c_int {
        return format!("MPI error code {code}");
    }
    let bytes: Vec<u8> = text[..len.clamp(0, text.len() as c_int) as usize].iter().map(|&c| c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

impl Ctx<'_> {
    /// An `Unavailable` error for MPI's `code` from `call`.
    fn failed(&self, call: &str, code: c_int) -> Error {
        Error::new(
            Code::Unavailable,
            format!("{call} failed on rank {} of {}: {}", self.rank, self.size, error_string(code)),
        )
    }

    fn check(&self, call: &str, code: c_int) -> Result<()> {
        if code == ffi::MPI_SUCCESS as c_int {
            Ok(())
        } else {
            Err(self.failed(call, code))
        }
    }

    /// Waits for `request` up to the deadline, testing it in a loop: spinning (with yields)
    /// for the first milliseconds, then sleeping between tests so that a long wait for a
    /// slow rank costs little CPU.
    fn wait(&mut self, call: &str, mut request: ffi::MPI_Request) -> Result<()> {
        let start = Instant::now();
        let mut done: c_int = 0;
        loop {
            // SAFETY: `request` is an active request of this process; the status is ignored.
            let rc = unsafe { ffi::MPI_Test(&mut request, &mut done, ffi::RSMPI_STATUS_IGNORE) };
            if rc != ffi::MPI_SUCCESS as c_int {
                self.staging.leak();
                return Err(self.failed(call, rc));
            }
            if done != 0 {
                return Ok(());
            }
            let waited = start.elapsed();
            if waited > self.timeout {
                self.staging.leak();
                return Err(Error::new(
                    Code::DeadlineExceeded,
                    format!(
                        "{call} on rank {} of {} did not complete within {:.1} s: another rank has died, \
                         stalled or left the step; this communicator can no longer be used",
                        self.rank,
                        self.size,
                        self.timeout.as_secs_f64()
                    ),
                ));
            }
            if waited < Duration::from_millis(2) {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }

    /// `MPI_Allreduce` of `data` in place, through the staging buffers.
    pub(super) fn all_reduce<T: Element>(&mut self, data: &mut [T], reduce: Reduce) -> Result<()> {
        let bytes = std::mem::size_of_val(data);
        let count = count_of(data.len(), "MPI_Allreduce")?;
        self.staging.reserve(bytes);
        elements_mut::<T>(&mut self.staging.send, data.len())?.copy_from_slice(data);
        let send_ptr = self.staging.send.as_ptr() as *const c_void;
        let recv_ptr = self.staging.recv.as_mut_ptr() as *mut c_void;
        // SAFETY: a null handle, filled in by the call.
        let mut request = unsafe { ffi::RSMPI_REQUEST_NULL };
        // SAFETY: both buffers hold `count` elements of T and stay alive until the request
        // completes (or are leaked if it does not).
        let rc = unsafe {
            ffi::MPI_Iallreduce(send_ptr, recv_ptr, count, T::datatype(), reduce.op(), self.comm, &mut request)
        };
        self.check("MPI_Iallreduce", rc)?;
        self.wait("MPI_Allreduce", request)?;
        data.copy_from_slice(elements_mut::<T>(&mut self.staging.recv, data.len())?);
        Ok(())
    }

    /// `MPI_Bcast` of `data` from rank 0, through the staging buffers.
    pub(super) fn broadcast(&mut self, data: &mut [u8]) -> Result<()> {
        let count = count_of(data.len(), "MPI_Bcast")?;
        self.staging.reserve(data.len());
        elements_mut::<u8>(&mut self.staging.recv, data.len())?.copy_from_slice(data);
        let ptr = self.staging.recv.as_mut_ptr() as *mut c_void;
        // SAFETY: a null handle, filled in by the call.
        let mut request = unsafe { ffi::RSMPI_REQUEST_NULL };
        // SAFETY: the buffer holds `count` bytes and outlives the request (or is leaked).
        let rc = unsafe { ffi::MPI_Ibcast(ptr, count, u8::datatype(), 0, self.comm, &mut request) };
        self.check("MPI_Ibcast", rc)?;
        self.wait("MPI_Bcast", request)?;
        data.copy_from_slice(elements_mut::<u8>(&mut self.staging.recv, data.len())?);
        Ok(())
    }

    /// `MPI_Barrier`.
    pub(super) fn barrier(&mut self) -> Result<()> {
        // SAFETY: a null handle, filled in by the call.
        let mut request = unsafe { ffi::RSMPI_REQUEST_NULL };
        // SAFETY: no buffers.
        let rc = unsafe { ffi::MPI_Ibarrier(self.comm, &mut request) };
        self.check("MPI_Ibarrier", rc)?;
        self.wait("MPI_Barrier", request)
    }
}

/// The first `n` elements of type T of an 8-byte aligned buffer.
fn elements_mut<T: Element>(words: &mut [u64], n: usize) -> Result<&mut [T]> {
    let bytes: &mut [u8] = bytemuck::cast_slice_mut(words);
    let part = bytes
        .get_mut(..n * std::mem::size_of::<T>())
        .ok_or_else(|| Error::internal("an MPI staging buffer is smaller than its message"))?;
    bytemuck::try_cast_slice_mut(part)
        .map_err(|e| Error::internal(format!("an MPI staging buffer does not fit its element type: {e}")))
}

/// MPI counts elements in a C `int`.
fn count_of(len: usize, call: &str) -> Result<c_int> {
    c_int::try_from(len).map_err(|_| {
        Error::unimplemented(format!("{call} of {len} elements: MPI counts are C ints, at most {}", c_int::MAX))
    })
}

/// Makes MPI return error codes on `comm` instead of aborting the job, so that they become
/// [`Error`]s.
pub(super) fn errors_return(comm: ffi::MPI_Comm) -> Result<()> {
    // SAFETY: `comm` is a valid communicator; ERRORS_RETURN is a predefined handler.
    let rc = unsafe { ffi::MPI_Comm_set_errhandler(comm, ffi::RSMPI_ERRORS_RETURN) };
    if rc == ffi::MPI_SUCCESS as c_int {
        Ok(())
    } else {
        Err(Error::new(Code::Unavailable, format!("MPI_Comm_set_errhandler failed: {}", error_string(rc))))
    }
}
