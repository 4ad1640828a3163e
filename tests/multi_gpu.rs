//! Several GPUs in one session: on lavapipe, one adapter split into two wgpu devices
//! (`GpuOptions::virtual_devices`), `GPU:0` and `GPU:1`. Values, the explicit copies between
//! the GPUs (through the host), the byte counters and run metadata, resident variables, runs
//! from several threads, and memory released per GPU.

mod common;

use wgflow::{
    ConfigProto, DType, DeviceId, Graph, Output, RunMetadata, RunOptions, Session, Shape, Tensor, TraceLevel,
    VirtualDevices,
};

const GPU0: &str = "/job:localhost/replica:0/task:0/device:GPU:0";
const GPU1: &str = "/job:localhost/replica:0/task:0/device:GPU:1";
const CPU: &str = "/job:localhost/replica:0/task:0/device:CPU:0";

/// A config with two GPUs made from the one adapter.
fn two_gpus() -> ConfigProto {
    let mut c = ConfigProto { allow_soft_placement: false, ..Default::default() };
    c.gpu_options.virtual_devices = vec![VirtualDevices::split(2)];
    c
}

fn on<T>(g: &Graph, device: &str, f: impl FnOnce() -> T) -> T {
    let _d = g.device(device);
    f()
}

fn traced(s: &Session, fetches: &[&Output], feeds: &[(&Output, Tensor)]) -> (Vec<Tensor>, RunMetadata) {
    let mut md = RunMetadata::default();
    let options = RunOptions { trace_level: TraceLevel::FullTrace, ..Default::default() };
    let fetches: Vec<wgflow::Fetch> = fetches.iter().map(|&f| f.into()).collect();
    let feeds: Vec<(wgflow::FeedKey, Tensor)> = feeds.iter().map(|(k, t)| ((*k).into(), t.clone())).collect();
    let out = s.run_with(&fetches, &feeds, &options, Some(&mut md)).unwrap();
    (out.into_iter().map(|t| t.unwrap()).collect(), md)
}

#[test]
fn two_devices_of_one_adapter_are_gpu0_and_gpu1() {
    if !common::gpu_ready() {
        return;
    }
    let s = Session::new(&Graph::new(), two_gpus()).unwrap();
    let devices = s.list_devices();
    let names: Vec<&str> = devices.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, vec![CPU, GPU0, GPU1]);
    assert!(devices[1].description.ends_with(" device 0"), "{:?}", devices[1]);
    assert!(devices[2].description.ends_with(" device 1"), "{:?}", devices[2]);
    assert_eq!(devices[2].device_type, "GPU");
    assert!(s.device().starts_with("GPU: "), "{}", s.device());
    // A session without virtual devices has one GPU, as before.
    let one = Session::new(&Graph::new(), ConfigProto::default()).unwrap();
    assert_eq!(one.list_devices().len(), 2);
}

