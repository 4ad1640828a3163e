//! Constants, placeholders, variables and their assignments, no-ops, identity and groups:
//! the structural kinds of `OpKind`, the `Identity` op and their builders; `grad.rs` holds
//! `Identity`'s gradient.

mod grad;

use super::{compute, same_dtype, shape_err, AssignMode, InferResult, Op, OpKind};
use crate::error::Result;
use crate::graph::{Endpoint, Graph, NodeId, Operand, Operation, Output, Variable};
use crate::tensor::{DType, Shape, Tensor, TensorSpec};

/// The TF op types of this family (see `ops::registry`): the structural kinds of `OpKind`
/// and `Identity`.
pub(crate) fn types() -> Vec<&'static str> {
    vec![
        "Const",
        "Placeholder",
        "VariableV2",
        "Assign",
        "AssignAdd",
        "AssignSub",
        "ApplyGradientDescent",
        "IsVariableInitialized",
        "ReportUninitializedVariables",
        "NoOp",
        "Identity",
    ]
}

/// No WGSL of its own: `Identity` is a view, the assignments run elementwise kernels.
pub(crate) fn instantiations() -> crate::error::Result<Vec<(String, String)>> {
    Ok(Vec::new())
}

/// Shape inference of `Assign*`: the value must have the variable's dtype and fit its shape.
pub(crate) fn infer_assign(mode: AssignMode, inputs: &[TensorSpec]) -> InferResult {
    // The update is the last input (`ApplyGradientDescent` has the rate before it).
    let (var, val) = (&inputs[0], &inputs[inputs.len() - 1]);
    let op = OpKind::Assign(mode).type_name();
    let args: &[&str] = match mode {
        AssignMode::GradientDescent => &["var", "alpha", "delta"],
        _ => &["ref", "value"],
    };
    for (arg, spec) in args.iter().zip(inputs).skip(1) {
        same_dtype(op, (args[0], var.dtype), (arg, spec.dtype))?;
    }
    if let (Some(a), Some(b)) = (var.shape.dims(), val.shape.dims()) {
        if a.len() != b.len() {
            shape_err!("Shapes must be equal rank, but are {} and {}", a.len(), b.len());
        }
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            if let (Some(x), Some(y)) = (x, y) {
                if x != y {
                    shape_err!(
                        "Dimension {i} in both shapes must be equal, but are {x} and {y}. Shapes are {} and {}",
                        var.shape,
                        val.shape
                    );
                }
            }
        }
    }
    let shape = if var.shape.rank().is_some() { var.shape.clone() } else { val.shape.clone() };
    Ok(vec![TensorSpec::new(var.dtype, shape)])
}

/// `Identity`: passes its input through.
#[derive(Debug)]
pub(crate) struct Identity;

impl Op for Identity {
    fn gradient(&self, ctx: &crate::gradients::GradContext) -> Result<Vec<Option<crate::graph::Output>>> {
        grad::identity(ctx)
    }
    fn type_name(&self) -> &'static str {
        "Identity"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> InferResult {
        Ok(vec![inputs[0].clone()])
    }
    fn compute(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        Ok(vec![inputs[0].clone()])
    }
    fn gpu(&self, inputs: &[(DType, &[usize])]) -> Option<Result<super::GpuLowering>> {
        Some(Ok(super::GpuLowering::View(inputs[0].1.to_vec())))
    }
    fn gpu_supports(&self, _inputs: &[(DType, &[usize])]) -> bool {
        true
    }
    fn is_view(&self) -> bool {
        true
    }
    fn is_identity(&self) -> bool {
        true
    }
}

impl Graph {
    /// A constant (`Const`): a float32, int32 scalar, vector or any [`Tensor`].
    pub fn constant(&self, value: impl Into<Tensor>) -> Result<Output> {
        let v = value.into();
        self.add_op1("Const", OpKind::Const(v), Vec::new())
    }

    /// A placeholder of `dtype`; `shape` may be [`Shape::unknown`] or partial.
    pub fn placeholder(&self, dtype: DType, shape: Shape) -> Result<Output> {
        self.add_op1("Placeholder", OpKind::Placeholder(TensorSpec::new(dtype, shape)), Vec::new())
    }

