//! `train::Saver`: safetensors checkpoints, the `checkpoint` index, `max_to_keep`, restoring
//! through graph nodes on CPU and GPU sessions, and every error a restore can meet.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use wgflow::train::{latest_checkpoint, Saver};
use wgflow::{Code, ConfigProto, DType, Graph, Output, Session, Tensor, Variable};

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("wgflow-saver-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    /// The names of the directory's entries, sorted.
    fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .expect("read dir")
            .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The sessions the round trips run on: the CPU, and the GPU when there is one.
fn devices() -> Vec<(&'static str, ConfigProto)> {
    let mut d = vec![("cpu", ConfigProto::cpu_only())];
    if common::gpu_ready() {
        d.push(("gpu", ConfigProto::default()));
    }
    d
}

fn session(g: &Graph, device: &str, config: &ConfigProto) -> Session {
    let s = Session::new(g, config.clone()).expect("session");
    assert_eq!(s.device().starts_with("GPU"), device == "gpu", "{device} session runs on {}", s.device());
    s
}

/// The variables of the test model: `W` f32 [2,3], `layer1/b` f32 [3], `global_step` i32 [],
/// and, where the session keeps them (the CPU; GPU variables are float32 and int32 only),
/// `d` f64 [2] and `flags` bool [3].
struct Model {
    vars: Vec<Variable>,
}

/// Whether a session on `device` holds float64 and bool variables.
fn wide(device: &str) -> bool {
    device == "cpu"
}

impl Model {
    /// The model, initialized from `seed` so two models can start with different values.
    fn build(g: &Graph, seed: f32, wide: bool) -> Model {
        let w = g
            .variable(Tensor::from_f32(&[2, 3], (0..6).map(|i| seed + i as f32).collect()).expect("W"), "W")
            .expect("W");
        let b = {
            let _s = g.name_scope("layer1");
            g.variable(Tensor::from(vec![seed; 3]), "b").expect("b")
        };
        let step = g.variable(Tensor::from(seed as i32), "global_step").expect("step");
        let mut vars = vec![w, b, step];
        if wide {
            vars.push(g.variable(Tensor::from(vec![f64::from(seed), 0.5]), "d").expect("d"));
            vars.push(g.variable(Tensor::from([false, seed > 0.0, false]), "flags").expect("flags"));
        }
        Model { vars }
    }

    /// The same variables created in the reverse order, all zero (false).
    fn build_reversed(g: &Graph, wide: bool) -> Model {
        let mut vars = Vec::new();
        if wide {
            vars.push(g.variable(Tensor::from([false; 3]), "flags").expect("flags"));
            vars.push(g.variable(Tensor::from(vec![0.0f64; 2]), "d").expect("d"));
        }
        vars.push(g.variable(0i32, "global_step").expect("step"));
        vars.push({
            let _s = g.name_scope("layer1");
            g.variable(Tensor::from(vec![0.0f32; 3]), "b").expect("b")
        });
        vars.push(g.variable(Tensor::filled(DType::F32, &[2, 3], 0.0), "W").expect("W"));
        vars.reverse();
        Model { vars }
    }

    /// The current values of every variable.
    fn values(&self, s: &Session) -> Vec<Tensor> {
        let fetches: Vec<&Output> = self.vars.iter().map(|v| v.tensor()).collect();
        s.run(&fetches).expect("fetch").into_iter().map(|t| t.expect("a value")).collect()
    }

    /// Sets every variable to values that hold float corner cases (NaN, -0.0, infinities,
    /// a subnormal), so a round trip is checked bit for bit.
    fn set_tricky(&self, g: &Graph, s: &Session) -> Vec<Tensor> {
        let mut values = vec![
            Tensor::from_f32(&[2, 3], vec![1.5, -0.0, f32::NAN, f32::INFINITY, f32::MIN_POSITIVE / 8.0, -3.25e7])
                .expect("W value"),
            Tensor::from(vec![f32::NEG_INFINITY, 1.0e-3, 7.0]),
            Tensor::from(-123_456_789i32),
            Tensor::from(vec![std::f64::consts::PI, -1.0e-300]),
            Tensor::from([true, false, true]),
        ];
        values.truncate(self.vars.len());
        self.set(g, s, &values);
        values
    }

    fn set(&self, g: &Graph, s: &Session, values: &[Tensor]) {
        assert_eq!(values.len(), self.vars.len());
        let assigns: Vec<Output> =
            self.vars.iter().zip(values).map(|(v, t)| g.assign(v, t.clone()).expect("assign")).collect();
        s.run(&assigns).expect("assign run");
    }
}

/// A tensor's dtype, shape and element bits, for exact comparisons (NaN included).
fn bits(t: &Tensor) -> (DType, Vec<usize>, Vec<u64>) {
    let b: Vec<u64> = match t {
        Tensor::F32(a) => a.iter().map(|x| u64::from(x.to_bits())).collect(),
        Tensor::I32(a) => a.iter().map(|&x| x as u32 as u64).collect(),
        Tensor::F64(a) => a.iter().map(|x| x.to_bits()).collect(),
        Tensor::Bool(a) => a.iter().map(|&x| u64::from(x)).collect(),
        Tensor::Str(_) => panic!("no strings here"),
    };
    (t.dtype(), t.shape().to_vec(), b)
}

fn assert_bitwise(got: &[Tensor], want: &[Tensor], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(bits(g), bits(w), "{what}: variable {i}: {g:?} != {w:?}");
    }
}

