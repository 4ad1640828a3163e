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

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ndarray::{ArrayD, IxDyn};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensorError, SafeTensors, View};

use crate::error::{Code, Error, Result};
use crate::graph::{Graph, Operation, Output, Variable};
use crate::session::Session;
use crate::tensor::{DType, Shape, Tensor, TensorSpec};

/// The metadata key that records who wrote a checkpoint, and its value.
const FORMAT_KEY: &str = "format";
const FORMAT: &str = "wgflow";
/// The name of the index file in a checkpoint directory (TF's name).
const INDEX_FILE: &str = "checkpoint";
/// How many checkpoints a saver keeps unless told otherwise (TF's default).
const DEFAULT_MAX_TO_KEEP: usize = 5;

/// One variable of a saver and the nodes that restore it.
#[derive(Debug)]
struct Entry {
    name: String,
    var: Variable,
    spec: TensorSpec,
    /// The placeholder a restore feeds.
    feed: Output,
    /// The name of the `Assign` that copies the placeholder into the variable.
    assign: String,
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
    /// The checkpoints this saver wrote and keeps, oldest first.
    last_checkpoints: Vec<PathBuf>,
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
        })
    }

    /// How many of the checkpoints this saver writes to keep (default 5, as in TF). When a
    /// save goes beyond the limit the oldest of them is deleted; `0` or `None` keeps all.
    #[must_use]
    pub fn max_to_keep(mut self, n: impl Into<Option<usize>>) -> Saver {
        self.max_to_keep = n.into().filter(|&n| n > 0);
        self
    }

    /// The checkpoints this saver wrote and still keeps, oldest first.
    pub fn last_checkpoints(&self) -> &[PathBuf] {
        &self.last_checkpoints
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
    /// Errors: the session's own (`FailedPrecondition` for an uninitialized variable),
    /// `NotFound` if the directory does not exist, I/O errors with the closest code.
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

        let mut kept: Vec<PathBuf> = self.last_checkpoints.iter().filter(|p| **p != path).cloned().collect();
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
        for old in removed {
            match fs::remove_file(&old) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => log::warn!("could not delete old checkpoint {}: {e}", old.display()),
            }
        }
        Ok(path)
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

/// The newest checkpoint named by the `checkpoint` index in `dir` (TF's
/// `tf.train.latest_checkpoint`).
///
/// `Ok(None)` when the directory has no index, or when the checkpoint the index names does
/// not exist (as TF). A malformed index is `DataLoss`.
pub fn latest_checkpoint(dir: impl AsRef<Path>) -> Result<Option<PathBuf>> {
    let dir = dir.as_ref();
    let index_path = dir.join(INDEX_FILE);
    let bytes = match fs::read(&index_path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(&format!("reading {}", index_path.display()), &e)),
    };
    let invalid = || Error::data_loss(format!("Invalid checkpoint state loaded from {}", dir.display()));
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let mut latest = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (key, value) = line.split_once(':').ok_or_else(invalid)?;
        let value = unquote(value.trim()).ok_or_else(invalid)?;
        if key.trim() == "model_checkpoint_path" {
            latest = Some(value);
        }
    }
    let latest = latest.filter(|p| !p.is_empty()).ok_or_else(invalid)?;
    let path = Path::new(&latest);
    let path = if path.is_absolute() { path.to_path_buf() } else { dir.join(path) };
    Ok(path.is_file().then_some(path))
}

