//! The CI version of the soak: `wgflow-soak --seconds 30` (8 threads x 4 sessions on one graph,
//! exact per-session counters, flat RSS and GPU bytes held, 500 GPU sessions churned without
//! a byte kept), run as a user runs it: from a clean environment without `XDG_RUNTIME_DIR`,
//! where it must not print Mesa's runtime-dir warning. The README reports a 10-minute run.

mod common;

use std::process::Command;

#[test]
fn thirty_seconds_of_soak_pass_without_a_warning() {
    let gpu = common::gpu_ready();
    let out = Command::new(env!("CARGO_BIN_EXE_wgflow-soak"))
        .args(["--seconds", "30"])
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .expect("wgflow-soak runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{stdout}{stderr}");
    assert!(out.status.success(), "the soak failed");
    assert!(stdout.contains("exact counters: 32 of 32 sessions; training lowered the loss in 32"), "{stdout}");
    assert!(stdout.contains("RSS: start") && stdout.contains("(flat)"), "{stdout}");
    if gpu {
        assert!(stdout.contains("500 GPU sessions created") && stdout.contains("every byte returned"), "{stdout}");
        assert!(stdout.contains("GPU bytes held: start"), "{stdout}");
    }
    assert!(!stderr.contains("XDG_RUNTIME_DIR"), "Mesa's warning was printed: {stderr}");
}
