//! The host device: runs nodes with the CPU kernels, on host tensors, and holds the host's
//! variables (all of a CPU session's, the CPU-placed ones of a GPU session). Also the checks
//! and errors of TF's variable and placeholder semantics that both devices share.

use std::collections::HashMap;

use super::executor::{uninitialized_names, Device, Value};
use super::plan::{Input, Plan, Step};
use crate::error::{Error, Result};
use crate::graph::NodeId;
use crate::ops::{AssignMode, OpKind};
use crate::tensor::{DType, Tensor};

/// The session's variables on the host: one value per initialized `VariableV2` node.
#[derive(Debug, Default)]
pub(crate) struct Variables {
    pub(crate) values: HashMap<NodeId, Tensor>,
}

/// How a run holds the host's variables: alone (it may assign them) or shared with other
/// runs (it only reads them; see the session's locking design).
enum VarAccess<'a> {
    Exclusive(&'a mut Variables),
    Shared(&'a Variables),
}

impl VarAccess<'_> {
    fn get(&self) -> &Variables {
        match self {
            VarAccess::Exclusive(v) => v,
            VarAccess::Shared(v) => v,
        }
    }
}

/// The host in one run, with the host's variables.
pub(crate) struct CpuDevice<'a> {
    vars: VarAccess<'a>,
}

impl<'a> CpuDevice<'a> {
    /// The host in a run that holds the variables alone.
    pub(crate) fn new(vars: &'a mut Variables) -> Self {
        CpuDevice { vars: VarAccess::Exclusive(vars) }
    }

    /// The host in a run that shares the variables with other runs: a plan with no
    /// assignment (an assignment fails with `Internal`).
    pub(crate) fn shared(vars: &'a Variables) -> Self {
        CpuDevice { vars: VarAccess::Shared(vars) }
    }
}

impl CpuDevice<'_> {
    /// [`Device::run`] on input values the caller gives up, so that none is copied (the
    /// executor's path for host steps).
    pub(crate) fn run_owned(
        &mut self,
        plan: &Plan,
        step: &Step,
        op: &OpKind,
        ins: Vec<Option<Value>>,
    ) -> Result<Vec<Value>> {
        let ins = ins.into_iter().map(|v| v.map(into_host).transpose()).collect::<Result<Vec<_>>>()?;
        let outs = host_step(plan, step, op, ins, &mut self.vars)?;
        Ok(outs.into_iter().map(Value::Host).collect())
    }
}

/// The host tensor a value holds.
fn into_host(v: Value) -> Result<Tensor> {
    match v {
        Value::Host(t) => Ok(t),
        Value::Dev(_) => Err(Error::internal("a device value reached a host kernel")),
    }
}

/// The host tensor of a value, copied (a shared handle on the same data).
fn host(v: &Value) -> Result<Tensor> {
    into_host(v.clone())
}

impl Device for CpuDevice<'_> {
    fn begin_step(&mut self, _index: usize, _name: &str) -> Result<()> {
        Ok(())
    }

    fn run(&mut self, plan: &Plan, step: &Step, op: &OpKind, ins: &[Option<Value>]) -> Result<Option<Vec<Value>>> {
        self.run_owned(plan, step, op, ins.to_vec()).map(Some)
    }

    fn upload(&mut self, value: &Value) -> Result<Value> {
        host(value).map(Value::Host)
    }

    fn read_back(&mut self, values: &[Value]) -> Result<Vec<Tensor>> {
        values.iter().map(host).collect()
    }

    fn read_var(&self, id: NodeId) -> Option<Value> {
        self.vars.get().values.get(&id).cloned().map(Value::Host)
    }

    fn release(&mut self, value: Value) {
        if let Value::Host(t) = value {
            crate::runtime::cpu::recycle::give(t);
        }
    }
}

/// Input `k` of `step`, failing as TF does when it is an uninitialized variable.
pub(super) fn value<T: Clone>(plan: &Plan, step: &Step, ins: &[Option<T>], k: usize) -> Result<T> {
    match ins.get(k) {
        Some(Some(t)) => Ok(t.clone()),
        _ => Err(missing(plan, step, k)),
    }
}

/// The error for input `k` of `step` holding no value: TF's for an uninitialized variable.
fn missing(plan: &Plan, step: &Step, k: usize) -> Error {
    match step.inputs.get(k) {
        Some(Input::Var(id)) => uninitialized(plan.var_name(*id)),
        _ => Error::internal("input value missing"),
    }
}

