//! `Graph::freeze`: TF's `convert_variables_to_constants` — the part of a graph its outputs
//! need, with every variable replaced by a `Const` of its value in a session, as a binary
//! GraphDef a TF user can load (`tf.import_graph_def`) without checkpoints.

use std::collections::{HashMap, HashSet};

use prost::Message;

use super::export::{const_node, graph_def};
use super::proto::NodeDef;
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::session::{Fetch, Session};

impl Graph {
    /// The nodes `outputs` (node names) need, variables frozen to their values in `session`,
    /// as a serialized `GraphDef`. Variable reads (`v/read`) stay as `Identity` of the
    /// constant `v`; initializers and other nodes the outputs do not need are left out. The
    /// variables are read in one run, so the values are those of one moment even while other
    /// threads update them.
    pub fn freeze(&self, session: &Session, outputs: &[&str]) -> Result<Vec<u8>> {
        let mut def = graph_def(&self.read())?;
        let index: HashMap<String, usize> = def.node.iter().enumerate().map(|(i, n)| (n.name.clone(), i)).collect();
        let mut needed = HashSet::new();
        let mut stack: Vec<usize> = Vec::new();
        for name in outputs {
            let i = *index.get(*name).ok_or_else(|| Error::not_found(format!("freeze: no node named '{name}'")))?;
            stack.push(i);
        }
        while let Some(i) = stack.pop() {
            if !needed.insert(i) {
                continue;
            }
            let node = &def.node[i];
            if node.op == "VariableV2" {
                continue;
            }
            for input in &node.input {
                let src = input.trim_start_matches('^');
                let src = src.rsplit_once(':').map_or(src, |(n, _)| n);
                if let Some(&j) = index.get(src) {
                    stack.push(j);
                }
            }
        }
        // The variables are read in one run: a snapshot, even while other threads train.
        let mut vars: Vec<usize> = needed.iter().copied().filter(|&i| def.node[i].op == "VariableV2").collect();
        vars.sort_unstable();
        let fetches = vars.iter().map(|&i| Ok(Fetch::from(self.tensor_by_name(&format!("{}:0", def.node[i].name))?)));
        let fetches = fetches.collect::<Result<Vec<Fetch>>>()?;
        let read = if fetches.is_empty() { Vec::new() } else { session.run(&fetches)? };
        let mut values: HashMap<usize, _> = vars.into_iter().zip(read).collect();
        let mut frozen: Vec<NodeDef> = Vec::with_capacity(needed.len());
        for (i, node) in def.node.drain(..).enumerate() {
            if !needed.contains(&i) {
                continue;
            }
            if node.op == "VariableV2" {
                let value = values
                    .remove(&i)
                    .flatten()
                    .ok_or_else(|| Error::internal(format!("freeze: no value for variable '{}'", node.name)))?;
                frozen.push(const_node(&node.name, &value, &node.device));
            } else {
                frozen.push(node);
            }
        }
        def.node = frozen;
        Ok(def.encode_to_vec())
    }
}
