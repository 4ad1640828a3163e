//! Symbolic gradients, after TF1's `tf.gradients`: the backward graph is built from ordinary
//! ops, under the name scope `gradients/<op>_grad`, so it is placed and run like any other
//! part of the graph. Each op declares its own gradient ([`crate::ops::Op::gradient`]); this
//! module walks the graph and sums the contributions.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::graph::{Endpoint, Graph, Output};
use crate::ops::OpKind;

/// A node as the backward pass reads it: name, kind, inputs and output count.
type NodeCopy = (String, OpKind, Vec<Endpoint>, usize);

/// What an op's gradient function sees: its node's inputs and outputs, and the gradient
/// flowing into each output (`None` where no gradient reaches that output).
pub struct GradContext<'a> {
    /// The graph, to add the backward ops to.
    pub graph: &'a Graph,
    /// The node's inputs.
    pub inputs: Vec<Output>,
    /// The node's outputs.
    pub outputs: Vec<Output>,
    /// The gradient of each output.
    pub grads: Vec<Option<Output>>,
    /// Whether each input needs a gradient (it lies between the xs and the ys); a gradient
    /// function may skip the others.
    pub needed: Vec<bool>,
}

impl GradContext<'_> {
    /// The gradient of the first output.
    pub fn dy(&self) -> Result<Output> {
        self.grads.first().cloned().flatten().ok_or_else(|| Error::internal("no gradient reaches output 0"))
    }
}

impl Graph {
    /// `tf.gradients(ys, xs, grad_ys)`: the symbolic partial derivatives of `sum(ys)` with
    /// respect to each x, added to this graph. `grad_ys` defaults to ones. An x that no y
    /// depends on gets `None`, as TF's `None`.
    ///
    /// `ys` and `xs` are lists of anything that is [`AsRef<Output>`]: outputs, references to
    /// them, or [`Variable`](crate::Variable)s (a variable stands for its tensor `v:0`, as in
    /// TF's optimizers); all items of one list have one type.
    ///
    /// ```
    /// use wgflow::{ConfigProto, Graph, Session, Tensor};
    ///
    /// let g = Graph::new();
    /// let w = g.variable(3.0f32, "w")?;
    /// let b = g.variable(1.0f32, "b")?;
    /// let loss = g.add(g.mul(&w, &w)?, &b)?; // w² + b
    /// let grads = g.gradients(&[&loss], &[&w, &b], None)?; // no `.tensor().clone()`
    /// let sess = Session::new(&g, ConfigProto::cpu_only())?;
    /// sess.run(&[g.global_variables_initializer()?])?;
    /// let dw = grads[0].as_ref().ok_or(wgflow::Error::internal("no gradient"))?;
    /// assert_eq!(sess.eval(dw)?, Tensor::from(6.0f32));
    /// # Ok::<(), wgflow::Error>(())
    /// ```
    pub fn gradients<Y: AsRef<Output>, X: AsRef<Output>>(
        &self,
        ys: &[Y],
        xs: &[X],
        grad_ys: Option<&[Output]>,
    ) -> Result<Vec<Option<Output>>> {
        let ys: Vec<Output> = ys.iter().map(|y| y.as_ref().clone()).collect();
        let xs: Vec<Output> = xs.iter().map(|x| x.as_ref().clone()).collect();
        let (ys, xs) = (ys.as_slice(), xs.as_slice());
        for t in ys.iter().chain(xs) {
            self.own(&t.graph)
                .map_err(|_| Error::invalid_argument(format!("{} is not an element of this graph.", t.name())))?;
        }
        let (nodes, between) = self.backward_set(ys, xs);
        let _scope = self.name_scope("gradients");
        let mut pending: HashMap<Endpoint, Vec<Output>> = HashMap::new();
        for (k, y) in ys.iter().enumerate() {
            let dy = match grad_ys.and_then(|g| g.get(k)) {
                Some(g) => g.clone(),
                None => self.ones_like(y)?,
            };
            pending.entry(y.ep).or_default().push(dy);
        }
        let out = |ep: Endpoint| Output { graph: self.clone(), ep };
        let last = between.iter().rposition(|b| *b).unwrap_or(0);
        for id in (0..=last).rev().filter(|&id| between[id]) {
            let (name, op, inputs, n_out) = &nodes[id];
            let mut grads = Vec::with_capacity(*n_out);
            for index in 0..*n_out {
                let ep = Endpoint { node: id, index };
                grads.push(match pending.get(&ep) {
                    Some(list) => Some(self.sum_all(list)?),
                    None => None,
                });
            }
            let OpKind::Compute(op) = op else { continue };
            if grads.iter().all(Option::is_none) || !inputs.iter().any(|ep| between[ep.node]) {
                continue;
            }
            let _op_scope = self.name_scope(&format!("{name}_grad"));
            let ctx = GradContext {
                graph: self,
                inputs: inputs.iter().map(|&ep| out(ep)).collect(),
                outputs: (0..*n_out).map(|index| out(Endpoint { node: id, index })).collect(),
                grads,
                needed: inputs.iter().map(|ep| between[ep.node]).collect(),
            };
            let input_grads = op.gradient(&ctx).map_err(|e| e.at(name))?;
            for (ep, g) in inputs.iter().zip(input_grads) {
                if let (Some(g), true) = (g, between[ep.node]) {
                    pending.entry(*ep).or_default().push(g);
                }
            }
        }
        xs.iter()
            .map(|x| match pending.get(&x.ep) {
                Some(list) => self.sum_all(list).map(Some),
                None => Ok(None),
            })
            .collect()
    }

