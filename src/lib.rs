//! # wgflow
//!
//! TensorFlow 1's Graph/Session model in Rust: build a graph once, run it many times in
//! sessions that hold the values. Kernels run on the CPU (ndarray) and, through `wgpu` and
//! WGSL compute shaders, on any GPU.
//!
//! ```
//! use wgflow::{ConfigProto, Graph, Session, Tensor};
//!
//! # fn main() -> wgflow::Result<()> {
//! let g = Graph::new();
//! let v = g.variable(42.0f32, "v")?;
//! let y = (v.value() * 2.0f32)?;
//! let init = g.global_variables_initializer()?;
//!
//! let sess = Session::new(&g, ConfigProto::cpu_only())?;
//! sess.run(&[&init])?;
//! assert_eq!(sess.eval(&y)?, Tensor::from(84.0f32));
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

#[cfg(feature = "mpi")]
pub mod distributed;
pub mod error;
pub mod gpu;
pub mod gradients;
pub mod graph;
pub mod graphdef;
pub mod ops;
pub mod placement;
mod runtime;
pub mod session;
pub mod tensor;
#[cfg(feature = "test-hooks")]
pub mod testing;
pub mod train;

pub use error::{Code, Error, Result};
pub use graph::{Graph, Operand, Operation, Output, ScopeGuard, Variable};
pub use graphdef::ImportOptions;
pub use ops::{BinaryKind, Padding, SliceSpec, UnaryKind};
pub use placement::{CostModel, DeviceId, DeviceKind, DeviceModel, PlacementPolicy};
pub use session::{
    ConfigProto, DeviceAttributes, FeedKey, Fetch, GpuOptions, GraphOptions, NodeStats, RunMetadata, RunOptions,
    Session, SessionStats, TraceLevel, TransferBytes, VirtualDevices,
};
pub use tensor::{DType, Shape, Tensor, TensorSpec};
