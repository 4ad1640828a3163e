//! `train::Saver` after a crash or a restart: stale temporary files of killed saves are
//! removed by the next save (and those of live savers are not), a new saver takes over the
//! `checkpoint` index so `max_to_keep` holds across restarts, `recover_last_checkpoints`,
//! index entries whose files are gone, and typed errors for a bad index.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};

use wgflow::train::{get_checkpoint_state, CheckpointState, Saver};
use wgflow::{Code, ConfigProto, Graph, Session, Tensor};

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("wgflow-recovery-{tag}-{}-{n}", std::process::id()));
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
    fn index(&self) -> String {
        std::fs::read_to_string(self.join("checkpoint")).expect("index")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One run of a training program: a graph with `W`, a saver and an initialized CPU session.
struct Run {
    saver: Saver,
    session: Session,
}

impl Run {
    fn start(max_to_keep: Option<usize>) -> Run {
        let g = Graph::new();
        g.variable(Tensor::from([1.0f32, 2.0, 3.0]), "W").expect("W");
        let saver = Saver::new(&g).expect("saver").max_to_keep(max_to_keep);
        let session = Session::new(&g, ConfigProto::cpu_only()).expect("session");
        session.run(&[g.global_variables_initializer().expect("init")]).expect("init run");
        Run { saver, session }
    }
    fn save(&mut self, dir: &TempDir, step: u64) -> PathBuf {
        self.saver.save(&self.session, dir.join("model.ckpt"), Some(step)).expect("save")
    }
}

/// The index text a saver writes for checkpoints `model.ckpt-STEP` of `steps`, newest last.
fn index_of(steps: &[u64]) -> String {
    let last = steps.last().expect("a step");
    let mut text = format!("model_checkpoint_path: \"model.ckpt-{last}\"\n");
    for s in steps {
        text.push_str(&format!("all_model_checkpoint_paths: \"model.ckpt-{s}\"\n"));
    }
    text
}

/// The parsed index of `dir` for `steps`, as `get_checkpoint_state` gives it.
fn state_of(dir: &TempDir, steps: &[u64]) -> CheckpointState {
    let path = |s: &u64| dir.join(&format!("model.ckpt-{s}"));
    CheckpointState {
        model_checkpoint_path: path(steps.last().expect("a step")),
        all_model_checkpoint_paths: steps.iter().map(path).collect(),
    }
}

/// The id of a process that has exited and been reaped.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().expect("spawn true");
    let pid = child.id();
    child.wait().expect("wait");
    pid
}

/// A live child process, killed when dropped.
struct Sleeper(Child);

