//! GPU lowerings of the elementwise ops: the runtime's elementwise templates
//! (`runtime::gpu::shaders`) instantiated per kind and dtype, scalar or vec4.

use super::cpu::{broadcast_shapes, no_kernel};
use super::{Binary, BinaryKind, Unary, UnaryKind};
use crate::error::Result;
use crate::ops::{cached_wgsl, GpuLowering};
use crate::runtime::gpu::flags::error_flag_wgsl;
use crate::runtime::gpu::shaders as gpu_shaders;
use crate::tensor::DType;

/// The elementwise kernel's workgroup size.
const WG: u32 = gpu_shaders::ELEMENTWISE_WORKGROUP_SIZE;

fn elementwise_kernel(wgsl: &'static str, uniforms: Vec<u32>, dtype: DType, shape: Vec<usize>) -> GpuLowering {
    let invocations = shape.iter().product::<usize>() as u64;
    GpuLowering::Kernel { wgsl: wgsl.into(), uniforms, invocations, workgroup_size: WG, out: (dtype, shape) }
}

/// Whether the vec4 kernels loop over a bounded grid (`variant::grid_threads`).
fn grid_loop() -> bool {
    crate::runtime::gpu::variant::grid_threads() != usize::MAX
}

/// The vec4 variant, for operands of the output's shape: a grid-stride loop over the vec4s, on
/// at most `variant::grid_threads()` threads (more where the loop budget needs them).
fn vec4_kernel(wgsl: &'static str, dtype: DType, shape: Vec<usize>) -> Result<GpuLowering> {
    use crate::ops::gpu_passes::{MAX_LOOP_TRIPS, OVERHEAD_TRIPS};
    let n4 = shape.iter().product::<usize>() / 4;
    let cap = crate::runtime::gpu::variant::grid_threads();
    let threads = n4.min(cap.max(n4.div_ceil(MAX_LOOP_TRIPS - OVERHEAD_TRIPS)));
    Ok(GpuLowering::Kernel {
        wgsl: wgsl.into(),
        uniforms: vec![crate::ops::kernel::word(n4)?],
        invocations: threads as u64,
        workgroup_size: WG,
        out: (dtype, shape),
    })
}

/// Whether a tensor of `shape` can be read as vec4s.
fn vec4_fits(shape: &[usize]) -> bool {
    let n: usize = shape.iter().product();
    n > 0 && n.is_multiple_of(4)
}

impl Binary {
    /// The lowering for operands of these dtypes and shapes.
    pub(super) fn lower(&self, a: (DType, &[usize]), b: (DType, &[usize])) -> Result<GpuLowering> {
        let k = self.0;
        let out = broadcast_shapes(a.1, b.1)?;
        let checks = a.0 == DType::I32 && k.checks_i32();
        if a.1 == b.1 && vec4_fits(a.1) && !checks {
            let expr = match a.0 {
                DType::F32 => k.wgsl(),
                _ => k.wgsl_i32().ok_or_else(|| no_kernel(k.tf_name(), a.0))?,
            };
            let dt = a.0;
            let grid = grid_loop();
            let wgsl = cached_wgsl(format!("binary vec4 {k:?} {dt} grid {grid}"), || {
                gpu_shaders::binary_vec4_wgsl(expr, dt, grid)
            })?;
            return vec4_kernel(wgsl, a.0, out);
        }
        let wgsl = match a.0 {
            DType::F32 => cached_wgsl(format!("binary {k:?} f32"), || Ok(gpu_shaders::binary_wgsl(k.wgsl())))?,
            DType::I32 => {
                let expr = k.wgsl_i32().ok_or_else(|| no_kernel(k.tf_name(), DType::I32))?;
                cached_wgsl(format!("binary {k:?} i32"), || {
                    let kernel = gpu_shaders::binary_wgsl_typed(expr, DType::I32, DType::I32)?;
                    Ok(if checks { format!("{kernel}\n{}", error_flag_wgsl(3)) } else { kernel })
                })?
            }
            other => return Err(no_kernel(k.tf_name(), other)),
        };
        let uniforms = gpu_shaders::broadcast_uniforms(a.1, b.1, &out)?;
        Ok(elementwise_kernel(wgsl, uniforms, a.0, out))
    }
}

impl Unary {
    /// The lowering for an input of `dtype` and `shape`; `None` without a kernel for it.
    pub(super) fn lower(&self, (dtype, shape): (DType, &[usize])) -> Option<Result<GpuLowering>> {
        let k = self.0;
        if vec4_fits(shape) {
            let expr = match dtype {
                DType::F32 => k.wgsl(),
                DType::I32 => k.wgsl_i32()?,
                _ => return None,
            };
            let grid = grid_loop();
            let wgsl = cached_wgsl(format!("unary vec4 {k:?} {dtype} grid {grid}"), || {
                gpu_shaders::unary_vec4_wgsl(expr, dtype, grid)
            });
            return Some(wgsl.and_then(|w| vec4_kernel(w, dtype, shape.to_vec())));
        }
        let wgsl = match dtype {
            DType::F32 => cached_wgsl(format!("unary {k:?} f32"), || Ok(gpu_shaders::unary_wgsl(k.wgsl()))),
            DType::I32 => {
                let expr = k.wgsl_i32()?;
                cached_wgsl(format!("unary {k:?} i32"), || gpu_shaders::unary_wgsl_typed(expr, dtype, dtype))
            }
            _ => return None,
        };
        Some(wgsl.map(|w| elementwise_kernel(w, Vec::new(), dtype, shape.to_vec())))
    }
}

/// The float32 kernel of every binary and unary kind, scalar and vec4, named, for the naga
/// validation test.
pub(crate) fn instantiations() -> Result<Vec<(String, String)>> {
    let mut all = super::cast_gpu::instantiations();
    for k in BinaryKind::ALL {
        all.push((format!("elementwise.wgsl {}", k.tf_name()), gpu_shaders::binary_wgsl(k.wgsl())));
        for grid in [true, false] {
            let wgsl = gpu_shaders::binary_vec4_wgsl(k.wgsl(), DType::F32, grid)?;
            all.push((format!("elementwise_vec4.wgsl {} grid {grid}", k.tf_name()), wgsl));
        }
    }
    for k in UnaryKind::ALL {
        all.push((format!("unary.wgsl {}", k.tf_name()), gpu_shaders::unary_wgsl(k.wgsl())));
        for grid in [true, false] {
            let wgsl = gpu_shaders::unary_vec4_wgsl(k.wgsl(), DType::F32, grid)?;
            all.push((format!("unary_vec4.wgsl {} grid {grid}", k.tf_name()), wgsl));
        }
    }
    Ok(all)
}
