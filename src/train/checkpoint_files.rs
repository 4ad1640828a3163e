//! The files of a checkpoint directory: writes through a temporary file and a rename, the
//! removal of temporaries that killed saves left behind, which listed checkpoints exist (and
//! whether two paths name the same one), and I/O errors with TF's codes.
//!
//! A temporary is named `.NAME.tmp-PID-K`, after the file `NAME` it becomes, the id `PID` of
//! the process writing it and `K`, a number unique within that process.
//!
//! # Which temporaries are stale
//!
//! [`remove_stale_temporaries`] removes a temporary only when no live writer can own it:
//! - its `PID` is this process and `K` is not in flight (no write of this process holds it
//!   now): a thread of this process that died in a write, or an earlier process with the same
//!   id (containers often run as the same pid after each restart);
//! - or its `PID` is another process that is not alive, and the file is owned by this
//!   process's user. Liveness is read from `/proc` (Linux); where `/proc` cannot tell (other
//!   systems, `/proc` not mounted) every other process counts as alive and its temporaries
//!   stay.
//!
//! A temporary of another live process is never touched, even an old one: it may be writing
//! it right now. The rule trusts process ids of one machine: in a directory shared by two
//! machines (or two pid namespaces), run savers from one of them only, or the other's
//! in-flight temporaries may look stale.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::error::{Code, Error, Result};

/// The next `K` of this process's temporaries.
static COUNTER: AtomicU64 = AtomicU64::new(0);
/// The `K`s of the temporaries this process is writing now.
static IN_FLIGHT: Mutex<BTreeSet<u64>> = Mutex::new(BTreeSet::new());

fn in_flight() -> MutexGuard<'static, BTreeSet<u64>> {
    // The set holds plain numbers: a panic elsewhere cannot leave it half-updated.
    IN_FLIGHT.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A `K` this process is writing: in [`IN_FLIGHT`] from before its file is created until
/// after the file is renamed or removed.
pub(super) struct InFlight(u64);

impl InFlight {
    pub(super) fn new() -> InFlight {
        let k = COUNTER.fetch_add(1, Ordering::Relaxed);
        in_flight().insert(k);
        InFlight(k)
    }

    pub(super) fn k(&self) -> u64 {
        self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        in_flight().remove(&self.0);
    }
}

/// The directory a file lies in (`.` for a bare file name).
pub(super) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The name of the temporary that becomes the file `name`.
pub(super) fn temporary_name(name: &std::ffi::OsStr, pid: u32, k: u64) -> OsString {
    let mut tmp = OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".tmp-{pid}-{k}"));
    tmp
}

/// The target name, `PID` and `K` of a temporary's file name; `None` for other names.
pub(super) fn parse_temporary(name: &str) -> Option<(&str, u32, u64)> {
    let rest = name.strip_prefix('.')?;
    let at = rest.rfind(".tmp-")?;
    let (pid, k) = rest[at + ".tmp-".len()..].split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(pid) || !digits(k) || at == 0 {
        return None;
    }
    Some((&rest[..at], pid.parse().ok()?, k.parse().ok()?))
}

/// Writes `bytes` to `path` through a synced temporary file in the same directory and a
/// rename, so `path` holds either its old contents or all of the new ones.
pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = parent_dir(path);
    let name = path.file_name().unwrap_or(path.as_os_str());
    let failed = |e: &std::io::Error| io_error(&format!("writing {}", path.display()), e);
    // A stale temporary of an earlier process with this pid can hold the name: take the next.
    let mut attempt = 0;
    let (guard, mut file, tmp) = loop {
        let guard = InFlight::new();
        let tmp = dir.join(temporary_name(name, std::process::id(), guard.k()));
        match fs::OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => break (guard, f, tmp),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 8 => attempt += 1,
            Err(e) => return Err(failed(&e)),
        }
    };
    let mut write = || -> std::io::Result<()> {
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    };
    let written = write();
    drop(file);
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(failed(&e));
    }
    drop(guard);
    // Make the rename durable; some platforms and file systems cannot sync a directory, and
    // the file itself is already complete, so a failure here is not an error.
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Removes the stale temporaries in `dir` (see the module's docs for the rule) of the files
/// whose names `target` accepts, and returns their paths.
///
/// Best effort: a directory that cannot be listed or a file that cannot be removed is logged
/// and skipped, since the save that calls this can still succeed.
pub(super) fn remove_stale_temporaries(dir: &Path, target: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            log::warn!("could not list {} to remove stale temporary files: {e}", dir.display());
            return Vec::new();
        }
    };
    let me = std::process::id();
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some((file, pid, k)) = name.to_str().and_then(parse_temporary) else { continue };
        if !target(file) || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let stale = if pid == me { !in_flight().contains(&k) } else { is_dead(pid) && owned_by_me(&entry.path()) };
        if !stale {
            continue;
        }
        let path = entry.path();
        match fs::remove_file(&path) {
            Ok(()) => {
                log::info!("removed {}, a temporary file of a save that did not finish", path.display());
                removed.push(path);
            }
            // Renamed or removed by its writer since the listing.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => log::warn!("could not remove stale temporary file {}: {e}", path.display()),
        }
    }
    removed
}

