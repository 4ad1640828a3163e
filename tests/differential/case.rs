//! The graph description a strategy generates: a list of nodes, each reading earlier nodes by
//! index, with every node's output shape computed when it is generated (so every description
//! builds). Its `Debug` is the reproducer printed for a shrunk failure: one line per node with
//! its attributes and shapes, then the seed of the input values.

use std::fmt;

/// How the values of an input are drawn (see `values.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dist {
    /// Mixed signs, about 10% zeros, magnitudes log-uniform in [1e-3, 1e3].
    Mixed,
    /// `Mixed` with about 3% of the elements ±1e-30 (tiny) or ±1e20 (large).
    Extreme,
    /// Positive, log-uniform in [1e-3, 1e3] (log, sqrt, rsqrt, the base of pow).
    Positive,
    /// Nonzero, either sign, magnitudes log-uniform in [1e-3, 1e3] (denominators).
    NonZero,
    /// Uniform in [-8, 8] with some zeros (the argument of exp, the exponent of pow).
    Small,
    /// Small integers in [-3, 3]: many ties (argmax, max_pool, maximum).
    Ties,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Un {
    Neg,
    Abs,
    Exp,
    Log,
    Sqrt,
    Rsqrt,
    Tanh,
    Sigmoid,
    Relu,
    Relu6,
    Elu,
    Square,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bin {
    Add,
    Sub,
    Mul,
    Div,
    Maximum,
    Minimum,
    SquaredDifference,
    Pow,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Red {
    Sum,
    Mean,
    Max,
}

/// One node; `usize` fields are indices of earlier nodes.
#[derive(Clone, PartialEq)]
pub enum Node {
    Input(Dist),
    Unary(Un, usize),
    Binary(Bin, usize, usize),
    MatMul {
        a: usize,
        b: usize,
        ta: bool,
        tb: bool,
    },
    Reduce {
        op: Red,
        x: usize,
        axes: Vec<i64>,
        keep: bool,
    },
    Softmax {
        x: usize,
        axis: i64,
    },
    BiasAdd {
        x: usize,
        bias: usize,
    },
    Reshape {
        x: usize,
        shape: Vec<i64>,
    },
    Transpose {
        x: usize,
        perm: Vec<usize>,
    },
    Concat {
        xs: Vec<usize>,
        axis: i64,
    },
    Pad {
        x: usize,
        pads: Vec<[usize; 2]>,
    },
    Slice {
        x: usize,
        begin: Vec<i64>,
        size: Vec<i64>,
    },
    /// `masks`: begin_mask, end_mask, shrink_axis_mask.
    StridedSlice {
        x: usize,
        begin: Vec<i64>,
        end: Vec<i64>,
        strides: Vec<i64>,
        masks: [i64; 3],
    },
    Tile {
        x: usize,
        multiples: Vec<usize>,
    },
    Gather {
        x: usize,
        indices: Vec<i32>,
        index_shape: Vec<usize>,
        axis: i64,
    },
    ArgMax {
        x: usize,
        axis: i64,
    },
    Conv {
        x: usize,
        f: usize,
        depthwise: bool,
        stride: usize,
        same: bool,
        dilation: usize,
    },
    Pool {
        x: usize,
        max: bool,
        k: usize,
        stride: usize,
        same: bool,
    },
}

/// A generated graph: its nodes (the last is fetched) with their output shapes.
#[derive(Clone, PartialEq)]
pub struct Case {
    pub family: &'static str,
    pub nodes: Vec<(Node, Vec<usize>)>,
    /// The seed of every input's values.
    pub seed: u64,
}

impl Case {
    pub fn new(family: &'static str, seed: u64) -> Self {
        Case { family, nodes: Vec::new(), seed }
    }
    /// Appends a node with its output shape; returns its index.
    pub fn push(&mut self, node: Node, shape: Vec<usize>) -> usize {
        self.nodes.push((node, shape));
        self.nodes.len() - 1
    }
    pub fn input(&mut self, shape: Vec<usize>, dist: Dist) -> usize {
        self.push(Node::Input(dist), shape)
    }
    pub fn shape(&self, i: usize) -> &[usize] {
        &self.nodes[i].1
    }
    pub fn last(&self) -> usize {
        self.nodes.len() - 1
    }
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Input(d) => write!(f, "placeholder({d:?})"),
            Node::Unary(op, x) => write!(f, "{op:?}(n{x})"),
            Node::Binary(op, x, y) => write!(f, "{op:?}(n{x}, n{y})"),
            Node::MatMul { a, b, ta, tb } => write!(f, "matmul(n{a}, n{b}, transpose_a={ta}, transpose_b={tb})"),
            Node::Reduce { op, x, axes, keep } => write!(f, "reduce_{op:?}(n{x}, axes={axes:?}, keepdims={keep})"),
            Node::Softmax { x, axis } => write!(f, "softmax(n{x}, axis={axis})"),
            Node::BiasAdd { x, bias } => write!(f, "bias_add(n{x}, n{bias})"),
            Node::Reshape { x, shape } => write!(f, "reshape(n{x}, {shape:?})"),
            Node::Transpose { x, perm } => write!(f, "transpose(n{x}, {perm:?})"),
            Node::Concat { xs, axis } => {
                let xs: Vec<String> = xs.iter().map(|x| format!("n{x}")).collect();
                write!(f, "concat([{}], axis={axis})", xs.join(", "))
            }
            Node::Pad { x, pads } => write!(f, "pad(n{x}, {pads:?})"),
            Node::Slice { x, begin, size } => write!(f, "slice(n{x}, begin={begin:?}, size={size:?})"),
            Node::StridedSlice { x, begin, end, strides, masks: [b, e, s] } => write!(
                f,
                "strided_slice(n{x}, begin={begin:?}, end={end:?}, strides={strides:?}, begin_mask={b:#b}, \
                 end_mask={e:#b}, shrink_axis_mask={s:#b})"
            ),
            Node::Tile { x, multiples } => write!(f, "tile(n{x}, {multiples:?})"),
            Node::Gather { x, indices, index_shape, axis } => {
                write!(f, "gather(n{x}, indices{index_shape:?}={indices:?}, axis={axis})")
            }
            Node::ArgMax { x, axis } => write!(f, "argmax(n{x}, axis={axis})"),
            Node::Conv { x, f: w, depthwise, stride, same, dilation } => write!(
                f,
                "{}(n{x}, n{w}, strides=[1,{stride},{stride},1], padding={}, dilations=[1,{dilation},{dilation},1])",
                if *depthwise { "depthwise_conv2d" } else { "conv2d" },
                if *same { "SAME" } else { "VALID" }
            ),
            Node::Pool { x, max, k, stride, same } => write!(
                f,
                "{}(n{x}, ksize=[1,{k},{k},1], strides=[1,{stride},{stride},1], padding={})",
                if *max { "max_pool" } else { "avg_pool" },
                if *same { "SAME" } else { "VALID" }
            ),
        }
    }
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} graph, input seed {:#x}:", self.family, self.seed)?;
        for (i, (node, shape)) in self.nodes.iter().enumerate() {
            writeln!(f, "  n{i} = {node:?} -> {shape:?}")?;
        }
        write!(f, "  fetch n{}", self.last())
    }
}
