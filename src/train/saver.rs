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
//!
//! This file holds the saver, its options and the restore; writing a checkpoint is in
//! `save.rs`.

use std::fs;
use std::path::{Path, PathBuf};

use safetensors::{SafeTensorError, SafeTensors};

use super::checkpoint_files::{existing_checkpoints, io_error};
use super::tensor_codec::decode;
use crate::error::{Error, Result};
use crate::graph::{Graph, Operation, Output, Variable};
use crate::session::Session;
use crate::tensor::{DType, Tensor, TensorSpec};

/// How many checkpoints a saver keeps unless told otherwise (TF's default).
const DEFAULT_MAX_TO_KEEP: usize = 5;

/// One variable of a saver and the nodes that restore it.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) name: String,
    pub(super) var: Variable,
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
/// let sess = Session::new(&g, ConfigProto::cpu_only())?;
/// sess.run(&[g.global_variables_initializer()?])?;
/// let path = saver.save(&sess, dir.join("model.ckpt"), Some(1))?;
/// assert!(path.ends_with("model.ckpt-1"));
///
/// sess.run(&[&double])?;
/// saver.restore(&sess, &path)?;
/// assert_eq!(sess.eval(&w)?, Tensor::from([1.0f32, 2.0]));
/// assert_eq!(wgflow::train::latest_checkpoint(&dir)?, Some(path));
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok(())
/// # }
/// ```
pub struct Saver {
    graph: Graph,
    /// Sorted by variable name, as TF orders its restore assigns.
    pub(super) entries: Vec<Entry>,
    restore_all: Operation,
    pub(super) max_to_keep: Option<usize>,
    /// The checkpoints this saver keeps, oldest first: those it wrote, and those it took
    /// over from an index or [`Saver::recover_last_checkpoints`].
    pub(super) last_checkpoints: Vec<PathBuf>,
    /// The absolute directories whose index this saver has read or written.
    pub(super) known_dirs: Vec<PathBuf>,
    /// Whether a first save into a directory takes over the checkpoints of its index (until
    /// [`Saver::recover_last_checkpoints`] sets the list).
    pub(super) adopt_index: bool,
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

    /// Restores the variables in `session` from the checkpoint at `path`.
    ///
    /// Every value is read and checked before anything is assigned, so a failed restore
    /// leaves the session's variables as they were. Errors: `NotFound` for a missing file or
    /// a variable missing from it ("Key foo not found in checkpoint"), `InvalidArgument` for
    /// a dtype or shape that does not fit a variable, `DataLoss` for a corrupt or truncated
    /// file. Keys of the file that name no variable of this saver are ignored.
    pub fn restore(&self, session: &Session, path: impl AsRef<Path>) -> Result<()> {
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

    pub(super) fn check_session(&self, session: &Session) -> Result<()> {
        if session.graph().same(&self.graph) {
            Ok(())
        } else {
            Err(Error::invalid_argument(
                "The session's graph is not the graph this Saver was built on; build a Saver on the session's graph.",
            ))
        }
    }
}
