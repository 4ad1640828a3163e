//! Run-time op semantics on bad or odd inputs (issue 12, parts 3 and 4), checked against
//! TF 2.21: integer division edge cases, reshapes that overflow, duplicate reduction axes,
//! assignments that do not fit their variable, int32 matmul, the gradients of integer
//! division and out-of-range sparse labels. Each case runs on a CPU session and, where an
//! adapter is found, on a GPU session with the graph built under `/gpu:0`.

mod common;

use std::sync::OnceLock;

use wgflow::{Code, ConfigProto, DType, Error, Graph, ScopeGuard, Session, Shape, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dev {
    Cpu,
    Gpu,
}

impl Dev {
    /// A graph whose nodes ask for this device, with the guard that keeps the request.
    fn graph(self) -> (Graph, Option<ScopeGuard>) {
        let g = Graph::new();
        let guard = (self == Dev::Gpu).then(|| g.device("/gpu:0"));
        (g, guard)
    }
    fn session(self, g: &Graph) -> Session {
        let config = match self {
            Dev::Cpu => ConfigProto::cpu_only(),
            Dev::Gpu => ConfigProto::default(),
        };
        Session::new(g, config).expect("session")
    }
}

fn gpu() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(common::gpu_ready)
}

/// The CPU, and the GPU where there is one.
fn devices() -> Vec<Dev> {
    if gpu() {
        vec![Dev::Cpu, Dev::Gpu]
    } else {
        vec![Dev::Cpu]
    }
}

fn i32s(t: &Tensor) -> Vec<i32> {
    t.as_i32().expect("int32").iter().copied().collect()
}

fn expect_invalid(dev: Dev, got: Result<impl std::fmt::Debug, Error>, message: &str) -> Error {
    let err = match got {
        Ok(v) => panic!("{dev:?}: expected InvalidArgument {message:?}, got {v:?}"),
        Err(e) => e,
    };
    assert_eq!(err.code, Code::InvalidArgument, "{dev:?}: {err}");
    assert_eq!(err.message, message, "{dev:?}");
    err
}

#[test]
fn floordiv_and_truncatediv_of_int_min_by_minus_one_wrap() {
    for dev in devices() {
        let (g, _d) = dev.graph();
        let x = g.placeholder(DType::I32, Shape::known(&[4])).unwrap();
        let y = g.placeholder(DType::I32, Shape::known(&[4])).unwrap();
        let fd = g.floordiv(&x, &y).unwrap();
        let td = g.truncatediv(&x, &y).unwrap();
        let s = dev.session(&g);
        let feeds = [(&x, Tensor::from(vec![i32::MIN, 7, -7, i32::MIN])), (&y, Tensor::from(vec![-1, -2, 2, 1]))];
        let got = s.run_feed(&[&fd, &td], &feeds).unwrap();
        let (fd, td) = (got[0].as_ref().unwrap(), got[1].as_ref().unwrap());
        assert_eq!(i32s(fd), vec![i32::MIN, -4, -4, i32::MIN], "{dev:?} floordiv");
        assert_eq!(i32s(td), vec![i32::MIN, -3, -3, i32::MIN], "{dev:?} truncatediv");
    }
}

/// Integer division by zero on the CPU kernels (in a GPU session too, placed on the CPU).
#[test]
fn int32_division_by_zero_on_cpu_kernels_is_invalid_argument() {
    for dev in devices() {
        let g = Graph::new();
        let _cpu = g.device("/cpu:0");
        let x = g.placeholder(DType::I32, Shape::known(&[2])).unwrap();
        let y = g.placeholder(DType::I32, Shape::known(&[2])).unwrap();
        let fd = g.floordiv(&x, &y).unwrap();
        let td = g.truncatediv(&x, &y).unwrap();
        let s = dev.session(&g);
        for (out, name) in [(&fd, "floordiv"), (&td, "truncatediv")] {
            let feeds = [(&x, Tensor::from(vec![7, -7])), (&y, Tensor::from(vec![0, 1]))];
            let err = expect_invalid(dev, s.eval_feed(out, &feeds), "Integer division by zero");
            assert_eq!(err.node.as_deref(), Some(name));
        }
    }
}

