//! The layers import one way only, checked on the source text: `runtime/` (the CPU kernels and
//! the GPU runtime) imports nothing from `ops`, `session` or `placement`; `gradients/` imports
//! no op family (only the root items `Op` and `OpKind` of `ops`); and no file under `src/` or
//! `tests/` is over 400 lines.
//!
//! The check reads `crate::` paths, grouped `crate::{...}` imports and `super::` chains that
//! climb to the crate root, after removing `//` comments.

use std::fs;
use std::path::{Path, PathBuf};

/// The longest a source file may be.
const MAX_LINES: usize = 400;

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap_or_else(|e| panic!("reading {}: {e}", d.display())) {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The module path of a file under `src/`: `runtime/gpu/stream/mod.rs` is
/// `[runtime, gpu, stream]`, `runtime/cpu/conv.rs` is `[runtime, cpu, conv]`.
fn module_path(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src()).unwrap_or(file);
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs");
        if !matches!(stem, "mod" | "lib" | "main") {
            parts.push(stem.to_string());
        }
    }
    parts
}

/// The text without `//` comments (doc comments included).
fn code_of(text: &str) -> String {
    text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The identifier at the start of `s`.
fn ident(s: &str) -> &str {
    &s[..s.find(|c: char| !is_ident(c)).unwrap_or(s.len())]
}

/// The first path segments below the crate root that `code` (from a file at module path
/// `module`) names: `crate::X`, each top-level name of `crate::{X, Y::Z}`, and `X` in a
/// `super::` chain that climbs to the root (a chain inside an inline module such as `tests`
/// climbs one level less; counting from the file keeps the check on the safe side).
/// Each comes with the segment after it (`crate::ops::Op` gives `("ops", "Op")`) and with
/// every name of a group after it (`crate::ops::{A, b::C}` gives `A` and `b`).
fn root_paths(code: &str, module: &[String]) -> Vec<(String, Vec<String>)> {
    let mut found = Vec::new();
    let follows_ident = |i: usize| code[..i].chars().next_back().is_some_and(is_ident);
    for (i, _) in code.match_indices("crate::").filter(|(i, _)| !follows_ident(*i)) {
        found.extend(paths_after(&code[i + "crate::".len()..]));
    }
    for (i, _) in code.match_indices("super::").filter(|(i, _)| !follows_ident(*i)) {
        if i >= 7 && &code[i - 7..i] == "super::" {
            continue; // The start of the chain is counted once.
        }
        let mut rest = &code[i..];
        let mut depth = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            depth += 1;
            rest = r;
        }
        if depth >= module.len() {
            found.extend(paths_after(rest));
        }
    }
    found
}

/// The top-level segments of a path (or group of paths) at the start of `s`, each with the
/// segments right after it.
fn paths_after(s: &str) -> Vec<(String, Vec<String>)> {
    match s.strip_prefix('{') {
        Some(group) => top_level_items(group).into_iter().flat_map(|item| paths_after(item.trim())).collect(),
        None => {
            let head = ident(s);
            if head.is_empty() {
                return Vec::new();
            }
            let rest = s[head.len()..].trim_start();
            let next = match rest.strip_prefix("::") {
                Some(r) if r.trim_start().starts_with('{') => {
                    let inner = r.trim_start().trim_start_matches('{');
                    top_level_items(inner).iter().map(|item| ident(item.trim()).to_string()).collect()
                }
                Some(r) => vec![ident(r.trim_start()).to_string()],
                None => Vec::new(),
            };
            vec![(head.to_string(), next)]
        }
    }
}

/// The comma-separated items of a `{...}` group whose opening brace is already consumed, up to
/// its closing brace.
fn top_level_items(s: &str) -> Vec<&str> {
    let (mut depth, mut start, mut items) = (0usize, 0usize, Vec::new());
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&s[start..i]);
                return items;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&s[start..]);
    items
}

/// The files under `src/<layer>/` and the root segments of each, as `(file, segment, next)`.
fn imports_of(layer: &str) -> Vec<(PathBuf, String, Vec<String>)> {
    let dir = src().join(layer);
    assert!(dir.is_dir(), "{} is not a directory", dir.display());
    let mut out = Vec::new();
    for file in rust_files(&dir) {
        let text = fs::read_to_string(&file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        for (head, next) in root_paths(&code_of(&text), &module_path(&file)) {
            out.push((file.clone(), head, next));
        }
    }
    out
}

#[test]
fn the_runtime_imports_no_op_session_or_placement() {
    let bad: Vec<String> = imports_of("runtime")
        .into_iter()
        .filter(|(_, head, _)| matches!(head.as_str(), "ops" | "session" | "placement"))
        .map(|(file, head, _)| format!("{} uses crate::{head}", file.display()))
        .collect();
    assert!(bad.is_empty(), "the runtime layer must not import from above it:\n{}", bad.join("\n"));
}

#[test]
fn gradients_import_no_op_family() {
    let bad: Vec<String> = imports_of("gradients")
        .into_iter()
        .filter(|(_, head, next)| head == "ops" && next.iter().any(|n| !matches!(n.as_str(), "Op" | "OpKind")))
        .map(|(file, _, next)| format!("{} uses crate::ops::{{{}}}", file.display(), next.join(", ")))
        .collect();
    assert!(bad.is_empty(), "gradients/ may use only crate::ops::{{Op, OpKind}}:\n{}", bad.join("\n"));
}

#[test]
fn no_source_or_test_file_is_over_400_lines() {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let long: Vec<String> = rust_files(&src())
        .into_iter()
        .chain(rust_files(&tests))
        .filter_map(|f| {
            let n = fs::read_to_string(&f).map(|t| t.lines().count()).unwrap_or(0);
            (n > MAX_LINES).then(|| format!("{} has {n} lines", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "files over {MAX_LINES} lines:\n{}", long.join("\n"));
}

/// The reader finds the forms of import the checks rely on.
#[test]
fn the_reader_finds_every_form_of_root_path() {
    let module: Vec<String> = ["runtime", "cpu", "conv"].iter().map(|s| s.to_string()).collect();
    let heads = |code: &str| -> Vec<(String, Vec<String>)> { root_paths(&code_of(code), &module) };
    let pair = |h: &str, n: &[&str]| (h.to_string(), n.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(heads("use crate::ops::Padding;"), vec![pair("ops", &["Padding"])]);
    assert_eq!(heads("use crate::{error::Result, session};"), vec![pair("error", &["Result"]), pair("session", &[])]);
    assert_eq!(heads("use crate::ops::{Op, nn::Conv};"), vec![pair("ops", &["Op", "nn"])]);
    assert_eq!(heads("use super::super::super::placement::X;"), vec![pair("placement", &["X"])]);
    assert_eq!(heads("let g = crate::ops::gpu_util::word(1);"), vec![pair("ops", &["gpu_util"])]);
    // A chain that stays inside the layer, a comment and a longer name are not root paths.
    assert!(heads("use super::super::gemm::matmul;").is_empty());
    assert!(heads("// crate::ops::Op\nlet my_crate::x = 1;").is_empty());
    assert_eq!(module_path(&src().join("runtime/gpu/stream/mod.rs")), ["runtime", "gpu", "stream"]);
}
