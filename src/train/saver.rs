//! `tf.train.Saver` on safetensors checkpoint files.
//!
//! A checkpoint is one safetensors file: one tensor per variable, keyed by the variable's
//! name (`W`, `layer1/b`), with the metadata `{"format": "wgflow"}`. Next to it a small text
//! index named `checkpoint`, in TF's format, names the newest checkpoint and the ones kept.
//!
//! Restoring goes through ordinary graph nodes, as in TF: when a [`Saver`] is built it adds,
//! under the name scope `save`, a placeholder and an `Assign` per variable and a `NoOp`
//! `save/restore_all` grouping the assigns. A restore feeds the file's values to the
//! placeholders and runs `save/restore_all`, so it works with every kind of session.

use std::fs;
use std::path::{Path, PathBuf};

use safetensors::{SafeTensorError, SafeTensors};

use super::checkpoint_files::{io_error, parent_dir, remove_stale_temporaries, write_atomically};
use super::checkpoint_index::{get_checkpoint_state, index_text, lies_in, INDEX_FILE};
use super::tensor_codec::{decode, Blob};
use crate::error::{Error, Result};
use crate::graph::{Graph, Operation, Output, Variable};
use crate::session::Session;
use crate::tensor::{DType, Tensor, TensorSpec};

/// The metadata key that records who wrote a checkpoint, and its value.
const FORMAT_KEY: &str = "format";
const FORMAT: &str = "wgflow";
/// How many checkpoints a saver keeps unless told otherwise (TF's default).
const DEFAULT_MAX_TO_KEEP: usize = 5;

/// One variable of a saver and the nodes that restore it.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) name: String,
    var: Variable,
    pub(super) spec: TensorSpec,
    /// The placeholder a restore feeds.
    feed: Output,
    /// The name of the `Assign` that copies the placeholder into the variable.
    pub(super) assign: String,
}

/// Saves and restores variables, after TF1's `tf.train.Saver`.
///
/// ```
/// use wgflow::{train::Saver, ConfigProto, Graph, Session, Tensor};
///
/// # fn main() -> wgflow::Result<()> {
/// let dir = std::env::temp_dir().join(format!("wgflow-saver-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).map_err(|e| wgflow::Error::internal(e.to_string()))?;
///
/// let g = Graph::new();
/// let w = g.variable(Tensor::from([1.0f32, 2.0]), "W")?;
/// let double = g.assign(&w, (w.value() * 2.0f32)?)?;
/// let mut saver = Saver::new(&g)?;
///
/// let mut sess = Session::new(&g, ConfigProto::cpu_only())?;
/// sess.run(&[g.global_variables_initializer()?])?;
/// let path = saver.save(&mut sess, dir.join("model.ckpt"), Some(1))?;
/// assert!(path.ends_with("model.ckpt-1"));
///
/// sess.run(&[&double])?;
/// saver.restore(&mut sess, &path)?;
/// assert_eq!(sess.eval(&w)?, Tensor::from([1.0f32, 2.0]));
/// assert_eq!(wgflow::train::latest_checkpoint(&dir)?, Some(path));
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok(())
/// # }
/// ```
pub struct Saver {
    graph: Graph,
    /// Sorted by variable name, as TF orders its restore assigns.
    entries: Vec<Entry>,
    restore_all: Operation,
    max_to_keep: Option<usize>,
    /// The checkpoints this saver keeps, oldest first: those it wrote, and those it took
    /// over from an index or [`Saver::recover_last_checkpoints`].
    last_checkpoints: Vec<PathBuf>,
    /// The absolute directories whose index this saver has read or written.
    known_dirs: Vec<PathBuf>,
    /// Whether a first save into a directory takes over the checkpoints of its index (until
    /// [`Saver::recover_last_checkpoints`] sets the list).
    adopt_index: bool,
}

impl std::fmt::Debug for Saver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Saver")
            .field("variables", &self.variable_names())
            .field("restore_op", &self.restore_all)
            .field("max_to_keep", &self.max_to_keep)
            .field("last_checkpoints", &self.last_checkpoints)
            .finish()
    }
}

impl Saver {
    /// A saver of every global variable of `graph` (TF's `tf.train.Saver()`).
    ///
    /// Adds the restore nodes to `graph` under the name scope `save` (`save_1`, … for later
    /// savers). Fails with `InvalidArgument` if the graph has no variables.
    pub fn new(graph: &Graph) -> Result<Saver> {
        Saver::for_variables(graph, &graph.global_variables())
    }