/// The GPU kernels' side of division by zero (an error flag, the lead's part of issue 12).
#[test]
fn int32_division_by_zero_on_gpu_kernels_is_invalid_argument() {
    if !gpu() {
        return;
    }
    let (g, _d) = Dev::Gpu.graph();
    let x = g.placeholder(DType::I32, Shape::known(&[2])).unwrap();
    let y = g.placeholder(DType::I32, Shape::known(&[2])).unwrap();
    let fd = g.floordiv(&x, &y).unwrap();
    let td = g.truncatediv(&x, &y).unwrap();
    let s = Dev::Gpu.session(&g);
    for out in [&fd, &td] {
        let feeds = [(&x, Tensor::from(vec![7, -7])), (&y, Tensor::from(vec![0, 1]))];
        expect_invalid(Dev::Gpu, s.eval_feed(out, &feeds), "Integer division by zero");
    }
}

#[test]
fn reshape_whose_element_count_overflows_is_invalid_argument() {
    let big = 1i64 << 40;
    let message = format!("Shape [{big}, {big}] has too many elements");
    // Known at build time.
    let g = Graph::new();
    let x = g.ones(&[4]).unwrap();
    let err = g.reshape(&x, &[big, big]).unwrap_err();
    assert_eq!(err.code, Code::InvalidArgument);
    assert!(err.message.starts_with(&message), "{}", err.message);
    // Found at run time, with and without a -1, and for an empty input.
    for dev in devices() {
        let (g, _d) = dev.graph();
        let p = g.placeholder(DType::F32, Shape::unknown()).unwrap();
        let r = g.reshape(&p, &[big, big]).unwrap();
        let r1 = g.reshape(&p, &[-1, big, big]).unwrap();
        let r0 = g.reshape(&p, &[big, big, 0]).unwrap();
        let s = dev.session(&g);
        let four = Tensor::filled(DType::F32, &[4], 1.0);
        expect_invalid(dev, s.eval_feed(&r, &[(&p, four.clone())]), &message);
        expect_invalid(
            dev,
            s.eval_feed(&r1, &[(&p, four.clone())]),
            &format!("Shape [-1, {big}, {big}] has too many elements"),
        );
        let empty = Tensor::filled(DType::F32, &[0], 1.0);
        expect_invalid(
            dev,
            s.eval_feed(&r0, &[(&p, empty)]),
            &format!("Shape [{big}, {big}, 0] has too many elements"),
        );
        // An ordinary reshape still works.
        let ok = g.reshape(&p, &[2, -1]).unwrap();
        assert_eq!(s.eval_feed(&ok, &[(&p, four)]).unwrap().shape(), &[2, 2], "{dev:?}");
    }
}

#[test]
fn duplicate_reduction_axes_are_invalid_argument() {
    // Static rank: the builder call fails.
    let g = Graph::new();
    let x = g.ones(&[2, 3]).unwrap();
    let dup = |r: wgflow::Result<wgflow::Output>, axis: usize| {
        let err = r.unwrap_err();
        assert_eq!(err.code, Code::InvalidArgument);
        let want = format!("Invalid reduction arguments: Axes contains duplicate dimension: {axis}");
        assert!(err.message.starts_with(&want), "{}", err.message);
    };
    dup(g.reduce_sum(&x, Some(&[0, 0]), false), 0);
    dup(g.reduce_max(&x, Some(&[1, -1]), false), 1);
    dup(g.reduce_mean(&x, Some(&[-2, 1, 0]), true), 0);
    // Unknown rank: the run fails, on every device and for every kind.
    for dev in devices() {
        let (g, _d) = dev.graph();
        let p = g.placeholder(DType::F32, Shape::unknown()).unwrap();
        let sum = g.reduce_sum(&p, Some(&[0, 0]), false).unwrap();
        let max = g.reduce_max(&p, Some(&[1, -1]), false).unwrap();
        let mean = g.reduce_mean(&p, Some(&[-2, 1, 0]), true).unwrap();
        let ok = g.reduce_sum(&p, Some(&[0, -1]), false).unwrap();
        let s = dev.session(&g);
        let feed = || [(&p, Tensor::filled(DType::F32, &[2, 3], 1.0))];
        let msg = "Invalid reduction arguments: Axes contains duplicate dimension: ";
        expect_invalid(dev, s.eval_feed(&sum, &feed()), &format!("{msg}0"));
        expect_invalid(dev, s.eval_feed(&max, &feed()), &format!("{msg}1"));
        expect_invalid(dev, s.eval_feed(&mean, &feed()), &format!("{msg}0"));
        assert_eq!(s.eval_feed(&ok, &feed()).unwrap().scalar_f32().unwrap(), 6.0, "{dev:?}");
    }
}

