//! Writing a graph as Graphviz DOT, so a person can look at it.

use std::fmt::Write;

use super::Graph;

impl Graph {
    /// The graph in Graphviz DOT: one box per operation (name and op type), solid edges
    /// for data labelled with the tensor's shape, dashed edges for control dependencies.
    pub fn to_dot(&self) -> String {
        let g = self.read();
        let mut out = String::from("digraph wgflow {\n  rankdir=TB;\n  node [shape=box, fontname=\"Helvetica\"];\n");
        for (id, n) in g.nodes.iter().enumerate() {
            let device = if n.device.is_empty() { String::new() } else { format!("\\n{}", escape(&n.device)) };
            let _ = writeln!(out, "  n{id} [label=\"{}\\n({}){device}\"];", escape(&n.name), n.op.type_name());
        }
        for (id, n) in g.nodes.iter().enumerate() {
            for ep in &n.inputs {
                let spec = &g.nodes[ep.node].outputs[ep.index];
                let _ = writeln!(out, "  n{} -> n{id} [label=\"{} {}\"];", ep.node, spec.dtype, spec.shape);
            }
            for c in &n.control_inputs {
                let _ = writeln!(out, "  n{c} -> n{id} [style=dashed];");
            }
        }
        out.push_str("}\n");
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}
