//! [`SyncReplicasOptimizer`]: any [`Optimizer`] made synchronous over MPI ranks, after TF1's
//! `tf.train.SyncReplicasOptimizer` (and Horovod's `DistributedOptimizer`): every rank
//! computes the gradients of its shard of the batch, the gradients are averaged over the
//! ranks, and every rank applies the same averaged update.

use std::time::{Duration, Instant};

use super::Communicator;
use crate::error::{Error, Result};
use crate::graph::{Operation, Output, Variable};
use crate::session::{FeedKey, Fetch, Session};
use crate::tensor::{DType, Tensor};
use crate::train::Optimizer;

/// An optimizer whose updates use the gradients averaged over the ranks of a
/// [`Communicator`].
///
/// [`SyncReplicasOptimizer::minimize`] builds, with the graph, the gradient ops, one
/// placeholder per gradient and the wrapped optimizer's update fed from those placeholders;
/// the returned [`SyncTrainStep`] runs a step: the local gradients, one all-reduce of all of
/// them packed into one buffer, then the update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SyncReplicasOptimizer {
    optimizer: Optimizer,
}

impl SyncReplicasOptimizer {
    /// Wraps `optimizer`.
    pub fn new(optimizer: Optimizer) -> SyncReplicasOptimizer {
        SyncReplicasOptimizer { optimizer }
    }

    /// The wrapped optimizer.
    pub fn optimizer(&self) -> &Optimizer {
        &self.optimizer
    }

    /// Adds the gradients of `loss` (as [`Optimizer::compute_gradients`], with the same
    /// defaults), a placeholder per gradient under the name scope `sync_replicas`, and the
    /// wrapped optimizer's update of the variables from those placeholders (as
    /// [`Optimizer::apply_gradients`], with `global_step`). Fails with `InvalidArgument` if a
    /// gradient is not float32 or its variable's shape is not fully known.
    pub fn minimize(
        &self,
        loss: &Output,
        global_step: Option<&Variable>,
        var_list: Option<&[Variable]>,
    ) -> Result<SyncTrainStep> {
        let pairs = self.optimizer.compute_gradients(loss, global_step, var_list)?;
        let g = loss.graph().clone();
        let mut grads = Vec::with_capacity(pairs.len());
        let mut fed = Vec::with_capacity(pairs.len());
        let mut shapes = Vec::with_capacity(pairs.len());
        {
            let _scope = g.name_scope("sync_replicas");
            for (var, grad) in &pairs {
                if grad.dtype() != DType::F32 {
                    return Err(Error::invalid_argument(format!(
                        "the gradient of {} is {}: the all-reduce carries float32 only",
                        var.name(),
                        grad.dtype()
                    )));
                }
                let shape = var.tensor().shape();
                let dims: Vec<usize> = shape.dims().and_then(|d| d.iter().copied().collect()).ok_or_else(|| {
                    Error::invalid_argument(format!(
                        "{} needs a fully known shape to all-reduce its gradient",
                        var.name()
                    ))
                })?;
                let feed = g.placeholder(DType::F32, shape)?;
                fed.push((var.clone(), feed));
                grads.push(grad.clone());
                shapes.push(dims);
            }
        }
        let apply = self.optimizer.apply_gradients(&fed, global_step)?;
        let len = shapes.iter().map(|s| s.iter().product::<usize>()).sum();
        Ok(SyncTrainStep {
            grads,
            feeds: fed.into_iter().map(|(_, p)| p).collect(),
            shapes,
            apply,
            flat: vec![0.0; len],
        })
    }
}

/// What [`SyncTrainStep::run`] returns: the extra fetches' values on this rank and where the
/// step's time went.
#[derive(Debug)]
pub struct SyncStep {
    /// The values of the extra fetches, computed on this rank's shard (a loss is this rank's).
    pub fetched: Vec<Option<Tensor>>,
    /// The run that computed the local gradients (forward and backward pass).
    pub compute: Duration,
    /// The all-reduce, packing and averaging included.
    pub all_reduce: Duration,
    /// The run that applied the averaged gradients.
    pub apply: Duration,
    /// The bytes this rank contributed to the all-reduce (4 per gradient element).
    pub bytes: usize,
}

