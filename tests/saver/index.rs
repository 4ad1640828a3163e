//! The `checkpoint` index: step suffixes, `latest_checkpoint`, and `max_to_keep`.

use super::*;

#[test]
fn step_suffix_index_file_and_latest_checkpoint() {
    let dir = TempDir::new("index");
    assert_eq!(latest_checkpoint(dir.path()).expect("no index"), None);
    let (_, _, mut saver, s) = setup("cpu", &ConfigProto::cpu_only(), 1.0);

    let plain = saver.save(&s, dir.join("model.ckpt"), None).expect("save");
    assert_eq!(plain, dir.join("model.ckpt"));
    let index = std::fs::read_to_string(dir.join("checkpoint")).expect("index");
    assert_eq!(index, "model_checkpoint_path: \"model.ckpt\"\nall_model_checkpoint_paths: \"model.ckpt\"\n");

    let stepped = saver.save(&s, dir.join("model.ckpt"), Some(1000)).expect("save");
    assert_eq!(stepped, dir.join("model.ckpt-1000"));
    let index = std::fs::read_to_string(dir.join("checkpoint")).expect("index");
    assert_eq!(
        index,
        "model_checkpoint_path: \"model.ckpt-1000\"\n\
         all_model_checkpoint_paths: \"model.ckpt\"\n\
         all_model_checkpoint_paths: \"model.ckpt-1000\"\n"
    );
    assert_eq!(latest_checkpoint(dir.path()).expect("latest"), Some(dir.join("model.ckpt-1000")));
    assert_eq!(saver.last_checkpoints(), [dir.join("model.ckpt"), dir.join("model.ckpt-1000")]);

    // Saving a step again moves it to the end and keeps one entry for it.
    saver.save(&s, dir.join("model.ckpt"), None).expect("save again");
    assert_eq!(latest_checkpoint(dir.path()).expect("latest"), Some(dir.join("model.ckpt")));
    assert_eq!(saver.last_checkpoints(), [dir.join("model.ckpt-1000"), dir.join("model.ckpt")]);

    // Nothing but the checkpoints and the index: no temporary files left behind.
    assert_eq!(dir.entries(), ["checkpoint", "model.ckpt", "model.ckpt-1000"]);

    // An index naming a file that is gone gives None (as TF); a malformed one is DataLoss.
    std::fs::remove_file(dir.join("model.ckpt")).expect("remove");
    assert_eq!(latest_checkpoint(dir.path()).expect("latest of a removed file"), None);
    for bad in ["garbage", "model_checkpoint_path: model.ckpt\n", "all_model_checkpoint_paths: \"a\"\n", ""] {
        std::fs::write(dir.join("checkpoint"), bad).expect("write index");
        let e = latest_checkpoint(dir.path()).expect_err(bad);
        assert_eq!(e.code, Code::DataLoss, "{bad:?}: {e}");
    }
}

#[test]
fn max_to_keep_deletes_the_oldest_checkpoints() {
    let dir = TempDir::new("keep");
    let (_, _, saver, s) = setup("cpu", &ConfigProto::cpu_only(), 1.0);
    let mut saver = saver.max_to_keep(2);
    let prefix = dir.join("model.ckpt");
    for step in 1..=4 {
        saver.save(&s, &prefix, Some(step)).expect("save");
    }
    assert_eq!(dir.entries(), ["checkpoint", "model.ckpt-3", "model.ckpt-4"]);
    assert_eq!(
        std::fs::read_to_string(dir.join("checkpoint")).expect("index"),
        "model_checkpoint_path: \"model.ckpt-4\"\n\
         all_model_checkpoint_paths: \"model.ckpt-3\"\n\
         all_model_checkpoint_paths: \"model.ckpt-4\"\n"
    );
    assert_eq!(saver.last_checkpoints(), [dir.join("model.ckpt-3"), dir.join("model.ckpt-4")]);
    // Re-saving a kept step deletes the other one, never the file just written.
    saver.save(&s, &prefix, Some(4)).expect("save 4 again");
    saver.save(&s, &prefix, Some(5)).expect("save 5");
    assert_eq!(dir.entries(), ["checkpoint", "model.ckpt-4", "model.ckpt-5"]);
}

#[test]
fn max_to_keep_defaults_to_five_and_zero_keeps_all() {
    let dir = TempDir::new("keep-default");
    let (g, _, mut saver, s) = setup("cpu", &ConfigProto::cpu_only(), 1.0);
    for step in 1..=6 {
        saver.save(&s, dir.join("a"), Some(step)).expect("save");
    }
    assert_eq!(dir.entries(), ["a-2", "a-3", "a-4", "a-5", "a-6", "checkpoint"]);

    for keep_all in [Saver::new(&g).expect("saver").max_to_keep(0), Saver::new(&g).expect("saver").max_to_keep(None)] {
        let dir = TempDir::new("keep-all");
        let mut saver = keep_all;
        for step in 1..=7 {
            saver.save(&s, dir.join("b"), Some(step)).expect("save");
        }
        assert_eq!(dir.entries(), ["b-1", "b-2", "b-3", "b-4", "b-5", "b-6", "b-7", "checkpoint"]);
        let index = std::fs::read_to_string(dir.join("checkpoint")).expect("index");
        assert_eq!(index.lines().count(), 8, "{index}");
    }
}
