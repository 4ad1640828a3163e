//! The index ops added for TF model files (Tile, GatherV2, UnsortedSegmentSum): values on the
//! CPU and on the GPU against their definitions at odd sizes, the devices agreeing exactly, an
//! index out of range failing with InvalidArgument on both, the gradients of Tile and GatherV2
//! (repeated indices sum) against hand-computed values, and their export.

mod common;

use common::Device;
use wgflow::{Code, ConfigProto, DType, Graph, Output, Session, Shape, Tensor};

fn devices() -> Vec<(Device, ConfigProto)> {
    let mut d = vec![(Device::Cpu, ConfigProto::cpu_only())];
    if common::gpu_ready() {
        d.push((Device::Gpu, ConfigProto::default()));
    }
    d
}

/// The fetches' values on `config`, the session checked to have run on `device` only.
fn run(g: &Graph, device: Device, config: &ConfigProto, fetches: &[&Output]) -> Vec<Tensor> {
    let s = Session::new(g, config.clone()).unwrap();
    let fetches: Vec<wgflow::Fetch> = fetches.iter().map(|&f| f.into()).collect();
    let out: Vec<Tensor> = s.run(&fetches).unwrap().into_iter().map(Option::unwrap).collect();
    device.check_ran_here(&s).unwrap_or_else(|e| panic!("{device:?}: {e}"));
    out
}

#[test]
fn tile_repeats_odd_shapes_on_every_device() {
    let g = Graph::new();
    let x = g.constant(Tensor::from_f32(&[3, 5], (0..15).map(|v| v as f32 * 0.5 - 3.0).collect()).unwrap()).unwrap();
    let tall = g.tile(&x, &[7, 1]).unwrap();
    let ints = g.constant(Tensor::from_i32(&[2, 3, 1], (1..=6).collect()).unwrap()).unwrap();
    let wide = g.tile(&ints, &[2, 1, 4]).unwrap();
    assert_eq!(tall.shape(), Shape::known(&[21, 5]));
    let want_tall: Vec<f32> = (0..21 * 5).map(|i| ((i / 5) % 3 * 5 + i % 5) as f32 * 0.5 - 3.0).collect();
    // [4, 3, 4]: element (a, b, c) is ints[a % 2, b, 0] = (a % 2) * 3 + b + 1.
    let want_wide: Vec<i32> = (0..48).map(|i| (i / 12 % 2) * 3 + i / 4 % 3 + 1).collect();
    for (device, config) in devices() {
        let out = run(&g, device, &config, &[&tall, &wide]);
        assert_eq!(out[0], Tensor::from_f32(&[21, 5], want_tall.clone()).unwrap(), "{device:?}");
        assert_eq!(out[1], Tensor::from_i32(&[4, 3, 4], want_wide.clone()).unwrap(), "{device:?}");
    }
}

#[test]
fn gather_picks_rows_of_1025_and_columns_by_negative_axis() {
    let g = Graph::new();
    let rows: Vec<f32> = (0..1025 * 3).map(|v| v as f32 * 0.25).collect();
    let params = g.constant(Tensor::from_f32(&[1025, 3], rows.clone()).unwrap()).unwrap();
    // 517 indices with repeats, the last row among them.
    let idx: Vec<i32> = (0..517).map(|i| i * 37 % 1025).chain([1024, 0, 1024]).collect();
    let picked = g.gather(&params, Tensor::from(idx.clone()), 0).unwrap();
    let ints = g.constant(Tensor::from_i32(&[4, 1025], (0..4 * 1025).collect()).unwrap()).unwrap();
    let cols = Tensor::from_i32(&[2, 3], vec![1024, 5, 5, 0, 1023, 7]).unwrap();
    let by_col = g.gather(&ints, cols, -1).unwrap();
    assert_eq!(by_col.shape(), Shape::known(&[4, 2, 3]));
    let want_rows: Vec<f32> = idx.iter().flat_map(|&i| rows[i as usize * 3..i as usize * 3 + 3].to_vec()).collect();
    let want_cols: Vec<i32> =
        (0..4).flat_map(|r| [1024, 5, 5, 0, 1023, 7].into_iter().map(move |c| r * 1025 + c)).collect();
    for (device, config) in devices() {
        let out = run(&g, device, &config, &[&picked, &by_col]);
        assert_eq!(out[0], Tensor::from_f32(&[520, 3], want_rows.clone()).unwrap(), "{device:?}");
        assert_eq!(out[1], Tensor::from_i32(&[4, 2, 3], want_cols.clone()).unwrap(), "{device:?}");
    }
}

