//! GPU lowerings of the NN ops (float32): `Conv2D` as an implicit GEMM, `MaxPool` / `AvgPool`
//! one thread per output element, `BiasAdd` one thread per element. The run-time checks and
//! the geometry (output sizes, TF's pads) are the CPU kernels', so both devices agree.

use super::Padding;
use crate::error::{Error, Result};
use crate::ops::{cached_wgsl, GpuLowering};
use crate::runtime::cpu::conv::conv_geometry;
use crate::runtime::cpu::pool::{pool_geometry, PoolShape};
use crate::runtime::gpu::shaders::PRELUDE;
use crate::tensor::DType;

const CONV_TEMPLATE: &str = include_str!("../../../shaders/conv2d.wgsl");
const POOL_TEMPLATE: &str = include_str!("../../../shaders/pool.wgsl");
const BIAS_ADD_TEMPLATE: &str = include_str!("../../../shaders/bias_add.wgsl");

/// The workgroup size of the NN kernels.
const WG: u32 = 64;

/// A kernel from one of the NN templates: the prelude, then the template with its
/// `WORKGROUP_SIZE` replaced (tests/shaders_naga.rs instantiates them the same way).
pub(crate) fn nn_wgsl(key: &str, template: &'static str) -> Result<&'static str> {
    cached_wgsl(format!("nn {key} f32"), || {
        Ok(format!("{PRELUDE}\n{}", template.replace("WORKGROUP_SIZE", &format!("{WG}u"))))
    })
}

/// A dimension or count as a uniform word.
pub(crate) fn word(v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::resource_exhausted(format!("GPU kernel dimension {v} over 2^32")))
}

pub(crate) fn kernel(
    wgsl: &'static str,
    uniforms: Vec<u32>,
    invocations: usize,
    out: Vec<usize>,
) -> Result<GpuLowering> {
    word(out.iter().product())?;
    Ok(GpuLowering::Kernel {
        wgsl: wgsl.into(),
        uniforms,
        invocations: invocations as u64,
        workgroup_size: WG,
        out: (DType::F32, out),
    })
}

/// `Conv2D` on float32 NHWC input: one thread per 4 output channels of one group and pixel.
pub(super) fn conv2d(
    inputs: &[(DType, &[usize])],
    strides: [usize; 4],
    dilations: [usize; 4],
    padding: Padding,
) -> Option<Result<GpuLowering>> {
    let [(DType::F32, xs), (DType::F32, fs)] = inputs else {
        return None;
    };
    Some(conv2d_lowering(xs, fs, strides, dilations, padding))
}

fn conv2d_lowering(xs: &[usize], fs: &[usize], s: [usize; 4], d: [usize; 4], p: Padding) -> Result<GpuLowering> {
    let g = conv_geometry(xs, fs, s, d, p)?;
    word(xs.iter().product())?;
    word(fs.iter().product())?;
    let groups = g.in_c / g.patch_c;
    let cout_g = g.out_c / groups;
    let quads = cout_g.div_ceil(4);
    let out = vec![g.batch, g.out_h, g.out_w, g.out_c];
    let invocations = g.batch * g.out_h * g.out_w * groups * quads;
    word(invocations)?;
    let uniforms = [
        g.in_h,
        g.in_w,
        g.in_c,
        g.k_h,
        g.k_w,
        g.patch_c,
        g.out_c,
        cout_g,
        g.stride[0],
        g.stride[1],
        g.dilation[0],
        g.dilation[1],
        g.pad[0],
        g.pad[1],
        g.out_h,
        g.out_w,
        quads,
        groups,
    ]
    .into_iter()
    .map(word)
    .collect::<Result<Vec<u32>>>()?;
    kernel(nn_wgsl("conv2d", CONV_TEMPLATE)?, uniforms, invocations, out)
}

/// `MaxPool` (`max`) / `AvgPool` on float32 NHWC input.
pub(super) fn pool(
    inputs: &[(DType, &[usize])],
    max: bool,
    ksize: [usize; 4],
    strides: [usize; 4],
    padding: Padding,
) -> Option<Result<GpuLowering>> {
    let [(DType::F32, xs)] = inputs else {
        return None;
    };
    Some(pool_lowering(xs, max, ksize, strides, padding))
}

/// The checks of [`pool_geometry`] (shared with the CPU kernel), then the kernel.
fn pool_lowering(xs: &[usize], max: bool, k: [usize; 4], s: [usize; 4], padding: Padding) -> Result<GpuLowering> {
    let PoolShape { out_h, out_w, pad: [pad_h, pad_w], depth_window } = pool_geometry(xs, max, k, s, padding)?;
    let out_c = depth_window.map_or(xs[3], |kd| xs[3] / kd);
    word(xs.iter().product())?;
    let out = vec![xs[0], out_h, out_w, out_c];
    let invocations = out.iter().product();
    let uniforms =
        [xs[1], xs[2], xs[3], k[1], k[2], k[3], s[1], s[2], pad_h, pad_w, out_h, out_w, out_c, usize::from(max)]
            .into_iter()
            .map(word)
            .collect::<Result<Vec<u32>>>()?;
    kernel(nn_wgsl("pool", POOL_TEMPLATE)?, uniforms, invocations, out)
}

/// `BiasAdd` on float32: `bias` along the last dimension of `x`.
pub(super) fn bias_add(inputs: &[(DType, &[usize])]) -> Option<Result<GpuLowering>> {
    let [(DType::F32, xs), (DType::F32, bs)] = inputs else {
        return None;
    };
    Some(bias_add_lowering(xs, bs))
}

fn bias_add_lowering(xs: &[usize], bs: &[usize]) -> Result<GpuLowering> {
    super::check_bias_shapes(xs, bs)?;
    let channels = word(bs[0])?;
    kernel(nn_wgsl("bias_add", BIAS_ADD_TEMPLATE)?, vec![channels], xs.iter().product(), xs.to_vec())
}
