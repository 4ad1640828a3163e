//! The CPU executor: runs a plan's steps on host tensors and the session's variables.

use std::collections::HashMap;
use std::time::Instant;

use super::config::{NodeStats, RunMetadata, RunOptions, TraceLevel};
use super::plan::{Action, FetchFrom, Input, Plan, Step};
use crate::error::{Error, Result};
use crate::graph::NodeId;
use crate::ops::{AssignMode, OpKind};
use crate::tensor::{DType, Tensor};

/// The session's variables: one value per initialized `VariableV2` node.
#[derive(Debug, Default)]
pub(crate) struct Variables {
    pub(crate) values: HashMap<NodeId, Tensor>,
}

/// Runs `plan` with `feeds` (one per plan feed slot) and returns the fetched values.
pub(crate) fn execute(
    plan: &Plan,
    feeds: Vec<Tensor>,
    vars: &mut Variables,
    options: &RunOptions,
    mut metadata: Option<&mut RunMetadata>,
) -> Result<Vec<Option<Tensor>>> {
    let start = Instant::now();
    let mut slots: Vec<Option<Tensor>> = vec![None; plan.slots];
    let (mut live, mut peak) = (0u64, 0u64);
    for ((slot, _), t) in plan.feeds.iter().zip(feeds) {
        live += t.byte_len() as u64;
        slots[*slot] = Some(t);
    }
    for step in &plan.steps {
        check_deadline(options, start)?;
        let t0 = Instant::now();
        let outs = run_step(plan, step, &slots, vars).map_err(|e| e.at(&step.name))?;
        for (slot, value) in step.outputs.iter().zip(outs) {
            match slot {
                Some(s) => {
                    live += value.byte_len() as u64;
                    slots[*s] = Some(value);
                }
                None => crate::runtime::cpu::recycle::give(value),
            }
        }
        peak = peak.max(live);
        for &s in &step.frees {
            if let Some(t) = slots[s].take() {
                live = live.saturating_sub(t.byte_len() as u64);
                crate::runtime::cpu::recycle::give(t);
            }
        }
        record_step(metadata.as_deref_mut(), options, step, start, t0);
    }
    if let Some(md) = metadata {
        md.peak_bytes.insert(crate::placement::DeviceKind::Cpu.full_name().to_string(), peak);
    }
    let out = plan
        .fetches
        .iter()
        .map(|f| match f {
            FetchFrom::Nothing => Ok(None),
            FetchFrom::Slot(s) => {
                slots[*s].clone().map(Some).ok_or_else(|| Error::internal("fetched value was not computed"))
            }
            FetchFrom::Var(id, name) => read_var(vars, *id, name).map(Some),
        })
        .collect();
    // What the run computed and nobody holds any more (fetched values are held).
    slots.into_iter().flatten().for_each(crate::runtime::cpu::recycle::give);
    out
}

fn read_var(vars: &Variables, id: NodeId, name: &str) -> Result<Tensor> {
    vars.values.get(&id).cloned().ok_or_else(|| uninitialized(name))
}

/// The value of each input of `step`: `None` for a variable that holds no value yet.
fn inputs(step: &Step, slots: &[Option<Tensor>], vars: &Variables) -> Result<Vec<Option<Tensor>>> {
    step.inputs
        .iter()
        .map(|i| match i {
            Input::Slot(s) => slots[*s].clone().map(Some).ok_or_else(|| Error::internal("input value missing")),
            Input::Var(id) => Ok(vars.values.get(id).cloned()),
        })
        .collect()
}

/// Input `k` of `step`, failing as TF does when it is an uninitialized variable.
fn value(plan: &Plan, step: &Step, ins: &[Option<Tensor>], k: usize) -> Result<Tensor> {
    match (ins.get(k), step.inputs.get(k)) {
        (Some(Some(t)), _) => Ok(t.clone()),
        (_, Some(Input::Var(id))) => Err(uninitialized(plan.var_name(*id))),
        _ => Err(Error::internal("input value missing")),
    }
}

fn run_step(plan: &Plan, step: &Step, slots: &[Option<Tensor>], vars: &mut Variables) -> Result<Vec<Tensor>> {
    match &step.action {
        Action::Transfer => Ok(vec![value(plan, step, &inputs(step, slots, vars)?, 0)?]),
        Action::Node(op) => {
            let ins = inputs(step, slots, vars)?;
            host_step(plan, step, op, ins, vars)
        }
    }
}

/// Runs node `op` of `step` on the host, with its input values (`None`: an uninitialized
/// variable) and the host's variables. The GPU executor runs its CPU-placed nodes here too.
pub(crate) fn host_step(
    plan: &Plan,
    step: &Step,
    op: &OpKind,
    ins: Vec<Option<Tensor>>,
    vars: &mut Variables,
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
            vars.values.insert(var, new.clone());
            Ok(vec![new])
        }
        OpKind::IsVariableInitialized => Ok(vec![Tensor::from(matches!(ins.first(), Some(Some(_))))]),
        OpKind::ReportUninitialized => Ok(vec![uninitialized_names(plan, step, |id| vars.values.contains_key(&id))]),
        OpKind::Compute(op) => {
            let ins = (0..ins.len()).map(|k| value(plan, step, &ins, k)).collect::<Result<Vec<_>>>()?;
            let refs: Vec<&Tensor> = ins.iter().collect();
            op.compute(&refs)
        }
    }
}

/// TF's error for a placeholder that was not fed.
pub(crate) fn unfed_placeholder(name: &str, spec: &crate::tensor::TensorSpec) -> Error {
    let shape = match spec.shape.rank() {
        Some(_) => format!(" and shape {}", spec.shape),
        None => String::new(),
    };
    Error::invalid_argument(format!(
        "You must feed a value for placeholder tensor '{name}' with dtype {}{shape}",
        spec.dtype.tf_name()
    ))
}

/// `DeadlineExceeded` once a run has taken longer than its `RunOptions::timeout`.
pub(crate) fn check_deadline(options: &RunOptions, start: Instant) -> Result<()> {
    match options.timeout {
        Some(limit) if start.elapsed() > limit => {
            Err(Error::new(crate::error::Code::DeadlineExceeded, "Timed out waiting for the run to finish"))
        }
        _ => Ok(()),
    }
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

/// Adds a step's device and timing to the run's metadata when the run is traced.
pub(crate) fn record_step(
    metadata: Option<&mut RunMetadata>,
    options: &RunOptions,
    step: &Step,
    start: Instant,
    t0: Instant,
) {
    if let (Some(md), TraceLevel::FullTrace) = (metadata, options.trace_level) {
        md.step_stats.push(NodeStats {
            name: step.name.clone(),
            op: step.type_name().to_string(),
            device: step.device.full_name().to_string(),
            start_us: (t0 - start).as_secs_f64() * 1e6,
            duration_us: t0.elapsed().as_secs_f64() * 1e6,
            fused_nodes: step.fused.clone(),
        });
    }
}

/// The result of `report_uninitialized_variables`: the names of the step's variables for which
/// `initialized` is false.
pub(crate) fn uninitialized_names(plan: &Plan, step: &Step, initialized: impl Fn(NodeId) -> bool) -> Tensor {
    let names: Vec<String> = step
        .inputs
        .iter()
        .filter_map(|i| match i {
            Input::Var(id) if !initialized(*id) => plan.vars.get(id).map(|(name, _)| name.clone()),
            _ => None,
        })
        .collect();
    Tensor::from(names)
}