#[test]
fn a_chain_across_two_gpus_copies_through_the_host_and_counts_the_bytes() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let x = g.named("x").placeholder(DType::F32, Shape::known(&[4])).unwrap();
    let a = on(&g, "/device:GPU:0", || g.named("a").mul(&x, 2.0f32).unwrap());
    let b = on(&g, "/device:GPU:1", || g.named("b").add(&a, 1.0f32).unwrap());
    let s = Session::new(&g, two_gpus()).unwrap();
    let feed = Tensor::from(vec![1.0f32, 2.0, 3.0, -4.0]);
    let (out, md) = traced(&s, &[&b], &[(&x, feed.clone())]);
    assert_eq!(out[0], Tensor::from(vec![3.0f32, 5.0, 7.0, -7.0]));
    let copy = md.step_stats.iter().find(|r| r.name == "a/MemcpyDtoD").expect("a copy step");
    assert_eq!((copy.op.as_str(), copy.device.as_str()), ("MemcpyDtoD", GPU1));
    assert!(md.partition[GPU1].contains(&"a/MemcpyDtoD".to_string()), "{:?}", md.partition);
    assert!(md.partition[GPU0].contains(&"a".to_string()), "{:?}", md.partition);
    assert!(md.step_stats.iter().any(|r| r.name == "gpu_submit" && r.device == GPU0));
    assert!(md.step_stats.iter().any(|r| r.name == "gpu_submit" && r.device == GPU1));
    assert!(md.peak_bytes.contains_key(GPU0) && md.peak_bytes.contains_key(GPU1), "{:?}", md.peak_bytes);
    // The second run: the feed goes up to GPU:0, `a` down from it and up to GPU:1, `b` down.
    let before = s.stats();
    let (out, md) = traced(&s, &[&b], &[(&x, feed)]);
    let after = s.stats();
    assert_eq!(out[0], Tensor::from(vec![3.0f32, 5.0, 7.0, -7.0]));
    assert_eq!(md.bytes_between_gpus, 16);
    assert_eq!((md.gpu_bytes[GPU0].uploaded, md.gpu_bytes[GPU0].downloaded), (16, 16));
    assert_eq!((md.gpu_bytes[GPU1].uploaded, md.gpu_bytes[GPU1].downloaded), (16, 16));
    assert_eq!((md.bytes_uploaded, md.bytes_downloaded), (32, 32));
    assert_eq!(after.bytes_between_gpus - before.bytes_between_gpus, 16);
    assert_eq!(after.bytes_uploaded - before.bytes_uploaded, 32);
    assert_eq!(after.bytes_downloaded - before.bytes_downloaded, 32);
    // One submit on GPU:0 for the copy (its work up to `a`, nothing left for the end), one
    // on GPU:1 at the end.
    assert_eq!(after.submits - before.submits, 2);
    assert_eq!(after.pipelines_compiled - before.pipelines_compiled, 0);
    assert_eq!(after.gpu_buffers_allocated, before.gpu_buffers_allocated);
    assert_eq!(after.cpu_fallbacks, 0);
}

#[test]
fn parallel_branches_on_two_gpus_meet_on_one_and_the_host_reads_both() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let x = g.named("x").placeholder(DType::F32, Shape::known(&[2, 3])).unwrap();
    let w = Tensor::from_f32(&[3, 2], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    let w = on(&g, "/gpu:0", || g.constant(w).unwrap());
    let m0 = on(&g, "/gpu:0", || g.named("m0").matmul(&x, &w, false, false).unwrap());
    let neg = on(&g, "/gpu:1", || g.neg(&m0).unwrap());
    let m1 = on(&g, "/gpu:1", || g.named("m1").relu(&neg).unwrap());
    let r1 = on(&g, "/gpu:1", || g.named("r1").reduce_sum(&x, Some(&[1]), false).unwrap());
    let sum = on(&g, "/gpu:0", || g.named("sum").add(&m0, &m1).unwrap());
    let host = on(&g, "/cpu:0", || g.named("host").concat(&[sum.clone(), m1.clone()], 1).unwrap());
    let s = Session::new(&g, two_gpus()).unwrap();
    let feed = Tensor::from_f32(&[2, 3], vec![1.0, 0.0, -1.0, 2.0, 1.0, 0.0]).unwrap();
    let (out, md) = traced(&s, &[&host, &r1, &m0], &[(&x, feed)]);
    // m0 = x w = [[-4, -4], [5, 8]]; m1 = relu(-m0) = [[4, 4], [0, 0]].
    assert_eq!(out[2], Tensor::from_f32(&[2, 2], vec![-4.0, -4.0, 5.0, 8.0]).unwrap());
    let want = Tensor::from_f32(&[2, 4], vec![0.0, 0.0, 4.0, 4.0, 5.0, 8.0, 0.0, 0.0]).unwrap();
    assert_eq!(out[0], want);
    assert_eq!(out[1], Tensor::from(vec![0.0f32, 3.0]));
    let copies: Vec<(&str, &str)> = md
        .step_stats
        .iter()
        .filter(|r| r.op.starts_with("Memcpy"))
        .map(|r| (r.name.as_str(), r.device.as_str()))
        .collect();
    for want in [("m0/MemcpyDtoD", GPU1), ("m1/MemcpyDtoD", GPU0), ("sum/MemcpyDtoH", CPU), ("m1/MemcpyDtoH", CPU)] {
        assert!(copies.contains(&want), "{want:?} not in {copies:?}");
    }
    // `m1` crossed to GPU:0 and to the host: each once.
    assert_eq!(copies.iter().filter(|(n, _)| n.starts_with("m1/")).count(), 2, "{copies:?}");
    assert_eq!(md.bytes_between_gpus, 32);
    assert_eq!(s.stats().cpu_fallbacks, 0);
    // Each GPU's kernels are timed on that GPU (lavapipe has timestamp queries).
    assert!(md.gpu_kernel_timestamps);
    for (node, device) in [("m0", GPU0), ("m1", GPU1), ("r1", GPU1), ("sum", GPU0)] {
        assert!(md.step_stats.iter().any(|r| r.name == node && r.device == device), "{node} on {device}");
    }
}

