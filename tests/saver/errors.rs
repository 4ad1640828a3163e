//! `Saver` errors: what a restore or a save meets in bad files, missing keys, mismatched
//! shapes and dtypes, bad variable lists; each fails with a typed error and changes nothing.

use super::*;

/// Expects `err` to be a typed error with `code` whose message contains every one of `parts`.
fn assert_error(err: &wgflow::Error, code: Code, parts: &[&str]) {
    assert_eq!(err.code, code, "{err}");
    for p in parts {
        assert!(err.message.contains(p), "{p:?} not in {:?}", err.message);
    }
}

/// Saves the model (seed 1) and returns the directory and the checkpoint.
fn saved_checkpoint(tag: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new(tag);
    let (_, _, mut saver, s) = setup("cpu", &ConfigProto::cpu_only(), 1.0);
    let path = saver.save(&s, dir.join("model.ckpt"), Some(1)).expect("save");
    (dir, path)
}

/// Runs `restore` on a model (seed 5) and checks that it failed and changed nothing.
fn failed_restore_changes_nothing(path: &Path) -> wgflow::Error {
    let (_, m, saver, s) = setup("cpu", &ConfigProto::cpu_only(), 5.0);
    let before = m.values(&s);
    let err = saver.restore(&s, path).expect_err("the restore must fail");
    assert_bitwise(&m.values(&s), &before, "variables after a failed restore");
    err
}

#[test]
fn a_key_missing_from_the_file_is_not_found_and_changes_nothing() {
    let dir = TempDir::new("missing-key");
    let (g, m, _, s) = setup("cpu", &ConfigProto::cpu_only(), 1.0);
    // A file with W (which sorts first) but without layer1/b and the others.
    let mut only_w = Saver::for_variables(&g, &[m.vars[0].clone()]).expect("saver");
    let path = only_w.save(&s, dir.join("w-only"), None).expect("save");
    let err = failed_restore_changes_nothing(&path);
    assert_eq!(err.code, Code::NotFound);
    assert_eq!(err.message, "Key d not found in checkpoint");
}

#[test]
fn shape_and_dtype_mismatches_are_invalid_argument() {
    let (_dir, path) = saved_checkpoint("mismatch");

    let g = Graph::new();
    let w = g.variable(Tensor::filled(DType::F32, &[3, 2], 4.0), "W").expect("W");
    let saver = Saver::new(&g).expect("saver");
    let s = Session::new(&g, ConfigProto::cpu_only()).expect("session");
    s.run(&[w.initializer()]).expect("init");
    let err = saver.restore(&s, &path).expect_err("shape mismatch");
    assert_error(&err, Code::InvalidArgument, &["W", "[2,3]", "[3,2]"]);
    assert_eq!(s.eval(w.tensor()).expect("W"), Tensor::filled(DType::F32, &[3, 2], 4.0));

    let g = Graph::new();
    let step = g.variable(Tensor::from(1.5f32), "global_step").expect("step");
    let saver = Saver::new(&g).expect("saver");
    let s = Session::new(&g, ConfigProto::cpu_only()).expect("session");
    s.run(&[step.initializer()]).expect("init");
    let err = saver.restore(&s, &path).expect_err("dtype mismatch");
    assert_error(&err, Code::InvalidArgument, &["global_step", "float", "int32"]);
    assert_eq!(s.eval(step.tensor()).expect("step"), Tensor::from(1.5f32));

    // A dtype wgflow does not have (float16) is a mismatch too.
    let dir = TempDir::new("f16");
    let half = dir.join("half");
    let data = [0u8; 12];
    let views = vec![("W", TensorView::new(Dtype::F16, vec![2, 3], &data).expect("view"))];
    std::fs::write(&half, safetensors::serialize(views, None).expect("serialize")).expect("write");
    let g = Graph::new();
    g.variable(Tensor::filled(DType::F32, &[2, 3], 0.0), "W").expect("W");
    let saver = Saver::new(&g).expect("saver");
    let s = Session::new(&g, ConfigProto::cpu_only()).expect("session");
    let err = saver.restore(&s, &half).expect_err("f16");
    assert_error(&err, Code::InvalidArgument, &["W", "float", "F16"]);
}

#[test]
fn a_missing_file_is_not_found() {
    let dir = TempDir::new("missing-file");
    let err = failed_restore_changes_nothing(&dir.join("nope.ckpt-1"));
    assert_error(&err, Code::NotFound, &["nope.ckpt-1"]);
}

