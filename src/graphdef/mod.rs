//! TensorFlow model files: `GraphDef` protobufs imported into wgflow graphs
//! ([`Graph::import_graph_def`](crate::Graph::import_graph_def),
//! [`Graph::from_pb_file`](crate::Graph::from_pb_file)). The messages are declared with
//! `prost` ([`proto`]), decoded values checked before anything is allocated ([`decode`]),
//! and each node added with the builder of its op ([`node`]).

mod attrs;
mod decode;
mod export;
mod freeze;
mod import;
mod node;
mod node_index;
pub mod proto;

pub use import::ImportOptions;