/// A graph with the model, a saver of it and an initialized session on `device`.
fn setup(device: &str, config: &ConfigProto, seed: f32) -> (Graph, Model, Saver, Session) {
    let g = Graph::new();
    let m = Model::build(&g, seed, wide(device));
    let saver = Saver::new(&g).expect("saver");
    let s = session(&g, device, config);
    s.run(&[g.global_variables_initializer().expect("init")]).expect("init run");
    (g, m, saver, s)
}

#[test]
fn round_trip_is_bitwise_after_assigns() {
    for (device, config) in devices() {
        let dir = TempDir::new("roundtrip");
        let (g, m, mut saver, s) = setup(device, &config, 1.0);
        let saved = m.set_tricky(&g, &s);
        assert_bitwise(&m.values(&s), &saved, "values before the save");
        let path = saver.save(&s, dir.join("model.ckpt"), Some(7)).expect("save");
        assert_eq!(path, dir.join("model.ckpt-7"));

        // Change everything again, then restore.
        let mut other = vec![
            Tensor::filled(DType::F32, &[2, 3], 9.0),
            Tensor::from(vec![0.0f32; 3]),
            Tensor::from(5i32),
            Tensor::from(vec![2.0f64, 3.0]),
            Tensor::from([false; 3]),
        ];
        other.truncate(m.vars.len());
        m.set(&g, &s, &other);
        assert_bitwise(&m.values(&s), &other, "values after the second assigns");
        saver.restore(&s, &path).expect("restore");
        assert_bitwise(&m.values(&s), &saved, &format!("{device}: restored values"));
    }
}

#[test]
fn restore_into_a_fresh_graph_initializes_its_variables() {
    let devices = devices();
    for (from, from_config) in &devices {
        for (to, to_config) in &devices {
            let dir = TempDir::new("fresh");
            let (g, m, mut saver, s) = setup(from, from_config, 1.0);
            let saved = m.set_tricky(&g, &s);
            let path = saver.save(&s, dir.join("model.ckpt"), None).expect("save");
            assert_eq!(path, dir.join("model.ckpt"));
            drop(s);

            // Another graph, variables created in another order and with other initial
            // values; the restore runs instead of the initializer. A GPU-built checkpoint
            // lacks the float64 and bool variables, so the CPU graph then leaves them out.
            let g2 = Graph::new();
            let m2 = Model::build_reversed(&g2, wide(from) && wide(to));
            let saver2 = Saver::new(&g2).expect("saver 2");
            let s2 = session(&g2, to, to_config);
            saver2.restore(&s2, &path).expect("restore into the fresh session");
            assert_bitwise(&m2.values(&s2), &saved[..m2.vars.len()], &format!("{from} -> {to}"));
        }
    }
}

#[test]
fn a_subset_saver_saves_and_restores_only_its_variables() {
    for (device, config) in devices() {
        let dir = TempDir::new("subset");
        let (g, m, _, s) = setup(device, &config, 1.0);
        let mut saver = Saver::for_variables(&g, &[m.vars[0].clone(), m.vars[2].clone()]).expect("subset saver");
        assert_eq!(saver.variable_names(), ["W", "global_step"]);
        let before = m.values(&s);
        let path = saver.save(&s, dir.join("part"), Some(1)).expect("save");

        let bytes = std::fs::read(&path).expect("read");
        let file = SafeTensors::deserialize(&bytes).expect("safetensors");
        let mut names = file.names();
        names.sort();
        assert_eq!(names, ["W", "global_step"]);

        let changed = m.set_tricky(&g, &s);
        saver.restore(&s, &path).expect("restore");
        let after = m.values(&s);
        assert_bitwise(&after[..1], &before[..1], "W restored");
        assert_bitwise(&after[1..2], &changed[1..2], "layer1/b untouched");
        assert_bitwise(&after[2..3], &before[2..3], "global_step restored");
        assert_bitwise(&after[3..], &changed[3..], "d and flags untouched");
    }
}