#[test]
fn assign_of_a_value_of_another_shape_fails_and_keeps_the_variable() {
    for dev in devices() {
        let (g, _d) = dev.graph();
        let v = g.variable(Tensor::from(vec![1.0f32, 2.0]), "v").unwrap();
        let p = g.placeholder(DType::F32, Shape::unknown()).unwrap();
        let set = g.assign(&v, &p).unwrap();
        let twice = (v.value() * 2.0f32).unwrap();
        let init = g.global_variables_initializer().unwrap();
        let s = dev.session(&g);
        // Before initialization too: the declared shape is [2].
        let three = Tensor::from(vec![5.0f32, 6.0, 7.0]);
        let msg = "Assign requires shapes of both tensors to match. lhs shape= [2] rhs shape= [3]";
        let err = expect_invalid(dev, s.eval_feed(&set, &[(&p, three.clone())]), msg);
        assert_eq!(err.node.as_deref(), Some("Assign"), "{dev:?}");
        s.run(&[&init]).unwrap();
        expect_invalid(dev, s.eval_feed(&set, &[(&p, three)]), msg);
        let scalar = Tensor::from(9.0f32);
        expect_invalid(
            dev,
            s.eval_feed(&set, &[(&p, scalar)]),
            "Assign requires shapes of both tensors to match. lhs shape= [2] rhs shape= []",
        );
        let got = s.eval(&v).unwrap();
        assert_eq!(got.shape(), &[2], "{dev:?}: the variable changed shape");
        assert_eq!(got.to_f32_vec().unwrap(), vec![1.0, 2.0], "{dev:?}");
        // A value of the right shape is assigned.
        s.eval_feed(&set, &[(&p, Tensor::from(vec![3.0f32, 4.0]))]).unwrap();
        assert_eq!(s.eval(&twice).unwrap().to_f32_vec().unwrap(), vec![6.0, 8.0], "{dev:?}");
    }
}

#[test]
fn assign_of_an_int32_value_to_a_float32_variable_fails() {
    for dev in devices() {
        let (g, _d) = dev.graph();
        let v = g.variable(Tensor::from(vec![1.0f32, 2.0]), "v").unwrap();
        let p = g.placeholder(DType::I32, Shape::unknown()).unwrap();
        // The builder may refuse it already (a graph-build check); if not, the run must.
        let set = match g.assign(&v, &p) {
            Ok(set) => set,
            Err(e) => {
                assert_eq!(e.code, Code::InvalidArgument, "{e}");
                continue;
            }
        };
        let twice = (v.value() * 2.0f32).unwrap();
        let init = g.global_variables_initializer().unwrap();
        let s = dev.session(&g);
        s.run(&[&init]).unwrap();
        let err = s.eval_feed(&set, &[(&p, Tensor::from(vec![3, 4]))]).unwrap_err();
        assert_eq!(err.code, Code::InvalidArgument, "{dev:?}: {err}");
        assert_eq!(
            err.message,
            "Assign requires the value's dtype to match the variable's. lhs dtype= float rhs dtype= int32"
        );
        let got = s.eval(&twice).unwrap();
        assert_eq!(got.dtype(), DType::F32, "{dev:?}");
        assert_eq!(got.to_f32_vec().unwrap(), vec![2.0, 4.0], "{dev:?}");
    }
}