    /// A TF1 variable named `name` (made unique) with TF's nodes: `name/initial_value`,
    /// `name` (`VariableV2`), `name/Assign` (the initializer) and `name/read`.
    pub fn variable(&self, init: impl Into<Operand>, name: &str) -> Result<Variable> {
        let scope = self.name_scope(name);
        let scope_name = self.current_scope();
        crate::graph::check_op_name(&scope_name)?;
        let init = match init.into() {
            Operand::Tensor(t) => t,
            Operand::Value(v) => self.named("initial_value").constant(v)?,
        };
        let spec = init.spec();
        let var = {
            let device = self.device_for(&scope_name, "VariableV2");
            let mut g = self.write();
            g.mark_name(&scope_name);
            let id = g.push(scope_name.clone(), OpKind::Variable(spec.clone()), Vec::new(), vec![spec], device);
            Output { graph: self.clone(), ep: Endpoint { node: id, index: 0 } }
        };
        let initializer = self.named("Assign").add_op(
            "Assign",
            OpKind::Assign(AssignMode::Set),
            vec![("ref", (&var).into()), ("value", (&init).into())],
        )?;
        let read = self.named("read").add_op1("Identity", compute(Identity), vec![("input", (&var).into())])?;
        drop(scope);
        self.write().variables.push((var.ep.node, initializer.id));
        Ok(Variable { var, initializer, read })
    }

    fn assign_mode(&self, v: &Variable, value: impl Into<Operand>, mode: AssignMode) -> Result<Output> {
        let name = OpKind::Assign(mode).type_name();
        self.add_op1(name, OpKind::Assign(mode), vec![("ref", (&v.var).into()), ("value", value.into())])
    }

    /// `v.assign(value)`: sets the variable and returns the new value.
    ///
    /// In the assign family (`assign`, `assign_add`, `assign_sub`,
    /// `apply_gradient_descent`) the target is a `&Variable`, and every value is an
    /// [`Operand`]: a tensor, a literal, or another `&Variable` (its current value).
    ///
    /// ```
    /// use wgflow::{ConfigProto, Graph, Session, Tensor};
    ///
    /// let g = Graph::new();
    /// let a = g.variable(1.0f32, "a")?;
    /// let b = g.variable(5.0f32, "b")?;
    /// let copy = g.assign(&a, &b)?; // a = b
    /// let add = g.assign_add(&b, &a)?; // b += a
    /// let sess = Session::new(&g, ConfigProto::cpu_only())?;
    /// sess.run(&[g.global_variables_initializer()?])?;
    /// sess.run(&[&copy])?;
    /// sess.run(&[&add])?;
    /// assert_eq!(sess.eval(&b)?, Tensor::from(10.0f32));
    /// # Ok::<(), wgflow::Error>(())
    /// ```
    pub fn assign(&self, v: &Variable, value: impl Into<Operand>) -> Result<Output> {
        self.assign_mode(v, value, AssignMode::Set)
    }

    /// `v.assign_add(value)`: adds to the variable and returns the new value.
    pub fn assign_add(&self, v: &Variable, value: impl Into<Operand>) -> Result<Output> {
        self.assign_mode(v, value, AssignMode::Add)
    }

    /// `v.assign_sub(value)`: subtracts from the variable and returns the new value.
    pub fn assign_sub(&self, v: &Variable, value: impl Into<Operand>) -> Result<Output> {
        self.assign_mode(v, value, AssignMode::Sub)
    }

    /// `ApplyGradientDescent(var, alpha, delta)`: `var -= alpha * delta`, on the variable's
    /// device; returns the new value.
    ///
    /// ```
    /// use wgflow::{ConfigProto, Graph, Session, Tensor};
    ///
    /// let g = Graph::new();
    /// let w = g.variable(3.0f32, "w")?;
    /// let loss = g.mul(&w, &w)?;
    /// let dw = g.gradients(&[&loss], &[&w], None)?.remove(0);
    /// let dw = dw.ok_or(wgflow::Error::internal("no gradient"))?;
    /// let step = g.apply_gradient_descent(&w, 0.5f32, &dw)?; // w -= 0.5 * 2w
    /// let sess = Session::new(&g, ConfigProto::cpu_only())?;
    /// sess.run(&[g.global_variables_initializer()?])?;
    /// sess.run(&[&step])?;
    /// assert_eq!(sess.eval(&w)?, Tensor::from(0.0f32));
    /// # Ok::<(), wgflow::Error>(())
    /// ```
    pub fn apply_gradient_descent(
        &self,
        v: &Variable,
        alpha: impl Into<Operand>,
        delta: impl Into<Operand>,
    ) -> Result<Output> {
        let kind = OpKind::Assign(AssignMode::GradientDescent);
        let inputs = vec![("var", (&v.var).into()), ("alpha", alpha.into()), ("delta", delta.into())];
        self.add_op1("ApplyGradientDescent", kind, inputs)
    }