impl Sleeper {
    fn new() -> Sleeper {
        Sleeper(Command::new("sleep").arg("60").spawn().expect("spawn sleep"))
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_dead_processes_temporaries_are_removed_by_the_next_save() {
    let dir = TempDir::new("dead");
    let dead = dead_pid();
    let leftovers = [
        format!(".model.ckpt-1.tmp-{dead}-0"),
        format!(".model.ckpt.tmp-{dead}-4"),
        format!(".checkpoint.tmp-{dead}-1"),
        // An earlier process of this pid (a container restart), or a thread killed mid-write:
        // this process writes no temporary with that number now.
        format!(".model.ckpt-1.tmp-{}-999999999", std::process::id()),
    ];
    for name in &leftovers {
        std::fs::write(dir.join(name), b"half a checkpoint").expect("write leftover");
    }
    // Another prefix's temporary and files that only look alike are not this save's to remove.
    let others = [format!(".other.ckpt-1.tmp-{dead}-0"), format!(".model.ckpt-x.tmp-{dead}-0"), "notes.tmp-1-2".into()];
    for name in &others {
        std::fs::write(dir.join(name), b"other").expect("write other");
    }

    let mut run = Run::start(Some(5));
    run.save(&dir, 2);
    let mut want: Vec<String> = others.to_vec();
    want.extend(["checkpoint".into(), "model.ckpt-2".into()]);
    want.sort();
    assert_eq!(dir.entries(), want);
    assert_eq!(dir.index(), index_of(&[2]));
    assert_eq!(get_checkpoint_state(dir.path()).expect("state"), Some(state_of(&dir, &[2])));
}

#[test]
fn a_live_processes_temporary_stays_while_a_dead_ones_goes() {
    let dir = TempDir::new("live");
    let live = Sleeper::new();
    let in_flight = dir.join(&format!(".model.ckpt-7.tmp-{}-0", live.0.id()));
    std::fs::write(&in_flight, b"being written").expect("write in-flight");
    let stale = dir.join(&format!(".model.ckpt-6.tmp-{}-0", dead_pid()));
    std::fs::write(&stale, b"killed").expect("write stale");

    let mut run = Run::start(Some(5));
    run.save(&dir, 1);
    let in_flight_name = in_flight.file_name().expect("name").to_string_lossy().into_owned();
    assert_eq!(dir.entries(), [in_flight_name, "checkpoint".into(), "model.ckpt-1".into()]);
    assert_eq!(std::fs::read(&in_flight).expect("in-flight file"), b"being written");
    assert_eq!(dir.index(), index_of(&[1]));
}

#[test]
fn max_to_keep_holds_across_a_restart() {
    let dir = TempDir::new("restart");
    {
        let mut first = Run::start(Some(2));
        for step in 1..=3 {
            first.save(&dir, step);
        }
        assert_eq!(dir.entries(), ["checkpoint", "model.ckpt-2", "model.ckpt-3"]);
    }
    // The program restarts: a new graph, session and saver.
    let mut second = Run::start(Some(2));
    assert!(second.saver.last_checkpoints().is_empty());
    second.save(&dir, 4);
    assert_eq!(dir.entries(), ["checkpoint", "model.ckpt-3", "model.ckpt-4"]);
    assert_eq!(dir.index(), index_of(&[3, 4]));
    second.save(&dir, 5);
    second.save(&dir, 6);
    assert_eq!(dir.entries(), ["checkpoint", "model.ckpt-5", "model.ckpt-6"]);
    assert_eq!(dir.index(), index_of(&[5, 6]));
    assert_eq!(get_checkpoint_state(dir.path()).expect("state"), Some(state_of(&dir, &[5, 6])));
    assert_eq!(second.saver.last_checkpoints(), [dir.join("model.ckpt-5"), dir.join("model.ckpt-6")]);
}

#[test]
fn keep_all_across_a_restart_keeps_the_earlier_checkpoints_in_the_index() {
    for keep_all in [None, Some(0)] {
        let dir = TempDir::new("restart-all");
        {
            let mut first = Run::start(keep_all);
            first.save(&dir, 1);
            first.save(&dir, 2);
        }
        let mut second = Run::start(keep_all);
        // Saving a step the index already lists moves it to the end, once.
        second.save(&dir, 1);
        second.save(&dir, 3);
        assert_eq!(dir.entries(), ["checkpoint", "model.ckpt-1", "model.ckpt-2", "model.ckpt-3"]);
        assert_eq!(dir.index(), index_of(&[2, 1, 3]), "{keep_all:?}");
    }
}

#[test]
fn recover_last_checkpoints_sets_the_list_to_keep() {
    let dir = TempDir::new("recover");
    {
        let mut first = Run::start(None);
        for step in 1..=3 {
            first.save(&dir, step);
        }
    }
    let mut second = Run::start(Some(2));
    let paths = [dir.join("model.ckpt-2"), dir.join("model.ckpt-9"), dir.join("model.ckpt-3")];
    second.saver.recover_last_checkpoints(&paths).expect("recover");
    // The missing one is dropped; nothing is deleted until a save.
    assert_eq!(second.saver.last_checkpoints(), [dir.join("model.ckpt-2"), dir.join("model.ckpt-3")]);
    assert_eq!(dir.entries(), ["checkpoint", "model.ckpt-1", "model.ckpt-2", "model.ckpt-3"]);

    // The recovered list is the one kept, not the index's: model.ckpt-1 is not this saver's.
    second.save(&dir, 4);
    assert_eq!(dir.entries(), ["checkpoint", "model.ckpt-1", "model.ckpt-3", "model.ckpt-4"]);
    assert_eq!(dir.index(), index_of(&[3, 4]));
    assert_eq!(second.saver.last_checkpoints(), [dir.join("model.ckpt-3"), dir.join("model.ckpt-4")]);

    // Recovering nothing forgets the list: the next saves delete nothing older.
    second.saver.recover_last_checkpoints(Vec::<PathBuf>::new()).expect("recover none");
    second.save(&dir, 5);
    second.save(&dir, 6);
    assert_eq!(
        dir.entries(),
        ["checkpoint", "model.ckpt-1", "model.ckpt-3", "model.ckpt-4", "model.ckpt-5", "model.ckpt-6"]
    );
    assert_eq!(dir.index(), index_of(&[5, 6]));
}

#[test]
fn index_entries_whose_files_are_gone_are_dropped() {
    let dir = TempDir::new("missing");
    {
        let mut first = Run::start(None);
        for step in 1..=3 {
            first.save(&dir, step);
        }
    }
    std::fs::remove_file(dir.join("model.ckpt-2")).expect("remove");
    // An index as newer TF versions write it, with timestamps, naming one more missing file
    // and one by its absolute path.
    let abs = std::path::absolute(dir.join("model.ckpt-3")).expect("absolute");
    std::fs::write(
        dir.join("checkpoint"),
        format!(
            "model_checkpoint_path: \"{}\"\n\
             all_model_checkpoint_paths: \"model.ckpt-9\"\n\
             all_model_checkpoint_paths: \"model.ckpt-1\"\n\
             all_model_checkpoint_paths: \"model.ckpt-2\"\n\
             all_model_checkpoint_paths: \"{}\"\n\
             all_model_checkpoint_timestamps: 1700000000.5\n\
             last_preserved_timestamp: 1699999999.25\n",
            abs.display(),
            abs.display()
        ),
    )
    .expect("write index");

    let mut second = Run::start(Some(3));
    second.save(&dir, 4);
    assert_eq!(dir.entries(), ["checkpoint", "model.ckpt-1", "model.ckpt-3", "model.ckpt-4"]);
    assert_eq!(dir.index(), index_of(&[1, 3, 4]));
    assert_eq!(get_checkpoint_state(dir.path()).expect("state"), Some(state_of(&dir, &[1, 3, 4])));
    second.save(&dir, 5);
    assert_eq!(dir.entries(), ["checkpoint", "model.ckpt-3", "model.ckpt-4", "model.ckpt-5"]);
    assert_eq!(dir.index(), index_of(&[3, 4, 5]));
}

#[test]
fn a_garbage_or_unreadable_index_is_a_typed_error_and_nothing_is_written() {
    for garbage in ["garbage", "model_checkpoint_path: model.ckpt-1\n", "colour: \"red\"\n", "\u{0}\u{ff}"] {
        let dir = TempDir::new("garbage");
        std::fs::write(dir.join("checkpoint"), garbage).expect("write index");
        let mut run = Run::start(Some(2));
        let err = run.saver.save(&run.session, dir.join("model.ckpt"), Some(1)).expect_err(garbage);
        assert_eq!(err.code, Code::DataLoss, "{garbage:?}: {err}");
        assert!(err.message.contains("Invalid checkpoint state"), "{err}");
        assert!(err.message.contains("recover_last_checkpoints"), "{err}");
        assert_eq!(dir.entries(), ["checkpoint"]);
        assert_eq!(std::fs::read(dir.join("checkpoint")).expect("index"), garbage.as_bytes());
        assert_eq!(get_checkpoint_state(dir.path()).expect_err(garbage).code, Code::DataLoss);
        assert!(run.saver.last_checkpoints().is_empty());

        // Choosing the list explicitly writes a fresh index over it.
        run.saver.recover_last_checkpoints(Vec::<PathBuf>::new()).expect("recover none");
        run.save(&dir, 1);
        assert_eq!(dir.entries(), ["checkpoint", "model.ckpt-1"]);
        assert_eq!(dir.index(), index_of(&[1]));
    }

    // An index that cannot be read (here a directory) has its I/O error's code.
    let dir = TempDir::new("unreadable");
    std::fs::create_dir(dir.join("checkpoint")).expect("mkdir");
    let mut run = Run::start(Some(2));
    let err = run.saver.save(&run.session, dir.join("model.ckpt"), Some(1)).expect_err("directory index");
    assert_eq!(err.code, Code::FailedPrecondition, "{err}");
    assert!(err.message.contains("checkpoint"), "{err}");
    assert_eq!(dir.entries(), ["checkpoint"]);
    assert_eq!(get_checkpoint_state(dir.path()).expect_err("directory").code, Code::FailedPrecondition);
}

#[test]
fn concurrent_saves_in_one_process_keep_each_others_temporaries() {
    // Four savers write into one directory at once, each under its own prefix: each save
    // cleans the directory, and must never take another thread's in-flight temporary (of
    // its checkpoint or of the shared index) for a stale one.
    let dir = TempDir::new("threads");
    std::thread::scope(|scope| {
        for t in 0..4 {
            let dir = &dir;
            scope.spawn(move || {
                let g = Graph::new();
                g.variable(Tensor::from_f32(&[64, 64], vec![t as f32; 64 * 64]).expect("W"), "W").expect("W");
                let mut saver = Saver::new(&g).expect("saver").max_to_keep(2);
                let s = Session::new(&g, ConfigProto::cpu_only()).expect("session");
                s.run(&[g.global_variables_initializer().expect("init")]).expect("init run");
                // Each thread recovers its own list so the shared index is not taken over.
                saver.recover_last_checkpoints(Vec::<PathBuf>::new()).expect("recover");
                for step in 0..20 {
                    saver.save(&s, dir.join(&format!("t{t}.ckpt")), Some(step)).expect("concurrent save");
                }
            });
        }
    });
    let mut want: Vec<String> = (0..4).flat_map(|t| [format!("t{t}.ckpt-18"), format!("t{t}.ckpt-19")]).collect();
    want.push("checkpoint".into());
    want.sort();
    assert_eq!(dir.entries(), want);
    let state = get_checkpoint_state(dir.path()).expect("state").expect("an index");
    assert!(state.model_checkpoint_path.to_string_lossy().ends_with(".ckpt-19"), "{state:?}");
}
