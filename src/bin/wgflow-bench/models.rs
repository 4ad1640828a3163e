//! Entries that run a TF model file: MobileNetV2 inference from
//! `../shared/graphdefs/mobilenet_v2_frozen.pb` (Keras, alpha 0.35, 96x96, frozen by TF 2.21),
//! imported with `Graph::import_graph_def`. `WGFLOW_MOBILENET_PB` names another copy of the
//! file. TF's side of the same runs is `scripts/tf_mobilenet.py`.

use std::path::PathBuf;

use wgflow::{Error, Graph, ImportOptions};

use crate::suite::{random, Case, Entry, Rate};

/// The model file: `WGFLOW_MOBILENET_PB`, else the shared sample beside the project.
pub fn mobilenet_path() -> PathBuf {
    match std::env::var_os("WGFLOW_MOBILENET_PB") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/graphdefs/mobilenet_v2_frozen.pb"),
    }
}

/// MobileNetV2 inference of a random batch of `batch` 96x96 RGB images, `Identity:0` fetched.
pub fn mobilenet(batch: usize) -> Entry {
    Entry {
        name: format!("MobileNetV2 0.35 96x96 inference (batch {batch})"),
        flops: 0.0,
        bytes: 0.0,
        rate: Rate::Time,
        fused: true,
        build: Box::new(move |g: &Graph| {
            let path = mobilenet_path();
            let bytes = std::fs::read(&path)
                .map_err(|e| Error::not_found(format!("{}: {e} (set WGFLOW_MOBILENET_PB)", path.display())))?;
            g.import_graph_def(&bytes, &ImportOptions::default())?;
            let input = g.tensor_by_name("input:0")?;
            let output = g.tensor_by_name("Identity:0")?;
            let x = random(&[batch, 96, 96, 3], -1.0, 1.0, 7)?;
            Ok(Case { fetches: vec![output.into()], feeds: vec![(input, x)] })
        }),
    }
}
