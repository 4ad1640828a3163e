//! The `checkpoint` index of a checkpoint directory, in TF's text format
//! (`tensorflow.CheckpointState`):
//!
//! ```text
//! model_checkpoint_path: "model.ckpt-2"
//! all_model_checkpoint_paths: "model.ckpt-1"
//! all_model_checkpoint_paths: "model.ckpt-2"
//! ```
//!
//! Paths relative to the directory name the checkpoints inside it. Reading also accepts the
//! timestamp fields newer TF versions write (`all_model_checkpoint_timestamps`,
//! `last_preserved_timestamp`) and `#` comments.

use std::fs;
use std::path::{Path, PathBuf};

use super::checkpoint_files::{io_error, parent_dir};
use crate::error::{Error, Result};

/// The name of the index file in a checkpoint directory (TF's name).
pub(super) const INDEX_FILE: &str = "checkpoint";

/// The contents of a directory's `checkpoint` index (TF's `CheckpointState`), with relative
/// paths joined to the directory, as TF's `get_checkpoint_state` gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointState {
    /// The newest checkpoint.
    pub model_checkpoint_path: PathBuf,
    /// The checkpoints kept, oldest first (the newest among them, as written by a saver).
    pub all_model_checkpoint_paths: Vec<PathBuf>,
}

impl CheckpointState {
    /// The kept checkpoints, oldest first, ending with the newest one (which TF adds to the
    /// list when writing an index, should a hand-written one lack it).
    pub fn checkpoints(&self) -> Vec<PathBuf> {
        let mut all = self.all_model_checkpoint_paths.clone();
        if all.last() != Some(&self.model_checkpoint_path) {
            all.retain(|p| *p != self.model_checkpoint_path);
            all.push(self.model_checkpoint_path.clone());
        }
        all
    }
}

/// The `checkpoint` index of `dir` (TF's `tf.train.get_checkpoint_state`); `Ok(None)` when
/// the directory has none.
///
/// Errors: an index that cannot be read gets the I/O error's code (`FailedPrecondition` for
/// a directory or a permission, …); one that is not a valid index (not UTF-8, an unknown
/// field, an unquoted path, no `model_checkpoint_path`) is `DataLoss`.
pub fn get_checkpoint_state(dir: impl AsRef<Path>) -> Result<Option<CheckpointState>> {
    let dir = dir.as_ref();
    let index_path = dir.join(INDEX_FILE);
    let bytes = match fs::read(&index_path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(&format!("reading checkpoint index {}", index_path.display()), &e)),
    };
    let invalid =
        |why: String| Error::data_loss(format!("Invalid checkpoint state loaded from {}: {why}", dir.display()));
    let text = String::from_utf8(bytes).map_err(|_| invalid("the index is not UTF-8 text".into()))?;
    let resolve = |s: String| {
        let p = PathBuf::from(s);
        if p.is_absolute() {
            p
        } else {
            dir.join(p)
        }
    };
    let mut latest = None;
    let mut all = Vec::new();
    for (n, line) in text.lines().enumerate().map(|(n, l)| (n + 1, l.trim())) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once(':').ok_or_else(|| invalid(format!("line {n} is not `field: value`")))?;
        let (key, value) = (key.trim(), value.trim());
        let string = || unquote(value).ok_or_else(|| invalid(format!("line {n}: {key} is not a quoted string")));
        match key {
            "model_checkpoint_path" if latest.is_some() => {
                return Err(invalid(format!("line {n}: model_checkpoint_path given twice")))
            }
            "model_checkpoint_path" => latest = Some(string()?),
            "all_model_checkpoint_paths" => all.push(resolve(string()?)),
            "all_model_checkpoint_timestamps" | "last_preserved_timestamp" => {
                value.parse::<f64>().map_err(|_| invalid(format!("line {n}: {key} is not a number")))?;
            }
            _ => return Err(invalid(format!("line {n}: unknown field {key:?}"))),
        }
    }
    let latest = latest.filter(|p| !p.is_empty()).ok_or_else(|| invalid("no model_checkpoint_path".into()))?;
    Ok(Some(CheckpointState { model_checkpoint_path: resolve(latest), all_model_checkpoint_paths: all }))
}

/// The newest checkpoint named by the `checkpoint` index in `dir` (TF's
/// `tf.train.latest_checkpoint`).
///
/// `Ok(None)` when the directory has no index, or when the checkpoint the index names does
/// not exist (as TF). Errors as [`get_checkpoint_state`].
pub fn latest_checkpoint(dir: impl AsRef<Path>) -> Result<Option<PathBuf>> {
    Ok(get_checkpoint_state(dir)?.map(|s| s.model_checkpoint_path).filter(|p| p.is_file()))
}

/// Whether `path` lies in the directory whose absolute path is `dir_abs`.
pub(super) fn lies_in(path: &Path, dir_abs: &Path) -> bool {
    std::path::absolute(parent_dir(path)).is_ok_and(|d| d == dir_abs)
}

/// The `checkpoint` index for `dir`: TF's text format, with paths relative to `dir` for the
/// checkpoints that lie in it.
pub(super) fn index_text(dir: &Path, latest: &Path, all: &[PathBuf]) -> Result<String> {
    let dir_abs = std::path::absolute(dir).map_err(|e| io_error(&format!("resolving {}", dir.display()), &e))?;
    let entry = |p: &Path| -> Result<String> {
        let p = match p.file_name() {
            Some(name) if lies_in(p, &dir_abs) => PathBuf::from(name),
            _ => std::path::absolute(p).map_err(|e| io_error(&format!("resolving {}", p.display()), &e))?,
        };
        let s = p
            .to_str()
            .ok_or_else(|| Error::invalid_argument(format!("Checkpoint path {} is not valid UTF-8", p.display())))?;
        Ok(quote(s))
    };
    let mut text = format!("model_checkpoint_path: {}\n", entry(latest)?);
    for p in all {
        text.push_str(&format!("all_model_checkpoint_paths: {}\n", entry(p)?));
    }
    Ok(text)
}

/// A text-proto string literal.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The string of a text-proto string literal written by [`quote`]; `None` if malformed.
fn unquote(s: &str) -> Option<String> {
    let inner = s.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(match chars.next()? {
                'n' => '\n',
                'r' => '\r',
                't' => '\t',
                c @ ('"' | '\\' | '\'') => c,
                _ => return None,
            }),
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}
