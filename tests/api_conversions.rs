//! Conversions and parsing for Rust users: tensors of every dtype from vectors and back
//! without matching on dtypes, `Padding` from TF's names, `Code`'s TF names, a variable used
//! wherever an operand is expected and as its tensor in `gradients`, and the adapter's report.

mod common;

use ndarray::ArrayD;
use wgflow::{Code, ConfigProto, Graph, Padding, Session, Tensor};

#[test]
fn tensors_of_every_dtype_convert_both_ways() {
    let f = Tensor::from_f64(&[2, 2], vec![1.5, -2.0, 0.25, 8.0]).unwrap();
    assert_eq!(Vec::<f64>::try_from(&f).unwrap(), vec![1.5, -2.0, 0.25, 8.0]);
    let b = Tensor::from_bool(&[3], vec![true, false, true]).unwrap();
    assert_eq!(Vec::<bool>::try_from(&b).unwrap(), vec![true, false, true]);
    let s = Tensor::from_strings(&[1, 2], vec!["a".into(), "bc".into()]).unwrap();
    let a = ArrayD::<String>::try_from(&s).unwrap();
    assert_eq!((a.shape(), a[[0, 1]].as_str()), (&[1usize, 2][..], "bc"));
    let x = Tensor::from_f32(&[2, 3], (0..6).map(|i| i as f32).collect()).unwrap();
    assert_eq!(ArrayD::<f32>::try_from(&x).unwrap().shape(), &[2, 3]);
    assert_eq!(Vec::<f32>::try_from(&x).unwrap(), vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    // A dtype mismatch or a shape that does not hold the data is InvalidArgument.
    let e = Vec::<i32>::try_from(&x).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (Code::InvalidArgument, "expected a int32 tensor, got float32"));
    assert_eq!(Tensor::from_bool(&[2, 2], vec![true]).unwrap_err().code, Code::InvalidArgument);
}

#[test]
fn padding_parses_tf_names_and_names_a_bad_value() {
    assert_eq!("SAME".parse::<Padding>().unwrap(), Padding::Same);
    assert_eq!("valid".parse::<Padding>().unwrap(), Padding::Valid);
    assert_eq!(Padding::Same.to_string(), "SAME");
    let e = "FULL".parse::<Padding>().unwrap_err();
    assert_eq!(e.code, Code::InvalidArgument);
    assert!(e.message.contains("\"FULL\""), "{e}");
}

#[test]
fn codes_print_tf_names() {
    assert_eq!(Code::InvalidArgument.to_string(), "InvalidArgument");
    assert_eq!(Code::DeadlineExceeded.as_str(), "DeadlineExceeded");
    assert_eq!(format!("{}", Code::DataLoss), "DataLoss");
}

#[test]
fn a_variable_is_an_operand() {
    let g = Graph::new();
    let v = g.variable(Tensor::from(vec![1.0f32, 2.0]), "v").unwrap();
    let w = g.variable(Tensor::from(vec![10.0f32, 20.0]), "w").unwrap();
    let sum = g.add(&v, &w).unwrap();
    let copy = g.assign(&v, &w).unwrap();
    let s = Session::new(&g, ConfigProto::cpu_only()).unwrap();
    s.run(&[g.global_variables_initializer().unwrap()]).unwrap();
    assert_eq!(s.eval(&sum).unwrap(), Tensor::from(vec![11.0f32, 22.0]));
    s.run(&[copy]).unwrap();
    assert_eq!(s.eval(&v).unwrap(), Tensor::from(vec![10.0f32, 20.0]));
}

#[test]
fn gradients_take_variables_as_their_tensors() {
    let g = Graph::new();
    let w = g.variable(Tensor::from(vec![1.0f32, -2.0]), "w").unwrap();
    let b = g.variable(0.5f32, "b").unwrap();
    let x = g.constant(Tensor::from(vec![3.0f32, 4.0])).unwrap();
    let loss = g.reduce_sum(g.add(g.mul(&w, &x).unwrap(), &b).unwrap(), None, false).unwrap();
    // Variables, references to them, outputs and references to outputs all make a list.
    let by_var = g.gradients(&[&loss], &[&w, &b], None).unwrap();
    let owned = g.gradients(std::slice::from_ref(&loss), &[w.clone(), b.clone()], None).unwrap();
    let by_tensor = g.gradients(std::slice::from_ref(&loss), &[w.tensor().clone(), b.tensor().clone()], None).unwrap();
    let mixed = g.gradients(&[&loss], &[w.as_ref(), &x], None).unwrap();
    let s = Session::new(&g, ConfigProto::cpu_only()).unwrap();
    s.run(&[g.global_variables_initializer().unwrap()]).unwrap();
    let eval = |grads: &[Option<wgflow::Output>]| -> Vec<Tensor> {
        grads.iter().map(|d| s.eval(d.as_ref().expect("a gradient")).unwrap()).collect()
    };
    let expected = vec![Tensor::from(vec![3.0f32, 4.0]), Tensor::from(2.0f32)];
    assert_eq!(eval(&by_var), expected);
    assert_eq!(eval(&owned), expected);
    assert_eq!(eval(&by_tensor), expected);
    assert_eq!(eval(&mixed), vec![Tensor::from(vec![3.0f32, 4.0]), Tensor::from(vec![1.0f32, -2.0])]);
    // The assign family takes variables as values too.
    let add = g.assign_add(&b, &b).unwrap();
    let sub = g.assign_sub(&w, &w).unwrap();
    s.run(&[&add, &sub]).unwrap();
    assert_eq!(s.eval(&b).unwrap(), Tensor::from(1.0f32));
    assert_eq!(s.eval(&w).unwrap(), Tensor::from(vec![0.0f32, 0.0]));
}

#[test]
fn div_names_tf_divide_and_binary_div_the_realdiv_op() {
    let g = Graph::new();
    let (a, b) = (g.constant(Tensor::from(vec![7i32, -7])).unwrap(), g.constant(Tensor::from(vec![2i32, 2])).unwrap());
    // `g.div` is `tf.divide`: int32 operands are cast to float64 first.
    let q = g.div(&a, &b).unwrap();
    assert_eq!(q.dtype(), wgflow::DType::F64);
    let s = Session::new(&g, ConfigProto::cpu_only()).unwrap();
    assert_eq!(Vec::<f64>::try_from(&s.eval(&q).unwrap()).unwrap(), vec![3.5, -3.5]);
    // `BinaryKind::Div` is the `RealDiv` op itself, which TF registers for float types only.
    let e = g.binary(wgflow::BinaryKind::Div, &a, &b).unwrap_err();
    assert_eq!(e.code, Code::InvalidArgument, "{e}");
    assert!(e.message.contains("DT_INT32 is not in the list of allowed values for RealDiv"), "{e}");
}

#[test]
fn the_adapter_report_names_what_the_kernels_depend_on() {
    if !common::gpu_ready() {
        return;
    }
    let gpu = wgflow::gpu::Adapter::open(None).unwrap();
    let report = gpu.report();
    assert!(report.starts_with(&format!("adapter: {}\n", gpu.description())), "{report}");
    for line in ["driver: ", "subgroup sizes: ", "features: SUBGROUP ", "limits: workgroup ", "cooperative matri"] {
        assert!(report.lines().any(|l| l.starts_with(line)), "no {line:?} line in {report}");
    }
}
