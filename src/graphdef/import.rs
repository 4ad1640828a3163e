//! `Graph::import_graph_def`: a GraphDef's nodes added to a wgflow graph, as
//! `tf.import_graph_def` adds them: names kept (under an optional prefix), inputs resolved
//! (or replaced through an input map), control inputs and device fields kept, `_class`
//! colocation honoured, nodes added in dependency order whatever the file's order.

use std::collections::{HashMap, VecDeque};
use std::path::Path;

use prost::Message;

use super::node::NodeIn;
use super::proto::{attr_value::Value, GraphDef, NodeDef};
use crate::error::{Error, Result};
use crate::graph::{Graph, Operation, Output};

/// How [`Graph::import_graph_def`] names and connects the imported nodes.
#[derive(Clone, Default)]
pub struct ImportOptions {
    /// Prepended to every imported name (`prefix/name`); empty for none.
    pub prefix: String,
    /// Tensors of the file (`"name:0"`, or `"name"` for output 0) replaced by tensors of
    /// this graph: their consumers read the given `Output` instead.
    pub input_map: HashMap<String, Output>,
}

/// What a node of the file became: the operation named as the node (for control inputs), and
/// its outputs where they are not that operation's own (an op split into several).
pub(crate) struct Imported {
    pub(crate) op: Operation,
    pub(crate) outputs: Option<Vec<Output>>,
}

impl Imported {
    /// The node's output `index`.
    pub(crate) fn output(&self, index: usize) -> Option<Output> {
        match &self.outputs {
            Some(list) => list.get(index).cloned(),
            None => self.op.output(index),
        }
    }
}

/// One input of a node as the file writes it.
enum InputRef<'a> {
    Data { node: &'a str, index: usize },
    Control(&'a str),
}

fn parse_input(s: &str) -> Result<InputRef<'_>> {
    if let Some(node) = s.strip_prefix('^') {
        return Ok(InputRef::Control(node));
    }
    match s.rsplit_once(':') {
        Some((node, idx)) => idx
            .parse()
            .map(|index| InputRef::Data { node, index })
            .map_err(|_| Error::invalid_argument(format!("Invalid input name '{s}'"))),
        None => Ok(InputRef::Data { node: s, index: 0 }),
    }
}

impl Graph {
    /// Adds the nodes of a serialized `GraphDef` to this graph (`tf.import_graph_def`).
    ///
    /// Bytes that do not parse give `InvalidArgument`; so do duplicate names, unknown inputs
    /// and cycles. A node whose op type wgflow has no kernel for gives `Unimplemented`
    /// naming the op type and the node, at import.
    pub fn import_graph_def(&self, bytes: &[u8], options: &ImportOptions) -> Result<()> {
        let def = GraphDef::decode(bytes)
            .map_err(|e| Error::invalid_argument(format!("Invalid GraphDef: the bytes do not parse ({e})")))?;
        let by_name = index_names(&def)?;
        let order = dependency_order(&def, &by_name)?;
        let full = |name: &str| {
            if options.prefix.is_empty() {
                name.to_string()
            } else {
                format!("{}/{name}", options.prefix.trim_end_matches('/'))
            }
        };
        let mut made: Vec<Option<Imported>> = (0..def.node.len()).map(|_| None).collect();
        for i in order {
            let node = &def.node[i];
            let mut inputs = Vec::new();
            let mut controls = Vec::new();
            for s in &node.input {
                match parse_input(s)? {
                    InputRef::Control(name) => controls.extend(made_op(&made, by_name.get(name)).map(|m| m.op.clone())),
                    InputRef::Data { node: src, index } => {
                        let key = if index == 0 && !s.contains(':') { format!("{src}:0") } else { s.clone() };
                        let mapped =
                            options.input_map.get(&key).or_else(|| options.input_map.get(src).filter(|_| index == 0));
                        let out = match mapped {
                            Some(t) => t.clone(),
                            None => {
                                made_op(&made, by_name.get(src)).and_then(|m| m.output(index)).ok_or_else(|| {
                                    Error::invalid_argument(format!(
                                        "Node '{}': Connecting to invalid output {index} of source node {src}",
                                        node.name
                                    ))
                                })?
                            }
                        };
                        inputs.push(out);
                    }
                }
            }
            let device = colocated_device(node, &def, &by_name).unwrap_or(&node.device);
            let name = full(&node.name);
            let op = {
                let _device = (!device.is_empty()).then(|| self.device(device));
                let refs: Vec<&Operation> = controls.iter().collect();
                let _controls = self.control_dependencies(&refs)?;
                NodeIn { graph: self, def: node, name: name.clone(), inputs }.import()?
            };
            if op.op.name() != name {
                return Err(Error::invalid_argument(format!(
                    "Node '{name}': the name is already used in the graph it is imported into"
                )));
            }
            // An output that is another op's answers to the node's tensor name.
            if let Some(outputs) = &op.outputs {
                let mut g = self.write();
                for (k, out) in outputs.iter().enumerate().filter(|(k, o)| o.op().id != op.op.id || o.index() != *k) {
                    g.aliases.insert(format!("{name}:{k}"), out.ep);
                }
            }
            made[i] = Some(op);
        }
        self.register_imported_variables();
        Ok(())
    }

