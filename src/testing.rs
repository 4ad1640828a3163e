//! Internal hooks for wgflow's own integration tests: the GPU runtime's pieces (context,
//! pools, streams, WGSL templates) and the op families' WGSL instantiations for the shader
//! validation test. Not a stable API.
//!
//! The module exists only with the cargo feature `test-hooks`, which `cargo test` turns on
//! through the package's dev-dependency on itself; a normal build has no such items.

pub use crate::ops::kernels_built;
pub use crate::ops::registry::instantiations;
pub use crate::runtime::gpu::context::{adapter_name, available_adapters, GpuContext, ADAPTER_ENV, TIMEOUT_ENV};
pub use crate::runtime::gpu::flags::error_flag_wgsl;
pub use crate::runtime::gpu::pipeline::Kernel;
pub use crate::runtime::gpu::pool::{size_class, BufferKind, BufferPool, HeldBytes};
pub use crate::runtime::gpu::shaders::{
    binary_vec4_wgsl, binary_wgsl, binary_wgsl_typed, broadcast_shape, broadcast_uniforms, unary_vec4_wgsl, unary_wgsl,
    unary_wgsl_typed, wgsl_scalar, ELEMENTWISE_WORKGROUP_SIZE, MAX_BROADCAST_RANK, PRELUDE,
};
pub use crate::runtime::gpu::stream::{workgroup_grid, GpuTensor, Stream};
pub use crate::runtime::gpu::GpuStats;
pub use wgpu::Features;
