//! The tolerance twin: a CPU graph that computes, next to every node's value `V`, a bound `E`
//! on the error of one implementation, element by element (see the rules in the crate doc of
//! `differential.rs`). `None` is an error of exactly zero: data movement of exact values, and
//! the ops TF computes exactly (neg, abs, relu, relu6, maximum, minimum, max_pool, reduce_max).

use super::build;
use super::case::{Bin, Case, Node, Red, Un};
use wgflow::{Graph, Output, Result, Tensor};

/// One ulp of a float32 relative to the value (the unit roundoff is half of it).
pub const EPS: f32 = f32::EPSILON;
/// The smallest normal float32: what a GPU that flushes subnormals to zero may lose per op.
pub const TINY: f32 = f32::MIN_POSITIVE;

struct Twin<'g> {
    g: &'g Graph,
}

impl Twin<'_> {
    fn abs(&self, x: &Output) -> Result<Output> {
        self.g.abs(x)
    }
    /// `c * EPS * |v| + TINY`: `c` ulps of rounding of the value `v`.
    fn rnd(&self, v: &Output, c: f32) -> Result<Output> {
        self.g.add(self.g.mul(self.abs(v)?, c * EPS)?, TINY)
    }
    fn add(&self, a: Option<Output>, b: Option<Output>) -> Result<Option<Output>> {
        Ok(match (a, b) {
            (Some(a), Some(b)) => Some(self.g.add(a, b)?),
            (a, b) => a.or(b),
        })
    }
    /// `e` plus the rounding `r` (an error that is never zero).
    fn plus(&self, e: Option<Output>, r: Output) -> Result<Option<Output>> {
        self.add(e, Some(r))
    }
    fn scale(&self, e: &Option<Output>, by: &Output) -> Result<Option<Output>> {
        e.as_ref().map(|e| self.g.mul(e, by)).transpose()
    }
    fn zeros(&self, shape: &[usize]) -> Result<Output> {
        self.g.constant(Tensor::from_f32(shape, vec![0.0; shape.iter().product()])?)
    }
}

/// The error bound of the last node of `case`, as a tensor of its shape (zeros when exact),
/// computed on the CPU. `None` when the output is not float32 (argmax: compared exactly).
pub fn bound(case: &Case, inputs: &[Option<Tensor>]) -> Result<Option<Tensor>> {
    let g = Graph::new();
    let t = Twin { g: &g };
    let mut v: Vec<Output> = Vec::new();
    let mut e: Vec<Option<Output>> = Vec::new();
    for (i, (node, shape)) in case.nodes.iter().enumerate() {
        let (val, err) = match node {
            Node::Input(_) => (g.constant(inputs[i].clone().expect("an input"))?, None),
            _ => {
                let val = build::op(&g, node, &v)?;
                let err = error(&t, node, &val, &v, &e)?;
                (val, err)
            }
        };
        let _ = shape;
        v.push(val);
        e.push(err);
    }
    let last = case.last();
    if matches!(case.nodes[last].0, Node::ArgMax { .. }) {
        return Ok(None);
    }
    let err = match &e[last] {
        Some(err) => err.clone(),
        None => t.zeros(case.shape(last))?,
    };
    let s = wgflow::Session::new(&g, wgflow::ConfigProto::cpu_only())?;
    Ok(Some(s.eval(&err)?))
}