#[test]
fn a_variable_pinned_to_gpu1_stays_resident_there() {
    if !common::gpu_ready() {
        return;
    }
    const N: usize = 1 << 12;
    let g = Graph::new();
    let v = on(&g, "/device:GPU:1", || g.variable(Tensor::filled(DType::F32, &[N], 0.0), "v").unwrap());
    let step = g.named("bump").assign_add(&v, Tensor::filled(DType::F32, &[N], 1.0)).unwrap();
    let init = g.global_variables_initializer().unwrap();
    let twice = on(&g, "/device:GPU:0", || g.named("twice").mul(v.value(), 2.0f32).unwrap());
    let s = Session::new(&g, two_gpus()).unwrap();
    s.run(&[&init]).unwrap();
    s.run(&[step.op()]).unwrap();
    let before = s.stats();
    for _ in 0..20 {
        s.run(&[step.op()]).unwrap();
    }
    let after = s.stats();
    assert_eq!(after.bytes_uploaded - before.bytes_uploaded, 0, "the loop uploaded bytes");
    assert_eq!(after.bytes_downloaded - before.bytes_downloaded, 0, "the loop downloaded bytes");
    // Read on GPU:0: the variable's value crosses once per run, and stays on GPU:1.
    let (out, md) = traced(&s, &[&twice, v.tensor()], &[]);
    assert!(out[0].to_f32_vec().unwrap().iter().all(|&x| x == 42.0));
    assert!(out[1].to_f32_vec().unwrap().iter().all(|&x| x == 21.0));
    assert!(md.step_stats.iter().any(|r| r.name == "v/read/MemcpyDtoD" || r.name == "v/MemcpyDtoD"), "{md:?}");
    assert_eq!(md.bytes_between_gpus, 4 * N as u64);
    // The group (the update built outside any scope included) is on GPU:1.
    for name in ["v/Assign", "bump", "v/read"] {
        let line = s.placement_log().iter().find(|l| l.starts_with(&format!("{name}: "))).cloned();
        assert!(line.as_deref().is_some_and(|l| l.ends_with(GPU1)), "{name}: {line:?}");
    }
}

/// A constant placed on GPU:0 and read on GPU:1 and the CPU is evaluated on each (resident on
/// each GPU after the first run): no run copies it between devices.
#[test]
fn a_constant_read_on_every_device_is_not_copied_between_them() {
    if !common::gpu_ready() {
        return;
    }
    const N: usize = 1024;
    let g = Graph::new();
    let values: Vec<f32> = (0..N).map(|i| i as f32 - 500.0).collect();
    let c = on(&g, "/device:GPU:0", || g.named("c").constant(values.clone()).unwrap());
    let a = on(&g, "/device:GPU:0", || g.named("a").neg(&c).unwrap());
    let b = on(&g, "/device:GPU:1", || g.named("b").abs(&c).unwrap());
    let d = on(&g, "/cpu:0", || g.named("d").square(&c).unwrap());
    let s = Session::new(&g, two_gpus()).unwrap();
    for run in 0..2 {
        let (out, md) = traced(&s, &[&a, &b, &d], &[]);
        assert_eq!(out[0], Tensor::from(values.iter().map(|v| -v).collect::<Vec<f32>>()));
        assert_eq!(out[1], Tensor::from(values.iter().map(|v| v.abs()).collect::<Vec<f32>>()));
        assert_eq!(out[2], Tensor::from(values.iter().map(|v| v * v).collect::<Vec<f32>>()));
        assert!(!md.step_stats.iter().any(|r| r.op.starts_with("Memcpy") && r.name.starts_with("c/")), "{md:?}");
        assert!(md.partition[GPU1].contains(&"c".to_string()), "{:?}", md.partition);
        assert_eq!(md.bytes_between_gpus, 0);
        // The first run uploads the constant to each GPU; after it, nothing goes up.
        let up = if run == 0 { 4 * N as u64 } else { 0 };
        assert_eq!((md.gpu_bytes[GPU0].uploaded, md.gpu_bytes[GPU1].uploaded), (up, up), "run {run}");
    }
}

