//! The executor on the host: a plan run with the CPU device alone.

use super::super::device_cpu::Variables;
use super::super::fuse::tests::grouped;
use super::super::lower::lower;
use super::super::prune::tests::sig;
use super::*;
use crate::graph::{Graph, Output};

fn run(
    g: &Graph,
    fetches: &[&Output],
    vars: &mut Variables,
    md: Option<&mut RunMetadata>,
) -> Result<Vec<Option<Tensor>>> {
    let s = sig(g, fetches, &[]);
    let plan = lower(&g.read(), &s, &grouped(g, &s, false, true));
    let options = RunOptions { trace_level: TraceLevel::FullTrace, ..RunOptions::default() };
    execute(&plan, Vec::new(), CpuDevice::new(vars), Vec::new(), &options, md)
}

#[test]
fn the_host_runs_a_plan_assigns_variables_and_records_every_step() {
    let g = Graph::new();
    let v = g.variable(1.0f32, "v").unwrap();
    let y = g.named("y").mul(v.value(), 3.0f32).unwrap();
    let up = g.named("up").assign_add(&v, 2.0f32).unwrap();
    let mut vars = Variables::default();
    let e = run(&g, &[&y], &mut vars, None).unwrap_err();
    assert_eq!(e.message, "Attempting to use uninitialized value v");
    run(&g, &[&v.initializer().output(0).unwrap()], &mut vars, None).unwrap();
    let mut md = RunMetadata::default();
    let out = run(&g, &[&y, &up], &mut vars, Some(&mut md)).unwrap();
    // The read runs before the update, as in TF.
    assert_eq!(out, vec![Some(Tensor::from(3.0f32)), Some(Tensor::from(3.0f32))]);
    assert_eq!(run(&g, &[v.tensor()], &mut vars, None).unwrap(), vec![Some(Tensor::from(3.0f32))]);
    let names: Vec<&str> = md.step_stats.iter().map(|r| r.name.as_str()).collect();
    assert!(names.contains(&"y") && names.contains(&"up"), "{names:?}");
    assert!(md.peak_bytes.contains_key(DeviceId::CPU.full_name()));
}
