//! Optimizers, after TF1's `tf.train.*Optimizer`: `minimize` adds the gradients of the loss
//! and one update per variable, under the optimizer's name scope
//! (`GradientDescent/update_W/ApplyGradientDescent`), and returns the train op, a `NoOp` named
//! after the optimizer. Updates are ordinary variable assignments, placed with their variable:
//! in a GPU session they run on the variable's resident buffer.

use crate::error::{Error, Result};
use crate::graph::{Graph, Operation, Output, Variable};
use crate::tensor::{DType, Tensor};

/// The update rule of an optimizer.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Rule {
    GradientDescent,
    Momentum { momentum: f32 },
    Adam { beta1: f32, beta2: f32, epsilon: f32 },
}

/// An optimizer: a learning rate and an update rule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Optimizer {
    learning_rate: f32,
    rule: Rule,
}

impl Optimizer {
    /// `tf.train.GradientDescentOptimizer(learning_rate)`: `var -= lr * grad`.
    pub fn gradient_descent(learning_rate: f32) -> Optimizer {
        Optimizer { learning_rate, rule: Rule::GradientDescent }
    }

    /// `tf.train.MomentumOptimizer(learning_rate, momentum)`: `accum = momentum * accum + grad;
    /// var -= lr * accum`, with the slot variable `<var>/Momentum`.
    pub fn momentum(learning_rate: f32, momentum: f32) -> Optimizer {
        Optimizer { learning_rate, rule: Rule::Momentum { momentum } }
    }

    /// `tf.train.AdamOptimizer(learning_rate)` with TF's defaults (beta1 0.9, beta2 0.999,
    /// epsilon 1e-8), slots `<var>/Adam` (m) and `<var>/Adam_1` (v), and the variables
    /// `beta1_power` and `beta2_power`.
    pub fn adam(learning_rate: f32) -> Optimizer {
        Optimizer { learning_rate, rule: Rule::Adam { beta1: 0.9, beta2: 0.999, epsilon: 1e-8 } }
    }

