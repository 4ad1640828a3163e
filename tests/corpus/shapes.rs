//! Shapes and attributes: negative, zero and huge dims, element counts of 2^31 and 2^40,
//! incompatible reshapes, perms and axes out of range, bad strides, paddings, window sizes and
//! filter ranks, mismatched operands.

use super::{err, eval, Case};
use wgflow::{Code, ConfigProto, DType, Graph, Output, Padding, Result, Shape, SliceSpec, Tensor};

fn f32s(shape: &[usize]) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_f32(shape, (0..n).map(|i| i as f32 * 0.5 - 1.0).collect()).unwrap_or_else(|_| Tensor::from(0.0f32))
}

/// A case whose graph is `build` on constant inputs of the given shapes, evaluated.
fn with(
    name: &str,
    code: Code,
    shapes: &'static [&'static [usize]],
    build: impl Fn(&Graph, &[Output]) -> Result<Output> + Send + Sync + 'static,
) -> Case {
    err(name, code, move |c: &ConfigProto| {
        let g = Graph::new();
        let xs = shapes.iter().map(|s| g.constant(f32s(s))).collect::<Result<Vec<_>>>()?;
        let y = build(&g, &xs)?;
        eval(c, &g, &y).map(|_| ())
    })
}

/// The same, with placeholders of unknown shape fed at run time (the run-time checks).
fn fed(
    name: &str,
    code: Code,
    shapes: &'static [&'static [usize]],
    build: impl Fn(&Graph, &[Output]) -> Result<Output> + Send + Sync + 'static,
) -> Case {
    err(name, code, move |c: &ConfigProto| {
        let g = Graph::new();
        let xs = shapes.iter().map(|_| g.placeholder(DType::F32, Shape::unknown())).collect::<Result<Vec<_>>>()?;
        let y = build(&g, &xs)?;
        let feeds: Vec<(Output, Tensor)> = xs.iter().cloned().zip(shapes.iter().map(|s| f32s(s))).collect();
        wgflow::Session::new(&g, c.clone())?.run_feed(&[y], &feeds).map(|_| ())
    })
}

const S: &[usize] = &[1, 1, 1, 1];
const V: Padding = Padding::Valid;