    /// Every variable of the graph, in creation order.
    pub fn global_variables(&self) -> Vec<Variable> {
        let vars = self.read().variables.clone();
        vars.into_iter()
            .map(|(var, init)| {
                let var = Output { graph: self.clone(), ep: Endpoint { node: var, index: 0 } };
                let read = self.read().nodes.iter().position(|n| {
                    n.inputs.first() == Some(&var.ep) && matches!(&n.op, OpKind::Compute(op) if op.is_identity())
                });
                let read =
                    read.map_or(var.clone(), |id| Output { graph: self.clone(), ep: Endpoint { node: id, index: 0 } });
                Variable { var, initializer: Operation { graph: self.clone(), id: init }, read }
            })
            .collect()
    }

    /// Records the variables of an imported graph: each `VariableV2` node not yet known,
    /// with the `Assign` to it named `<var>/Assign` (else the first `Assign` to it) as its
    /// initializer. A variable without one is left out of `global_variables`.
    pub(crate) fn register_imported_variables(&self) {
        let mut g = self.write();
        let known: Vec<NodeId> = g.variables.iter().map(|(v, _)| *v).collect();
        let mut found = Vec::new();
        for (id, node) in g.nodes.iter().enumerate() {
            if !matches!(node.op, OpKind::Variable(_)) || known.contains(&id) {
                continue;
            }
            let assigns = g.nodes.iter().enumerate().filter(|(_, n)| {
                matches!(n.op, OpKind::Assign(AssignMode::Set)) && n.inputs.first().is_some_and(|ep| ep.node == id)
            });
            let named = format!("{}/Assign", node.name);
            let mut assigns: Vec<(NodeId, bool)> = assigns.map(|(a, n)| (a, n.name == named)).collect();
            assigns.sort_by_key(|&(a, named)| (!named, a));
            if let Some(&(init, _)) = assigns.first() {
                found.push((id, init));
            }
        }
        g.variables.extend(found);
    }

    /// `tf.global_variables_initializer()`: a `NoOp` named `init` with a control input on
    /// every variable's initializer. Running it (again) resets every variable.
    pub fn global_variables_initializer(&self) -> Result<Operation> {
        let inits: Vec<Operation> = self.global_variables().into_iter().map(|v| v.initializer).collect();
        let refs: Vec<&Operation> = inits.iter().collect();
        self.named("init").group(&refs)
    }

    /// `tf.no_op()`.
    pub fn no_op(&self) -> Result<Operation> {
        self.add_op("NoOp", OpKind::NoOp, Vec::new())
    }

    /// `tf.group(ops)`: a `NoOp` with control inputs on `ops`.
    pub fn group(&self, ops: &[&Operation]) -> Result<Operation> {
        let _deps = self.control_dependencies(ops)?;
        self.add_op("NoOp", OpKind::NoOp, Vec::new())
    }

    /// `tf.identity(x)`.
    pub fn identity(&self, x: impl Into<Operand>) -> Result<Output> {
        self.add_op1("Identity", compute(Identity), vec![("input", x.into())])
    }

    /// `tf.is_variable_initialized(v)`: a bool scalar.
    pub fn is_variable_initialized(&self, v: &Variable) -> Result<Output> {
        self.add_op1("IsVariableInitialized", OpKind::IsVariableInitialized, vec![("ref", (&v.var).into())])
    }

    /// `tf.report_uninitialized_variables()`: the names of the uninitialized variables.
    pub fn report_uninitialized_variables(&self) -> Result<Output> {
        let vars: Vec<Operand> = self.global_variables().iter().map(|v| (&v.var).into()).collect();
        let inputs = vars.into_iter().map(|v| ("var_list", v)).collect();
        self.add_op1("report_uninitialized_variables", OpKind::ReportUninitialized, inputs)
    }
}
