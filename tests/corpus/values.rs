//! Values that must work: empty tensors through every op family (their shapes, and TF's
//! identities for empty sums, means and maxima), and NaN and infinities through the kernels.

use super::{eval, expect_eq, ok, Case};
use wgflow::{ConfigProto, Graph, Output, Padding, Result, Tensor};

fn f32s(shape: &[usize], v: Vec<f32>) -> Tensor {
    Tensor::from_f32(shape, v).unwrap_or_else(|_| Tensor::from(0.0f32))
}

fn zeros(shape: &[usize]) -> Tensor {
    f32s(shape, vec![0.0; shape.iter().product()])
}

/// A case: `build` on constants of `inputs`, whose result must equal `want`.
fn case(
    name: &str,
    inputs: Vec<Tensor>,
    want: Tensor,
    build: impl Fn(&Graph, &[Output]) -> Result<Output> + Send + Sync + 'static,
) -> Case {
    ok(name, move |c: &ConfigProto| {
        let g = Graph::new();
        let xs = inputs.iter().map(|t| g.constant(t.clone())).collect::<Result<Vec<_>>>()?;
        let y = build(&g, &xs)?;
        expect_eq(&eval(c, &g, &y)?, &want)
    })
}

const S: &[usize] = &[1, 1, 1, 1];
const INF: f32 = f32::INFINITY;
const NAN: f32 = f32::NAN;