/// The training step of a [`SyncReplicasOptimizer`]: the gradient ops, their placeholders
/// and the update fed from them, with the flat buffer the gradients are packed into.
#[derive(Debug)]
pub struct SyncTrainStep {
    grads: Vec<Output>,
    feeds: Vec<Output>,
    shapes: Vec<Vec<usize>>,
    apply: Operation,
    flat: Vec<f32>,
}

impl SyncTrainStep {
    /// The gradient ops, in the order they are packed.
    pub fn gradients(&self) -> &[Output] {
        &self.grads
    }

    /// The update, fed from the averaged gradients (the wrapped optimizer's train op).
    pub fn apply_op(&self) -> &Operation {
        &self.apply
    }

    /// The bytes of one all-reduce: 4 per element of every gradient.
    pub fn bytes_per_step(&self) -> usize {
        self.flat.len() * std::mem::size_of::<f32>()
    }

    /// One synchronous step on every rank (every rank calls it, with its shard of the batch
    /// in `feeds`): a run of the local gradients and of `fetches`; the gradients packed into
    /// one flat buffer, summed over the ranks with one `MPI_Allreduce` and divided by the
    /// number of ranks; a run of the update fed with the averages. Every rank applies the
    /// same update, so replicas that start equal (see
    /// [`BroadcastVariables`](super::BroadcastVariables)) stay bit-identical.
    ///
    /// With equal shards and a loss that is a mean over the batch, the averaged gradient is
    /// the gradient of the whole batch, as one process would compute it (up to float32
    /// rounding). Errors: the session's, and the [`Communicator`]'s for the all-reduce.
    pub fn run<K: Into<FeedKey> + Clone>(
        &mut self,
        session: &Session,
        comm: &Communicator,
        feeds: &[(K, Tensor)],
        fetches: &[Fetch],
    ) -> Result<SyncStep> {
        let start = Instant::now();
        let all: Vec<Fetch> = self.grads.iter().map(Fetch::from).chain(fetches.iter().cloned()).collect();
        let mut out = session.run_feed(&all, feeds)?;
        let fetched = out.split_off(self.grads.len());
        let compute = start.elapsed();

        let start = Instant::now();
        self.pack(&out)?;
        comm.all_reduce_sum(&mut self.flat)?;
        let n = comm.size() as f32;
        self.flat.iter_mut().for_each(|x| *x /= n);
        let averaged = self.unpack()?;
        let all_reduce = start.elapsed();

        let start = Instant::now();
        let apply_feeds: Vec<(&Output, Tensor)> = self.feeds.iter().zip(averaged).collect();
        session.run_feed(&[&self.apply], &apply_feeds)?;
        Ok(SyncStep { fetched, compute, all_reduce, apply: start.elapsed(), bytes: self.bytes_per_step() })
    }

    /// Copies the gradients into the flat buffer, in order.
    fn pack(&mut self, grads: &[Option<Tensor>]) -> Result<()> {
        let mut at = 0;
        for ((grad, shape), op) in grads.iter().zip(&self.shapes).zip(&self.grads) {
            let values = grad.as_ref().ok_or_else(|| Error::internal("a gradient fetch yielded no value"))?.as_f32()?;
            let len: usize = shape.iter().product();
            if values.len() != len {
                return Err(Error::invalid_argument(format!(
                    "the gradient {} has {} elements, its variable {len}",
                    op.name(),
                    values.len()
                )));
            }
            let dst = self.flat.get_mut(at..at + len).ok_or_else(|| Error::internal("the gradient buffer is short"))?;
            dst.iter_mut().zip(values.iter()).for_each(|(d, &v)| *d = v);
            at += len;
        }
        Ok(())
    }

    /// The gradients of the flat buffer, as tensors of their variables' shapes.
    fn unpack(&self) -> Result<Vec<Tensor>> {
        let mut at = 0;
        let mut out = Vec::with_capacity(self.shapes.len());
        for shape in &self.shapes {
            let len: usize = shape.iter().product();
            let part = self.flat.get(at..at + len).ok_or_else(|| Error::internal("the gradient buffer is short"))?;
            out.push(Tensor::from_f32(shape, part.to_vec())?);
            at += len;
        }
        Ok(out)
    }
}