/// The error bound of `node` whose (reference) value is `val`.
fn error(t: &Twin, node: &Node, val: &Output, v: &[Output], e: &[Option<Output>]) -> Result<Option<Output>> {
    let g = t.g;
    let ab = |i: usize| t.abs(&v[i]);
    match node {
        Node::Input(_) => Ok(None),
        Node::Unary(u, x) => unary(t, *u, val, &v[*x], &e[*x]),
        Node::Binary(b, x, y) => binary(t, *b, val, (&v[*x], &v[*y]), (&e[*x], &e[*y])),
        Node::MatMul { a, b, ta, tb } => {
            let k = v[*a].shape().to_vec().expect("a static shape");
            let k = k[k.len() - if *ta { 2 } else { 1 }];
            let mm = |x: &Output, y: &Output| g.matmul(x, y, *ta, *tb);
            let terms = mm(&ab(*a)?, &ab(*b)?)?;
            products(t, &terms, k, (&ab(*a)?, &ab(*b)?), (&e[*a], &e[*b]), mm)
        }
        Node::Conv { x, f, depthwise, stride, same, dilation } => {
            let fs = v[*f].shape().to_vec().expect("a static shape");
            let k = fs[0] * fs[1] * if *depthwise { 1 } else { fs[2] };
            let conv = |a: &Output, b: &Output| {
                let n =
                    Node::Conv { x: 0, f: 1, depthwise: *depthwise, stride: *stride, same: *same, dilation: *dilation };
                build::op(g, &n, &[a.clone(), b.clone()])
            };
            let terms = conv(&ab(*x)?, &ab(*f)?)?;
            products(t, &terms, k, (&ab(*x)?, &ab(*f)?), (&e[*x], &e[*f]), conv)
        }
        Node::Reduce { op, x, axes, keep } => {
            let dims = v[*x].shape().to_vec().expect("a static shape");
            let rank = dims.len() as i64;
            let k: usize = axes.iter().map(|&a| dims[a.rem_euclid(rank) as usize]).product();
            let same = |x: &Output, op: Red| {
                build::op(g, &Node::Reduce { op, x: 0, axes: axes.clone(), keep: *keep }, std::slice::from_ref(x))
            };
            let ex = e[*x].as_ref().map(|ex| same(ex, *op)).transpose()?;
            match op {
                Red::Max => Ok(ex),
                Red::Sum | Red::Mean => {
                    let c = (k + 2) as f32 * EPS;
                    let r = g.add(g.mul(same(&ab(*x)?, *op)?, c)?, (k + 1) as f32 * TINY)?;
                    t.plus(ex, r)
                }
            }
        }
        Node::Softmax { x, axis } => {
            let dims = v[*x].shape().to_vec().expect("a static shape");
            let k = dims[axis.rem_euclid(dims.len() as i64) as usize];
            let m = g.reduce_max(&v[*x], Some(&[*axis]), true)?;
            let dist = g.mul(g.sub(&m, &v[*x])?, 2.0 * EPS)?;
            let mut rel = g.add(dist, (2 * k + 10) as f32 * EPS)?;
            if let Some(ex) = &e[*x] {
                rel = g.add(rel, g.mul(g.reduce_max(ex, Some(&[*axis]), true)?, 2.0f32)?)?;
            }
            Ok(Some(g.add(g.mul(val, rel)?, TINY)?))
        }
        Node::BiasAdd { x, bias } => t.plus(t.add(e[*x].clone(), e[*bias].clone())?, t.rnd(val, 1.0)?),
        Node::Concat { xs, axis } => {
            if xs.iter().all(|&i| e[i].is_none()) {
                return Ok(None);
            }
            let parts = xs.iter().map(|&i| match &e[i] {
                Some(ei) => Ok(ei.clone()),
                None => t.zeros(&v[i].shape().to_vec().expect("a static shape")),
            });
            Ok(Some(g.concat(&parts.collect::<Result<Vec<_>>>()?, *axis)?))
        }
        Node::ArgMax { x, .. } => {
            assert!(e[*x].is_none(), "the generator puts argmax on exact values only");
            Ok(None)
        }
        Node::Pool { x, max: true, .. } => e[*x].as_ref().map(|ex| build::op(g, node, &with(v, *x, ex))).transpose(),
        Node::Pool { x, max: false, k, .. } => {
            let ex = e[*x].as_ref().map(|ex| build::op(g, node, &with(v, *x, ex))).transpose()?;
            let mean_abs = build::op(g, node, &with(v, *x, &ab(*x)?))?;
            t.plus(ex, g.add(g.mul(mean_abs, (k * k + 2) as f32 * EPS)?, TINY)?)
        }
        // Data movement: the same op moves the errors.
        Node::Reshape { x, .. }
        | Node::Transpose { x, .. }
        | Node::Pad { x, .. }
        | Node::Slice { x, .. }
        | Node::StridedSlice { x, .. }
        | Node::Tile { x, .. }
        | Node::Gather { x, .. } => e[*x].as_ref().map(|ex| build::op(g, node, &with(v, *x, ex))).transpose(),
    }
}

/// `v` with entry `i` replaced by `x`, to build the same op on another tensor.
fn with(v: &[Output], i: usize, x: &Output) -> Vec<Output> {
    let mut v = v.to_vec();
    v[i] = x.clone();
    v
}

/// A sum of `k` products (matmul, conv): `terms` is the op on `|a|, |b|`.
fn products(
    t: &Twin,
    terms: &Output,
    k: usize,
    (aa, ab): (&Output, &Output),
    (ea, eb): (&Option<Output>, &Option<Output>),
    op: impl Fn(&Output, &Output) -> Result<Output>,
) -> Result<Option<Output>> {
    let g = t.g;
    let r = g.add(g.mul(terms, (k + 2) as f32 * EPS)?, (k + 1) as f32 * TINY)?;
    let mut err = Some(r);
    if let Some(ea) = ea {
        err = t.add(err, Some(op(ea, ab)?))?;
    }
    if let Some(eb) = eb {
        err = t.add(err, Some(op(aa, eb)?))?;
    }
    if let (Some(ea), Some(eb)) = (ea, eb) {
        err = t.add(err, Some(op(ea, eb)?))?;
    }
    Ok(err)
}