/// A variable's value in safetensors' terms.
struct Blob {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl Blob {
    /// Little-endian bytes of `value` (bools as one byte, 0 or 1).
    fn encode(name: &str, value: &Tensor) -> Result<Blob> {
        let (dtype, data): (Dtype, Vec<u8>) = match value {
            Tensor::F32(a) => (Dtype::F32, a.iter().flat_map(|x| x.to_le_bytes()).collect()),
            Tensor::I32(a) => (Dtype::I32, a.iter().flat_map(|x| x.to_le_bytes()).collect()),
            Tensor::F64(a) => (Dtype::F64, a.iter().flat_map(|x| x.to_le_bytes()).collect()),
            Tensor::Bool(a) => (Dtype::BOOL, a.iter().map(|&b| u8::from(b)).collect()),
            Tensor::Str(_) => {
                return Err(Error::unimplemented(format!(
                    "Variable {name} has dtype string, which wgflow checkpoints do not support"
                )))
            }
        };
        Ok(Blob { dtype, shape: value.shape().to_vec(), data })
    }
}

impl View for Blob {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// The wgflow dtype of a safetensors dtype, if wgflow has it.
fn wgflow_dtype(d: Dtype) -> Option<DType> {
    match d {
        Dtype::F32 => Some(DType::F32),
        Dtype::I32 => Some(DType::I32),
        Dtype::F64 => Some(DType::F64),
        Dtype::BOOL => Some(DType::Bool),
        _ => None,
    }
}

/// The checkpoint's value for `e`, checked against the variable's dtype and static shape.
fn decode(e: &Entry, view: &TensorView<'_>, path: &Path) -> Result<Tensor> {
    let dtype = wgflow_dtype(view.dtype());
    if dtype != Some(e.spec.dtype) {
        let got = dtype.map_or_else(|| view.dtype().to_string(), |d| d.tf_name().to_string());
        return Err(Error::invalid_argument(format!(
            "tensor_name = {}; expected dtype {} does not equal original dtype {got}",
            e.name,
            e.spec.dtype.tf_name()
        ))
        .at(&e.assign));
    }
    let shape = view.shape();
    if !e.spec.shape.is_compatible_with(shape) {
        return Err(Error::invalid_argument(format!(
            "Restoring {}: the checkpoint holds shape {}, the variable has shape {}",
            e.name,
            Shape::known(shape).tf_string(),
            e.spec.shape.tf_string()
        ))
        .at(&e.assign));
    }
    let data = view.data();
    let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if n.and_then(|n| n.checked_mul(e.spec.dtype.size())) != Some(data.len()) {
        return Err(Error::data_loss(format!(
            "Checkpoint {}: {} holds {} bytes, which do not fit shape {}",
            path.display(),
            e.name,
            data.len(),
            Shape::known(shape).tf_string()
        )));
    }
    let corrupt = |what: String| Error::data_loss(format!("Checkpoint {}: {}: {what}", path.display(), e.name));
    let dims = IxDyn(shape);
    let tensor = match e.spec.dtype {
        DType::F32 => ArrayD::from_shape_vec(dims, le_values(data, f32::from_le_bytes)).map(Tensor::from),
        DType::I32 => ArrayD::from_shape_vec(dims, le_values(data, i32::from_le_bytes)).map(Tensor::from),
        DType::F64 => ArrayD::from_shape_vec(dims, le_values(data, f64::from_le_bytes)).map(Tensor::from),
        DType::Bool => {
            let values = data
                .iter()
                .map(|&b| match b {
                    0 => Ok(false),
                    1 => Ok(true),
                    b => Err(corrupt(format!("byte {b} is not a bool"))),
                })
                .collect::<Result<Vec<bool>>>()?;
            ArrayD::from_shape_vec(dims, values).map(Tensor::from)
        }
        DType::Str => return Err(Error::unimplemented("string checkpoints are not supported")),
    };
    tensor.map_err(|err| corrupt(err.to_string()))
}

/// The values of little-endian bytes, `N` bytes each.
fn le_values<T, const N: usize>(data: &[u8], from: fn([u8; N]) -> T) -> Vec<T> {
    data.chunks_exact(N)
        .map(|c| {
            let mut b = [0u8; N];
            b.copy_from_slice(c);
            from(b)
        })
        .collect()
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

/// The directory a file lies in (`.` for a bare file name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The `checkpoint` index for `dir`: TF's text format, with paths relative to `dir` for the
/// checkpoints that lie in it.
fn index_text(dir: &Path, latest: &Path, all: &[PathBuf]) -> Result<String> {
    let entry = |p: &Path| -> Result<String> {
        let p = if parent_dir(p) == dir {
            PathBuf::from(p.file_name().unwrap_or(p.as_os_str()))
        } else {
            std::path::absolute(p).map_err(|e| io_error(&format!("resolving {}", p.display()), &e))?
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

/// Writes `bytes` to `path` through a synced temporary file in the same directory and a
/// rename, so `path` holds either its old contents or all of the new ones.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = parent_dir(path);
    let mut tmp_name = OsString::from(".");
    tmp_name.push(path.file_name().unwrap_or(path.as_os_str()));
    tmp_name.push(format!(".tmp-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
    let tmp = dir.join(tmp_name);
    let write = || -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)
    };
    if let Err(e) = write() {
        // The temporary file may not exist (the open failed); nothing else to do then.
        let _ = fs::remove_file(&tmp);
        return Err(io_error(&format!("writing {}", path.display()), &e));
    }
    // Make the rename durable; some platforms and file systems cannot sync a directory, and
    // the file itself is already complete, so a failure here is not an error.
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// An I/O error with the closest TF code.
fn io_error(what: &str, e: &std::io::Error) -> Error {
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
