//! [`ChiefSaver`]: a [`Saver`] whose saves happen on rank 0 only, as TF's chief worker alone
//! writes checkpoints; every rank can restore.

use std::path::{Path, PathBuf};

use super::Communicator;
use crate::error::Result;
use crate::session::Session;
use crate::train::Saver;

/// Wraps a [`Saver`] so that only rank 0 writes checkpoints. The replicas hold the same
/// values (see [`SyncReplicasOptimizer`](super::SyncReplicasOptimizer)), so one copy is
/// enough, and ranks that share a directory (one machine, or a shared file system) do not
/// write the same files at once.
#[derive(Debug)]
pub struct ChiefSaver {
    saver: Saver,
    rank: usize,
}

impl ChiefSaver {
    /// Wraps `saver` for the rank of `comm`.
    pub fn new(saver: Saver, comm: &Communicator) -> ChiefSaver {
        ChiefSaver { saver, rank: comm.rank() }
    }

    /// Whether this rank writes the checkpoints (rank 0).
    pub fn is_chief(&self) -> bool {
        self.rank == 0
    }

    /// [`Saver::save`] on rank 0, which returns `Some(path)`; the other ranks do nothing and
    /// return `None`. It does not communicate: a rank that is to read the checkpoint right
    /// after it is written waits for rank 0 first (a [`Communicator::barrier`] after the
    /// save, on every rank).
    pub fn save(
        &mut self,
        session: &Session,
        prefix: impl AsRef<Path>,
        global_step: Option<u64>,
    ) -> Result<Option<PathBuf>> {
        if self.is_chief() {
            self.saver.save(session, prefix, global_step).map(Some)
        } else {
            Ok(None)
        }
    }

    /// [`Saver::restore`], on any rank.
    pub fn restore(&self, session: &Session, path: impl AsRef<Path>) -> Result<()> {
        self.saver.restore(session, path)
    }

    /// The wrapped saver.
    pub fn saver(&self) -> &Saver {
        &self.saver
    }

    /// The wrapped saver, to change its options.
    pub fn saver_mut(&mut self) -> &mut Saver {
        &mut self.saver
    }
}