#[test]
fn int32_and_float64_matmul() {
    for dev in devices() {
        let (g, _d) = dev.graph();
        let a = g.constant(Tensor::from_i32(&[1, 2], vec![1, 2]).unwrap()).unwrap();
        let b = g.constant(Tensor::from_i32(&[2, 1], vec![3, 4]).unwrap()).unwrap();
        let m = g.matmul(&a, &b, false, false).unwrap();
        assert_eq!(m.dtype(), DType::I32);
        // Transposed, batched (BatchMatMulV2) and wrapping on overflow.
        let c = g.constant(Tensor::from_i32(&[2, 2, 2], vec![1, 2, 3, 4, 5, 6, 7, 8]).unwrap()).unwrap();
        let d = g.constant(Tensor::from_i32(&[2, 2], vec![1, 0, 2, 1]).unwrap()).unwrap();
        let bm = g.matmul(&c, &d, true, false).unwrap();
        let w = g.constant(Tensor::from_i32(&[1, 2], vec![i32::MAX, 1]).unwrap()).unwrap();
        let wm =
            g.matmul(&w, g.constant(Tensor::from_i32(&[2, 1], vec![1, 1]).unwrap()).unwrap(), false, false).unwrap();
        let x = g.constant(Tensor::from(ndarray::arr2(&[[1.5f64, 2.0]]).into_dyn())).unwrap();
        let y = g.constant(Tensor::from(ndarray::arr2(&[[2.0f64], [0.25]]).into_dyn())).unwrap();
        let f = g.matmul(&x, &y, false, false).unwrap();
        let s = dev.session(&g);
        let got = s.eval(&m).unwrap();
        assert_eq!(got.shape(), &[1, 1]);
        assert_eq!(i32s(&got), vec![11], "{dev:?}");
        let got = s.eval(&bm).unwrap();
        assert_eq!(got.shape(), &[2, 2, 2]);
        // c[0]^T = [[1,3],[2,4]], c[1]^T = [[5,7],[6,8]], times [[1,0],[2,1]].
        assert_eq!(i32s(&got), vec![7, 3, 10, 4, 19, 7, 22, 8], "{dev:?}");
        assert_eq!(i32s(&s.eval(&wm).unwrap()), vec![i32::MIN], "{dev:?}");
        let got = s.eval(&f).unwrap();
        assert_eq!(got.dtype(), DType::F64);
        assert_eq!(got.as_f64().unwrap().iter().copied().collect::<Vec<_>>(), vec![3.5], "{dev:?}");
    }
}

#[test]
fn gradients_of_integer_division_are_none() {
    for dev in devices() {
        let (g, _d) = dev.graph();
        let x = g.placeholder(DType::F32, Shape::known(&[2])).unwrap();
        let q = g.floordiv(&x, 2.0f32).unwrap();
        let t = g.truncatediv(&x, 2.0f32).unwrap();
        let xs = std::slice::from_ref(&x);
        let grads = g.gradients(std::slice::from_ref(&q), xs, None).unwrap();
        assert!(grads[0].is_none(), "{dev:?}: floordiv has a gradient");
        let grads = g.gradients(std::slice::from_ref(&t), xs, None).unwrap();
        assert!(grads[0].is_none(), "{dev:?}: truncatediv has a gradient");
        // Other paths still carry theirs: d/dx (floordiv(x, 2) + truncatediv(x, 2) + 3x) = 3.
        let y = g.add(g.add(&q, &t).unwrap(), (&x * 3.0f32).unwrap()).unwrap();
        let grads = g.gradients(&[y], xs, None).unwrap();
        let gx = grads[0].as_ref().expect("a gradient through 3x");
        let s = dev.session(&g);
        let got = s.eval_feed(gx, &[(&x, Tensor::from(vec![5.0f32, -3.0]))]).unwrap();
        assert_eq!(got.to_f32_vec().unwrap(), vec![3.0, 3.0], "{dev:?}");
    }
}

