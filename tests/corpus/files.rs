//! Files: corrupt, truncated, empty and garbage checkpoints and GraphDefs, and checkpoints
//! whose values do not fit the variables (shape, dtype, a missing key).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{err, mismatch, ok, Case};
use wgflow::train::Saver;
use wgflow::{Code, ConfigProto, Graph, ImportOptions, Result, Session, Tensor};

/// A fresh directory for one run of one case.
fn scratch() -> Result<PathBuf> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "wgflow-corpus-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| wgflow::Error::internal(e.to_string()))?;
    Ok(dir)
}

/// A graph with the variable `w` of `init`, its session (initialized) and its saver.
fn saved(c: &ConfigProto, init: Tensor) -> Result<(Graph, Session, Saver)> {
    let g = Graph::new();
    g.variable(init, "w")?;
    let s = Session::new(&g, c.clone())?;
    s.run(&[g.global_variables_initializer()?])?;
    let saver = Saver::new(&g)?;
    Ok((g, s, saver))
}

/// A valid checkpoint of `w = [1, 2, 3, 4]`, its bytes changed by `damage`, restored.
fn damaged(name: &str, code: Code, damage: fn(Vec<u8>) -> Vec<u8>) -> Case {
    err(name, code, move |c| {
        let dir = scratch()?;
        let (_, s, mut saver) = saved(c, Tensor::from(vec![1.0f32, 2.0, 3.0, 4.0]))?;
        let path = saver.save(&s, dir.join("model"), None)?;
        let bytes = std::fs::read(&path).map_err(|e| wgflow::Error::internal(e.to_string()))?;
        std::fs::write(&path, damage(bytes)).map_err(|e| wgflow::Error::internal(e.to_string()))?;
        let result = saver.restore(&s, &path);
        let _ = std::fs::remove_dir_all(&dir);
        result
    })
}

/// A checkpoint of `from`, restored into a variable of `into`.
fn mismatched(name: &str, code: Code, from: fn() -> Tensor, into: fn() -> Tensor) -> Case {
    err(name, code, move |c| {
        let dir = scratch()?;
        let (_, s, mut saver) = saved(c, from())?;
        let path = saver.save(&s, dir.join("model"), None)?;
        let (_, s2, saver2) = saved(c, into())?;
        let result = saver2.restore(&s2, &path);
        let _ = std::fs::remove_dir_all(&dir);
        result
    })
}

/// Imports `bytes` into a new graph.
fn import(bytes: &[u8]) -> Result<Graph> {
    let g = Graph::new();
    g.import_graph_def(bytes, &ImportOptions::default())?;
    Ok(g)
}

fn sample(file: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/graphdefs").join(file)).unwrap_or_default()
}

/// A GraphDef case: `bytes()` imported must fail with `code`.
fn graphdef(name: &str, code: Code, bytes: fn() -> Vec<u8>) -> Case {
    err(name, code, move |_| import(&bytes()).map(|_| ()))
}

/// Protobuf bytes of a GraphDef with the given nodes (name, op, inputs), hand-encoded.
fn nodes(list: &[(&str, &str, &[&str])]) -> Vec<u8> {
    fn field(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let mut n = body.len();
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            out.push(if n > 0 { byte | 0x80 } else { byte });
            if n == 0 {
                break;
            }
        }
        out.extend_from_slice(body);
        out
    }
    let mut out = Vec::new();
    for (name, op, inputs) in list {
        let mut node = field(0x0a, name.as_bytes());
        node.extend(field(0x12, op.as_bytes()));
        for i in *inputs {
            node.extend(field(0x1a, i.as_bytes()));
        }
        out.extend(field(0x0a, &node));
    }
    out
}

