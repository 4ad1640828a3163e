//! The scenarios of `session.json` about the graph itself: TF's automatic names, the nodes
//! of a variable, control dependencies, and shape and graph errors.

use super::*;

pub(super) fn auto_naming(_d: Device, out: &mut Steps) -> wgflow::Result<Graph> {
    let g = Graph::new();
    let (c0, c1, c2) = (g.constant(1.0f32)?, g.constant(2.0f32)?, g.constant(3.0f32)?);
    out.push(Outcome::Record(json!([c0.op().name(), c1.op().name(), c2.op().name()])));
    let s1 = g.add(&c0, &c1)?;
    let s2 = (&c0 + &c1)?;
    let s3 = g.add(&c0, &c2)?;
    out.push(Outcome::Record(json!([s1.name(), s2.name(), s3.name()])));
    let f1 = g.named("foo").constant(1.0f32)?;
    let f2 = g.named("foo").constant(1.0f32)?;
    let f3 = g.named("foo_1").constant(1.0f32)?;
    out.push(Outcome::Record(json!([f1.op().name(), f2.op().name(), f3.op().name()])));
    let z = {
        let _scope = g.name_scope("layer");
        g.mul(&c0, 2.0f32)?
    };
    let z2 = {
        let _scope = g.name_scope("layer");
        g.mul(&c0, 2.0f32)?
    };
    out.push(Outcome::Record(json!([z.op().name(), z.op().inputs()[1].op().name(), z2.op().name()])));
    let m = g.mul(&c1, 3.0f32)?;
    out.push(Outcome::Record(json!([m.op().inputs()[1].op().name()])));
    let p1 = g.placeholder(DType::F32, Shape::unknown())?;
    let p2 = g.placeholder(DType::F32, Shape::unknown())?;
    out.push(Outcome::Record(json!([p1.name(), p2.name()])));
    out.push(Outcome::Record(json!([c0.name(), s1.name()])));
    Ok(g)
}

pub(super) fn variable_node_names_ref(_d: Device, out: &mut Steps) -> wgflow::Result<Graph> {
    let g = Graph::new();
    let v = g.variable(42.0f32, "Variable")?;
    let _w = g.variable(vec![1.0f32, 2.0], "w")?;
    out.push(Outcome::Record(json!([v.tensor().name(), v.name(), v.initializer().name(), v.value().name()])));
    out.push(Outcome::Record(json!("RefVariable")));
    let init = g.global_variables_initializer()?;
    let controls: Vec<String> = init.control_inputs().iter().map(|o| o.name()).collect();
    out.push(Outcome::Record(json!([init.name(), init.op_type(), controls])));
    let y = (v.value() * 2.0f32)?;
    let names: Vec<String> = y.op().inputs().iter().map(|t| t.name()).collect();
    out.push(Outcome::Record(json!(names)));
    Ok(g)
}

/// TF2's resource variables differ in node names; only the values are compared.
pub(super) fn variable_node_names_resource(d: Device, out: &mut Steps) -> wgflow::Result<Graph> {
    let g = Graph::new();
    let v = g.variable(42.0f32, "Variable")?;
    for _ in 0..4 {
        out.push(Outcome::Record(Value::Null));
    }
    let init = g.global_variables_initializer()?;
    let s = new_session(&g, d);
    out.push(run(&s, &[&v]));
    out.push(run(&s, &[&init]));
    out.push(run(&s, &[&v]));
    Ok(g)
}

pub(super) fn control_dependencies(d: Device, out: &mut Steps) -> wgflow::Result<Graph> {
    let g = Graph::new();
    let v = g.variable(1.0f32, "Variable")?;
    let assign = g.assign(&v, 5.0f32)?;
    let r = {
        let _deps = g.control_dependencies(&[&assign.op()])?;
        g.identity(&v)?
    };
    let init = g.global_variables_initializer()?;
    let s = new_session(&g, d);
    out.push(run(&s, &[&init]));
    out.push(run(&s, &[&r]));
    Ok(g)
}

pub(super) fn shape_and_graph_errors(d: Device, out: &mut Steps) -> wgflow::Result<Graph> {
    let g = Graph::new();
    let (a, b) = (g.constant(vec![1.0f32, 2.0])?, g.constant(vec![1.0f32, 2.0, 3.0])?);
    out.push(Outcome::Build(g.add(&a, &b).map(|_| ())));
    let (x, y) = (g.ones(&[2, 3])?, g.ones(&[2, 3])?);
    out.push(Outcome::Build(g.matmul(&x, &y, false, false).map(|_| ())));
    let (i, f) = (g.ones(&[1, 5, 5, 3])?, g.ones(&[3, 3, 2, 1])?);
    out.push(Outcome::Build(g.conv2d(&i, &f, &[1, 1, 1, 1], Padding::Same, &[1, 1, 1, 1]).map(|_| ())));
    let p = g.placeholder(DType::F32, Shape::unknown())?;
    let q = g.placeholder(DType::F32, Shape::unknown())?;
    let s_ = (&p + &q)?;
    let m = g.matmul(&p, &q, false, false)?;
    let s = new_session(&g, d);
    let feed2 = |pv: Tensor, qv: Tensor| vec![(p.clone(), pv), (q.clone(), qv)];
    out.push(Outcome::Run(s.run_feed(&[&s_], &feed2(f32s(&[2], &[1.0, 2.0]), f32s(&[3], &[1.0, 2.0, 3.0])))));
    out.push(Outcome::Run(s.run_feed(&[&s_], &feed2(f32s(&[3, 1], &[1.0; 3]), f32s(&[1, 4], &[1.0; 4])))));
    out.push(Outcome::Run(s.run_feed(&[&m], &feed2(f32s(&[2, 3], &[1.0; 6]), f32s(&[2, 3], &[1.0; 6])))));
    out.push(run_feed(&s, &[&s_], &[("nope:0", f32s(&[1], &[1.0]))]));
    let g2 = Graph::new();
    let other = g2.constant(1.0f32)?;
    let s2 = new_session(&g, d);
    out.push(run(&s2, &[&other]));
    Ok(g)
}
