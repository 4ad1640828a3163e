//! Mutated model files: whatever the bytes, importing them gives a graph or an error, never
//! a panic (and never an allocation sized from an unchecked field: the host allocation limit
//! is set low, so one would surface as a failed allocation instead of a passing test).

use std::path::PathBuf;

use proptest::prelude::*;
use wgflow::{Graph, ImportOptions};

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/graphdefs").join(name)).expect("sample")
}

/// One mutation of a file: bytes overwritten, a cut, or bytes inserted.
#[derive(Clone, Debug)]
enum Mutation {
    Set(usize, u8),
    Cut(usize),
    Insert(usize, Vec<u8>),
}

fn apply(mut bytes: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let n = bytes.len().max(1);
        match m {
            Mutation::Set(at, v) => {
                if let Some(b) = bytes.get_mut(at % n) {
                    *b = *v;
                }
            }
            Mutation::Cut(at) => bytes.truncate(at % n),
            Mutation::Insert(at, v) => {
                let at = (at % n).min(bytes.len());
                bytes.splice(at..at, v.iter().copied());
            }
        }
    }
    bytes
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        6 => (any::<usize>(), any::<u8>()).prop_map(|(a, v)| Mutation::Set(a, v)),
        1 => any::<usize>().prop_map(Mutation::Cut),
        2 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..12)).prop_map(|(a, v)| Mutation::Insert(a, v)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn mutated_files_import_or_fail_cleanly(
        file in prop::sample::select(vec!["mlp_frozen.pb", "cnn_frozen.pb", "op_zoo.pb", "variables.pb", "mobilenet_v2_frozen.pb"]),
        muts in proptest::collection::vec(mutation(), 1..6),
    ) {
        wgflow::tensor::set_host_allocation_limit(Some(256 << 20));
        let bytes = apply(sample(file), &muts);
        let g = Graph::new();
        let _ = g.import_graph_def(&bytes, &ImportOptions::default());
    }
}
