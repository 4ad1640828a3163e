//! Unit tests of the data movement ops.

use crate::{ConfigProto, DType, Graph, Session, Shape, Tensor};

#[test]
fn reshape_infers_minus_one_and_rejects_bad_sizes() {
    let g = Graph::new();
    let x = g.ones(&[2, 3, 4]).unwrap();
    let r = g.reshape(&x, &[4, -1]).unwrap();
    assert_eq!(r.shape(), Shape::known(&[4, 6]));
    let err = g.reshape(&x, &[5, -1]).unwrap_err();
    assert!(err.message.starts_with("Dimension size must be evenly divisible by 5 but is 24"), "{}", err.message);
    let err = g.reshape(&x, &[5, 5]).unwrap_err();
    assert!(err.message.starts_with("Cannot reshape a tensor with 24 elements to shape [5,5] (25 elements)"));
    assert!(g.reshape(&x, &[-1, -1]).is_err());

    let p = g.placeholder(DType::F32, Shape::unknown()).unwrap();
    let r = g.reshape(&p, &[-1, 5]).unwrap();
    let sess = Session::new(&g, ConfigProto::cpu_only()).unwrap();
    let err = sess.eval_feed(&r, &[(&p, Tensor::filled(DType::F32, &[6], 1.0))]).unwrap_err();
    assert_eq!(
        err.message,
        "Input to reshape is a tensor with 6 values, but the requested shape requires a multiple of 5"
    );
    let got = sess.eval_feed(&r, &[(&p, Tensor::filled(DType::F32, &[10], 1.0))]).unwrap();
    assert_eq!(got.shape(), &[2, 5]);
}

#[test]
fn transpose_and_concat_errors() {
    let g = Graph::new();
    let x = g.ones(&[2, 3]).unwrap();
    assert!(g.transpose(&x, Some(&[0, 0])).is_err());
    assert!(g.transpose(&x, Some(&[0, 1, 2])).is_err());
    let y = g.ones(&[3, 3]).unwrap();
    assert!(g.concat(&[x.clone(), y.clone()], 1).is_err());
    assert!(g.concat(&[x.clone(), y.clone()], 2).is_err());
    let c = g.concat(&[x, y], -2).unwrap();
    assert_eq!(c.shape(), Shape::known(&[5, 3]));
}