#[test]
fn an_index_out_of_range_is_invalid_argument_on_every_device() {
    let g = Graph::new();
    let params = g.constant(Tensor::from_f32(&[1025, 2], vec![1.0; 2050]).unwrap()).unwrap();
    let idx = g.placeholder(DType::I32, Shape::known(&[2, 2])).unwrap();
    let y = g.named("pick").gather(&params, &idx, 0).unwrap();
    let data = g.constant(Tensor::from_f32(&[4, 2], vec![1.0; 8]).unwrap()).unwrap();
    let ids = g.placeholder(DType::I32, Shape::known(&[4])).unwrap();
    let sums = g.named("sums").unsorted_segment_sum(&data, &ids, 3).unwrap();
    for (device, config) in devices() {
        let s = Session::new(&g, config).unwrap();
        for (bad, cpu, gpu) in [
            (vec![0, 3, 1025, 2], "indices[1,0] = 1025 is not in [0, 1025)", "indices contains 1025"),
            (vec![0, -2, 7, 2000], "indices[0,1] = -2 is not in [0, 1025)", "indices contains -2"),
        ] {
            let feed = Tensor::from_i32(&[2, 2], bad).unwrap();
            let e = s.eval_feed(&y, &[(&idx, feed)]).expect_err("an index out of range");
            assert_eq!(e.code, Code::InvalidArgument, "{device:?}: {e}");
            let want = if device == Device::Cpu { cpu } else { gpu };
            assert!(e.message.contains(want) && e.message.contains("[0, 1025)"), "{device:?}: {e}");
            assert_eq!(e.node.as_deref(), Some("pick"), "{device:?}: {e}");
        }
        let e = s.eval_feed(&sums, &[(&ids, Tensor::from(vec![0i32, 2, 3, 1]))]).expect_err("an id out of range");
        assert_eq!(e.code, Code::InvalidArgument, "{device:?}: {e}");
        let want = if device == Device::Cpu { "segment_ids[2] = 3 is out of range" } else { "segment_ids contains 3" };
        assert!(e.message.contains(want), "{device:?}: {e}");
        // The session lives on: good indices give the rows.
        let ok = s.eval_feed(&y, &[(&idx, Tensor::from_i32(&[2, 2], vec![0, 1024, 3, 3]).unwrap())]).unwrap();
        assert_eq!(ok, Tensor::from_f32(&[2, 2, 2], vec![1.0; 8]).unwrap(), "{device:?}");
        if device == Device::Gpu {
            Device::Gpu.check_ran_here(&s).unwrap();
        }
    }
}

#[test]
fn segment_sums_past_the_loop_budget_agree_exactly() {
    // 5,000 ids: more than one GPU pass walks; the CPU and the GPU add in the same order.
    let g = Graph::new();
    let n = 5000;
    let data: Vec<f32> = (0..n * 3).map(|v| ((v * 7919) % 1013) as f32 / 97.0 - 5.0).collect();
    let ids: Vec<i32> = (0..n).map(|j| (j * 7 % 11) as i32).collect();
    let d = g.constant(Tensor::from_f32(&[n, 3], data.clone()).unwrap()).unwrap();
    let sums = g.unsorted_segment_sum(&d, Tensor::from(ids.clone()), 12).unwrap();
    let mut want = vec![0f32; 36];
    for (j, &id) in ids.iter().enumerate() {
        for k in 0..3 {
            want[id as usize * 3 + k] += data[j * 3 + k];
        }
    }
    for (device, config) in devices() {
        let got = run(&g, device, &config, &[&sums]).remove(0).to_f32_vec().unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want), "{device:?}");
    }
}