fn sparse_label_case(dev: Dev, g: &Graph) {
    let labels = g.placeholder(DType::I32, Shape::known(&[2])).unwrap();
    let logits = g.constant(Tensor::filled(DType::F32, &[2, 3], 1.0)).unwrap();
    let loss = g.sparse_softmax_cross_entropy_with_logits(&labels, &logits).unwrap();
    let s = dev.session(g);
    let cases = [
        (vec![0, 5], "Received a label value of 5 which is outside the valid range of [0, 3).  Label values: 0 5"),
        (vec![-1, 1], "Received a label value of -1 which is outside the valid range of [0, 3).  Label values: -1 1"),
        // TF names the smallest label when it is negative, else the largest.
        (vec![5, -1], "Received a label value of -1 which is outside the valid range of [0, 3).  Label values: 5 -1"),
        (vec![3, 7], "Received a label value of 7 which is outside the valid range of [0, 3).  Label values: 3 7"),
    ];
    for (l, msg) in cases {
        let got = s.eval_feed(&loss, &[(&labels, Tensor::from(l))]);
        match (dev, loss.op().device().to_lowercase()) {
            // The GPU kernel names the same label, without TF's list of all of them.
            (Dev::Gpu, d) if !d.contains("cpu") => {
                let first = msg.split("  Label values").next().unwrap_or(msg);
                let e = expect_invalid(dev, got, first);
                assert_eq!(e.node.as_deref(), Some(loss.op().name().as_str()));
            }
            _ => {
                expect_invalid(dev, got, msg);
            }
        }
    }
    let ok = s.eval_feed(&loss, &[(&labels, Tensor::from(vec![0, 2]))]).unwrap().to_f32_vec().unwrap();
    assert!(ok.iter().all(|&v| (v - 3f32.ln()).abs() < 1e-6), "{dev:?}: {ok:?}");
}

/// Out-of-range sparse labels on the CPU kernel (in a GPU session too, placed on the CPU).
#[test]
fn sparse_labels_out_of_range_on_the_cpu_kernel_are_invalid_argument() {
    for dev in devices() {
        let g = Graph::new();
        let _cpu = g.device("/cpu:0");
        sparse_label_case(dev, &g);
    }
}

/// The GPU kernel's side of out-of-range labels (an error flag, the lead's part of issue 12).
#[test]
fn sparse_labels_out_of_range_on_the_gpu_kernel_are_invalid_argument() {
    if !gpu() {
        return;
    }
    let (g, _d) = Dev::Gpu.graph();
    sparse_label_case(Dev::Gpu, &g);
}

/// A NaN weight with SAME padding: the padding reads as zeros and zero times NaN is NaN, so
/// every output is NaN, as in TF (the GPU kernels used to skip padded taps: 4 NaN, 5 numbers).
#[test]
fn conv2d_with_a_nan_weight_and_same_padding_is_nan_everywhere() {
    for dev in devices() {
        // Cout 1 takes the generic kernel, Cout 4 the subgroup one where the adapter has it.
        for cout in [1usize, 4] {
            let (g, _d) = dev.graph();
            let x = g.constant(Tensor::filled(DType::F32, &[1, 3, 3, 1], 1.0)).unwrap();
            let mut w = vec![1.0f32; 9 * cout];
            w[0] = f32::NAN;
            let f = g.constant(Tensor::from_f32(&[3, 3, 1, cout], w).unwrap()).unwrap();
            let y = g.conv2d(&x, &f, &[1, 1, 1, 1], wgflow::Padding::Same, &[1, 1, 1, 1]).unwrap();
            let s = dev.session(&g);
            let got = s.eval(&y).unwrap().to_f32_vec().unwrap();
            assert_eq!(got.len(), 9 * cout);
            for (i, v) in got.iter().enumerate() {
                // Only output channel 0 meets the NaN.
                assert_eq!(v.is_nan(), i % cout == 0, "{dev:?} cout {cout}: output {i} is {v}: {got:?}");
            }
            if dev == Dev::Gpu {
                assert!(common::Device::Gpu.check_ran_here(&s).is_ok(), "conv2d fell back to the CPU");
            }
        }
    }
}