/// Whether process `pid` is known not to be alive (Linux: no `/proc/PID`).
fn is_dead(pid: u32) -> bool {
    if !cfg!(target_os = "linux") || !Path::new("/proc/self").exists() {
        return false;
    }
    matches!(fs::metadata(Path::new("/proc").join(pid.to_string())), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
}

/// Whether `path` is owned by this process's user (the owner of `/proc/self`). Where `/proc`
/// hides other users' processes, this keeps their temporaries from looking stale.
fn owned_by_me(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (fs::metadata("/proc/self"), fs::symlink_metadata(path)) {
            (Ok(me), Ok(file)) => me.uid() == file.uid(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

/// An I/O error with the closest TF code.
pub(super) fn io_error(what: &str, e: &std::io::Error) -> Error {
    use std::io::ErrorKind as K;
    let code = match e.kind() {
        K::NotFound => Code::NotFound,
        K::PermissionDenied | K::ReadOnlyFilesystem | K::IsADirectory | K::NotADirectory => Code::FailedPrecondition,
        K::StorageFull | K::QuotaExceeded | K::FileTooLarge | K::OutOfMemory => Code::ResourceExhausted,
        K::InvalidInput | K::InvalidFilename => Code::InvalidArgument,
        K::UnexpectedEof | K::InvalidData => Code::DataLoss,
        _ => Code::Internal,
    };
    Error::new(code, format!("{what}: {e}"))
}

/// Whether `a` and `b` name the same path (compared absolute, without resolving links).
pub(super) fn same_path(a: &Path, b: &Path) -> bool {
    a == b || matches!((std::path::absolute(a), std::path::absolute(b)), (Ok(a), Ok(b)) if a == b)
}

/// The paths of `paths` that are files, in order, each once (at its last place).
pub(super) fn existing_checkpoints(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> = Vec::with_capacity(paths.len());
    for p in paths {
        match fs::metadata(p) {
            Ok(m) if m.is_file() => {
                found.retain(|q| !same_path(q, p));
                found.push(p.clone());
            }
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => {}
            Err(e) => return Err(io_error(&format!("checking checkpoint {}", p.display()), &e)),
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_parse_back() {
        let name = temporary_name("model.ckpt-7".as_ref(), 42, 3);
        assert_eq!(name, ".model.ckpt-7.tmp-42-3");
        assert_eq!(parse_temporary(".model.ckpt-7.tmp-42-3"), Some(("model.ckpt-7", 42, 3)));
        assert_eq!(parse_temporary(".a.tmp-b.tmp-1-2"), Some(("a.tmp-b", 1, 2)));
        for other in ["model.ckpt-7.tmp-42-3", ".model.ckpt-7.tmp-42", ".model.tmp-x-1", "..tmp-1-2", ".tmp-1-2"] {
            assert_eq!(parse_temporary(other), None, "{other}");
        }
    }

    #[test]
    fn an_in_flight_temporary_of_this_process_stays() {
        let dir = std::env::temp_dir().join(format!("wgflow-inflight-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let guard = InFlight::new();
        let tmp = dir.join(temporary_name("m.ckpt-1".as_ref(), std::process::id(), guard.k()));
        fs::write(&tmp, b"half").unwrap();
        assert!(remove_stale_temporaries(&dir, |f| f == "m.ckpt-1").is_empty());
        assert!(tmp.is_file());
        drop(guard);
        assert_eq!(remove_stale_temporaries(&dir, |f| f == "m.ckpt-1"), std::slice::from_ref(&tmp));
        assert!(!tmp.exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
