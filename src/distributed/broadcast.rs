//! [`BroadcastVariables`]: rank 0's variable values copied to every rank after
//! initialization, so that all replicas start from the same point (Horovod's
//! `broadcast_global_variables(0)`).

use super::Communicator;
use crate::error::{Error, Result};
use crate::graph::{Graph, Operation, Output, Variable};
use crate::session::Session;
use crate::tensor::{DType, Tensor};

/// The nodes that assign broadcast values to a graph's variables: under the name scope
/// `broadcast`, a placeholder and an `Assign` per variable and a `NoOp` grouping the assigns.
/// Build it with the graph, before the sessions, and run it on every rank after the
/// variables are initialized.
#[derive(Debug)]
pub struct BroadcastVariables {
    vars: Vec<Variable>,
    feeds: Vec<Output>,
    assign_all: Operation,
}

impl BroadcastVariables {
    /// The broadcast of every global variable of `graph`.
    pub fn new(graph: &Graph) -> Result<BroadcastVariables> {
        BroadcastVariables::for_variables(graph, &graph.global_variables())
    }

    /// The broadcast of `variables` only. Fails with `InvalidArgument` on an empty list and
    /// with `Unimplemented` on a string variable.
    pub fn for_variables(graph: &Graph, variables: &[Variable]) -> Result<BroadcastVariables> {
        if variables.is_empty() {
            return Err(Error::invalid_argument("No variables to broadcast"));
        }
        let _scope = graph.name_scope("broadcast");
        let mut feeds = Vec::with_capacity(variables.len());
        let mut assigns = Vec::with_capacity(variables.len());
        for v in variables {
            let spec = v.tensor().spec();
            if spec.dtype == DType::Str {
                return Err(Error::unimplemented(format!("Variable {} has dtype string: not broadcast", v.name())));
            }
            let feed = graph.placeholder(spec.dtype, spec.shape)?;
            assigns.push(graph.assign(v, &feed)?.op());
            feeds.push(feed);
        }
        let refs: Vec<&Operation> = assigns.iter().collect();
        let assign_all = graph.named("assign_all").group(&refs)?;
        Ok(BroadcastVariables { vars: variables.to_vec(), feeds, assign_all })
    }

    /// The `broadcast/assign_all` operation.
    pub fn assign_op(&self) -> &Operation {
        &self.assign_all
    }

    /// Copies rank 0's values of the variables into `session` on every other rank, and
    /// returns the number of bytes broadcast. Every rank calls it, after initializing its
    /// variables: each reads its own values (for their dtypes and shapes), the ranks check
    /// that they agree on the total size (`InvalidArgument` on every rank if not: the ranks
    /// built different graphs), then one `MPI_Bcast` carries rank 0's values, which the
    /// other ranks assign in one run.
    pub fn run(&self, session: &Session, comm: &Communicator) -> Result<usize> {
        let fetches: Vec<&Output> = self.vars.iter().map(Variable::tensor).collect();
        let values: Vec<Tensor> = session.run(&fetches)?.into_iter().flatten().collect();
        if values.len() != self.vars.len() {
            return Err(Error::internal("a variable read yielded no value"));
        }
        let mut bytes = Vec::new();
        for v in &values {
            encode(v, &mut bytes)?;
        }
        // The largest and the smallest size over the ranks, in one all-reduce.
        let len = bytes.len() as u64;
        let mut sizes = [len, u64::MAX - len];
        comm.all_reduce_max(&mut sizes)?;
        if sizes[0] != len || u64::MAX - sizes[1] != len {
            return Err(Error::invalid_argument(format!(
                "the ranks' variables differ in size ({} to {} bytes, {len} on rank {}): every rank must build the same graph",
                u64::MAX - sizes[1],
                sizes[0],
                comm.rank()
            )));
        }
        comm.broadcast(&mut bytes)?;
        if comm.is_root() {
            return Ok(bytes.len());
        }
        let mut rest: &[u8] = &bytes;
        let mut feeds: Vec<(&Output, Tensor)> = Vec::with_capacity(values.len());
        for (feed, v) in self.feeds.iter().zip(&values) {
            feeds.push((feed, decode(v, &mut rest)?));
        }
        session.run_feed(&[&self.assign_all], &feeds)?;
        Ok(bytes.len())
    }
}

/// Appends the little-endian bytes of `value` (bools as one byte).
fn encode(value: &Tensor, out: &mut Vec<u8>) -> Result<()> {
    match value {
        Tensor::F32(a) => a.iter().for_each(|x| out.extend(x.to_le_bytes())),
        Tensor::I32(a) => a.iter().for_each(|x| out.extend(x.to_le_bytes())),
        Tensor::F64(a) => a.iter().for_each(|x| out.extend(x.to_le_bytes())),
        Tensor::Bool(a) => out.extend(a.iter().map(|&b| u8::from(b))),
        Tensor::Str(_) => return Err(Error::unimplemented("string variables are not broadcast")),
    }
    Ok(())
}

/// A tensor of `like`'s dtype and shape read from the front of `bytes`.
fn decode(like: &Tensor, bytes: &mut &[u8]) -> Result<Tensor> {
    let n = like.len();
    let take = |bytes: &mut &[u8], size: usize| -> Result<Vec<u8>> {
        let (head, tail) = bytes
            .split_at_checked(n * size)
            .ok_or_else(|| Error::internal("the broadcast ended before the variables did"))?;
        *bytes = tail;
        Ok(head.to_vec())
    };
    let shape = like.shape();
    match like {
        Tensor::F32(_) => Tensor::from_f32(shape, words(&take(bytes, 4)?, f32::from_le_bytes)),
        Tensor::I32(_) => Tensor::from_i32(shape, words(&take(bytes, 4)?, i32::from_le_bytes)),
        Tensor::F64(_) => Tensor::from_f64(shape, words(&take(bytes, 8)?, f64::from_le_bytes)),
        Tensor::Bool(_) => Tensor::from_bool(shape, take(bytes, 1)?.iter().map(|&b| b != 0).collect()),
        Tensor::Str(_) => Err(Error::unimplemented("string variables are not broadcast")),
    }
}

/// The values of `bytes` read `N` bytes at a time.
fn words<T, const N: usize>(bytes: &[u8], read: fn([u8; N]) -> T) -> Vec<T> {
    bytes
        .chunks_exact(N)
        .map(|c| {
            let mut word = [0u8; N];
            word.copy_from_slice(c);
            read(word)
        })
        .collect()
}
