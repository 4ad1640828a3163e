//! Resolving what a run names (fetches and feed keys: handles or names) to graph ids, the
//! run signature that the plan cache is keyed by, and the checks of fed values.

use super::fetch::{FeedKey, Fetch};
use super::plan::Plan;
use super::prune::{Signature, Target};
use super::Session;
use crate::error::{Error, Result};
use crate::graph::{Endpoint, Output};
use crate::ops::OpKind;
use crate::tensor::Tensor;

impl Session {
    /// Resolves fetches and feeds to graph ids. Feeds come back sorted by endpoint, with
    /// the name TF would print for each.
    pub(super) fn signature(
        &self,
        fetches: &[Fetch],
        feeds: &[(FeedKey, Tensor)],
    ) -> Result<(Signature, Vec<(String, Tensor)>)> {
        let mut targets = Vec::with_capacity(fetches.len());
        for f in fetches {
            targets.push(match f {
                Fetch::Tensor(t) => Target::Tensor(self.own_tensor(t, "fetch")?),
                Fetch::Operation(op) => {
                    self.graph.own(&op.graph).map_err(|_| {
                        Error::invalid_argument(format!("Operation {:?} is not an element of this graph.", op.name()))
                    })?;
                    Target::Op(op.id)
                }
                Fetch::Name(n) if n.contains(':') => {
                    Target::Tensor(self.graph.tensor_by_name(n).map_err(|e| fetch_name_error(n, e))?.ep)
                }
                Fetch::Name(n) => Target::Op(self.graph.operation_by_name(n).map_err(|e| fetch_name_error(n, e))?.id),
            });
        }
        let mut resolved: Vec<(Endpoint, String, Tensor)> = Vec::with_capacity(feeds.len());
        for (key, value) in feeds {
            let t = match key {
                FeedKey::Tensor(t) => {
                    self.own_tensor(t, "feed")?;
                    t.clone()
                }
                FeedKey::Name(n) => self.graph.tensor_by_name(n).map_err(|e| {
                    Error::new(e.code, format!("Cannot interpret feed_dict key as Tensor: {}", e.message))
                })?,
            };
            let g = self.graph.read();
            if g.unfeedable.contains(&t.ep) || matches!(g.nodes[t.ep.node].op, OpKind::Variable(_)) {
                return Err(Error::invalid_argument(format!(
                    "Tensor {}:{} may not be fed.",
                    g.nodes[t.ep.node].name, t.ep.index
                )));
            }
            let name = format!("{}:{}", g.nodes[t.ep.node].name, t.ep.index);
            drop(g);
            resolved.retain(|(ep, _, _)| *ep != t.ep);
            resolved.push((t.ep, name, value.clone()));
        }
        resolved.sort_by_key(|(ep, _, _)| *ep);
        let sig = Signature {
            fetches: targets,
            feeds: resolved.iter().map(|(ep, _, _)| *ep).collect(),
            version: self.graph.read().version,
        };
        Ok((sig, resolved.into_iter().map(|(_, n, t)| (n, t)).collect()))
    }

    fn own_tensor(&self, t: &Output, what: &str) -> Result<Endpoint> {
        self.graph.own(&t.graph).map_err(|_| {
            let r = t.python_repr();
            Error::invalid_argument(format!(
                "Argument `{what}` = {r} cannot be interpreted as a Tensor. (Tensor {r} is not an element of this graph.)"
            ))
        })?;
        Ok(t.ep)
    }
}

fn fetch_name_error(name: &str, e: Error) -> Error {
    Error::new(e.code, format!("Fetch argument '{name}' cannot be interpreted as a Tensor. ({})", e.message))
}

/// Checks a fed value against the static spec of the tensor it replaces.
fn check_feed(name: &str, spec: &crate::tensor::TensorSpec, value: &Tensor) -> Result<()> {
    if value.dtype() != spec.dtype {
        return Err(Error::invalid_argument(format!(
            "Cannot feed value of dtype {} for Tensor {name}, which has dtype {}",
            value.dtype(),
            spec.dtype
        )));
    }
    if !spec.shape.is_compatible_with(value.shape()) {
        return Err(Error::invalid_argument(format!(
            "Cannot feed value of shape {} for Tensor {name}, which has shape {}",
            crate::tensor::Shape::known(value.shape()).python_string(),
            spec.shape.python_string()
        )));
    }
    Ok(())
}

/// The fed values in the plan's feed order, each checked against the static spec of the
/// tensor it replaces.
pub(super) fn checked_feeds(plan: &Plan, feeds: Vec<(String, Tensor)>) -> Result<Vec<Tensor>> {
    for ((_, spec), (key, value)) in plan.feeds.iter().zip(&feeds) {
        check_feed(key, spec, value)?;
    }
    Ok(feeds.into_iter().map(|(_, t)| t).collect())
}
