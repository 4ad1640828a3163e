//! Training utilities, after TF1's `tf.train`.
//!
//! [`Optimizer`] adds a train op (gradient descent, momentum, Adam) to a graph.
//! [`Saver`] saves a session's variables to checkpoint files (safetensors) and restores
//! them; [`latest_checkpoint`] finds the newest checkpoint of a directory and
//! [`get_checkpoint_state`] reads its whole `checkpoint` index.

mod checkpoint_files;
mod checkpoint_index;
mod optimizer;
mod save;
mod saver;
mod tensor_codec;

pub use checkpoint_index::{get_checkpoint_state, latest_checkpoint, CheckpointState};
pub use optimizer::Optimizer;
pub use saver::Saver;
