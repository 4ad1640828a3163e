//! Training utilities, after TF1's `tf.train`.
//!
//! [`Saver`] saves a session's variables to checkpoint files (safetensors) and restores
//! them; [`latest_checkpoint`] finds the newest checkpoint of a directory.

mod saver;

pub use saver::{latest_checkpoint, Saver};