pub fn cases() -> Vec<Case> {
    let e03 = || zeros(&[0, 3]);
    vec![
        // Empty tensors, family by family.
        case("empty add with broadcast", vec![e03(), zeros(&[3])], e03(), |g, x| g.add(&x[0], &x[1])),
        case("empty unary", vec![zeros(&[0])], zeros(&[0]), |g, x| g.exp(&x[0])),
        case("empty fused chain", vec![e03()], e03(), |g, x| g.relu(g.add(g.mul(&x[0], 2.0f32)?, 1.0f32)?)),
        case("empty matmul rows", vec![e03(), zeros(&[3, 2])], zeros(&[0, 2]), |g, x| {
            g.matmul(&x[0], &x[1], false, false)
        }),
        case("matmul over an empty k is zeros", vec![zeros(&[2, 0]), zeros(&[0, 3])], zeros(&[2, 3]), |g, x| {
            g.matmul(&x[0], &x[1], false, false)
        }),
        case("sum of nothing is 0", vec![zeros(&[0])], Tensor::from(0.0f32), |g, x| g.reduce_sum(&x[0], None, false)),
        case("mean of nothing is NaN", vec![zeros(&[0])], Tensor::from(NAN), |g, x| g.reduce_mean(&x[0], None, false)),
        case("max of nothing is -inf", vec![zeros(&[2, 0])], f32s(&[2], vec![-INF; 2]), |g, x| {
            g.reduce_max(&x[0], Some(&[1]), false)
        }),
        case("sum over an empty batch keeps the rest", vec![e03()], zeros(&[3]), |g, x| {
            g.reduce_sum(&x[0], Some(&[0]), false)
        }),
        case("empty softmax", vec![e03()], e03(), |g, x| g.softmax(&x[0], -1)),
        case("empty bias add", vec![e03(), zeros(&[3])], e03(), |g, x| g.bias_add(&x[0], &x[1])),
        case("empty reshape", vec![e03()], zeros(&[3, 0]), |g, x| g.reshape(&x[0], &[3, 0])),
        case("empty transpose", vec![e03()], zeros(&[3, 0]), |g, x| g.transpose(&x[0], None)),
        case(
            "concat with an empty value",
            vec![e03(), f32s(&[1, 3], vec![1.0, 2.0, 3.0])],
            f32s(&[1, 3], vec![1.0, 2.0, 3.0]),
            |g, x| g.concat(&x[..2], 0),
        ),
        case(
            "conv2d of an empty batch",
            vec![zeros(&[0, 5, 5, 2]), zeros(&[3, 3, 2, 4])],
            zeros(&[0, 5, 5, 4]),
            |g, x| g.conv2d(&x[0], &x[1], S, Padding::Same, S),
        ),
        case("max pool of an empty batch", vec![zeros(&[0, 4, 4, 1])], zeros(&[0, 2, 2, 1]), |g, x| {
            g.max_pool(&x[0], &[1, 2, 2, 1], &[1, 2, 2, 1], Padding::Valid)
        }),
        case("avg pool of an empty batch", vec![zeros(&[0, 4, 4, 1])], zeros(&[0, 2, 2, 1]), |g, x| {
            g.avg_pool(&x[0], &[1, 2, 2, 1], &[1, 2, 2, 1], Padding::Valid)
        }),
        case("pad of an empty tensor", vec![zeros(&[0, 2])], zeros(&[2, 2]), |g, x| g.pad(&x[0], &[[1, 1], [0, 0]])),
        case("tile of an empty tensor", vec![zeros(&[0, 2])], zeros(&[0, 6]), |g, x| g.tile(&x[0], &[4, 3])),
        case("gather of no indices", vec![f32s(&[2, 3], vec![1.0; 6])], e03(), |g, x| {
            g.gather(&x[0], Tensor::from_i32(&[0], vec![])?, 0)
        }),
        case("slice of nothing", vec![f32s(&[2, 3], vec![1.0; 6])], zeros(&[2, 0]), |g, x| {
            g.slice(&x[0], &[0, 1], &[2, 0])
        }),
        case(
            "argmax of empty rows",
            vec![e03()],
            Tensor::from_i32(&[0], vec![]).unwrap_or_else(|_| Tensor::from(0i32)),
            |g, x| g.argmax(&x[0], 1),
        ),
        // NaN and infinities.
        case("exp overflows to inf", vec![f32s(&[2], vec![100.0, -200.0])], f32s(&[2], vec![INF, 0.0]), |g, x| {
            g.exp(&x[0])
        }),
        case("log of 0 and of -1", vec![f32s(&[2], vec![0.0, -1.0])], f32s(&[2], vec![-INF, NAN]), |g, x| g.log(&x[0])),
        case("sqrt of -1 is NaN", vec![f32s(&[2], vec![-1.0, 4.0])], f32s(&[2], vec![NAN, 2.0]), |g, x| g.sqrt(&x[0])),
        case(
            "float division by zero",
            vec![f32s(&[3], vec![1.0, -1.0, 0.0])],
            f32s(&[3], vec![INF, -INF, NAN]),
            |g, x| g.div(&x[0], 0.0f32),
        ),
        case("inf minus inf in a sum", vec![f32s(&[3], vec![INF, -INF, 1.0])], Tensor::from(NAN), |g, x| {
            g.reduce_sum(&x[0], None, false)
        }),
        case(
            "NaN through relu and tanh",
            vec![f32s(&[3], vec![NAN, -1.0, INF])],
            f32s(&[3], vec![NAN, 0.0, 1.0]),
            |g, x| g.tanh(g.relu(&x[0])?),
        ),
        case(
            "softmax of a row with inf",
            vec![f32s(&[1, 3], vec![INF, 0.0, 1.0])],
            f32s(&[1, 3], vec![NAN, NAN, NAN]),
            |g, x| g.softmax(&x[0], -1),
        ),
        case(
            "softmax of large finite values",
            vec![f32s(&[1, 2], vec![1000.0, 1000.0])],
            f32s(&[1, 2], vec![0.5, 0.5]),
            |g, x| g.softmax(&x[0], -1),
        ),
        case(
            "NaN in a matmul row",
            vec![f32s(&[2, 2], vec![NAN, 1.0, 1.0, 1.0]), f32s(&[2, 1], vec![1.0, 1.0])],
            f32s(&[2, 1], vec![NAN, 2.0]),
            |g, x| g.matmul(&x[0], &x[1], false, false),
        ),
        case(
            "max pool of a NaN window",
            vec![f32s(&[1, 2, 2, 1], vec![NAN, 1.0, 2.0, 3.0])],
            f32s(&[1, 1, 1, 1], vec![NAN]),
            |g, x| g.max_pool(&x[0], &[1, 2, 2, 1], &[1, 2, 2, 1], Padding::Valid),
        ),
        case(
            "a subnormal result is kept",
            vec![f32s(&[1], vec![-100.0])],
            f32s(&[1], vec![(-100.0f32).exp()]),
            |g, x| g.exp(&x[0]),
        ),
        case(
            "tiny magnitudes survive",
            vec![f32s(&[2], vec![1e-38, -1e-38])],
            f32s(&[2], vec![1e-38 * 2.0, -1e-38 * 2.0]),
            |g, x| g.mul(&x[0], 2.0f32),
        ),
    ]
}