#[test]
fn runs_from_several_threads_share_a_two_gpu_session() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let x = g.named("x").placeholder(DType::F32, Shape::known(&[3])).unwrap();
    let a = on(&g, "/gpu:0", || g.named("a").mul(&x, 3.0f32).unwrap());
    let b = on(&g, "/gpu:1", || g.named("b").sub(&a, 1.0f32).unwrap());
    let v = on(&g, "/gpu:1", || g.variable(0.0f32, "count").unwrap());
    let bump = on(&g, "/gpu:1", || g.assign_add(&v, 1.0f32).unwrap());
    let s = Session::new(&g, two_gpus()).unwrap();
    s.run(&[g.global_variables_initializer().unwrap()]).unwrap();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let (s, x, b, bump) = (&s, &x, &b, &bump);
            scope.spawn(move || {
                for i in 0..10 {
                    let k = (t * 10 + i) as f32;
                    let got = s.eval_feed(b, &[(x, Tensor::from(vec![k, 0.0, -k]))]).unwrap();
                    assert_eq!(got, Tensor::from(vec![3.0 * k - 1.0, -1.0, -3.0 * k - 1.0]));
                    s.run(&[bump.op()]).unwrap();
                }
            });
        }
    });
    assert_eq!(s.eval(v.tensor()).unwrap(), Tensor::from(40.0f32));
}

#[test]
fn closing_a_two_gpu_session_frees_both_gpus() {
    if !common::gpu_ready() {
        return;
    }
    let g = Graph::new();
    let x = on(&g, "/gpu:0", || g.constant(Tensor::filled(DType::F32, &[1024], 1.0)).unwrap());
    let y = on(&g, "/gpu:1", || g.exp(&x).unwrap());
    let s = Session::new(&g, two_gpus()).unwrap();
    s.eval(&y).unwrap();
    let held = s.gpu_memory_counters();
    assert_eq!(held.len(), 2);
    assert!(held.iter().all(|h| h.get() > 0), "{:?}", held.iter().map(|h| h.get()).collect::<Vec<_>>());
    s.close();
    assert!(held.iter().all(|h| h.get() == 0), "{:?}", held.iter().map(|h| h.get()).collect::<Vec<_>>());
}

#[test]
fn device_ids_name_tf_devices() {
    assert_eq!(DeviceId::gpu(1).full_name(), GPU1);
    assert_eq!(DeviceId::CPU.full_name(), CPU);
}

/// The README's example ("Several GPUs in one session"), as it stands there.
#[test]
fn the_readme_example_runs() -> wgflow::Result<()> {
    if !common::gpu_ready() {
        return Ok(());
    }
    use wgflow::{ConfigProto, DType, Graph, Session, Shape, Tensor, VirtualDevices};

    let g = Graph::new();
    let x = g.placeholder(DType::F32, Shape::known(&[4]))?;
    let a = {
        let _d = g.device("/device:GPU:0");
        g.named("a").mul(&x, 2.0f32)?
    };
    let b = {
        let _d = g.device("/device:GPU:1");
        g.named("b").add(&a, 1.0f32)?
    };

    let mut config = ConfigProto::default();
    // Two wgpu devices of one adapter; with two adapters, `visible_device_list = "0,1".into()`.
    config.gpu_options.virtual_devices = vec![VirtualDevices::split(2)];
    let sess = Session::new(&g, config)?;
    let y = sess.eval_feed(&b, &[(&x, Tensor::from(vec![1.0f32, 2.0, 3.0, 4.0]))])?;
    assert_eq!(y, Tensor::from(vec![3.0f32, 5.0, 7.0, 9.0]));
    assert_eq!(sess.stats().bytes_between_gpus, 16); // `a`: GPU:0 → host → GPU:1
    assert_eq!(sess.list_devices().len(), 3); // CPU:0, GPU:0, GPU:1 (TF's `list_devices()`)
    Ok(())
}