    /// A saver of `variables` only (TF's `tf.train.Saver(var_list)`).
    ///
    /// Fails with `InvalidArgument` on an empty list, a variable of another graph or a
    /// variable given twice, and with `Unimplemented` on a string variable.
    pub fn for_variables(graph: &Graph, variables: &[Variable]) -> Result<Saver> {
        if variables.is_empty() {
            return Err(Error::invalid_argument("No variables to save"));
        }
        let mut vars: Vec<(String, &Variable)> = Vec::with_capacity(variables.len());
        for v in variables {
            let name = v.name();
            if !graph.same(v.tensor().graph()) {
                return Err(Error::invalid_argument(format!(
                    "Variable {name} is not an element of the Saver's graph."
                )));
            }
            if v.tensor().dtype() == DType::Str {
                return Err(Error::unimplemented(format!(
                    "Variable {name} has dtype string, which wgflow checkpoints do not support"
                )));
            }
            vars.push((name, v));
        }
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = vars.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Error::invalid_argument(format!("At least two variables have the same name: {}", w[0].0)));
        }

        let _scope = graph.name_scope("save");
        let mut entries = Vec::with_capacity(vars.len());
        for (name, var) in vars {
            let spec = var.tensor().spec();
            let feed = graph.placeholder(spec.dtype, spec.shape.clone())?;
            let assign = graph.assign(var, &feed)?.op().name();
            entries.push(Entry { name, var: var.clone(), spec, feed, assign });
        }
        let assigns = entries.iter().map(|e| graph.operation_by_name(&e.assign)).collect::<Result<Vec<Operation>>>()?;
        let refs: Vec<&Operation> = assigns.iter().collect();
        let restore_all = graph.named("restore_all").group(&refs)?;
        Ok(Saver {
            graph: graph.clone(),
            entries,
            restore_all,
            max_to_keep: Some(DEFAULT_MAX_TO_KEEP),
            last_checkpoints: Vec::new(),
            known_dirs: Vec::new(),
            adopt_index: true,
        })
    }

    /// How many checkpoints to keep (default 5, as in TF). When a save goes beyond the limit
    /// the oldest of [`Saver::last_checkpoints`] are deleted; `0` or `None` keeps all. The
    /// list includes the checkpoints taken over from a directory's index, so the limit
    /// holds across restarts (see [`Saver::save`]).
    #[must_use]
    pub fn max_to_keep(mut self, n: impl Into<Option<usize>>) -> Saver {
        self.max_to_keep = n.into().filter(|&n| n > 0);
        self
    }

    /// The checkpoints this saver keeps, oldest first: the ones it wrote and the ones it
    /// took over (from an index, or through [`Saver::recover_last_checkpoints`]).
    pub fn last_checkpoints(&self) -> &[PathBuf] {
        &self.last_checkpoints
    }

    /// Sets the checkpoints this saver keeps to those of `paths` that exist, in their order,
    /// oldest first (TF's `Saver.recover_last_checkpoints`, used after a crash with the
    /// index's `all_model_checkpoint_paths`). A path given twice keeps its last place.
    ///
    /// The next saves delete the oldest of them beyond [`Saver::max_to_keep`]. After this
    /// call, saves no longer take over the checkpoints of a directory's index: the list set
    /// here is the one kept. Errors: a path whose existence cannot be checked (a permission)
    /// gets the I/O error's code; missing paths are dropped.
    pub fn recover_last_checkpoints<P: AsRef<Path>>(&mut self, paths: impl IntoIterator<Item = P>) -> Result<()> {
        let paths: Vec<PathBuf> = paths.into_iter().map(|p| p.as_ref().to_path_buf()).collect();
        self.last_checkpoints = existing_checkpoints(&paths)?;
        self.adopt_index = false;
        Ok(())
    }

    /// The `save/restore_all` operation: running it with every restore placeholder fed
    /// assigns the fed values to the variables.
    pub fn restore_op(&self) -> &Operation {
        &self.restore_all
    }

    /// The names of the variables this saver saves, sorted.
    pub fn variable_names(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.name.clone()).collect()
    }

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
    pub fn save(
        &mut self,
        session: &mut Session,
        prefix: impl AsRef<Path>,
        global_step: Option<u64>,
    ) -> Result<PathBuf> {
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

    /// Restores the variables in `session` from the checkpoint at `path`.
    ///
    /// Every value is read and checked before anything is assigned, so a failed restore
    /// leaves the session's variables as they were. Errors: `NotFound` for a missing file or
    /// a variable missing from it ("Key foo not found in checkpoint"), `InvalidArgument` for
    /// a dtype or shape that does not fit a variable, `DataLoss` for a corrupt or truncated
    /// file. Keys of the file that name no variable of this saver are ignored.
    pub fn restore(&self, session: &mut Session, path: impl AsRef<Path>) -> Result<()> {
        self.check_session(session)?;
        let path = path.as_ref();
        let bytes = fs::read(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::not_found(format!(
                "Unsuccessful TensorSliceReader constructor: Failed to find any matching files for {}",
                path.display()
            )),
            _ => io_error(&format!("reading checkpoint {}", path.display()), &e),
        })?;
        let file = SafeTensors::deserialize(&bytes).map_err(|e| {
            Error::data_loss(format!(
                "Unable to read checkpoint {}: not a valid safetensors file ({e})",
                path.display()
            ))
        })?;
        let mut feeds: Vec<(&Output, Tensor)> = Vec::with_capacity(self.entries.len());
        for e in &self.entries {
            let view = match file.tensor(&e.name) {
                Ok(v) => v,
                Err(SafeTensorError::TensorNotFound(_)) => {
                    return Err(Error::not_found(format!("Key {} not found in checkpoint", e.name)))
                }
                Err(err) => {
                    return Err(Error::data_loss(format!(
                        "Unable to read {} from checkpoint {}: {err}",
                        e.name,
                        path.display()
                    )))
                }
            };
            feeds.push((&e.feed, decode(e, &view, path)?));
        }
        session.run_feed(&[&self.restore_all], &feeds)?;
        Ok(())
    }

    fn check_session(&self, session: &Session) -> Result<()> {
        if session.graph().same(&self.graph) {
            Ok(())
        } else {
            Err(Error::invalid_argument(
                "The session's graph is not the graph this Saver was built on; build a Saver on the session's graph.",
            ))
        }
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

/// Whether `a` and `b` name the same path (compared absolute, without resolving links).
fn same_path(a: &Path, b: &Path) -> bool {
    a == b || matches!((std::path::absolute(a), std::path::absolute(b)), (Ok(a), Ok(b)) if a == b)
}

/// The paths of `paths` that are files, in order, each once (at its last place).
fn existing_checkpoints(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
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