#[test]
fn the_file_is_safetensors_with_the_variables_by_name() {
    let dir = TempDir::new("format");
    let (g, m, mut saver, s) = setup("cpu", &ConfigProto::cpu_only(), 2.0);
    m.set_tricky(&g, &s);
    let path = saver.save(&s, dir.join("model.ckpt"), Some(1000)).expect("save");
    let bytes = std::fs::read(&path).expect("read");

    let (_, meta) = SafeTensors::read_metadata(&bytes).expect("header");
    let format = meta.metadata().as_ref().and_then(|m| m.get("format")).cloned();
    assert_eq!(format.as_deref(), Some("wgflow"));

    let file = SafeTensors::deserialize(&bytes).expect("safetensors");
    let mut names = file.names();
    names.sort();
    assert_eq!(names, ["W", "d", "flags", "global_step", "layer1/b"]);

    let le32 = |d: &[u8]| d.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect::<Vec<_>>();
    let w = file.tensor("W").expect("W");
    assert_eq!((w.dtype(), w.shape()), (Dtype::F32, &[2usize, 3][..]));
    let want: Vec<u32> =
        [1.5f32, -0.0, f32::NAN, f32::INFINITY, f32::MIN_POSITIVE / 8.0, -3.25e7].iter().map(|x| x.to_bits()).collect();
    assert_eq!(le32(w.data()), want);

    let b = file.tensor("layer1/b").expect("b");
    assert_eq!((b.dtype(), b.shape()), (Dtype::F32, &[3usize][..]));
    assert_eq!(le32(b.data()), [f32::NEG_INFINITY, 1.0e-3, 7.0].map(f32::to_bits));

    let step = file.tensor("global_step").expect("step");
    assert_eq!((step.dtype(), step.shape()), (Dtype::I32, &[][..]));
    assert_eq!(step.data(), (-123_456_789i32).to_le_bytes());

    let d = file.tensor("d").expect("d");
    assert_eq!((d.dtype(), d.shape()), (Dtype::F64, &[2usize][..]));
    let mut want_d = std::f64::consts::PI.to_le_bytes().to_vec();
    want_d.extend((-1.0e-300f64).to_le_bytes());
    assert_eq!(d.data(), &want_d[..]);

    let flags = file.tensor("flags").expect("flags");
    assert_eq!((flags.dtype(), flags.shape()), (Dtype::BOOL, &[3usize][..]));
    assert_eq!(flags.data(), [1u8, 0, 1]);
}

#[test]
fn restore_reads_foreign_safetensors_and_ignores_extra_keys() {
    let dir = TempDir::new("foreign");
    let path = dir.join("foreign.safetensors");
    let w: Vec<u8> = (0..6).flat_map(|i| (i as f32 * 0.5).to_le_bytes()).collect();
    let extra = [0u8; 4];
    let views = vec![
        ("W", TensorView::new(Dtype::F32, vec![2, 3], &w).expect("W view")),
        ("unrelated/tensor", TensorView::new(Dtype::I32, vec![1], &extra).expect("extra view")),
    ];
    std::fs::write(&path, safetensors::serialize(views, None).expect("serialize")).expect("write");

    let g = Graph::new();
    let v = g.variable(Tensor::filled(DType::F32, &[2, 3], 0.0), "W").expect("W");
    let saver = Saver::new(&g).expect("saver");
    let s = Session::new(&g, ConfigProto::cpu_only()).expect("session");
    saver.restore(&s, &path).expect("restore");
    assert_eq!(
        s.eval(v.tensor()).expect("W"),
        Tensor::from_f32(&[2, 3], vec![0.0, 0.5, 1.0, 1.5, 2.0, 2.5]).expect("t")
    );
}

#[test]
fn restore_nodes_are_graph_nodes_named_like_tf() {
    let g = Graph::new();
    Model::build(&g, 1.0, true);
    let saver = Saver::new(&g).expect("saver");
    assert_eq!(saver.restore_op().name(), "save/restore_all");
    let restore_all = g.operation_by_name("save/restore_all").expect("save/restore_all");
    assert_eq!(restore_all.op_type(), "NoOp");
    assert_eq!(saver.variable_names(), ["W", "d", "flags", "global_step", "layer1/b"]);
    // One placeholder and one Assign per variable, in name order as TF builds them.
    let mut controls: Vec<String> = restore_all.control_inputs().iter().map(|op| op.name()).collect();
    controls.sort();
    assert_eq!(controls, ["save/Assign", "save/Assign_1", "save/Assign_2", "save/Assign_3", "save/Assign_4"]);
    for (i, var) in saver.variable_names().iter().enumerate() {
        let name = if i == 0 { "save/Assign".to_string() } else { format!("save/Assign_{i}") };
        let assign = g.operation_by_name(&name).expect("assign");
        assert_eq!(assign.op_type(), "Assign");
        let inputs = assign.inputs();
        assert_eq!(inputs[0].op().name(), *var, "{name} assigns {var}");
        assert_eq!(inputs[1].op().op_type(), "Placeholder");
        assert!(inputs[1].op().name().starts_with("save/Placeholder"), "{}", inputs[1].op().name());
    }
    // A second saver gets its own scope.
    let second = Saver::new(&g).expect("second saver");
    assert_eq!(second.restore_op().name(), "save_1/restore_all");
}

#[path = "saver/errors.rs"]
mod errors;
#[path = "saver/index.rs"]
mod index;
