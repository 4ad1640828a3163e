//! Builds a [`Case`] into a wgflow graph: inputs as placeholders (fed, so that no constant
//! folding hides a kernel) or as constants (the tolerance twin of `bound.rs`).

use super::case::{Bin, Case, Node, Red, Un};
use super::values;
use wgflow::{DType, Graph, Output, Padding, Result, Shape, SliceSpec, Tensor};

/// The output of one non-input node, built from the outputs `v` of the earlier nodes.
pub fn op(g: &Graph, node: &Node, v: &[Output]) -> Result<Output> {
    match node {
        Node::Input(_) => unreachable!("inputs are built by `build`"),
        Node::Unary(u, x) => unary(g, *u, &v[*x]),
        Node::Binary(b, x, y) => binary(g, *b, &v[*x], &v[*y]),
        Node::MatMul { a, b, ta, tb } => g.matmul(&v[*a], &v[*b], *ta, *tb),
        Node::Reduce { op, x, axes, keep } => match op {
            Red::Sum => g.reduce_sum(&v[*x], Some(axes), *keep),
            Red::Mean => g.reduce_mean(&v[*x], Some(axes), *keep),
            Red::Max => g.reduce_max(&v[*x], Some(axes), *keep),
        },
        Node::Softmax { x, axis } => g.softmax(&v[*x], *axis),
        Node::BiasAdd { x, bias } => g.bias_add(&v[*x], &v[*bias]),
        Node::Reshape { x, shape } => g.reshape(&v[*x], shape),
        Node::Transpose { x, perm } => g.transpose(&v[*x], Some(perm)),
        Node::Concat { xs, axis } => {
            let xs: Vec<Output> = xs.iter().map(|&i| v[i].clone()).collect();
            g.concat(&xs, *axis)
        }
        Node::Pad { x, pads } => g.pad(&v[*x], pads),
        Node::Slice { x, begin, size } => g.slice(&v[*x], begin, size),
        Node::StridedSlice { x, begin, end, strides, masks } => g.strided_slice(
            &v[*x],
            SliceSpec {
                begin: begin.clone(),
                end: end.clone(),
                strides: strides.clone(),
                begin_mask: masks[0],
                end_mask: masks[1],
                shrink_axis_mask: masks[2],
                ..Default::default()
            },
        ),
        Node::Tile { x, multiples } => g.tile(&v[*x], multiples),
        Node::Gather { x, indices, index_shape, axis } => {
            g.gather(&v[*x], Tensor::from_i32(index_shape, indices.clone())?, *axis)
        }
        Node::ArgMax { x, axis } => g.argmax(&v[*x], *axis),
        Node::Conv { x, f, depthwise, stride, same, dilation } => {
            let (s, d) = ([1, *stride, *stride, 1], [1, *dilation, *dilation, 1]);
            let p = padding(*same);
            if *depthwise {
                g.depthwise_conv2d(&v[*x], &v[*f], &s, p, &d)
            } else {
                g.conv2d(&v[*x], &v[*f], &s, p, &d)
            }
        }
        Node::Pool { x, max, k, stride, same } => {
            let (k, s, p) = ([1, *k, *k, 1], [1, *stride, *stride, 1], padding(*same));
            if *max {
                g.max_pool(&v[*x], &k, &s, p)
            } else {
                g.avg_pool(&v[*x], &k, &s, p)
            }
        }
    }
}

pub fn padding(same: bool) -> Padding {
    if same {
        Padding::Same
    } else {
        Padding::Valid
    }
}

pub fn unary(g: &Graph, u: Un, x: &Output) -> Result<Output> {
    match u {
        Un::Neg => g.neg(x),
        Un::Abs => g.abs(x),
        Un::Exp => g.exp(x),
        Un::Log => g.log(x),
        Un::Sqrt => g.sqrt(x),
        Un::Rsqrt => g.rsqrt(x),
        Un::Tanh => g.tanh(x),
        Un::Sigmoid => g.sigmoid(x),
        Un::Relu => g.relu(x),
        Un::Relu6 => g.relu6(x),
        Un::Elu => g.elu(x),
        Un::Square => g.square(x),
    }
}

pub fn binary(g: &Graph, b: Bin, x: &Output, y: &Output) -> Result<Output> {
    match b {
        Bin::Add => g.add(x, y),
        Bin::Sub => g.sub(x, y),
        Bin::Mul => g.mul(x, y),
        Bin::Div => g.div(x, y),
        Bin::Maximum => g.maximum(x, y),
        Bin::Minimum => g.minimum(x, y),
        Bin::SquaredDifference => g.squared_difference(x, y),
        Bin::Pow => g.pow(x, y),
    }
}

/// The placeholders with their values.
pub type Feeds = Vec<(Output, Tensor)>;

/// The input values of a case, one per node (`None` for the other nodes).
pub fn inputs(case: &Case) -> Vec<Option<Tensor>> {
    let nodes = case.nodes.iter().enumerate();
    nodes
        .map(|(i, (n, s))| if let Node::Input(d) = n { Some(values::input(case.seed, i, s, *d)) } else { None })
        .collect()
}

/// Builds every node of `case` into `g`: the outputs, and the feeds of the placeholders
/// (`feed`) or nothing (inputs as constants).
pub fn build(g: &Graph, case: &Case, inputs: &[Option<Tensor>], feed: bool) -> Result<(Vec<Output>, Feeds)> {
    let mut outs = Vec::new();
    let mut feeds = Vec::new();
    for (i, (node, shape)) in case.nodes.iter().enumerate() {
        let out = match (node, &inputs[i]) {
            (Node::Input(_), Some(t)) if feed => {
                let p = g.placeholder(DType::F32, Shape::known(shape))?;
                feeds.push((p.clone(), t.clone()));
                p
            }
            (Node::Input(_), Some(t)) => g.constant(t.clone())?,
            _ => op(g, node, &outs)?,
        };
        outs.push(out);
    }
    Ok((outs, feeds))
}