fn unary(t: &Twin, u: Un, val: &Output, x: &Output, ex: &Option<Output>) -> Result<Option<Output>> {
    let g = t.g;
    let av = t.abs(val)?;
    // The smallest the input can be given its error (the domain ops see positive inputs).
    let low = || -> Result<Output> {
        match ex {
            Some(ex) => g.maximum(g.sub(x, ex)?, TINY),
            None => g.maximum(x, TINY),
        }
    };
    match u {
        Un::Neg | Un::Abs | Un::Relu | Un::Relu6 => Ok(ex.clone()),
        Un::Square => {
            let lin = ex.as_ref().map(|ex| g.mul(g.add(g.mul(t.abs(x)?, 2.0f32)?, ex)?, ex)).transpose()?;
            t.plus(lin, t.rnd(val, 1.0)?)
        }
        Un::Exp => {
            // WGSL's exp: 3 + 2|x| ulps.
            let ulps = g.add(g.mul(t.abs(x)?, 2.0f32)?, 3.0f32)?;
            let r = g.add(g.mul(g.mul(&av, ulps)?, EPS)?, TINY)?;
            let lin = ex.as_ref().map(|ex| g.mul(g.mul(&av, ex)?, g.exp(ex)?)).transpose()?;
            t.plus(lin, r)
        }
        Un::Log => {
            let lin = ex.as_ref().map(|ex| g.div(ex, low()?)).transpose()?;
            t.plus(lin, g.add(t.rnd(val, 3.0)?, 2f32.powi(-21))?)
        }
        Un::Sqrt => {
            let lin = ex.as_ref().map(|ex| g.div(ex, g.sqrt(low()?)?)).transpose()?;
            t.plus(lin, t.rnd(val, 4.0)?)
        }
        Un::Rsqrt => {
            let lin = ex.as_ref().map(|ex| g.div(g.mul(ex, g.rsqrt(low()?)?)?, low()?)).transpose()?;
            t.plus(lin, t.rnd(val, 5.0)?)
        }
        Un::Tanh => t.plus(ex.clone(), g.add(t.rnd(val, 8.0)?, 4.0 * EPS)?),
        Un::Sigmoid => {
            let ulps = g.add(g.mul(t.abs(x)?, 2.0f32)?, 6.0f32)?;
            let r = g.add(g.mul(g.mul(&av, ulps)?, EPS)?, TINY)?;
            t.plus(t.scale(ex, &g.constant(0.25f32)?)?, r)
        }
        Un::Elu => t.plus(ex.clone(), g.add(t.rnd(val, 2.0)?, 6.0 * EPS)?),
    }
}

fn binary(
    t: &Twin,
    b: Bin,
    val: &Output,
    (x, y): (&Output, &Output),
    (ex, ey): (&Option<Output>, &Option<Output>),
) -> Result<Option<Output>> {
    let g = t.g;
    match b {
        Bin::Maximum | Bin::Minimum => Ok(match (ex, ey) {
            (Some(a), Some(b)) => Some(g.maximum(a, b)?),
            (a, b) => a.clone().or(b.clone()),
        }),
        Bin::Add | Bin::Sub => t.plus(t.add(ex.clone(), ey.clone())?, t.rnd(val, 1.0)?),
        Bin::Mul => {
            let lin = t.add(t.scale(ex, &t.abs(y)?)?, t.scale(ey, &t.abs(x)?)?)?;
            let quad = match (ex, ey) {
                (Some(a), Some(b)) => Some(g.mul(a, b)?),
                _ => None,
            };
            t.plus(t.add(lin, quad)?, t.rnd(val, 1.0)?)
        }
        Bin::Div => {
            let num = t.add(ex.clone(), t.scale(ey, &t.abs(val)?)?)?;
            let den = match ey {
                Some(ey) => g.maximum(g.sub(t.abs(y)?, ey)?, TINY)?,
                None => t.abs(y)?,
            };
            let lin = num.map(|n| g.div(n, den)).transpose()?;
            t.plus(lin, t.rnd(val, 3.0)?)
        }
        Bin::SquaredDifference => {
            let d = g.sub(x, y)?;
            let ed = t.plus(t.add(ex.clone(), ey.clone())?, t.rnd(&d, 1.0)?)?.expect("a rounding term");
            let lin = g.mul(g.add(g.mul(t.abs(&d)?, 2.0f32)?, &ed)?, &ed)?;
            t.plus(Some(lin), t.rnd(val, 1.0)?)
        }
        Bin::Pow => {
            // exp2(y * log2(x)): log2 is within 2^-21 (absolute) or 3 ulps, exp2 within
            // 3 + 2|t| ulps of its argument t.
            let l = g.div(g.abs(g.mul(y, g.log(x)?)?)?, std::f32::consts::LN_2)?;
            let rel = g.add(g.mul(g.add(g.mul(l, 5.0f32)?, 3.0f32)?, EPS)?, g.mul(g.abs(y)?, 2f32.powi(-21))?)?;
            let r = g.add(g.mul(t.abs(val)?, rel)?, TINY)?;
            let dx = ex.as_ref().map(|ex| g.mul(g.mul(t.abs(val)?, g.div(t.abs(y)?, x)?)?, ex)).transpose()?;
            let dy = ey.as_ref().map(|ey| g.mul(g.mul(t.abs(val)?, g.abs(g.log(x)?)?)?, ey)).transpose()?;
            t.plus(t.add(dx, dy)?, r)
        }
    }
}