    /// A copy of the graph's nodes (name, kind, inputs, output count), and whether each lies
    /// between the xs and the ys (depends on an x, and some y depends on it).
    fn backward_set(&self, ys: &[Output], xs: &[Output]) -> (Vec<NodeCopy>, Vec<bool>) {
        let g = self.read();
        let n = g.nodes.len();
        let mut from_x = vec![false; n];
        for x in xs {
            from_x[x.ep.node] = true;
        }
        // Node ids are in creation order, which is topological.
        for id in 0..n {
            if g.nodes[id].inputs.iter().any(|ep| from_x[ep.node]) {
                from_x[id] = true;
            }
        }
        let mut to_y = vec![false; n];
        for y in ys {
            to_y[y.ep.node] = true;
        }
        for id in (0..n).rev() {
            if to_y[id] {
                for ep in &g.nodes[id].inputs {
                    to_y[ep.node] = true;
                }
            }
        }
        let between: Vec<bool> = (0..n).map(|i| from_x[i] && to_y[i]).collect();
        let nodes: Vec<NodeCopy> =
            g.nodes.iter().map(|nd| (nd.name.clone(), nd.op.clone(), nd.inputs.clone(), nd.outputs.len())).collect();
        (nodes, between)
    }

    /// The sum of several gradients of one tensor (one of them: itself).
    fn sum_all(&self, list: &[Output]) -> Result<Output> {
        let mut total = list.first().cloned().ok_or_else(|| Error::internal("an empty gradient list"))?;
        for g in &list[1..] {
            total = self.add(&total, g)?;
        }
        Ok(total)
    }
}

/// `grad` (shaped like a broadcast result) summed back to the static shape of `x`, as TF's
/// broadcasting gradients do. Shapes equal: `grad` itself.
pub(crate) fn sum_to(g: &Graph, grad: Output, x: &Output) -> Result<Output> {
    let (gs, xs) = (grad.shape(), x.shape());
    let (Some(gd), Some(xd)) = (gs.dims(), xs.dims()) else {
        return Err(Error::unimplemented("the gradient of a broadcast needs static ranks"));
    };
    if gd == xd {
        return Ok(grad);
    }
    let lead = gd.len().saturating_sub(xd.len());
    let mut axes: Vec<i64> = (0..lead as i64).collect();
    for (i, d) in xd.iter().enumerate() {
        if *d == Some(1) && gd[lead + i] != Some(1) {
            axes.push((lead + i) as i64);
        }
    }
    let summed = if axes.is_empty() { grad } else { g.reduce_sum(&grad, Some(&axes), true)? };
    if summed.shape().dims() == Some(xd) {
        return Ok(summed);
    }
    g.reshape(&summed, &reshape_dims(xd)?)
}

/// Static dims as a reshape target: one unknown dimension becomes -1.
pub(crate) fn reshape_dims(dims: &[Option<usize>]) -> Result<Vec<i64>> {
    if dims.iter().filter(|d| d.is_none()).count() > 1 {
        return Err(Error::unimplemented("a gradient needs a reshape with more than one unknown dimension"));
    }
    Ok(dims.iter().map(|d| d.map_or(-1, |v| v as i64)).collect())
}
