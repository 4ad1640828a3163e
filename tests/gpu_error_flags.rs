//! Kernels that check their input report through an error flag read with the run's fetches:
//! an int32 division by zero fails with TF's InvalidArgument on the GPU as on the CPU, naming
//! the node, in one submit (issue 12, part 4).

mod common;

use wgflow::{Code, ConfigProto, Graph, Session, Tensor};

fn configs() -> Vec<(&'static str, ConfigProto)> {
    let mut c = vec![("cpu", ConfigProto::cpu_only())];
    if common::gpu_ready() {
        c.push(("gpu", ConfigProto::default()));
    }
    c
}

#[test]
fn int32_division_by_zero_fails_on_every_device() {
    for (kind, name) in [("floordiv", "fd"), ("truncatediv", "td")] {
        let g = Graph::new();
        let _gpu = g.device("/gpu:0");
        let x = g.constant(Tensor::from(vec![7i32, -7, 3, 9])).unwrap();
        let y = g.constant(Tensor::from(vec![0i32, 2, 1, 3])).unwrap();
        let q = match kind {
            "floordiv" => g.named(name).floordiv(&x, &y).unwrap(),
            _ => g.named(name).truncatediv(&x, &y).unwrap(),
        };
        let ok = match kind {
            "floordiv" => g.floordiv(&x, g.constant(Tensor::from(vec![2i32, 2, -2, 4])).unwrap()).unwrap(),
            _ => g.truncatediv(&x, g.constant(Tensor::from(vec![2i32, 2, -2, 4])).unwrap()).unwrap(),
        };
        let want = match kind {
            "floordiv" => vec![3, -4, -2, 2],
            _ => vec![3, -3, -1, 2],
        };
        for (device, config) in configs() {
            let s = Session::new(&g, config).unwrap();
            let e = s.eval(&q).expect_err("division by zero must fail");
            assert_eq!(e.code, Code::InvalidArgument, "{kind} on {device}: {e}");
            assert!(e.message.contains("Integer division by zero"), "{kind} on {device}: {e}");
            if device == "gpu" {
                assert_eq!(e.node.as_deref(), Some(name), "{kind} on {device}: {e}");
                assert!(common::Device::Gpu.check_ran_here(&s).is_ok());
            }
            // The session lives on, and a good division in it is exact.
            assert_eq!(s.eval(&ok).unwrap(), Tensor::from(want.clone()), "{kind} on {device}");
            // A failed run and the next good one take one submit each.
            let before = s.stats().submits;
            assert!(s.eval(&q).is_err());
            assert_eq!(s.eval(&ok).unwrap(), Tensor::from(want.clone()));
            if device == "gpu" {
                assert_eq!(s.stats().submits - before, 2, "{kind}: a checked kernel added a submit");
            }
        }
    }
}

#[test]
fn int32_division_edge_values_match_tf() {
    // i32::MIN / -1 wraps, as TF's kernels do; no flag is raised without a zero divisor.
    let g = Graph::new();
    let _gpu = g.device("/gpu:0");
    let x = g.constant(Tensor::from(vec![i32::MIN, i32::MIN, -1, 0])).unwrap();
    let y = g.constant(Tensor::from(vec![-1i32, 1, -1, -5])).unwrap();
    let fd = g.floordiv(&x, &y).unwrap();
    let td = g.truncatediv(&x, &y).unwrap();
    for (device, config) in configs() {
        let s = Session::new(&g, config).unwrap();
        let got = s.run(&[&fd, &td]).unwrap();
        assert_eq!(got[0], Some(Tensor::from(vec![i32::MIN, i32::MIN, 1, 0])), "floordiv on {device}");
        assert_eq!(got[1], Some(Tensor::from(vec![i32::MIN, i32::MIN, 1, 0])), "truncatediv on {device}");
    }
}