pub fn cases() -> Vec<Case> {
    use Code::{DataLoss, InvalidArgument as Inv, NotFound, Unimplemented};
    let v4 = || Tensor::from(vec![1.0f32, 2.0, 3.0, 4.0]);
    vec![
        err("restore of a missing checkpoint", NotFound, |c| {
            let (_, s, saver) = saved(c, Tensor::from(vec![1.0f32]))?;
            saver.restore(&s, scratch()?.join("nothing-here"))
        }),
        damaged("restore of an empty checkpoint", DataLoss, |_| Vec::new()),
        damaged("restore of a garbage checkpoint", DataLoss, |b| b.iter().map(|x| x ^ 0x5a).collect()),
        damaged("restore of a truncated checkpoint", DataLoss, |mut b| {
            b.truncate(b.len() - 3);
            b
        }),
        damaged("restore of a checkpoint cut in its header", DataLoss, |mut b| {
            b.truncate(12);
            b
        }),
        damaged("restore of a header claiming 2^60 bytes", DataLoss, |mut b| {
            b[..8].copy_from_slice(&(1u64 << 60).to_le_bytes());
            b
        }),
        mismatched("restore into another shape", Inv, v4, || {
            Tensor::from_f32(&[2, 2], vec![0.0; 4]).unwrap_or_else(|_| Tensor::from(0.0f32))
        }),
        mismatched("restore into another dtype", Inv, v4, || Tensor::from(vec![0i32; 4])),
        mismatched("restore into a longer variable", Inv, v4, || Tensor::from(vec![0.0f32; 5])),
        err("restore of a checkpoint without the variable", NotFound, |c| {
            let dir = scratch()?;
            let g = Graph::new();
            g.variable(Tensor::from(vec![1.0f32]), "other")?;
            let s = Session::new(&g, c.clone())?;
            s.run(&[g.global_variables_initializer()?])?;
            let path = Saver::new(&g)?.save(&s, dir.join("model"), None)?;
            let (_, s2, saver) = saved(c, Tensor::from(vec![1.0f32]))?;
            saver.restore(&s2, &path)
        }),
        ok("a failed restore leaves the variables as they were", |c| {
            let dir = scratch()?;
            let (g, s, mut saver) = saved(c, Tensor::from(vec![1.0f32, 2.0]))?;
            let path = saver.save(&s, dir.join("model"), None)?;
            std::fs::write(&path, b"not a checkpoint").map_err(|e| wgflow::Error::internal(e.to_string()))?;
            if saver.restore(&s, &path).is_ok() {
                return Err(mismatch("garbage restored"));
            }
            let w = g.tensor_by_name("w:0")?;
            super::expect_eq(&s.eval(&w)?, &Tensor::from(vec![1.0f32, 2.0]))
        }),
        graphdef("GraphDef of garbage bytes", Inv, || sample("garbage.pb")),
        graphdef("GraphDef truncated", Inv, || sample("truncated.pb")),
        graphdef("GraphDef with an unsupported op", Unimplemented, || sample("unsupported_op.pb")),
        graphdef("GraphDef of random bytes", Inv, || {
            (0..200u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect()
        }),
        graphdef("GraphDef cut inside a node", Inv, || {
            let mut b = sample("mlp_frozen.pb");
            b.truncate(b.len() / 2);
            b
        }),
        graphdef("GraphDef with a duplicate node name", Inv, || nodes(&[("a", "NoOp", &[]), ("a", "NoOp", &[])])),
        graphdef("GraphDef with a missing input", Inv, || nodes(&[("a", "Identity", &["nope"])])),
        graphdef("GraphDef with a cycle", Inv, || nodes(&[("a", "Identity", &["b"]), ("b", "Identity", &["a"])])),
        graphdef("GraphDef with an unknown op type", Unimplemented, || nodes(&[("a", "FancyOp", &[])])),
        graphdef("GraphDef with a bad input index", Inv, || nodes(&[("a", "NoOp", &[]), ("b", "Identity", &["a:x"])])),
        graphdef("GraphDef with an input past the outputs", Inv, || {
            nodes(&[("a", "NoOp", &[]), ("b", "Identity", &["a:3"])])
        }),
        ok("an empty GraphDef is an empty graph", |_| match import(&[])?.len() {
            0 => Ok(()),
            n => Err(mismatch(format!("{n} nodes"))),
        }),
        err("a missing .pb file", NotFound, |_| Graph::from_pb_file(scratch()?.join("none.pb")).map(|_| ())),
    ]
}