/// Runs node `op` of `step` on the host, with its input values (`None`: an uninitialized
/// variable) and the host's variables.
fn host_step(
    plan: &Plan,
    step: &Step,
    op: &OpKind,
    ins: Vec<Option<Tensor>>,
    vars: &mut VarAccess<'_>,
) -> Result<Vec<Tensor>> {
    match op {
        OpKind::Const(t) => Ok(vec![t.clone()]),
        OpKind::Placeholder(spec) => Err(unfed_placeholder(&step.name, spec)),
        OpKind::Variable(_) | OpKind::NoOp => Ok(Vec::new()),
        OpKind::Assign(mode) => {
            let Input::Var(var) = step.inputs[0] else {
                return Err(Error::invalid_argument("Assign needs a variable as its first input"));
            };
            let update = value(plan, step, &ins, ins.len() - 1)?;
            let new = match mode {
                AssignMode::Set => {
                    check_assign(plan, var, (update.dtype(), update.shape()))?;
                    update
                }
                AssignMode::GradientDescent => {
                    let old = value(plan, step, &ins, 0)?;
                    let alpha = value(plan, step, &ins, 1)?;
                    let scaled = crate::ops::binary_compute(crate::ops::BinaryKind::Mul, &alpha, &update)?;
                    check_update((old.dtype(), old.shape()), (scaled.dtype(), scaled.shape()))?;
                    crate::ops::binary_compute(crate::ops::BinaryKind::Sub, &old, &scaled)?
                }
                AssignMode::Add | AssignMode::Sub => {
                    let old = value(plan, step, &ins, 0)?;
                    check_update((old.dtype(), old.shape()), (update.dtype(), update.shape()))?;
                    let kind = if *mode == AssignMode::Add {
                        crate::ops::BinaryKind::Add
                    } else {
                        crate::ops::BinaryKind::Sub
                    };
                    crate::ops::binary_compute(kind, &old, &update)?
                }
            };
            match vars {
                VarAccess::Exclusive(vars) => vars.values.insert(var, new.clone()),
                VarAccess::Shared(_) => {
                    return Err(Error::internal("an assignment in a run that shares the variables"))
                }
            };
            Ok(vec![new])
        }
        OpKind::IsVariableInitialized => Ok(vec![Tensor::from(matches!(ins.first(), Some(Some(_))))]),
        OpKind::ReportUninitialized => {
            Ok(vec![uninitialized_names(plan, step, |id| vars.get().values.contains_key(&id))])
        }
        OpKind::Compute(op) => {
            let ins = ins
                .into_iter()
                .enumerate()
                .map(|(k, t)| t.map_or_else(|| Err(missing(plan, step, k)), Ok))
                .collect::<Result<Vec<_>>>()?;
            let refs: Vec<&Tensor> = ins.iter().collect();
            op.compute(&refs)
        }
    }
}

/// TF's error for a placeholder that was not fed.
fn unfed_placeholder(name: &str, spec: &crate::tensor::TensorSpec) -> Error {
    let shape = match spec.shape.rank() {
        Some(_) => format!(" and shape {}", spec.shape),
        None => String::new(),
    };
    Error::invalid_argument(format!(
        "You must feed a value for placeholder tensor '{name}' with dtype {}{shape}",
        spec.dtype.tf_name()
    ))
}

/// TF's error for reading a variable no initializer has run on.
pub(crate) fn uninitialized(name: &str) -> Error {
    Error::failed_precondition(format!("Attempting to use uninitialized value {name}"))
}

/// `Assign` (`validate_shape`, as TF's variables use it) needs a value of the variable's
/// dtype and of its declared shape (with a partial shape, one that fits it), whether or not
/// the variable holds a value yet.
pub(crate) fn check_assign(plan: &Plan, var: NodeId, (dtype, dims): (DType, &[usize])) -> Result<()> {
    let Some((_, spec)) = plan.vars.get(&var) else {
        return Ok(());
    };
    if dtype != spec.dtype {
        return Err(Error::invalid_argument(format!(
            "Assign requires the value's dtype to match the variable's. lhs dtype= {} rhs dtype= {}",
            spec.dtype.tf_name(),
            dtype.tf_name()
        )));
    }
    if !spec.shape.is_compatible_with(dims) {
        return Err(Error::invalid_argument(format!(
            "Assign requires shapes of both tensors to match. lhs shape= {} rhs shape= {}",
            spec.shape,
            crate::tensor::dims_string(dims)
        )));
    }
    Ok(())
}

/// `AssignAdd`/`AssignSub` need an update of the variable's dtype and exact shape.
pub(crate) fn check_update((old_dtype, old): (DType, &[usize]), (new_dtype, new): (DType, &[usize])) -> Result<()> {
    if old == new && old_dtype == new_dtype {
        return Ok(());
    }
    Err(Error::invalid_argument(format!(
        "Cannot update variable with shape {} using a Tensor with shape {}, shapes must be equal.",
        crate::tensor::dims_string(old),
        crate::tensor::dims_string(new)
    )))
}