    /// TF's name of the optimizer, also its name scope and the train op's name.
    pub fn name(&self) -> &'static str {
        match self.rule {
            Rule::GradientDescent => "GradientDescent",
            Rule::Momentum { .. } => "Momentum",
            Rule::Adam { .. } => "Adam",
        }
    }

    /// `optimizer.minimize(loss, global_step, var_list)`: the train op. `var_list` defaults
    /// to the graph's float32 variables (less `global_step`); a variable the loss does not
    /// depend on gets no update, and none at all is an error, as in TF. With `global_step`,
    /// the train op also adds one to it, after the updates. The same as
    /// [`Optimizer::compute_gradients`] then [`Optimizer::apply_gradients`].
    pub fn minimize(
        &self,
        loss: &Output,
        global_step: Option<&Variable>,
        var_list: Option<&[Variable]>,
    ) -> Result<Operation> {
        let pairs = self.compute_gradients(loss, global_step, var_list)?;
        self.apply_gradients(&pairs, global_step)
    }

    /// `optimizer.compute_gradients(loss, var_list)`: the gradient of `loss` for each variable
    /// of `var_list` that it depends on, as `(variable, gradient)` pairs in `var_list`'s order.
    /// `var_list` defaults to the graph's float32 variables less `global_step`; no gradient
    /// for any variable is `InvalidArgument`, as in TF's `minimize`.
    pub fn compute_gradients(
        &self,
        loss: &Output,
        global_step: Option<&Variable>,
        var_list: Option<&[Variable]>,
    ) -> Result<Vec<(Variable, Output)>> {
        let g = loss.graph().clone();
        let step_name = global_step.map(Variable::name);
        let vars: Vec<Variable> = match var_list {
            Some(v) => v.to_vec(),
            None => g
                .global_variables()
                .into_iter()
                .filter(|v| v.tensor().dtype() == DType::F32 && Some(v.name()) != step_name)
                .collect(),
        };
        let grads = g.gradients(std::slice::from_ref(loss), &vars, None)?;
        let pairs: Vec<(Variable, Output)> =
            vars.iter().zip(grads).filter_map(|(v, gr)| gr.map(|gr| (v.clone(), gr))).collect();
        if pairs.is_empty() {
            let names: Vec<String> = vars.iter().map(Variable::name).collect();
            return Err(Error::invalid_argument(format!(
                "No gradients provided for any variable, check your graph for ops that do not support gradients, \
                 between variables {names:?} and loss {}.",
                loss.name()
            )));
        }
        Ok(pairs)
    }

    /// `optimizer.apply_gradients(grads_and_vars, global_step)`: the train op that updates
    /// each variable with its gradient (any float32 tensor of the variable's shape: a
    /// gradient op, or a placeholder fed with gradients computed elsewhere), under the
    /// optimizer's name scope, then adds one to `global_step` if given. An empty list is
    /// `InvalidArgument`.
    pub fn apply_gradients(
        &self,
        grads_and_vars: &[(Variable, Output)],
        global_step: Option<&Variable>,
    ) -> Result<Operation> {
        let Some((first, _)) = grads_and_vars.first() else {
            return Err(Error::invalid_argument("No gradients provided for any variable."));
        };
        let g = first.tensor().graph().clone();
        let pairs: Vec<(&Variable, Output)> = grads_and_vars.iter().map(|(v, gr)| (v, gr.clone())).collect();
        let slots = self.slots(&g, &pairs)?;
        let (scope, updates) = {
            let _scope = g.name_scope(self.name());
            let scope = g.current_scope();
            let lr = g.named("learning_rate").constant(self.learning_rate)?;
            let powers = slots.powers.as_ref().map(|(b1, b2)| (b1.value().clone(), b2.value().clone()));
            let mut updates = Vec::with_capacity(pairs.len());
            for ((var, grad), slot) in pairs.iter().zip(&slots.per_var) {
                let _update = g.name_scope(&format!("update_{}", var.name()));
                updates.push(self.update(&g, var, grad, &lr, slot, powers.as_ref())?);
            }
            if let Some((b1, b2)) = &slots.powers {
                let (beta1, beta2) = match self.rule {
                    Rule::Adam { beta1, beta2, .. } => (beta1, beta2),
                    _ => (0.0, 0.0),
                };
                let refs: Vec<&Operation> = updates.iter().collect();
                let _after = g.control_dependencies(&refs)?;
                let u1 = g.assign(b1, g.mul(b1, beta1)?)?.op();
                let u2 = g.assign(b2, g.mul(b2, beta2)?)?.op();
                updates.extend([u1, u2]);
            }
            (scope, updates)
        };
        let refs: Vec<&Operation> = updates.iter().collect();
        match global_step {
            Some(step) => {
                let _after = g.control_dependencies(&refs)?;
                let one = Tensor::from(1i32);
                let value = if step.tensor().dtype() == DType::F32 { Tensor::from(1.0f32) } else { one };
                let inc = g.assign_add(step, value)?.op();
                g.named(&format!("{scope}/")).group(&[&inc])
            }
            // The scope's own name, as TF names the train op.
            None => g.named(&format!("{scope}/")).group(&refs),
        }
    }

    /// The slot variables of each trained variable, and Adam's beta powers.
    fn slots(&self, g: &Graph, pairs: &[(&Variable, Output)]) -> Result<Slots> {
        let zeros = |v: &Variable, name: String| -> Result<Variable> {
            let shape = v.tensor().shape();
            let dims: Vec<usize> = shape.dims().and_then(|d| d.iter().copied().collect()).ok_or_else(|| {
                Error::invalid_argument(format!("{} needs a fully known shape for its slots", v.name()))
            })?;
            g.variable(Tensor::filled(DType::F32, &dims, 0.0), &name)
        };
        let mut per_var = Vec::with_capacity(pairs.len());
        for (v, _) in pairs {
            per_var.push(match self.rule {
                Rule::GradientDescent => Vec::new(),
                Rule::Momentum { .. } => vec![zeros(v, format!("{}/Momentum", v.name()))?],
                Rule::Adam { .. } => {
                    vec![zeros(v, format!("{}/Adam", v.name()))?, zeros(v, format!("{}/Adam_1", v.name()))?]
                }
            });
        }
        let powers = match self.rule {
            Rule::Adam { beta1, beta2, .. } => {
                Some((g.variable(beta1, "beta1_power")?, g.variable(beta2, "beta2_power")?))
            }
            _ => None,
        };
        Ok(Slots { per_var, powers })
    }

    /// The update of one variable, under `<optimizer>/update_<var>`.
    fn update(
        &self,
        g: &Graph,
        var: &Variable,
        grad: &Output,
        lr: &Output,
        slots: &[Variable],
        powers: Option<&(Output, Output)>,
    ) -> Result<Operation> {
        let out = match (self.rule, slots, powers) {
            (Rule::GradientDescent, _, _) => g.apply_gradient_descent(var, lr, grad)?,
            (Rule::Momentum { momentum }, [accum], _) => {
                let new_accum = g.assign(accum, g.add(g.mul(accum, momentum)?, grad)?)?;
                g.named("ApplyMomentum").apply_gradient_descent(var, lr, &new_accum)?
            }
            (Rule::Adam { beta1, beta2, epsilon }, [m, v], Some((b1p, b2p))) => {
                // lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
                let lr_t = g.div(g.mul(lr, g.sqrt(g.sub(1.0f32, b2p)?)?)?, g.sub(1.0f32, b1p)?)?;
                let m_new = g.assign(m, g.add(g.mul(m, beta1)?, g.mul(grad, 1.0 - beta1)?)?)?;
                let v_new = g.assign(v, g.add(g.mul(v, beta2)?, g.mul(g.square(grad)?, 1.0 - beta2)?)?)?;
                let step = g.div(&m_new, g.add(g.sqrt(&v_new)?, epsilon)?)?;
                g.named("ApplyAdam").apply_gradient_descent(var, &lr_t, &step)?
            }
            _ => return Err(Error::internal("an optimizer's slots do not match its rule")),
        };
        Ok(out.op())
    }
}

/// Slot variables: per trained variable, in rule order; Adam's `beta1_power`, `beta2_power`.
struct Slots {
    per_var: Vec<Vec<Variable>>,
    powers: Option<(Variable, Variable)>,
}
