//! Session state: uninitialized variables, assigns of the wrong shape or dtype, closed
//! sessions, and gradients through paths that have none.

use super::{err, eval, mismatch, ok, Case};
use wgflow::{Code, Graph, Session, Tensor};

fn v2() -> Tensor {
    Tensor::from(vec![1.0f32, 2.0])
}

pub fn cases() -> Vec<Case> {
    use Code::{FailedPrecondition as Pre, InvalidArgument as Inv};
    vec![
        err("read of an uninitialized variable", Pre, |c| {
            let g = Graph::new();
            let v = g.variable(v2(), "foo")?;
            eval(c, &g, v.value()).map(|_| ())
        }),
        err("assign_add to an uninitialized variable", Pre, |c| {
            let g = Graph::new();
            let v = g.variable(v2(), "foo")?;
            let up = g.assign_add(&v, v2())?;
            eval(c, &g, &up).map(|_| ())
        }),
        err("assign of another shape", Inv, |c| {
            let g = Graph::new();
            let v = g.variable(v2(), "foo")?;
            let p = g.placeholder(wgflow::DType::F32, wgflow::Shape::unknown())?;
            let set = g.assign(&v, &p)?;
            let s = Session::new(&g, c.clone())?;
            s.run(&[g.global_variables_initializer()?])?;
            s.run_feed(&[set], &[(p, Tensor::from(vec![1.0f32, 2.0, 3.0]))]).map(|_| ())
        }),
        err("assign of another dtype", Inv, |c| {
            let g = Graph::new();
            let v = g.variable(v2(), "foo")?;
            let set = g.assign(&v, g.constant(Tensor::from(vec![1i32, 2]))?)?;
            eval(c, &g, &set).map(|_| ())
        }),
        err("run of a closed session", Pre, |c| {
            let g = Graph::new();
            let x = g.constant(v2())?;
            let s = Session::new(&g, c.clone())?;
            s.close();
            s.eval(&x).map(|_| ())
        }),
        err("run of a closed session after a run", Pre, |c| {
            let g = Graph::new();
            let v = g.variable(v2(), "foo")?;
            let s = Session::new(&g, c.clone())?;
            s.run(&[g.global_variables_initializer()?])?;
            s.close();
            s.eval(v.value()).map(|_| ())
        }),
        ok("a session beside a closed one runs", |c| {
            let g = Graph::new();
            let x = g.add(g.constant(v2())?, 1.0f32)?;
            let closed = Session::new(&g, c.clone())?;
            closed.eval(&x)?;
            closed.close();
            super::expect_eq(&eval(c, &g, &x)?, &Tensor::from(vec![2.0f32, 3.0]))
        }),
        err("gradients of a tensor of another graph", Inv, |_| {
            let (g, other) = (Graph::new(), Graph::new());
            let x = g.constant(v2())?;
            let y = other.constant(v2())?;
            g.gradients(&[y], &[x], None).map(|_| ())
        }),
        ok("no gradient through argmax", |_| {
            let g = Graph::new();
            let x = g.constant(Tensor::from_f32(&[2, 2], vec![1.0, 2.0, 4.0, 3.0])?)?;
            let y = g.reduce_sum(g.cast(g.argmax(&x, 1)?, wgflow::DType::F32)?, None, false)?;
            match g.gradients(&[y], &[x], None)?[0] {
                None => Ok(()),
                Some(_) => Err(mismatch("a gradient through argmax")),
            }
        }),
        ok("no gradient through a cast to int32", |_| {
            let g = Graph::new();
            let x = g.constant(v2())?;
            let y = g.cast(g.cast(&x, wgflow::DType::I32)?, wgflow::DType::F32)?;
            match g.gradients(&[y], &[x], None)?[0] {
                None => Ok(()),
                Some(_) => Err(mismatch("a gradient through an integer cast")),
            }
        }),
        ok("no gradient to an unconnected tensor", |_| {
            let g = Graph::new();
            let (x, z) = (g.constant(v2())?, g.constant(v2())?);
            let y = g.square(&x)?;
            match g.gradients(&[y], &[z], None)?[0] {
                None => Ok(()),
                Some(_) => Err(mismatch("a gradient to an unconnected tensor")),
            }
        }),
        err("gradient of an op that has none", Code::Unimplemented, |_| {
            let g = Graph::new();
            let logits = g.constant(Tensor::from_f32(&[1, 2], vec![1.0, 2.0])?)?;
            let labels = g.constant(Tensor::from_f32(&[1, 2], vec![0.0, 1.0])?)?;
            let back = g.softmax_cross_entropy_with_logits_grad(&labels, &logits)?;
            g.gradients(&[back], &[logits], None).map(|_| ())
        }),
        err("gradients with a grad_ys of another shape", Inv, |c| {
            let g = Graph::new();
            let x = g.constant(v2())?;
            let y = g.square(&x)?;
            let dy = g.constant(Tensor::from(vec![1.0f32, 2.0, 3.0]))?;
            let gx = g.gradients(&[y], &[x], Some(&[dy]))?[0].clone().ok_or_else(|| mismatch("no gradient"))?;
            eval(c, &g, &gx).map(|_| ())
        }),
    ]
}
