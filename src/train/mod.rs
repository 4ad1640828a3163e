//! Training utilities, after TF1's `tf.train`.
//!
//! [`Optimizer`] adds a train op (gradient descent, momentum, Adam) to a graph.
//! [`Saver`] saves a session's variables to checkpoint files (safetensors) and restores
//! them; [`latest_checkpoint`] finds the newest checkpoint of a directory.

mod optimizer;
mod saver;

pub use optimizer::Optimizer;
pub use saver::{latest_checkpoint, Saver};