#[test]
fn gradients_of_gather_and_tile_sum_what_they_copied() {
    let g = Graph::new();
    let p = g.constant(Tensor::from_f32(&[3, 2], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap()).unwrap();
    // Rows 2, 0, 2: row 2 is picked twice, row 1 never.
    let rows = g.gather(&p, Tensor::from(vec![2i32, 0, 2]), 0).unwrap();
    let w_rows = Tensor::from_f32(&[3, 2], vec![1.0, 10.0, 100.0, 1000.0, 0.5, 0.25]).unwrap();
    // Columns 1, 1 along axis 1 (a 2-D index): column 1 twice, column 0 never.
    let cols = g.gather(&p, Tensor::from_i32(&[1, 2], vec![1, 1]).unwrap(), 1).unwrap();
    let w_cols = Tensor::from_f32(&[3, 1, 2], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    let x = g.constant(Tensor::from_f32(&[2, 3], vec![1.0; 6]).unwrap()).unwrap();
    let tiled = g.tile(&x, &[2, 2]).unwrap();
    let w_tile = Tensor::from_f32(&[4, 6], (0..24).map(|v| v as f32).collect()).unwrap();
    let weighted = |y: &Output, w: Tensor| g.reduce_sum(g.mul(y, w).unwrap(), None, false).unwrap();
    let loss = g.add(weighted(&rows, w_rows), weighted(&cols, w_cols)).unwrap();
    let grads = g.gradients(&[loss, weighted(&tiled, w_tile)], &[p, x], None).unwrap();
    let (dp, dx) = (grads[0].clone().unwrap(), grads[1].clone().unwrap());
    // Rows: row 0 gets w_rows[1], row 2 gets w_rows[0] + w_rows[2]. Columns: column 1 of row r
    // gets w_cols[r, 0, 0] + w_cols[r, 0, 1].
    let want_dp = vec![100.0, 1000.0 + 3.0, 0.0, 0.0 + 7.0, 1.5, 10.25 + 11.0];
    // Element (i, j) of x appears at (i + 2a, j + 3b) for a, b in {0, 1}: the sum of those w.
    let want_dx: Vec<f32> = (0..6)
        .map(|e| [(0, 0), (0, 3), (2, 0), (2, 3)].iter().map(|(a, b)| ((e / 3 + a) * 6 + e % 3 + b) as f32).sum())
        .collect();
    for (device, config) in devices() {
        let out = run(&g, device, &config, &[&dp, &dx]);
        assert_eq!(out[0], Tensor::from_f32(&[3, 2], want_dp.clone()).unwrap(), "{device:?}");
        assert_eq!(out[1], Tensor::from_f32(&[2, 3], want_dx.clone()).unwrap(), "{device:?}");
    }
}

#[test]
fn exports_hold_the_index_ops_with_their_constant_inputs() {
    let g = Graph::new();
    let x = g.placeholder(DType::F32, Shape::known(&[3, 4])).unwrap();
    let idx = g.constant(Tensor::from_i32(&[2, 2], vec![3, 0, 1, 3]).unwrap()).unwrap();
    let picked = g.named("picked").gather(&x, &idx, -1).unwrap();
    let tiled = g.named("tiled").tile(&picked, &[1, 2, 1]).unwrap();
    let ids = g.constant(Tensor::from(vec![1i32, 1, 0])).unwrap();
    g.named("sums").unsorted_segment_sum(&tiled, &ids, 2).unwrap();
    let bytes = g.to_graph_def().unwrap();
    // Set, the export is written there, for a check that TF imports and runs it.
    if let Ok(path) = std::env::var("WGFLOW_INDEX_OPS_PB") {
        std::fs::write(path, &bytes).unwrap();
    }
    let back = Graph::new();
    back.import_graph_def(&bytes, &wgflow::ImportOptions::default()).unwrap();
    let feed = Tensor::from_f32(&[3, 4], (0..12).map(|v| v as f32).collect()).unwrap();
    for graph in [&g, &back] {
        let types: Vec<String> = graph.operations().iter().map(|o| o.op_type()).collect();
        for t in ["GatherV2", "Tile", "UnsortedSegmentSum"] {
            assert!(types.iter().any(|s| s == t), "{t} in {types:?}");
        }
        let (x, sums) = (graph.tensor_by_name("Placeholder:0").unwrap(), graph.tensor_by_name("sums:0").unwrap());
        let s = Session::new(graph, ConfigProto::cpu_only()).unwrap();
        let got = s.eval_feed(&sums, &[(&x, feed.clone())]).unwrap();
        // picked[r] = x[r, [[3, 0], [1, 3]]], tiled to [3, 4, 2]; rows 0, 1 sum into segment 1.
        let row = |r: usize| {
            let p = [3, 0, 1, 3].map(|c| (r * 4 + c) as f32);
            [p, p].concat()
        };
        let want: Vec<f32> = [row(2), row(0).iter().zip(row(1)).map(|(a, b)| a + b).collect()].concat();
        assert_eq!(got, Tensor::from_f32(&[2, 4, 2], want).unwrap());
    }
}
