//! Kernel runtimes: the CPU's (ndarray, a SIMD GEMM) and, later, the GPU's (wgpu).

pub(crate) mod cpu;
pub(crate) mod gpu;
