//! `Graph::to_graph_def` and `Graph::write_pb`: a wgflow graph as a binary GraphDef that TF
//! imports. Op types and attrs are TF's (`OpKind::attrs`, `T` included); the axes, shapes and
//! perms wgflow holds as attributes become `Const` inputs named `<node>/<argument>`, as TF
//! writes them (`Op::const_inputs`); constants carry their value in `tensor_content`.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use prost::Message;

use super::proto::{
    attr_value, data_type as dt, AttrValue, Dim, GraphDef, NodeDef, TensorProto, TensorShapeProto, VersionDef,
};
use crate::error::{Error, Result};
use crate::graph::{Graph, GraphData, Node};
use crate::ops::{Attr, OpKind};
use crate::tensor::{DType, Shape, Tensor, TensorSpec};

/// The GraphDef version TF 2.21 writes (the sample files' `versions.producer`).
const PRODUCER: i32 = 2474;

impl Graph {
    /// The graph as a serialized binary `GraphDef` (`graph.as_graph_def().SerializeToString()`).
    pub fn to_graph_def(&self) -> Result<Vec<u8>> {
        Ok(graph_def(&self.read())?.encode_to_vec())
    }

    /// Writes [`Graph::to_graph_def`] to `path` (`tf.io.write_graph(..., as_text=False)`).
    pub fn write_pb(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, self.to_graph_def()?)
            .map_err(|e| Error::new(crate::error::Code::Unavailable, format!("{}: cannot write: {e}", path.display())))
    }
}

pub(super) fn graph_def(g: &GraphData) -> Result<GraphDef> {
    let mut taken: HashSet<String> = g.nodes.iter().map(|n| n.name.clone()).collect();
    let mut out = Vec::with_capacity(g.nodes.len());
    for node in &g.nodes {
        let specs: Vec<TensorSpec> = node.inputs.iter().map(|ep| g.nodes[ep.node].outputs[ep.index].clone()).collect();
        let mut inputs: Vec<String> = node
            .inputs
            .iter()
            .map(|ep| match ep.index {
                0 => g.nodes[ep.node].name.clone(),
                i => format!("{}:{i}", g.nodes[ep.node].name),
            })
            .collect();
        if let OpKind::Compute(op) = &node.op {
            for (at, arg, value) in op.const_inputs(&specs).map_err(|e| e.at(&node.name))? {
                let name = unique(&mut taken, &format!("{}/{arg}", node.name));
                out.push(const_node(&name, &value, &node.device));
                inputs.insert(at.min(inputs.len()), name);
            }
        }
        inputs.extend(node.control_inputs.iter().map(|&c| format!("^{}", g.nodes[c].name)));
        out.push(NodeDef {
            name: node.name.clone(),
            op: node.op.type_name().to_string(),
            input: inputs,
            device: node.device.clone(),
            attr: attrs(node, &specs),
        });
    }
    Ok(GraphDef { node: out, versions: Some(VersionDef { producer: PRODUCER, min_consumer: 0 }) })
}

/// `base`, or `base_1`, `base_2`, … if taken; marked taken.
fn unique(taken: &mut HashSet<String>, base: &str) -> String {
    let mut name = base.to_string();
    let mut k = 0;
    while taken.contains(&name) {
        k += 1;
        name = format!("{base}_{k}");
    }
    taken.insert(name.clone());
    name
}

pub(super) fn const_node(name: &str, value: &Tensor, device: &str) -> NodeDef {
    let mut attr = HashMap::new();
    attr.insert("dtype".into(), av(attr_value::Value::Type(type_enum(value.dtype()))));
    attr.insert("value".into(), av(attr_value::Value::Tensor(tensor_proto(value))));
    NodeDef { name: name.into(), op: "Const".into(), input: Vec::new(), device: device.into(), attr }
}

fn attrs(node: &Node, specs: &[TensorSpec]) -> HashMap<String, AttrValue> {
    let mut m: HashMap<String, AttrValue> =
        node.op.attrs(specs).into_iter().map(|(k, a)| (k.to_string(), attr(a))).collect();
    match &node.op {
        OpKind::Const(t) => {
            m.insert("value".into(), av(attr_value::Value::Tensor(tensor_proto(t))));
        }
        OpKind::Placeholder(s) => {
            m.insert("shape".into(), av(attr_value::Value::Shape(shape_proto(&s.shape))));
        }
        OpKind::Variable(s) => {
            m.insert("shape".into(), av(attr_value::Value::Shape(shape_proto(&s.shape))));
            m.insert("container".into(), av(attr_value::Value::S(Vec::new())));
            m.insert("shared_name".into(), av(attr_value::Value::S(Vec::new())));
        }
        OpKind::Assign(_) => {
            m.insert("use_locking".into(), av(attr_value::Value::B(false)));
        }
        _ => {}
    }
    m
}

fn av(value: attr_value::Value) -> AttrValue {
    AttrValue { value: Some(value) }
}

fn attr(a: Attr) -> AttrValue {
    av(match a {
        Attr::Bool(b) => attr_value::Value::B(b),
        Attr::Int(i) => attr_value::Value::I(i),
        Attr::Ints(v) => attr_value::Value::List(attr_value::ListValue { i: v, ..Default::default() }),
        Attr::Str(s) => attr_value::Value::S(s.into_bytes()),
        Attr::Type(t) => attr_value::Value::Type(type_enum(t)),
    })
}

fn type_enum(d: DType) -> i32 {
    match d {
        DType::F32 => dt::FLOAT,
        DType::F64 => dt::DOUBLE,
        DType::I32 => dt::INT32,
        DType::Bool => dt::BOOL,
        DType::Str => dt::STRING,
    }
}

fn shape_proto(s: &Shape) -> TensorShapeProto {
    match s.dims() {
        None => TensorShapeProto { dim: Vec::new(), unknown_rank: true },
        Some(dims) => TensorShapeProto {
            dim: dims.iter().map(|d| Dim { size: d.map_or(-1, |d| d as i64), name: String::new() }).collect(),
            unknown_rank: false,
        },
    }
}

fn tensor_proto(t: &Tensor) -> TensorProto {
    let shape = shape_proto(&Shape::known(t.shape()));
    let mut p = TensorProto { dtype: type_enum(t.dtype()), tensor_shape: Some(shape), ..Default::default() };
    match t {
        Tensor::F32(a) => p.tensor_content = a.iter().flat_map(|v| v.to_le_bytes()).collect(),
        Tensor::F64(a) => p.tensor_content = a.iter().flat_map(|v| v.to_le_bytes()).collect(),
        Tensor::I32(a) => p.tensor_content = a.iter().flat_map(|v| v.to_le_bytes()).collect(),
        Tensor::Bool(a) => p.bool_val = a.iter().copied().collect(),
        Tensor::Str(a) => p.string_val = a.iter().map(|s| s.clone().into_bytes()).collect(),
    }
    p
}
