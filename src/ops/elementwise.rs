//! Elementwise ops with numpy broadcasting. Each op is one table row: its TF type, its
//! default node name, its float expression (used for f32 and f64), its int32 expression where
//! TF has an int32 kernel, and its WGSL expression.

use std::ops;

use ndarray::{ArcArray, ArrayD, IxDyn, Zip};
use rayon::prelude::*;

use super::{cached_wgsl, compute, shape_err, GpuLowering, InferResult, Op};
use crate::error::{invalid, Error, Result};
use crate::graph::{Graph, Operand, Output};
use crate::runtime::gpu::flags::error_flag_wgsl;
use crate::runtime::gpu::shaders as gpu_shaders;
use crate::tensor::{dims_string, DType, Shape, Tensor, TensorSpec};

/// Declares an elementwise op family: the enum, its table and its kernels.
macro_rules! binary_ops {
    ($( $kind:ident => $tf:literal, $default:literal, |$x:ident, $y:ident| $float:expr, int: $int:expr, wgsl: $wgsl:literal; )*) => {
        /// A binary elementwise op.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum BinaryKind { $( #[doc = $tf] $kind, )* }

        impl BinaryKind {
            /// Every binary op.
            pub const ALL: &'static [BinaryKind] = &[$(BinaryKind::$kind),*];
            /// TF's op type.
            pub fn tf_name(self) -> &'static str { match self { $(BinaryKind::$kind => $tf,)* } }
            /// The default node name of the builder call.
            pub fn default_name(self) -> &'static str { match self { $(BinaryKind::$kind => $default,)* } }
            /// The WGSL expression of `a` and `b`.
            pub fn wgsl(self) -> &'static str { match self { $(BinaryKind::$kind => $wgsl,)* } }
            /// The float32 kernel, monomorphised per op so that the loop vectorises.
            fn zip_f32(self, a: &ArcArray<f32, IxDyn>, b: &ArcArray<f32, IxDyn>) -> Result<ArrayD<f32>> {
                match self { $(BinaryKind::$kind => { #[allow(unused_parens)] fn f($x: f32, $y: f32) -> f32 { $float } zip_map(a, b, f) },)* }
            }
            fn zip_f64(self, a: &ArcArray<f64, IxDyn>, b: &ArcArray<f64, IxDyn>) -> Result<ArrayD<f64>> {
                match self { $(BinaryKind::$kind => { #[allow(unused_parens)] fn f($x: f64, $y: f64) -> f64 { $float } zip_map(a, b, f) },)* }
            }
            /// The float32 kernel on equal-length slices (for fused chains).
            pub(crate) fn slices_f32(self, a: &[f32], b: &[f32], out: &mut [f32]) {
                match self { $(BinaryKind::$kind => {
                    #[allow(unused_parens)] fn f($x: f32, $y: f32) -> f32 { $float }
                    out.iter_mut().zip(a.iter().zip(b)).for_each(|(o, (&x, &y))| *o = f(x, y))
                },)* }
            }
            #[allow(unused_variables)]
            fn i32(self) -> Option<fn(i32, i32) -> i32> {
                match self { $(BinaryKind::$kind => { let f: Option<fn(i32, i32) -> i32> = $int; f },)* }
            }
        }
    };
}

/// Declares the unary ops, as `binary_ops!` does.
macro_rules! unary_ops {
    ($( $kind:ident => $tf:literal, |$x:ident| $float:expr, int: $int:expr, wgsl: $wgsl:literal; )*) => {
        /// A unary elementwise op.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum UnaryKind { $( #[doc = $tf] $kind, )* }

        impl UnaryKind {
            /// Every unary op.
            pub const ALL: &'static [UnaryKind] = &[$(UnaryKind::$kind),*];
            /// TF's op type (also the default node name).
            pub fn tf_name(self) -> &'static str { match self { $(UnaryKind::$kind => $tf,)* } }
            /// The WGSL expression of `a`.
            pub fn wgsl(self) -> &'static str { match self { $(UnaryKind::$kind => $wgsl,)* } }
            /// The float32 kernel, monomorphised per op so that the loop vectorises.
            fn map_f32(self, a: &ArcArray<f32, IxDyn>) -> Result<ArrayD<f32>> {
                match self { $(UnaryKind::$kind => { fn f($x: f32) -> f32 { $float } map(a, f) },)* }
            }
            fn map_f64(self, a: &ArcArray<f64, IxDyn>) -> Result<ArrayD<f64>> {
                match self { $(UnaryKind::$kind => { fn f($x: f64) -> f64 { $float } map(a, f) },)* }
            }
            /// The float32 kernel on equal-length slices (for fused chains).
            pub(crate) fn slices_f32(self, a: &[f32], out: &mut [f32]) {
                match self { $(UnaryKind::$kind => {
                    fn f($x: f32) -> f32 { $float }
                    out.iter_mut().zip(a).for_each(|(o, &x)| *o = f(x))
                },)* }
            }
            fn i32(self) -> Option<fn(i32) -> i32> {
                match self { $(UnaryKind::$kind => { let f: Option<fn(i32) -> i32> = $int; f },)* }
            }
        }
    };
}

binary_ops! {
    Add => "AddV2", "Add", |x, y| x + y, int: Some(i32::wrapping_add), wgsl: "a + b";
    Sub => "Sub", "Sub", |x, y| x - y, int: Some(i32::wrapping_sub), wgsl: "a - b";
    Mul => "Mul", "Mul", |x, y| x * y, int: Some(i32::wrapping_mul), wgsl: "a * b";
    Div => "RealDiv", "truediv", |x, y| x / y, int: None, wgsl: "a / b";
    FloorDiv => "FloorDiv", "floordiv", |x, y| (x / y).floor(), int: Some(floor_div), wgsl: "floor(a / b)";
    TruncateDiv => "TruncateDiv", "truncatediv", |x, y| (x / y).trunc(), int: Some(truncate_div), wgsl: "trunc(a / b)";
    Maximum => "Maximum", "Maximum", |x, y| if x.is_nan() || y.is_nan() { x + y } else if x >= y { x } else { y },
        int: Some(std::cmp::max), wgsl: "select(select(b, a, a >= b), a + b, is_nan(a) || is_nan(b))";
    Minimum => "Minimum", "Minimum", |x, y| if x.is_nan() || y.is_nan() { x + y } else if x <= y { x } else { y },
        int: Some(std::cmp::min), wgsl: "select(select(b, a, a <= b), a + b, is_nan(a) || is_nan(b))";
    Pow => "Pow", "Pow", |x, y| x.powf(y), int: None, wgsl: "pow_tf(a, b)";
    SquaredDifference => "SquaredDifference", "SquaredDifference", |x, y| (x - y) * (x - y),
        int: None, wgsl: "(a - b) * (a - b)";
    // Gradient kernels, in TF's argument order.
    ReluGrad => "ReluGrad", "ReluGrad", |dy, x| if x > 0.0 { dy } else { 0.0 }, int: None, wgsl: "select(0.0, a, b > 0.0)";
    TanhGrad => "TanhGrad", "TanhGrad", |y, dy| dy * (1.0 - y * y), int: None, wgsl: "b * (1.0 - a * a)";
    SigmoidGrad => "SigmoidGrad", "SigmoidGrad", |y, dy| dy * y * (1.0 - y), int: None, wgsl: "b * a * (1.0 - a)";
    SqrtGrad => "SqrtGrad", "SqrtGrad", |y, dy| dy * 0.5 / y, int: None, wgsl: "b * 0.5 / a";
    RsqrtGrad => "RsqrtGrad", "RsqrtGrad", |y, dy| dy * -0.5 * y * y * y, int: None, wgsl: "b * -0.5 * a * a * a";
    // 1 where x == y, else 0: TF builds this mask from `Equal` and `Cast` (for max's gradient).
    EqualMask => "EqualMask", "EqualMask", |x, y| if x == y { 1.0 } else { 0.0 }, int: None, wgsl: "select(0.0, 1.0, a == b)";
}

unary_ops! {
    Neg => "Neg", |x| -x, int: Some(i32::wrapping_neg), wgsl: "-a";
    Abs => "Abs", |x| x.abs(), int: Some(i32::wrapping_abs), wgsl: "abs(a)";
    Exp => "Exp", |x| x.exp(), int: None, wgsl: "exp_tf(a)";
    Log => "Log", |x| x.ln(), int: None, wgsl: "log_tf(a)";
    Sqrt => "Sqrt", |x| x.sqrt(), int: None, wgsl: "sqrt_tf(a)";
    Rsqrt => "Rsqrt", |x| 1.0 / x.sqrt(), int: None, wgsl: "1.0 / sqrt_tf(a)";
    Tanh => "Tanh", |x| x.tanh(), int: None, wgsl: "tanh_tf(a)";
    Sigmoid => "Sigmoid", |x| 1.0 / (1.0 + (-x).exp()), int: None, wgsl: "1.0 / (1.0 + exp_tf(-a))";
    Relu => "Relu", |x| if x < 0.0 { 0.0 } else { x }, int: Some(|x| x.max(0)), wgsl: "select(a, 0.0, a < 0.0)";
    Square => "Square", |x| x * x, int: Some(|x: i32| x.wrapping_mul(x)), wgsl: "a * a";
    OnesLike => "OnesLike", |_x| 1.0, int: Some(|_| 1), wgsl: "1.0";
    ZerosLike => "ZerosLike", |_x| 0.0, int: Some(|_| 0), wgsl: "0.0";
}

impl BinaryKind {
    /// The WGSL expression for int32 operands, where the GPU has one.
    fn wgsl_i32(self) -> Option<&'static str> {
        Some(match self {
            BinaryKind::Add => "a + b",
            BinaryKind::Sub => "a - b",
            BinaryKind::Mul => "a * b",
            BinaryKind::Maximum => "max(a, b)",
            BinaryKind::Minimum => "min(a, b)",
            // These two raise the kernel's error flag on a zero divisor (shaders/error_flag.wgsl).
            BinaryKind::TruncateDiv => "truncate_div_checked(a, b)",
            BinaryKind::FloorDiv => "floor_div_checked(a, b)",
            _ => return None,
        })
    }

    /// Whether the int32 kernel checks its divisor through an error flag.
    fn checks_i32(self) -> bool {
        matches!(self, BinaryKind::FloorDiv | BinaryKind::TruncateDiv)
    }
}

impl UnaryKind {
    /// The WGSL expression for an int32 operand, where the GPU has one.
    fn wgsl_i32(self) -> Option<&'static str> {
        Some(match self {
            UnaryKind::Neg => "-a",
            UnaryKind::Abs => "abs(a)",
            UnaryKind::Relu => "max(a, 0)",
            UnaryKind::Square => "a * a",
            UnaryKind::OnesLike => "1",
            UnaryKind::ZerosLike => "0",
            _ => return None,
        })
    }
}

/// The elementwise kernel's workgroup size.
const WG: u32 = gpu_shaders::ELEMENTWISE_WORKGROUP_SIZE;

fn elementwise_kernel(wgsl: &'static str, uniforms: Vec<u32>, dtype: DType, shape: Vec<usize>) -> GpuLowering {
    let invocations = shape.iter().product::<usize>() as u64;
    GpuLowering::Kernel { wgsl: wgsl.into(), uniforms, invocations, workgroup_size: WG, out: (dtype, shape) }
}

/// The vec4 variant: four elements per thread, for operands of the output's shape.
fn vec4_kernel(wgsl: &'static str, dtype: DType, shape: Vec<usize>) -> GpuLowering {
    let invocations = (shape.iter().product::<usize>() / 4) as u64;
    GpuLowering::Kernel {
        wgsl: wgsl.into(),
        uniforms: Vec::new(),
        invocations,
        workgroup_size: WG,
        out: (dtype, shape),
    }
}

/// Whether a tensor of `shape` can be read as vec4s.
fn vec4_fits(shape: &[usize]) -> bool {
    let n: usize = shape.iter().product();
    n > 0 && n.is_multiple_of(4)
}

/// TF's `google_floor_div` for integers, with the wrapping arithmetic of its C++ (so
/// `i32::MIN / -1` is `i32::MIN`). The kernel rejects a zero divisor before this runs.
fn floor_div(x: i32, y: i32) -> i32 {
    if y == 0 {
        return 0;
    }
    let q = x.wrapping_div(y);
    if q.wrapping_mul(y) != x && ((x < 0) != (y < 0)) {
        q.wrapping_sub(1)
    } else {
        q
    }
}

/// C++'s truncating `/`, wrapping on `i32::MIN / -1`; a zero divisor is rejected before.
fn truncate_div(x: i32, y: i32) -> i32 {
    if y == 0 {
        0
    } else {
        x.wrapping_div(y)
    }
}

/// Broadcasts two static shapes with numpy's rules; `Err` holds TF's shape message.
pub(crate) fn broadcast_static(a: &Shape, b: &Shape) -> std::result::Result<Shape, String> {
    let (Some(da), Some(db)) = (a.dims(), b.dims()) else {
        return Ok(Shape::unknown());
    };
    let n = da.len().max(db.len());
    let mut out = vec![None; n];
    for i in 0..n {
        let x = if i + da.len() >= n { da[i + da.len() - n] } else { Some(1) };
        let y = if i + db.len() >= n { db[i + db.len() - n] } else { Some(1) };
        out[i] = match (x, y) {
            (Some(1), y) => y,
            (x, Some(1)) => x,
            (Some(x), Some(y)) if x == y => Some(x),
            (Some(x), Some(y)) => return Err(format!("Dimensions must be equal, but are {x} and {y}")),
            (Some(x), None) | (None, Some(x)) => Some(x),
            (None, None) => None,
        };
    }
    Ok(Shape::partial(&out))
}

/// Broadcasts two concrete shapes; the error is TF's run-time message.
pub(crate) fn broadcast_shapes(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for (i, o) in out.iter_mut().enumerate() {
        let x = if i + a.len() >= n { a[i + a.len() - n] } else { 1 };
        let y = if i + b.len() >= n { b[i + b.len() - n] } else { 1 };
        *o = match (x, y) {
            (1, y) => y,
            (x, 1) => x,
            (x, y) if x == y => x,
            _ => invalid!("Incompatible shapes: {} vs. {}", dims_string(a), dims_string(b)),
        };
    }
    Ok(out)
}

/// Elements above which CPU elementwise kernels split the work across threads.
const PARALLEL_MIN: usize = 1 << 16;

/// Fills `out` with `f` of each element of `x`, in chunks across threads for large tensors.
fn fill<T, U, F>(out: &mut [std::mem::MaybeUninit<U>], x: &[T], f: F)
where
    T: Copy + Send + Sync,
    U: Send,
    F: Fn(T) -> U + Sync,
{
    let run = |o: &mut [std::mem::MaybeUninit<U>], x: &[T]| {
        o.iter_mut().zip(x).for_each(|(o, &x)| {
            o.write(f(x));
        })
    };
    if out.len() >= PARALLEL_MIN {
        out.par_chunks_mut(PARALLEL_MIN).zip(x.par_chunks(PARALLEL_MIN)).for_each(|(o, x)| run(o, x));
    } else {
        run(out, x);
    }
}

/// Where a kernel's output vector comes from: float32 outputs reuse freed buffers
/// (`runtime::cpu::recycle`), other types are allocated; either way fallibly, with TF's
/// out-of-memory error.
trait OutputBuf: Sized + crate::tensor::HostElem {
    fn with_capacity(shape: &[usize]) -> Result<Vec<Self>> {
        crate::tensor::try_capacity(shape)
    }
}
impl OutputBuf for f32 {
    fn with_capacity(shape: &[usize]) -> Result<Vec<f32>> {
        crate::runtime::cpu::recycle::take(shape)
    }
}
impl OutputBuf for f64 {}
impl OutputBuf for i32 {}

/// A new vector for a tensor of `shape` (`n` elements, counted by the caller), each element
/// written by `write` (which must write every one).
fn collect_into<U: OutputBuf>(
    shape: &[usize],
    n: usize,
    write: impl FnOnce(&mut [std::mem::MaybeUninit<U>]),
) -> Result<Vec<U>> {
    let mut out = U::with_capacity(shape)?;
    let spare = out.spare_capacity_mut();
    if spare.len() < n {
        return Err(Error::internal("elementwise: output buffer too small"));
    }
    write(&mut spare[..n]);
    // SAFETY: `fill` and the binary loop below write every element of the slice they get.
    unsafe { out.set_len(n) };
    Ok(out)
}

/// Applies `f` elementwise with broadcasting; same-shape contiguous operands take a single
/// pass (parallel for large tensors) into an output that is never zero-filled first.
fn zip_map<T, U, F>(a: &ArcArray<T, IxDyn>, b: &ArcArray<T, IxDyn>, f: F) -> Result<ArrayD<U>>
where
    T: Copy + Send + Sync,
    U: Copy + Send + Sync + OutputBuf,
    F: Fn(T, T) -> U + Sync,
{
    let shape = broadcast_shapes(a.shape(), b.shape())?;
    if let (Some(sa), Some(sb)) = (a.as_slice(), b.as_slice()) {
        if a.shape() == b.shape() {
            let run = |o: &mut [std::mem::MaybeUninit<U>], x: &[T], y: &[T]| {
                o.iter_mut().zip(x.iter().zip(y)).for_each(|(o, (&x, &y))| {
                    o.write(f(x, y));
                })
            };
            let out = collect_into(&shape, sa.len(), |out| {
                if out.len() >= PARALLEL_MIN {
                    out.par_chunks_mut(PARALLEL_MIN)
                        .zip(sa.par_chunks(PARALLEL_MIN).zip(sb.par_chunks(PARALLEL_MIN)))
                        .for_each(|(o, (x, y))| run(o, x, y));
                } else {
                    run(out, sa, sb);
                }
            })?;
            return ArrayD::from_shape_vec(IxDyn(&shape), out).map_err(|e| Error::internal(e.to_string()));
        }
    }
    let d = IxDyn(&shape);
    let (va, vb) = match (a.broadcast(d.clone()), b.broadcast(d.clone())) {
        (Some(x), Some(y)) => (x, y),
        _ => invalid!("Incompatible shapes: {} vs. {}", dims_string(a.shape()), dims_string(b.shape())),
    };
    // The output of a broadcast can be far larger than either input: allocate it fallibly.
    let mut buf = crate::tensor::try_vec::<std::mem::MaybeUninit<U>>(U::DTYPE, &shape)?;
    buf.resize(va.len(), std::mem::MaybeUninit::uninit());
    let mut out = ArrayD::from_shape_vec(d, buf).map_err(|e| Error::internal(e.to_string()))?;
    Zip::from(&mut out).and(&va).and(&vb).for_each(|o, &x, &y| {
        o.write(f(x, y));
    });
    // SAFETY: the zip above wrote every element of `out`.
    Ok(unsafe { out.assume_init() })
}

/// Applies `f` to every element, in parallel for large tensors, into a fallibly allocated
/// output.
fn map<T, U, F>(a: &ArcArray<T, IxDyn>, f: F) -> Result<ArrayD<U>>
where
    T: Copy + Send + Sync,
    U: Copy + Send + Sync + OutputBuf,
    F: Fn(T) -> U + Sync,
{
    let out = match a.as_slice() {
        Some(s) => collect_into(a.shape(), s.len(), |out| fill(out, s, &f))?,
        None => {
            let mut out = U::with_capacity(a.shape())?;
            out.extend(a.iter().map(|&x| f(x)));
            out
        }
    };
    ArrayD::from_shape_vec(IxDyn(a.shape()), out).map_err(|e| Error::internal(e.to_string()))
}

/// A binary elementwise node.
#[derive(Debug)]
pub(crate) struct Binary(pub(crate) BinaryKind);

impl Op for Binary {
    fn elementwise(&self) -> Option<super::fused::ElemKind> {
        Some(super::fused::ElemKind::Binary(self.0))
    }
    fn gradient(&self, ctx: &crate::gradients::GradContext) -> Result<Vec<Option<Output>>> {
        self.grad(ctx)
    }
    fn type_name(&self) -> &'static str {
        self.0.tf_name()
    }
    fn infer(&self, inputs: &[TensorSpec]) -> InferResult {
        let (a, b) = (&inputs[0], &inputs[1]);
        super::same_dtype(self.0.tf_name(), ("x", a.dtype), ("y", b.dtype))?;
        check_dtype(self.0.tf_name(), a.dtype, self.0.i32().is_some())?;
        match broadcast_static(&a.shape, &b.shape) {
            Ok(shape) => Ok(vec![TensorSpec::new(a.dtype, shape)]),
            Err(msg) => shape_err!("{msg}"),
        }
    }
    fn compute(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let k = self.0;
        let out: Tensor = match (inputs[0], inputs[1]) {
            (Tensor::F32(a), Tensor::F32(b)) => k.zip_f32(a, b)?.into(),
            (Tensor::F64(a), Tensor::F64(b)) => k.zip_f64(a, b)?.into(),
            (Tensor::I32(a), Tensor::I32(b)) => {
                let f = k.i32().ok_or_else(|| no_kernel(k.tf_name(), DType::I32))?;
                if matches!(k, BinaryKind::FloorDiv | BinaryKind::TruncateDiv) && b.iter().any(|&v| v == 0) {
                    invalid!("Integer division by zero");
                }
                zip_map(a, b, f)?.into()
            }
            (a, b) => invalid!("{}: mismatched or unsupported dtypes {} and {}", k.tf_name(), a.dtype(), b.dtype()),
        };
        Ok(vec![out])
    }
    fn gpu(&self, inputs: &[(DType, &[usize])]) -> Option<Result<GpuLowering>> {
        let supported = match inputs[0].0 {
            DType::F32 => true,
            DType::I32 => self.0.wgsl_i32().is_some(),
            _ => false,
        };
        supported.then(|| self.lower(inputs[0], inputs[1]))
    }
}

impl Binary {
    fn lower(&self, a: (DType, &[usize]), b: (DType, &[usize])) -> Result<GpuLowering> {
        let k = self.0;
        let out = broadcast_shapes(a.1, b.1)?;
        let checks = a.0 == DType::I32 && k.checks_i32();
        if a.1 == b.1 && vec4_fits(a.1) && !checks {
            let expr = match a.0 {
                DType::F32 => k.wgsl(),
                _ => k.wgsl_i32().ok_or_else(|| no_kernel(k.tf_name(), a.0))?,
            };
            let dt = a.0;
            let wgsl = cached_wgsl(format!("binary vec4 {k:?} {dt}"), || gpu_shaders::binary_vec4_wgsl(expr, dt))?;
            return Ok(vec4_kernel(wgsl, a.0, out));
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

/// A unary elementwise node.
#[derive(Debug)]
pub(crate) struct Unary(pub(crate) UnaryKind);

impl Op for Unary {
    fn elementwise(&self) -> Option<super::fused::ElemKind> {
        Some(super::fused::ElemKind::Unary(self.0))
    }
    fn gradient(&self, ctx: &crate::gradients::GradContext) -> Result<Vec<Option<Output>>> {
        self.grad(ctx)
    }
    fn type_name(&self) -> &'static str {
        self.0.tf_name()
    }
    fn infer(&self, inputs: &[TensorSpec]) -> InferResult {
        check_dtype(self.0.tf_name(), inputs[0].dtype, self.0.i32().is_some())?;
        Ok(vec![inputs[0].clone()])
    }
    fn compute(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let k = self.0;
        let out: Tensor = match inputs[0] {
            Tensor::F32(a) => k.map_f32(a)?.into(),
            Tensor::F64(a) => k.map_f64(a)?.into(),
            Tensor::I32(a) => map(a, k.i32().ok_or_else(|| no_kernel(k.tf_name(), DType::I32))?)?.into(),
            other => return Err(no_kernel(k.tf_name(), other.dtype())),
        };
        Ok(vec![out])
    }
    fn gpu(&self, inputs: &[(DType, &[usize])]) -> Option<Result<GpuLowering>> {
        let k = self.0;
        let (dtype, shape) = inputs[0];
        if vec4_fits(shape) {
            let expr = match dtype {
                DType::F32 => k.wgsl(),
                DType::I32 => k.wgsl_i32()?,
                _ => return None,
            };
            let wgsl = cached_wgsl(format!("unary vec4 {k:?} {dtype}"), || gpu_shaders::unary_vec4_wgsl(expr, dtype));
            return Some(wgsl.map(|w| vec4_kernel(w, dtype, shape.to_vec())));
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

fn no_kernel(op: &str, dtype: DType) -> Error {
    Error::invalid_argument(format!(
        "Value for attr 'T' of {} is not in the list of allowed values for {op}",
        dtype.tf_enum()
    ))
}

fn check_dtype(op: &str, dtype: DType, int_ok: bool) -> Result<()> {
    match dtype {
        DType::F32 | DType::F64 => Ok(()),
        DType::I32 if int_ok => Ok(()),
        other => Err(no_kernel(op, other)),
    }
}

/// `Cast` between numeric dtypes.
#[derive(Debug)]
pub(crate) struct Cast(pub(crate) DType);

impl Op for Cast {
    fn gradient(&self, ctx: &crate::gradients::GradContext) -> Result<Vec<Option<Output>>> {
        self.grad(ctx)
    }
    fn type_name(&self) -> &'static str {
        "Cast"
    }
    fn attrs(&self) -> Vec<(&'static str, super::Attr)> {
        vec![("DstT", super::Attr::Type(self.0))]
    }
    fn infer(&self, inputs: &[TensorSpec]) -> InferResult {
        Ok(vec![TensorSpec::new(self.0, inputs[0].shape.clone())])
    }
    fn compute(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let out: Tensor = match (inputs[0], self.0) {
            (t, d) if t.dtype() == d => t.clone(),
            (Tensor::I32(a), DType::F32) => map(a, |x| x as f32)?.into(),
            (Tensor::I32(a), DType::F64) => map(a, f64::from)?.into(),
            (Tensor::F32(a), DType::I32) => map(a, |x| x as i32)?.into(),
            (Tensor::F32(a), DType::F64) => map(a, f64::from)?.into(),
            (Tensor::F64(a), DType::F32) => map(a, |x| x as f32)?.into(),
            (Tensor::Bool(a), DType::F32) => map(a, |x| f32::from(u8::from(x)))?.into(),
            (t, d) => return Err(Error::unimplemented(format!("Cast from {} to {d} is not supported", t.dtype()))),
        };
        Ok(vec![out])
    }
}

impl Graph {
    /// A binary elementwise op by kind, with its default name.
    pub fn binary(&self, kind: BinaryKind, x: impl Into<Operand>, y: impl Into<Operand>) -> Result<Output> {
        self.add_op1(kind.default_name(), compute(Binary(kind)), vec![("x", x.into()), ("y", y.into())])
    }
    /// A unary elementwise op by kind.
    pub fn unary(&self, kind: UnaryKind, x: impl Into<Operand>) -> Result<Output> {
        self.add_op1(kind.tf_name(), compute(Unary(kind)), vec![("x", x.into())])
    }
    /// `tf.cast(x, dtype)`.
    pub fn cast(&self, x: impl Into<Operand>, dtype: DType) -> Result<Output> {
        self.add_op1("Cast", compute(Cast(dtype)), vec![("x", x.into())])
    }
    /// `tf.add(x, y)` (`AddV2`, named `Add`).
    pub fn add(&self, x: impl Into<Operand>, y: impl Into<Operand>) -> Result<Output> {
        self.binary(BinaryKind::Add, x, y)
    }
    /// `tf.subtract(x, y)`.
    pub fn sub(&self, x: impl Into<Operand>, y: impl Into<Operand>) -> Result<Output> {
        self.binary(BinaryKind::Sub, x, y)
    }
    /// `tf.multiply(x, y)`.
    pub fn mul(&self, x: impl Into<Operand>, y: impl Into<Operand>) -> Result<Output> {
        self.binary(BinaryKind::Mul, x, y)
    }
    /// `tf.divide(x, y)`: `RealDiv`; int32 inputs are cast to float64 first, as in TF.
    pub fn div(&self, x: impl Into<Operand>, y: impl Into<Operand>) -> Result<Output> {
        let (x, y) = (x.into(), y.into());
        let int = |o: &Operand| match o {
            Operand::Tensor(t) => t.dtype() == DType::I32,
            Operand::Value(v) => v.dtype() == DType::I32,
        };
        if int(&x) && int(&y) {
            let _scope = self.name_scope("truediv");
            let cx = self.cast(x, DType::F64)?;
            let cy = self.cast(y, DType::F64)?;
            let scope = self.current_scope();
            return self.named(&format!("{scope}/")).binary(BinaryKind::Div, cx, cy);
        }
        self.binary(BinaryKind::Div, x, y)
    }
    /// `tf.math.floordiv(x, y)`.
    pub fn floordiv(&self, x: impl Into<Operand>, y: impl Into<Operand>) -> Result<Output> {
        self.binary(BinaryKind::FloorDiv, x, y)
    }
    /// `tf.truncatediv(x, y)`.
    pub fn truncatediv(&self, x: impl Into<Operand>, y: impl Into<Operand>) -> Result<Output> {
        self.binary(BinaryKind::TruncateDiv, x, y)
    }
    /// `tf.maximum(x, y)` (NaN from either side propagates).
    pub fn maximum(&self, x: impl Into<Operand>, y: impl Into<Operand>) -> Result<Output> {
        self.binary(BinaryKind::Maximum, x, y)
    }
    /// `tf.minimum(x, y)` (NaN from either side propagates).
    pub fn minimum(&self, x: impl Into<Operand>, y: impl Into<Operand>) -> Result<Output> {
        self.binary(BinaryKind::Minimum, x, y)
    }
    /// `tf.pow(x, y)`.
    pub fn pow(&self, x: impl Into<Operand>, y: impl Into<Operand>) -> Result<Output> {
        self.binary(BinaryKind::Pow, x, y)
    }
    /// `tf.math.squared_difference(x, y)`.
    pub fn squared_difference(&self, x: impl Into<Operand>, y: impl Into<Operand>) -> Result<Output> {
        self.binary(BinaryKind::SquaredDifference, x, y)
    }
    /// `tf.negative(x)`.
    pub fn neg(&self, x: impl Into<Operand>) -> Result<Output> {
        self.unary(UnaryKind::Neg, x)
    }
    /// `tf.abs(x)`.
    pub fn abs(&self, x: impl Into<Operand>) -> Result<Output> {
        self.unary(UnaryKind::Abs, x)
    }
    /// `tf.exp(x)`.
    pub fn exp(&self, x: impl Into<Operand>) -> Result<Output> {
        self.unary(UnaryKind::Exp, x)
    }
    /// `tf.math.log(x)`.
    pub fn log(&self, x: impl Into<Operand>) -> Result<Output> {
        self.unary(UnaryKind::Log, x)
    }
    /// `tf.sqrt(x)`.
    pub fn sqrt(&self, x: impl Into<Operand>) -> Result<Output> {
        self.unary(UnaryKind::Sqrt, x)
    }
    /// `tf.math.rsqrt(x)`.
    pub fn rsqrt(&self, x: impl Into<Operand>) -> Result<Output> {
        self.unary(UnaryKind::Rsqrt, x)
    }
    /// `tf.tanh(x)`.
    pub fn tanh(&self, x: impl Into<Operand>) -> Result<Output> {
        self.unary(UnaryKind::Tanh, x)
    }
    /// `tf.sigmoid(x)`.
    pub fn sigmoid(&self, x: impl Into<Operand>) -> Result<Output> {
        self.unary(UnaryKind::Sigmoid, x)
    }
    /// `tf.nn.relu(x)`.
    pub fn relu(&self, x: impl Into<Operand>) -> Result<Output> {
        self.unary(UnaryKind::Relu, x)
    }
    /// `tf.square(x)`.
    pub fn square(&self, x: impl Into<Operand>) -> Result<Output> {
        self.unary(UnaryKind::Square, x)
    }
}

/// Implements a Python operator on tensors (`a + b` is named `add`, as in TF).
macro_rules! operator {
    ($trait:ident, $method:ident, $kind:ident, $name:literal) => {
        impl<R: Into<Operand>> ops::$trait<R> for &Output {
            type Output = Result<Output>;
            fn $method(self, rhs: R) -> Result<Output> {
                self.graph.named($name).binary(BinaryKind::$kind, self, rhs)
            }
        }
        impl<R: Into<Operand>> ops::$trait<R> for Output {
            type Output = Result<Output>;
            fn $method(self, rhs: R) -> Result<Output> {
                (&self).$method(rhs)
            }
        }
    };
}

operator!(Add, add, Add, "add");
operator!(Sub, sub, Sub, "sub");
operator!(Mul, mul, Mul, "mul");
operator!(Div, div, Div, "truediv");

impl ops::Neg for &Output {
    type Output = Result<Output>;
    fn neg(self) -> Result<Output> {
        self.graph.named("Neg").unary(UnaryKind::Neg, self)
    }
}
