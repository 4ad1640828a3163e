//! The elementwise op table: one row per op with its TF type, default node name, float
//! expression (used for f32 and f64), int32 kernel where TF has one, and WGSL expression.

use ndarray::{ArcArray, ArrayD, IxDyn};

use super::cpu::{floor_div, map, truncate_div, zip_map};
use crate::error::Result;

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
            pub(super) fn zip_f32(self, a: &ArcArray<f32, IxDyn>, b: &ArcArray<f32, IxDyn>) -> Result<ArrayD<f32>> {
                match self { $(BinaryKind::$kind => { #[allow(unused_parens)] fn f($x: f32, $y: f32) -> f32 { $float } zip_map(a, b, f) },)* }
            }
            pub(super) fn zip_f64(self, a: &ArcArray<f64, IxDyn>, b: &ArcArray<f64, IxDyn>) -> Result<ArrayD<f64>> {
                match self { $(BinaryKind::$kind => { #[allow(unused_parens)] fn f($x: f64, $y: f64) -> f64 { $float } zip_map(a, b, f) },)* }
            }
            /// The float32 kernel on equal-length slices (for fused chains).
            pub(crate) fn slices_f32(self, a: &[f32], b: &[f32], out: &mut [f32]) {
                match self { $(BinaryKind::$kind => {
                    #[allow(unused_parens)] fn f($x: f32, $y: f32) -> f32 { $float }
                    out.iter_mut().zip(a.iter().zip(b)).for_each(|(o, (&x, &y))| *o = f(x, y))
                },)* }
            }
            /// [`Self::slices_f32`] into memory not yet written (a fused chain's output).
            pub(crate) fn slices_f32_into(self, a: &[f32], b: &[f32], out: &mut [std::mem::MaybeUninit<f32>]) {
                match self { $(BinaryKind::$kind => {
                    #[allow(unused_parens)] fn f($x: f32, $y: f32) -> f32 { $float }
                    out.iter_mut().zip(a.iter().zip(b)).for_each(|(o, (&x, &y))| { o.write(f(x, y)); })
                },)* }
            }
            #[allow(unused_variables)]
            pub(super) fn i32(self) -> Option<fn(i32, i32) -> i32> {
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
            pub(super) fn map_f32(self, a: &ArcArray<f32, IxDyn>) -> Result<ArrayD<f32>> {
                match self { $(UnaryKind::$kind => { fn f($x: f32) -> f32 { $float } map(a, f) },)* }
            }
            pub(super) fn map_f64(self, a: &ArcArray<f64, IxDyn>) -> Result<ArrayD<f64>> {
                match self { $(UnaryKind::$kind => { fn f($x: f64) -> f64 { $float } map(a, f) },)* }
            }
            /// The float32 kernel on equal-length slices (for fused chains).
            pub(crate) fn slices_f32(self, a: &[f32], out: &mut [f32]) {
                match self { $(UnaryKind::$kind => {
                    fn f($x: f32) -> f32 { $float }
                    out.iter_mut().zip(a).for_each(|(o, &x)| *o = f(x))
                },)* }
            }
            /// [`Self::slices_f32`] into memory not yet written (a fused chain's output).
            pub(crate) fn slices_f32_into(self, a: &[f32], out: &mut [std::mem::MaybeUninit<f32>]) {
                match self { $(UnaryKind::$kind => {
                    fn f($x: f32) -> f32 { $float }
                    out.iter_mut().zip(a).for_each(|(o, &x)| { o.write(f(x)); })
                },)* }
            }
            pub(super) fn i32(self) -> Option<fn(i32) -> i32> {
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
    Relu6Grad => "Relu6Grad", "Relu6Grad", |dy, x| if x > 0.0 && x < 6.0 { dy } else { 0.0 }, int: None,
        wgsl: "select(0.0, a, b > 0.0 && b < 6.0)";
    EluGrad => "EluGrad", "EluGrad", |dy, y| if y < 0.0 { dy * (y + 1.0) } else { dy }, int: None,
        wgsl: "select(a, a * (b + 1.0), b < 0.0)";
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
    // NaN stays NaN (clamp returns it; in WGSL both comparisons are false), as in TF.
    Relu6 => "Relu6", |x| x.clamp(0.0, 6.0), int: Some(|x| x.clamp(0, 6)),
        wgsl: "select(select(a, 6.0, a > 6.0), 0.0, a < 0.0)";
    Elu => "Elu", |x| if x < 0.0 { x.exp_m1() } else { x }, int: None, wgsl: "select(a, exp_tf(a) - 1.0, a < 0.0)";
    Square => "Square", |x| x * x, int: Some(|x: i32| x.wrapping_mul(x)), wgsl: "a * a";
    OnesLike => "OnesLike", |_x| 1.0, int: Some(|_| 1), wgsl: "1.0";
    ZerosLike => "ZerosLike", |_x| 0.0, int: Some(|_| 0), wgsl: "0.0";
}

impl BinaryKind {
    /// The WGSL expression for int32 operands, where the GPU has one.
    pub(super) fn wgsl_i32(self) -> Option<&'static str> {
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
    pub(super) fn checks_i32(self) -> bool {
        matches!(self, BinaryKind::FloorDiv | BinaryKind::TruncateDiv)
    }
}

impl UnaryKind {
    /// The WGSL expression for an int32 operand, where the GPU has one.
    pub(super) fn wgsl_i32(self) -> Option<&'static str> {
        Some(match self {
            UnaryKind::Neg => "-a",
            UnaryKind::Abs => "abs(a)",
            UnaryKind::Relu => "max(a, 0)",
            UnaryKind::Relu6 => "clamp(a, 0, 6)",
            UnaryKind::Square => "a * a",
            UnaryKind::OnesLike => "1",
            UnaryKind::ZerosLike => "0",
            _ => return None,
        })
    }
}