pub fn cases() -> Vec<Case> {
    use Code::{InvalidArgument as Inv, ResourceExhausted as Oom};
    vec![
        // Sizes.
        err("tensor of 2^40 elements", Oom, |_| Tensor::try_filled(DType::F32, &[1 << 20, 1 << 20], 0.0).map(|_| ())),
        err("tensor of 2^31 elements", Oom, |_| Tensor::try_filled(DType::F32, &[1 << 31], 0.0).map(|_| ())),
        err("tensor whose count overflows", Inv, |_| {
            Tensor::try_filled(DType::F32, &[1 << 40, 1 << 40], 0.0).map(|_| ())
        }),
        err("zeros of 2^40 elements", Oom, |c| {
            let g = Graph::new();
            let z = g.zeros(&[1 << 40])?;
            eval(c, &g, &z).map(|_| ())
        }),
        err("zeros of 2^31 elements", Oom, |c| {
            let g = Graph::new();
            let z = g.zeros(&[1 << 31])?;
            eval(c, &g, &z).map(|_| ())
        }),
        err("ones of 2^31 elements plus one", Oom, |c| {
            let g = Graph::new();
            let z = g.add(g.ones(&[1 << 16, 1 << 15])?, 1.0f32)?;
            eval(c, &g, &z).map(|_| ())
        }),
        err("zeros whose count overflows", Inv, |c| {
            let g = Graph::new();
            let z = g.zeros(&[1 << 40, 1 << 40])?;
            eval(c, &g, &z).map(|_| ())
        }),
        err("fill of 2^40 elements", Oom, |c| {
            let g = Graph::new();
            let z = g.fill(&[1 << 20, 1 << 20], 1.5f32)?;
            eval(c, &g, &z).map(|_| ())
        }),
        fed("outer product of 2^31 elements", Oom, &[&[65536, 1], &[1, 32768]], |g, x| {
            g.matmul(&x[0], &x[1], false, false)
        }),
        fed("broadcast add of 2^31 elements", Oom, &[&[65536, 1], &[1, 32768]], |g, x| g.add(&x[0], &x[1])),
        with("tile to 2^40 elements", Oom, &[&[2, 2]], |g, x| g.tile(&x[0], &[1 << 19, 1 << 19])),
        with("tile whose count overflows", Inv, &[&[2, 2]], |g, x| g.tile(&x[0], &[1 << 62, 1 << 62])),
        with("pad to 2^40 elements", Oom, &[&[2, 2]], |g, x| g.pad(&x[0], &[[1 << 19, 1 << 19], [1 << 19, 0]])),
        with("reshape with a negative dim", Inv, &[&[2, 3]], |g, x| g.reshape(&x[0], &[-2, 3])),
        with("reshape with two unknown dims", Inv, &[&[2, 3]], |g, x| g.reshape(&x[0], &[-1, -1])),
        with("reshape to another size", Inv, &[&[2, 3]], |g, x| g.reshape(&x[0], &[4, 2])),
        with("reshape of 6 to a multiple of 4", Inv, &[&[2, 3]], |g, x| g.reshape(&x[0], &[-1, 4])),
        with("reshape of huge dims", Inv, &[&[2, 3]], |g, x| g.reshape(&x[0], &[1 << 40, 1 << 40])),
        fed("fed reshape to another size", Inv, &[&[2, 3]], |g, x| g.reshape(&x[0], &[5])),
        // Perms and axes.
        with("perm out of range", Inv, &[&[2, 3]], |g, x| g.transpose(&x[0], Some(&[0, 2]))),
        with("perm with a repeat", Inv, &[&[2, 3]], |g, x| g.transpose(&x[0], Some(&[1, 1]))),
        with("perm of the wrong length", Inv, &[&[2, 3]], |g, x| g.transpose(&x[0], Some(&[1, 0, 2]))),
        fed("fed perm of the wrong rank", Inv, &[&[2, 3, 4]], |g, x| g.transpose(&x[0], Some(&[1, 0]))),
        with("reduce axis out of range", Inv, &[&[2, 3]], |g, x| g.reduce_sum(&x[0], Some(&[2]), false)),
        with("reduce axis below -rank", Inv, &[&[2, 3]], |g, x| g.reduce_max(&x[0], Some(&[-3]), false)),
        with("reduce with a duplicate axis", Inv, &[&[2, 3]], |g, x| g.reduce_mean(&x[0], Some(&[1, -1]), false)),
        with("softmax axis out of range", Inv, &[&[2, 3]], |g, x| g.softmax(&x[0], 5)),
        with("argmax axis out of range", Inv, &[&[2, 3]], |g, x| g.argmax(&x[0], 2)),
        with("concat axis out of range", Inv, &[&[2, 3], &[2, 3]], |g, x| g.concat(&x[..2], 2)),
        with("concat of mismatched shapes", Inv, &[&[2, 3], &[3, 3]], |g, x| g.concat(&x[..2], 1)),
        with("concat of nothing", Inv, &[], |g, _| g.concat(&[], 0)),
        with("gather axis out of range", Inv, &[&[2, 3]], |g, x| g.gather(&x[0], Tensor::from(vec![0i32]), 2)),
        with("gather index out of range", Inv, &[&[2, 3]], |g, x| g.gather(&x[0], Tensor::from(vec![0i32, 2]), 0)),
        with("gather negative index", Inv, &[&[2, 3]], |g, x| g.gather(&x[0], Tensor::from(vec![-1i32]), 1)),
        with("tile multiples of the wrong length", Inv, &[&[2, 3]], |g, x| g.tile(&x[0], &[2])),
        with("pad of the wrong rank", Inv, &[&[2, 3]], |g, x| g.pad(&x[0], &[[1, 1]])),
        with("slice past the end", Inv, &[&[2, 3]], |g, x| g.slice(&x[0], &[0, 2], &[2, 2])),
        with("slice with a negative begin", Inv, &[&[2, 3]], |g, x| g.slice(&x[0], &[-1, 0], &[1, 1])),
        with("strided slice with a zero stride", Inv, &[&[4]], |g, x| {
            g.strided_slice(&x[0], SliceSpec { begin: vec![0], end: vec![4], strides: vec![0], ..SliceSpec::default() })
        }),
        with("strided slice shrinking past the end", Inv, &[&[4]], |g, x| {
            g.strided_slice(
                &x[0],
                SliceSpec {
                    begin: vec![7],
                    end: vec![8],
                    strides: vec![1],
                    shrink_axis_mask: 1,
                    ..SliceSpec::default()
                },
            )
        }),
        // Operands that do not fit each other.
        with("add of shapes that do not broadcast", Inv, &[&[2, 3], &[4]], |g, x| g.add(&x[0], &x[1])),
        fed("fed add of shapes that do not broadcast", Inv, &[&[2, 3], &[2]], |g, x| g.mul(&x[0], &x[1])),
        with("matmul inner dims differ", Inv, &[&[2, 3], &[4, 2]], |g, x| g.matmul(&x[0], &x[1], false, false)),
        fed("fed matmul inner dims differ", Inv, &[&[2, 3], &[2, 3]], |g, x| g.matmul(&x[0], &x[1], false, false)),
        with("matmul of a vector", Inv, &[&[3], &[3, 2]], |g, x| g.matmul(&x[0], &x[1], false, false)),
        with("bias of the wrong length", Inv, &[&[2, 3], &[4]], |g, x| g.bias_add(&x[0], &x[1])),
        with("bias of a matrix", Inv, &[&[2, 3], &[2, 3]], |g, x| g.bias_add(&x[0], &x[1])),
        with("add of float32 and an int32 tensor", Inv, &[&[2]], |g, x| {
            g.add(&x[0], g.constant(Tensor::from(vec![1i32, 2]))?)
        }),
        // Convolutions and pools.
        with("conv2d filter of rank 3", Inv, &[&[1, 5, 5, 2], &[3, 3, 2]], |g, x| g.conv2d(&x[0], &x[1], S, V, S)),
        with("conv2d input of rank 3", Inv, &[&[5, 5, 2], &[3, 3, 2, 4]], |g, x| g.conv2d(&x[0], &x[1], S, V, S)),
        with("conv2d depth mismatch", Inv, &[&[1, 5, 5, 3], &[3, 3, 2, 4]], |g, x| g.conv2d(&x[0], &x[1], S, V, S)),
        with("conv2d zero stride", Inv, &[&[1, 5, 5, 2], &[3, 3, 2, 4]], |g, x| {
            g.conv2d(&x[0], &x[1], &[1, 0, 1, 1], V, S)
        }),
        with("conv2d stride of 3 entries", Inv, &[&[1, 5, 5, 2], &[3, 3, 2, 4]], |g, x| {
            g.conv2d(&x[0], &x[1], &[1, 1, 1], V, S)
        }),
        with("conv2d batch stride", Code::Unimplemented, &[&[1, 5, 5, 2], &[3, 3, 2, 4]], |g, x| {
            g.conv2d(&x[0], &x[1], &[2, 1, 1, 1], V, S)
        }),
        with("conv2d filter larger than valid input", Inv, &[&[1, 2, 2, 2], &[3, 3, 2, 4]], |g, x| {
            g.conv2d(&x[0], &x[1], S, V, S)
        }),
        with("conv2d filter with no output channels", Inv, &[&[1, 5, 5, 2], &[3, 3, 2, 0]], |g, x| {
            g.conv2d(&x[0], &x[1], S, V, S)
        }),
        with("conv2d zero dilation", Inv, &[&[1, 5, 5, 2], &[3, 3, 2, 4]], |g, x| {
            g.conv2d(&x[0], &x[1], S, V, &[1, 0, 1, 1])
        }),
        fed("fed conv2d depth mismatch", Inv, &[&[1, 5, 5, 3], &[3, 3, 2, 4]], |g, x| g.conv2d(&x[0], &x[1], S, V, S)),
        with("max pool window of zero", Inv, &[&[1, 4, 4, 1]], |g, x| {
            g.max_pool(&x[0], &[1, 0, 2, 1], &[1, 1, 1, 1], V)
        }),
        with("avg pool window over the batch", Code::Unimplemented, &[&[1, 4, 4, 1]], |g, x| {
            g.avg_pool(&x[0], &[2, 2, 2, 1], &[1, 1, 1, 1], V)
        }),
        with("max pool of rank 3", Inv, &[&[4, 4, 1]], |g, x| g.max_pool(&x[0], &[1, 2, 2, 1], &[1, 1, 1, 1], V)),
        with("avg pool window larger than valid input", Inv, &[&[1, 2, 2, 1]], |g, x| {
            g.avg_pool(&x[0], &[1, 3, 3, 1], &[1, 1, 1, 1], V)
        }),
        with("depthwise filter channels mismatch", Inv, &[&[1, 5, 5, 3], &[3, 3, 2, 1]], |g, x| {
            g.depthwise_conv2d(&x[0], &x[1], S, V, S)
        }),
        with("xent of mismatched shapes", Inv, &[&[2, 3], &[2, 4]], |g, x| {
            g.softmax_cross_entropy_with_logits(&x[0], &x[1])
        }),
        with("sparse xent label out of range", Inv, &[&[2, 3]], |g, x| {
            g.sparse_softmax_cross_entropy_with_logits(Tensor::from(vec![0i32, 3]), &x[0])
        }),
        with("int32 division by zero", Inv, &[], |g, _| {
            g.floordiv(Tensor::from(vec![4i32, 5]), Tensor::from(vec![2i32, 0]))
        }),
    ]
}
