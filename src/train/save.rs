//! Writing a checkpoint ([`Saver::save`]): the values fetched in one run, the safetensors
//! file and the directory's index written atomically, the stale temporaries of killed saves
//! removed, and the oldest checkpoints beyond the saver's limit deleted.

use std::fs;
use std::path::{Path, PathBuf};

use super::checkpoint_files::{
    existing_checkpoints, io_error, parent_dir, remove_stale_temporaries, same_path, write_atomically,
};
use super::checkpoint_index::{get_checkpoint_state, index_text, lies_in, INDEX_FILE};
use super::saver::Saver;
use super::tensor_codec::Blob;
use crate::error::{Error, Result};
use crate::graph::Output;
use crate::session::Session;

/// The metadata key that records who wrote a checkpoint, and its value.
const FORMAT_KEY: &str = "format";
const FORMAT: &str = "wgflow";

impl Saver {
    /// Saves the variables' values in `session` to `prefix-STEP` (or to `prefix` itself
    /// without a step) and returns that path.
    ///
    /// The values are fetched with one run. The file is written to a temporary file in the
    /// same directory, synced and renamed, so a save never leaves a torn checkpoint. Then the
    /// directory's `checkpoint` index is rewritten (also atomically) and the oldest
    /// checkpoints beyond [`Saver::max_to_keep`] are deleted.
    ///
    /// Before writing, a save removes the temporaries (`.model.ckpt-N.tmp-PID-K`) that
    /// earlier saves of this prefix, and of the index, left in the directory when they were
    /// killed: a temporary of this process that no write of it holds now, or one of a process
    /// that is no longer alive (known on Linux, through `/proc`) and owned by this user. A
    /// temporary of another live process stays, as it may be being written right now. The
    /// rule trusts the process ids of one machine: a directory shared by several machines
    /// should get its saves from one of them.
    ///
    /// The first save of a saver into a directory takes over the checkpoints that the
    /// directory's index lists and that still exist, as older than its own (as TF's
    /// `CheckpointManager` does through `recover_last_checkpoints`), so that a saver built
    /// after a restart keeps deleting the oldest of them. [`Saver::recover_last_checkpoints`]
    /// turns this off.
    ///
    /// Errors: the session's own (`FailedPrecondition` for an uninitialized variable),
    /// `NotFound` if the directory does not exist, I/O errors with the closest code; an index
    /// to take over that cannot be read has its I/O error's code, and one that is not a valid
    /// index is `DataLoss`; nothing is written then.
    pub fn save(&mut self, session: &Session, prefix: impl AsRef<Path>, global_step: Option<u64>) -> Result<PathBuf> {
        self.check_session(session)?;
        let prefix = prefix.as_ref();
        let path = checkpoint_path(prefix, global_step)?;
        let dir = parent_dir(&path);
        if !dir.is_dir() {
            return Err(Error::not_found(format!(
                "Parent directory of {} doesn't exist, can't save.",
                prefix.display()
            )));
        }
        let dir_abs = std::path::absolute(&dir).map_err(|e| io_error(&format!("resolving {}", dir.display()), &e))?;

        let prefix_name = prefix.file_name().and_then(|n| n.to_str());
        remove_stale_temporaries(&dir, |file| {
            file == INDEX_FILE || prefix_name.is_some_and(|prefix| is_checkpoint_of(prefix, file))
        });

        let first_here = !self.known_dirs.contains(&dir_abs);
        let mut kept =
            if first_here && self.adopt_index { self.adopted(&dir, &dir_abs)? } else { self.last_checkpoints.clone() };
        kept.retain(|p| !same_path(p, &path));
        kept.push(path.clone());
        let mut removed = Vec::new();
        if let Some(max) = self.max_to_keep {
            while kept.len() > max {
                removed.push(kept.remove(0));
            }
        }
        let index = index_text(&dir, &path, &kept)?;

        let fetches: Vec<&Output> = self.entries.iter().map(|e| e.var.tensor()).collect();
        let values = session.run(&fetches)?;
        let mut blobs = Vec::with_capacity(values.len());
        for (e, value) in self.entries.iter().zip(values) {
            let value =
                value.ok_or_else(|| Error::internal(format!("fetching variable {} yielded no value", e.name)))?;
            blobs.push((e.name.clone(), Blob::encode(&e.name, &value)?));
        }
        let metadata = Some([(FORMAT_KEY.to_string(), FORMAT.to_string())].into_iter().collect());
        let bytes = safetensors::serialize(blobs, metadata)
            .map_err(|e| Error::internal(format!("serializing checkpoint {}: {e}", path.display())))?;

        write_atomically(&path, &bytes)?;
        write_atomically(&dir.join(INDEX_FILE), index.as_bytes())?;
        self.last_checkpoints = kept;
        if first_here {
            self.known_dirs.push(dir_abs);
        }
        for old in removed {
            match fs::remove_file(&old) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => log::warn!("could not delete old checkpoint {}: {e}", old.display()),
            }
        }
        Ok(path)
    }

    /// This saver's checkpoints after the ones of `dir`'s index that exist and that it does
    /// not hold yet; the index's paths in `dir` are given as `dir` joined with their names.
    fn adopted(&self, dir: &Path, dir_abs: &Path) -> Result<Vec<PathBuf>> {
        let Some(state) = get_checkpoint_state(dir).map_err(|e| {
            Error::new(
                e.code,
                format!(
                    "{}; a save takes over the checkpoints of its directory's index: repair or remove the index, \
                     or call Saver::recover_last_checkpoints to choose the checkpoints to keep",
                    e.message
                ),
            )
        })?
        else {
            return Ok(self.last_checkpoints.clone());
        };
        let listed: Vec<PathBuf> = state
            .checkpoints()
            .into_iter()
            .map(|p| match p.file_name() {
                Some(name) if lies_in(&p, dir_abs) => dir.join(name),
                _ => p,
            })
            .collect();
        let mut kept = existing_checkpoints(&listed)?;
        kept.retain(|p| !self.last_checkpoints.iter().any(|q| same_path(p, q)));
        if !kept.is_empty() {
            log::info!("{} checkpoint(s) of the index in {} kept with this saver's", kept.len(), dir.display());
        }
        kept.extend(self.last_checkpoints.iter().cloned());
        Ok(kept)
    }
}

/// `prefix-STEP`, or `prefix` without a step.
fn checkpoint_path(prefix: &Path, step: Option<u64>) -> Result<PathBuf> {
    if prefix.file_name().is_none() {
        return Err(Error::invalid_argument(format!(
            "Checkpoint prefix {:?} names no file (it needs a last component, as in dir/model.ckpt)",
            prefix.display().to_string()
        )));
    }
    let mut s = prefix.as_os_str().to_owned();
    if let Some(step) = step {
        s.push(format!("-{step}"));
    }
    let path = PathBuf::from(s);
    if path.file_name() == Some(INDEX_FILE.as_ref()) {
        return Err(Error::invalid_argument(format!(
            "A checkpoint cannot be called {INDEX_FILE:?}: that name is the directory's checkpoint index"
        )));
    }
    Ok(path)
}

/// Whether `file` is a checkpoint name of `prefix`: `prefix` or `prefix-STEP`.
fn is_checkpoint_of(prefix: &str, file: &str) -> bool {
    file.strip_prefix(prefix).is_some_and(|rest| {
        rest.is_empty()
            || rest.strip_prefix('-').is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
    })
}
