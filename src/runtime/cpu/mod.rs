//! The CPU kernels the ops call: the SIMD GEMM ([`gemm`]), `Conv2D`'s geometry ([`conv`]) and
//! im2col kernel (`im2col`) and direct AVX-512 kernel (`conv_direct`), depthwise kernel (`depthwise`), its gradients ([`conv_grad`]), the pools ([`pool`],
//! [`pool_grad`]), the recycled host buffers ([`recycle`]), streaming stores for huge outputs ([`stream`]) and the row-major layout helpers
//! they share (`layout`).

pub(crate) mod conv;
mod conv_direct;
pub(crate) mod conv_grad;
mod conv_grad_grouped;
mod depthwise;
pub(crate) mod gemm;
mod im2col;
mod layout;
mod microkernel;
pub(crate) mod pool;
pub(crate) mod pool_grad;
pub(crate) mod recycle;
pub(crate) mod stream;
