//! Kernel runtimes: the CPU's (ndarray, a SIMD GEMM) and the GPU's (wgpu). Nothing here knows
//! an op: the ops call into these kernels, never the other way.

pub(crate) mod cpu;
pub(crate) mod gpu;
pub(crate) mod padding;