#[test]
fn truncated_and_garbage_files_are_data_loss() {
    let (dir, path) = saved_checkpoint("corrupt");
    let bytes = std::fs::read(&path).expect("read");
    let broken = dir.join("broken");
    let mut cuts = vec![0, 1, 7, 8, 9, 20, bytes.len() / 2, bytes.len() - 1];
    let header = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    cuts.extend([8 + header, 8 + header + 3]);
    for cut in cuts {
        std::fs::write(&broken, &bytes[..cut]).expect("write");
        let err = failed_restore_changes_nothing(&broken);
        assert_eq!(err.code, Code::DataLoss, "cut at {cut} of {}: {err}", bytes.len());
    }
    let mut longer = bytes.clone();
    longer.extend([0u8; 16]);
    let garbage: [&[u8]; 4] = [
        b"this is not a checkpoint at all, just some text",
        &[0xff; 64],
        b"\x10\x00\x00\x00\x00\x00\x00\x00{\"W\": 3}       ",
        &longer,
    ];
    for g in garbage {
        std::fs::write(&broken, g).expect("write");
        let err = failed_restore_changes_nothing(&broken);
        assert_eq!(err.code, Code::DataLoss, "{err}");
    }
    // A bool byte that is neither 0 nor 1.
    let flags = [0u8, 2, 1];
    let views = vec![("flags", TensorView::new(Dtype::BOOL, vec![3], &flags).expect("view"))];
    std::fs::write(&broken, safetensors::serialize(views, None).expect("serialize")).expect("write");
    let g = Graph::new();
    g.variable(Tensor::from([true, true, true]), "flags").expect("flags");
    let saver = Saver::new(&g).expect("saver");
    let s = Session::new(&g, ConfigProto::cpu_only()).expect("session");
    let err = saver.restore(&s, &broken).expect_err("bad bool");
    assert_error(&err, Code::DataLoss, &["flags"]);
}

#[test]
fn saving_errors_leave_no_files() {
    let dir = TempDir::new("save-errors");
    let g = Graph::new();
    Model::build(&g, 1.0, true);
    let mut saver = Saver::new(&g).expect("saver");
    let s = Session::new(&g, ConfigProto::cpu_only()).expect("session");

    // Uninitialized variables: the fetch fails, nothing is written.
    let err = saver.save(&s, dir.join("model.ckpt"), Some(1)).expect_err("uninitialized");
    assert_eq!(err.code, Code::FailedPrecondition, "{err}");
    assert!(dir.entries().is_empty(), "{:?}", dir.entries());

    s.run(&[g.global_variables_initializer().expect("init")]).expect("init run");
    let err = saver.save(&s, dir.join("no/such/dir/model.ckpt"), None).expect_err("no dir");
    assert_error(&err, Code::NotFound, &["doesn't exist"]);
    let err = saver.save(&s, dir.join("checkpoint"), None).expect_err("index name");
    assert_eq!(err.code, Code::InvalidArgument, "{err}");
    assert!(dir.entries().is_empty(), "{:?}", dir.entries());
    assert!(saver.last_checkpoints().is_empty());

    // A session on another graph.
    let other = Graph::new();
    Model::build(&other, 1.0, true);
    let s2 = Session::new(&other, ConfigProto::cpu_only()).expect("session");
    let err = saver.save(&s2, dir.join("x"), None).expect_err("other graph");
    assert_eq!(err.code, Code::InvalidArgument, "{err}");
    let path = saver.save(&s, dir.join("x"), None).expect("save");
    let err = saver.restore(&s2, &path).expect_err("other graph");
    assert_eq!(err.code, Code::InvalidArgument, "{err}");
}

#[test]
fn savers_refuse_bad_variable_lists() {
    let err = Saver::new(&Graph::new()).expect_err("no variables");
    assert_error(&err, Code::InvalidArgument, &["No variables to save"]);

    let g = Graph::new();
    let w = g.variable(1.0f32, "w").expect("w");
    let err = Saver::for_variables(&g, &[w.clone(), w.clone()]).expect_err("twice");
    assert_error(&err, Code::InvalidArgument, &["same name: w"]);

    let other = Graph::new();
    let foreign = other.variable(1.0f32, "foreign").expect("foreign");
    let err = Saver::for_variables(&g, &[foreign]).expect_err("other graph");
    assert_error(&err, Code::InvalidArgument, &["foreign"]);

    let s = g.variable(Tensor::from("text"), "s").expect("string variable");
    let err = Saver::for_variables(&g, &[s]).expect_err("string");
    assert_error(&err, Code::Unimplemented, &["s", "string"]);
}
