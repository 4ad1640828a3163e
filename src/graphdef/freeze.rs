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
    /// constant `v`; initializers and other nodes the outputs do not need are left out.
    pub fn freeze(&self, session: &mut Session, outputs: &[&str]) -> Result<Vec<u8>> {
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
        let mut frozen: Vec<NodeDef> = Vec::with_capacity(needed.len());
        for (i, node) in def.node.drain(..).enumerate() {
            if !needed.contains(&i) {
                continue;
            }
            if node.op == "VariableV2" {
                let var = self.tensor_by_name(&format!("{}:0", node.name))?;
                let value = session
                    .run(&[Fetch::from(&var)])?
                    .into_iter()
                    .next()
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
