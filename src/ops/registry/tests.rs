//! The registry names every op type the builders make, once.

use std::collections::HashSet;

use super::{family_of, FAMILIES};
use crate::{DType, Graph, Padding, Shape};

#[test]
fn no_op_type_is_named_twice() {
    let mut seen = HashSet::new();
    for family in FAMILIES {
        for t in (family.types)() {
            assert!(seen.insert(t), "{t} is named twice (again by {})", family.name);
        }
    }
}

/// A graph with an op of every family, and the gradients of it.
fn every_op() -> crate::error::Result<Graph> {
    let g = Graph::new();
    let x = g.placeholder(DType::F32, Shape::known(&[2, 4, 4, 3]))?;
    let w = g.variable(g.ones(&[3, 3, 3, 4])?, "w")?;
    let b = g.variable(g.zeros(&[4])?, "b")?;
    let conv = g.conv2d(&x, w.value(), &[1], Padding::Same, &[1])?;
    let act = g.relu(g.bias_add(&conv, b.value())?)?;
    let pooled = g.max_pool(&act, &[1, 2, 2, 1], &[1, 2, 2, 1], Padding::Valid)?;
    let avg = g.avg_pool(&pooled, &[1, 2, 2, 1], &[1, 1, 1, 1], Padding::Same)?;
    let flat = g.reshape(&avg, &[2, 16])?;
    // Built beside the loss, not on its path.
    g.concat(&[flat.clone(), flat.clone()], 1)?;
    let m = g.variable(g.ones(&[16, 5])?, "m")?;
    let logits = g.matmul(&flat, m.value(), false, false)?;
    let t = g.transpose(&logits, None)?;
    let batched = g.matmul(g.reshape(&t, &[1, 5, 2])?, g.ones(&[1, 2, 5])?, false, false)?;
    let labels = g.placeholder(DType::I32, Shape::known(&[2]))?;
    let sparse = g.sparse_softmax_cross_entropy_with_logits(&labels, &logits)?;
    let dense = g.softmax_cross_entropy_with_logits(g.softmax(&logits, -1)?, &logits)?;
    let mixed = g.add(g.reduce_mean(&sparse, None, false)?, g.reduce_sum(&dense, None, false)?)?;
    let extra = g.reduce_max(&batched, None, false)?;
    let loss = g.add(&mixed, g.cast(g.cast(&extra, DType::I32)?, DType::F32)?)?;
    let grads = g.gradients(&[loss], &[x, w.value().clone(), b.value().clone(), m.value().clone()], None)?;
    for grad in grads.into_iter().flatten() {
        g.identity(&grad)?;
    }
    Ok(g)
}

#[test]
fn every_op_type_built_is_in_the_table() {
    let g = every_op().expect("the graph builds");
    let inner = g.read();
    for node in &inner.nodes {
        let t = node.op.type_name();
        assert!(family_of(t).is_some(), "{t} (node {}) is in no family of the registry", node.name);
    }
}

/// The modules every family may use import no family: `gradients/` (the gradient API the
/// families' rules call), and the shared GPU helpers of `ops/kernel.rs`.
#[test]
fn shared_modules_import_no_family() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![root.join("ops/kernel.rs")];
    let gradients = std::fs::read_dir(root.join("gradients")).expect("src/gradients is readable");
    files.extend(gradients.filter_map(|e| e.ok().map(|e| e.path())));
    for path in files {
        let text = std::fs::read_to_string(&path).expect("a source file is readable");
        for family in FAMILIES {
            for pattern in [format!("ops::{}", family.name), format!("super::{}", family.name)] {
                let hit = text.lines().find(|l| !l.trim_start().starts_with("//") && l.contains(&pattern));
                assert!(hit.is_none(), "{} names the {} family: {hit:?}", path.display(), family.name);
            }
        }
    }
}

/// The families a family's files name (`ops::<family>` or `super::<family>`), the multi-pass
/// machinery `gpu_passes` counted as the reductions' (it is `reduce::passes`).
fn imports(family: &str) -> HashSet<&'static str> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ops").join(family);
    let mut text = String::new();
    let mut dirs = vec![dir];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).expect("a family folder is readable").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                text.push_str(&std::fs::read_to_string(&path).expect("a source file is readable"));
            }
        }
    }
    let code: Vec<&str> = text.lines().filter(|l| !l.trim_start().starts_with("//")).collect();
    let names = |name: &str| {
        code.iter().any(|l| {
            [format!("ops::{name}"), format!("super::{name}")].iter().any(|p| {
                l.match_indices(p.as_str())
                    .any(|(i, _)| !l[i + p.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_'))
            })
        })
    };
    let mut found: HashSet<&'static str> =
        FAMILIES.iter().map(|f| f.name).filter(|&n| n != family && names(n)).collect();
    if family != "reduce" && names("gpu_passes") {
        found.insert("reduce");
    }
    found
}

#[test]
fn family_imports_form_no_circle() {
    let deps: Vec<(&str, HashSet<&str>)> = FAMILIES.iter().map(|f| (f.name, imports(f.name))).collect();
    // Peel off the families that import no family left; a circle is what remains.
    let mut left: Vec<&(&str, HashSet<&str>)> = deps.iter().collect();
    while let Some(i) = left.iter().position(|(_, d)| d.iter().all(|n| !left.iter().any(|(m, _)| m == n))) {
        left.remove(i);
    }
    let circle: Vec<String> = left.iter().map(|(n, d)| format!("{n} -> {d:?}")).collect();
    assert!(circle.is_empty(), "op families import each other in a circle: {circle:?}");
}

/// Placement's cheap question, `Op::gpu_supports`, agrees with whether `Op::gpu` lowers, for
/// every op of the graph of every family, on its own input specs and with its inputs made
/// float64 or int32 (kinds with and without GPU kernels).
#[test]
fn gpu_supports_agrees_with_the_lowering() {
    let g = every_op().expect("the graph builds");
    let inner = g.read();
    let mut checked = 0;
    for node in &inner.nodes {
        let crate::ops::OpKind::Compute(op) = &node.op else { continue };
        let specs: Option<Vec<(DType, Vec<usize>)>> = node
            .inputs
            .iter()
            .map(|ep| {
                let spec = &inner.nodes[ep.node].outputs[ep.index];
                spec.shape.to_vec().map(|dims| (spec.dtype, dims))
            })
            .collect();
        let Some(specs) = specs else { continue };
        for retype in [None, Some(DType::F64), Some(DType::I32)] {
            let typed: Vec<(DType, &[usize])> =
                specs.iter().map(|(d, s)| (retype.unwrap_or(*d), s.as_slice())).collect();
            assert_eq!(
                op.gpu_supports(&typed),
                op.gpu(&typed).is_some(),
                "{} ({}) with inputs {typed:?}",
                node.name,
                op.type_name()
            );
            checked += 1;
        }
    }
    assert!(checked > 60, "only {checked} cases checked");
}
