//! Differential testing: proptest generates random float32 graphs from every op family, runs
//! each on the CPU without fusion (the reference), the CPU with fusion (TF's remapping), and,
//! when there is a GPU, the GPU with and without fusion, and compares every result with the
//! reference. `differential_graphs` runs 500 graphs (CI); the ignored `ten_thousand_graphs`
//! runs 10,000 (`cargo test --release --test differential -- --ignored`). A mismatch fails
//! with proptest's shrunk case: the node list with shapes and attributes, and the input seed.
//!
//! Families (`differential/gen*.rs`): elementwise chains (two inputs of complementary
//! broadcast patterns, then unary ops, binary ops with fresh inputs of every broadcast
//! pattern, div, log/sqrt/rsqrt/exp/pow on inputs in their domains, and nodes read twice);
//! matmul, batched with broadcast batch dimensions and transposes, alone or with a
//! bias_add + relu/relu6/add/tanh epilogue; reduce sum/mean/max over random axes (negative
//! ones too) with and without keepdims, softmax, bias_add, argmax; chains of reshape,
//! transpose, concat, pad, slice, strided_slice (negative strides and indices), tile and
//! gather, ending in argmax or an elementwise step; conv2d and depthwise_conv2d with random
//! strides, SAME/VALID padding and dilation, with or without an epilogue; max_pool and
//! avg_pool. One dimension of most shapes takes an odd size (1, 3, 7, 63, 65, 129, 1023,
//! 1025). Values (`differential/values.rs`): mixed signs with zeros and magnitudes in
//! [1e-3, 1e3]; a quarter of the graphs add ±1e-30 and ±1e20; positive inputs for
//! log/sqrt/rsqrt/pow, nonzero denominators, [-8, 8] for exp and exponents, small integers
//! (ties) for argmax and max_pool.
//!
//! Tolerances (`differential/bound.rs`): a CPU twin graph computes, element by element, a
//! bound E on how far one implementation may be from the exact result, and a result must be
//! within 2E of the reference (each is within E of the exact value). E is propagated through
//! the graph from the ops: zero (exact comparison) for the data-movement ops and the ops TF
//! computes exactly (neg, abs, relu, relu6, maximum, minimum, reduce_max, max_pool, argmax on
//! int32); each correctly rounded op adds one ulp of its value plus the smallest normal
//! float32 (a GPU may flush subnormals); a sum of k terms (matmul, conv2d, reduce_sum/mean,
//! avg_pool) adds (k + 2) ulps of the sum of the |terms| (computed by the same op on the
//! absolute values), the worst case of any summation order; exp, pow and sigmoid add the
//! ulps WGSL allows (3 + 2|x| for exp, exp2(y log2 x) for pow), log 2^-21 + 3 ulps, tanh and
//! elu 4-8 ulps plus a few ulps absolute (near 0), sqrt/rsqrt/div 3-5 ulps; softmax a
//! relative 2·max E of its row plus (2k + 10 + 2(max - x)) ulps. Input errors propagate with
//! the ops' derivatives (|a|Eb + |b|Ea + EaEb for mul, and so on). Non-finite values must
//! match exactly; elements whose bound overflowed only compare their non-finite values.

mod common;

#[path = "differential/bound.rs"]
mod bound;
#[path = "differential/build.rs"]
mod build;
#[path = "differential/case.rs"]
mod case;
#[path = "differential/check.rs"]
mod check;
#[path = "differential/gen.rs"]
mod gen;
#[path = "differential/gen_shape.rs"]
mod gen_shape;
#[path = "differential/values.rs"]
mod values;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

fn graphs() -> impl Strategy<Value = case::Case> {
    prop_oneof![
        3 => gen::elementwise(),
        2 => gen::matmul(),
        2 => gen::reduce(),
        3 => gen_shape::shape_ops(),
        3 => gen_shape::conv(),
    ]
}

/// Runs `cases` graphs; panics with the shrunk reproducer on a mismatch.
/// `WGFLOW_DIFF_CASES` overrides the count (for a quick local run).
fn run(cases: u32) {
    let cases = std::env::var("WGFLOW_DIFF_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(cases);
    let gpu = common::gpu_ready();
    let start = Instant::now();
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let totals = RefCell::new((0usize, check::Counts::default(), BTreeMap::<&str, usize>::new()));
    let result = runner.run(&graphs(), |case| {
        let counts = check::check(&case, gpu).map_err(TestCaseError::fail)?;
        let mut t = totals.borrow_mut();
        t.0 += 1;
        t.1.comparisons += counts.comparisons;
        t.1.unbounded += counts.unbounded;
        t.1.gpu_on_cpu += counts.gpu_on_cpu;
        t.1.worst = t.1.worst.max(counts.worst);
        *t.2.entry(case.family).or_default() += 1;
        Ok(())
    });
    let (graphs, counts, families) = totals.into_inner();
    let configs = if gpu { 4 } else { 2 };
    match result {
        Ok(()) => println!(
            "differential: {graphs} graphs x {configs} configs, {} comparisons with the CPU-unfused reference, \
             0 mismatches in {:.1}s ({} elements with an overflowed bound, {} GPU runs placed a node on the CPU; at most {:.3} of a bound used)\n  \
             families: {families:?}",
            counts.comparisons,
            start.elapsed().as_secs_f64(),
            counts.unbounded,
            counts.gpu_on_cpu,
            counts.worst,
        ),
        Err(TestError::Fail(reason, case)) => {
            panic!("differential mismatch: {reason}\nshrunk reproducer: {case:?}")
        }
        Err(e) => panic!("differential: {e}"),
    }
}

#[test]
fn differential_graphs() {
    run(500);
}

#[test]
#[ignore = "10,000 graphs: run with --release -- --ignored"]
fn ten_thousand_graphs() {
    run(10_000);
}
