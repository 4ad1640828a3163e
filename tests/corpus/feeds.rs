//! Feeds and fetches: wrong shapes and dtypes, unknown and unfeedable names, tensors of
//! another graph, malformed tensor names.

use super::{err, ok, Case};
use wgflow::{Code, ConfigProto, DType, FeedKey, Fetch, Graph, Output, Result, Session, Shape, Tensor};

/// A graph with `x` (float32 placeholder of `shape`) and `y = x * 2`.
fn graph(shape: Shape) -> Result<(Graph, Output, Output)> {
    let g = Graph::new();
    let x = g.named("x").placeholder(DType::F32, shape)?;
    let y = g.named("y").mul(&x, 2.0f32)?;
    Ok((g, x, y))
}

/// Runs `fetches` with `feeds` on `y`'s graph in a new session.
fn run(c: &ConfigProto, g: &Graph, fetches: &[Fetch], feeds: &[(FeedKey, Tensor)]) -> Result<()> {
    Session::new(g, c.clone())?.run_feed(fetches, feeds).map(|_| ())
}

fn f32s(shape: &[usize]) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_f32(shape, (0..n).map(|i| i as f32).collect()).unwrap_or_else(|_| Tensor::from(0.0f32))
}

/// A feed of `value` for the placeholder `x` of shape `shape`, fetching `y`.
fn feed_case(name: &str, code: Code, shape: Shape, value: Tensor) -> Case {
    err(name, code, move |c| {
        let (g, x, y) = graph(shape.clone())?;
        run(c, &g, &[y.into()], &[(x.into(), value.clone())])
    })
}

/// A fetch of the tensor or op named `what`.
fn fetch_name(name: &str, code: Code, what: &'static str) -> Case {
    err(name, code, move |c| {
        let (g, x, _) = graph(Shape::known(&[2]))?;
        run(c, &g, &[what.into()], &[(x.into(), f32s(&[2]))])
    })
}

pub fn cases() -> Vec<Case> {
    let known = || Shape::known(&[2, 3]);
    vec![
        feed_case("feed transposed shape", Code::InvalidArgument, known(), f32s(&[3, 2])),
        feed_case("feed of another rank", Code::InvalidArgument, known(), f32s(&[6])),
        feed_case("feed of a scalar for a matrix", Code::InvalidArgument, known(), Tensor::from(1.0f32)),
        feed_case("feed with a zero dim for a known one", Code::InvalidArgument, known(), f32s(&[0, 3])),
        feed_case(
            "feed int32 for float32",
            Code::InvalidArgument,
            known(),
            Tensor::from_i32(&[2, 3], vec![1; 6]).unwrap(),
        ),
        feed_case(
            "feed float64 for float32",
            Code::InvalidArgument,
            known(),
            Tensor::from(ndarray::ArrayD::<f64>::zeros(ndarray::IxDyn(&[2, 3]))),
        ),
        feed_case(
            "feed bool for float32",
            Code::InvalidArgument,
            known(),
            Tensor::from(ndarray::ArrayD::from_elem(ndarray::IxDyn(&[2, 3]), true)),
        ),
        feed_case(
            "feed string for float32",
            Code::InvalidArgument,
            known(),
            Tensor::from(ndarray::ArrayD::from_elem(ndarray::IxDyn(&[2, 3]), String::from("a"))),
        ),
        feed_case("feed past a partial shape", Code::InvalidArgument, Shape::partial(&[None, Some(3)]), f32s(&[4, 4])),
        err("unfed placeholder", Code::InvalidArgument, |c| {
            let (g, _, y) = graph(Shape::known(&[2]))?;
            run(c, &g, &[y.into()], &[])
        }),
        err("feed of an unknown name", Code::NotFound, |c| {
            let (g, x, y) = graph(Shape::known(&[2]))?;
            run(c, &g, &[y.into()], &[(x.into(), f32s(&[2])), ("nope:0".into(), f32s(&[2]))])
        }),
        err("feed of an output past the op's outputs", Code::NotFound, |c| {
            let (g, x, y) = graph(Shape::known(&[2]))?;
            run(c, &g, &[y.into()], &[(x.into(), f32s(&[2])), ("y:3".into(), f32s(&[2]))])
        }),
        err("feed of an unfeedable tensor", Code::InvalidArgument, |c| {
            let (g, x, y) = graph(Shape::known(&[2]))?;
            g.prevent_feeding(&y)?;
            let z = g.add(&y, 1.0f32)?;
            run(c, &g, &[z.into()], &[(x.into(), f32s(&[2])), (y.into(), f32s(&[2]))])
        }),
        err("feed of a tensor of another graph", Code::InvalidArgument, |c| {
            let (g, x, y) = graph(Shape::known(&[2]))?;
            let (_, other, _) = graph(Shape::known(&[2]))?;
            run(c, &g, &[y.into()], &[(x.into(), f32s(&[2])), (other.into(), f32s(&[2]))])
        }),
        err("fetch of a tensor of another graph", Code::InvalidArgument, |c| {
            let (g, x, _) = graph(Shape::known(&[2]))?;
            let (_, _, other) = graph(Shape::known(&[2]))?;
            run(c, &g, &[other.into()], &[(x.into(), f32s(&[2]))])
        }),
        err("feed of a malformed name", Code::InvalidArgument, |c| {
            let (g, x, y) = graph(Shape::known(&[2]))?;
            run(c, &g, &[y.into()], &[(x.into(), f32s(&[2])), ("y:zero".into(), f32s(&[2]))])
        }),
        fetch_name("fetch nope:0", Code::NotFound, "nope:0"),
        fetch_name("fetch y:7 of a one-output op", Code::NotFound, "y:7"),
        fetch_name("fetch of a malformed index", Code::InvalidArgument, "y:-1"),
        fetch_name("fetch of an empty name", Code::NotFound, ""),
        fetch_name("fetch of an unknown op", Code::NotFound, "nope"),
        ok("fetch by name and op succeed", |c| {
            let (g, x, _) = graph(Shape::known(&[2]))?;
            let out = Session::new(&g, c.clone())?.run_feed(&["y:0", "y"], &[(x, f32s(&[2]))])?;
            super::expect_eq(
                out[0].as_ref().ok_or_else(|| super::mismatch("no y:0"))?,
                &Tensor::from(vec![0.0f32, 2.0]),
            )
        }),
        ok("feed of an intermediate tensor replaces it", |c| {
            let (g, x, y) = graph(Shape::known(&[2]))?;
            let z = g.add(&y, 1.0f32)?;
            let out = Session::new(&g, c.clone())?
                .run_feed(&[z], &[(x, f32s(&[2])), (y, Tensor::from(vec![5.0f32, 6.0]))])?;
            super::expect_eq(out[0].as_ref().ok_or_else(|| super::mismatch("no z"))?, &Tensor::from(vec![6.0f32, 7.0]))
        }),
    ]
}