    /// A graph holding the nodes of the binary `GraphDef` file at `path` (`.pb`, as
    /// `tf.io.write_graph(..., as_text=False)` writes it).
    pub fn from_pb_file(path: impl AsRef<Path>) -> Result<Graph> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .map_err(|e| Error::not_found(format!("{}: cannot read the GraphDef file: {e}", path.display())))?;
        let g = Graph::new();
        g.import_graph_def(&bytes, &ImportOptions::default())?;
        Ok(g)
    }
}

/// The operation made for node `i` (all of a node's inputs are made before it).
fn made_op<'m>(made: &'m [Option<Imported>], i: Option<&usize>) -> Option<&'m Imported> {
    made.get(*i?)?.as_ref()
}

/// Node name to index; a name used twice is an error.
fn index_names(def: &GraphDef) -> Result<HashMap<&str, usize>> {
    let mut by_name = HashMap::with_capacity(def.node.len());
    for (i, n) in def.node.iter().enumerate() {
        crate::graph::check_op_name(&n.name)
            .map_err(|_| Error::invalid_argument(format!("Node name '{}' is not a valid op name", n.name)))?;
        if by_name.insert(n.name.as_str(), i).is_some() {
            return Err(Error::invalid_argument(format!("Duplicate node name in graph: '{}'", n.name)));
        }
    }
    Ok(by_name)
}

/// The nodes in an order where every input comes first (Kahn's algorithm, file order among
/// the ready ones); an unknown input or a cycle is an error.
fn dependency_order(def: &GraphDef, by_name: &HashMap<&str, usize>) -> Result<Vec<usize>> {
    let n = def.node.len();
    let mut pending = vec![0usize; n];
    let mut consumers: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, node) in def.node.iter().enumerate() {
        for s in &node.input {
            let src = match parse_input(s)? {
                InputRef::Control(src) | InputRef::Data { node: src, .. } => src,
            };
            let j = *by_name
                .get(src)
                .ok_or_else(|| Error::invalid_argument(format!("Node '{}': Unknown input node '{s}'", node.name)))?;
            pending[i] += 1;
            consumers[j].push(i);
        }
    }
    let mut ready: VecDeque<usize> = (0..n).filter(|&i| pending[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_front() {
        order.push(i);
        for &c in &consumers[i] {
            pending[c] -= 1;
            if pending[c] == 0 {
                ready.push_back(c);
            }
        }
    }
    if order.len() < n {
        let stuck = (0..n).find(|&i| pending[i] > 0).map_or("", |i| def.node[i].name.as_str());
        return Err(Error::invalid_argument(format!(
            "GraphDef has a cycle (or an input loop) through node '{stuck}'; wgflow imports acyclic graphs"
        )));
    }
    Ok(order)
}

/// The device of the node a `_class: ["loc:@other"]` attr colocates this one with, when this
/// node asks for none and the other asks for one.
fn colocated_device<'a>(node: &NodeDef, def: &'a GraphDef, by_name: &HashMap<&str, usize>) -> Option<&'a String> {
    if !node.device.is_empty() {
        return None;
    }
    let Some(Value::List(list)) = node.attr.get("_class").and_then(|a| a.value.as_ref()) else {
        return None;
    };
    list.s.iter().find_map(|s| {
        let other = std::str::from_utf8(s).ok()?.strip_prefix("loc:@")?;
        let dev = &def.node[*by_name.get(other)?].device;
        (!dev.is_empty()).then_some(dev)
    })
}
