//! The strategies of the data-movement ops (reshape, transpose, concat, pad, slice,
//! strided_slice, tile, gather, argmax) and of conv2d, depthwise_conv2d and the pools.

use proptest::prelude::*;

use super::case::{Case, Dist, Node};
use super::gen::{chain_step, epilogue_chain, knobs, SMALL};
use super::values::Rng;

/// The largest tensor a data-movement chain makes.
const BUDGET: usize = 40_000;

/// A chain of one to four data-movement ops on an input, ending in argmax (on exact values)
/// or an elementwise step (the data movement feeds a fused chain) or a matmul (it reads a
/// moved operand).
pub fn shape_ops() -> impl Strategy<Value = Case> {
    (knobs(4, 4), 0..4u32).prop_map(|(k, end)| {
        let mut case = Case::new("shape ops", k.seed);
        let dist = if end == 0 { Dist::Ties } else { k.dist() };
        let mut cur = case.input(k.shape(BUDGET), dist);
        for &code in &k.steps {
            cur = movement(&mut case, cur, code, dist);
        }
        let rank = case.shape(cur).len() as i64;
        match end {
            0 if rank > 0 => {
                let a = i64::from(k.steps[0] >> 8) % rank;
                let out = case.shape(cur).iter().enumerate().filter(|&(d, _)| d as i64 != a).map(|(_, &s)| s).collect();
                case.push(Node::ArgMax { x: cur, axis: a }, out);
            }
            1 => {
                chain_step(&mut case, cur, k.steps[0] >> 4, dist);
            }
            3 if rank >= 2 => {
                let s = case.shape(cur).to_vec();
                let b = case.input(vec![s[s.len() - 1], 3], Dist::Mixed);
                let out = [&s[..s.len() - 1], &[3]].concat();
                case.push(Node::MatMul { a: cur, b, ta: false, tb: false }, out);
            }
            _ => {}
        }
        case
    })
}

fn movement(case: &mut Case, x: usize, code: u32, dist: Dist) -> usize {
    let shape = case.shape(x).to_vec();
    let rank = shape.len();
    if rank == 0 {
        return x; // a strided_slice shrank every dimension
    }
    let n: usize = shape.iter().product();
    let mut r = Rng::new(u64::from(code));
    let mut below = |k: usize| r.below(k as u64) as usize;
    match code % 8 {
        0 => {
            // Reshape: merge two neighbours or split a dimension; sometimes one -1.
            let mut dims = shape.clone();
            let i = below(rank);
            if rank > 1 && i + 1 < rank && below(2) == 0 {
                let d = dims.remove(i + 1);
                dims[i] *= d;
            } else if let Some(f) = (2..=dims[i]).find(|f| dims[i].is_multiple_of(*f) && *f < dims[i]) {
                dims[i] /= f;
                dims.insert(i, f);
            }
            if dims.len() > 4 || dims.is_empty() {
                dims = vec![n];
            }
            let mut spec: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
            if below(2) == 0 {
                spec[below(dims.len())] = -1;
            }
            case.push(Node::Reshape { x, shape: spec }, dims)
        }
        1 => {
            let mut perm: Vec<usize> = (0..rank).collect();
            for i in (1..rank).rev() {
                perm.swap(i, below(i + 1));
            }
            let out = perm.iter().map(|&p| shape[p]).collect();
            case.push(Node::Transpose { x, perm }, out)
        }
        2 => {
            let axis = below(rank);
            let mut xs = vec![x];
            let mut out = shape.clone();
            for _ in 0..1 + below(2) {
                let mut s = shape.clone();
                s[axis] = SMALL[below(SMALL.len())];
                out[axis] += s[axis];
                xs.push(case.input(s, dist));
            }
            let first = below(xs.len());
            xs.swap(0, first);
            let axis = if below(2) == 0 { axis as i64 } else { axis as i64 - rank as i64 };
            if out.iter().product::<usize>() > BUDGET {
                return x;
            }
            case.push(Node::Concat { xs, axis }, out)
        }
        3 => {
            let pads: Vec<[usize; 2]> = (0..rank).map(|_| [below(3), below(3)]).collect();
            let out: Vec<usize> = shape.iter().zip(&pads).map(|(d, p)| d + p[0] + p[1]).collect();
            if out.iter().product::<usize>() > BUDGET {
                return x;
            }
            case.push(Node::Pad { x, pads }, out)
        }
        4 => {
            let begin: Vec<usize> = shape.iter().map(|&d| below(d)).collect();
            let size: Vec<usize> = shape.iter().zip(&begin).map(|(&d, &b)| 1 + below(d - b)).collect();
            let spec =
                size.iter()
                    .zip(shape.iter().zip(&begin))
                    .map(|(&s, (&d, &b))| if b + s == d && below(3) == 0 { -1 } else { s as i64 });
            let spec: Vec<i64> = spec.collect();
            case.push(Node::Slice { x, begin: begin.iter().map(|&b| b as i64).collect(), size: spec }, size)
        }
        5 => {
            let (mut begin, mut end, mut strides, mut out) = (vec![], vec![], vec![], vec![]);
            let mut masks = [0i64; 3];
            for (i, &d) in shape.iter().enumerate() {
                let s = [1i64, 2, 3, -1, -2][below(5)];
                let b = below(d) as i64;
                let (e, len) = if s > 0 {
                    let e = b + 1 + below(d - b as usize) as i64;
                    (e, (e - b + s - 1) / s)
                } else {
                    let e = below(b as usize + 1) as i64 - 1; // in [-1, b)
                    (if e == -1 { -(d as i64) - 1 } else { e }, (b - e + -s - 1) / -s)
                };
                let neg = below(3) == 0 && b > 0;
                begin.push(if neg { b - d as i64 } else { b });
                end.push(e);
                strides.push(s);
                // A mask bit: begin from the first element in the step's direction, go to the
                // last one, or take one index and drop the dimension.
                match below(6) {
                    0 => {
                        masks[0] |= 1 << i;
                        let first = if s > 0 { 0 } else { d as i64 - 1 };
                        let e = if e < 0 { -1 } else { e };
                        let n = if s > 0 { (e - first + s - 1) / s } else { (first - e + -s - 1) / -s };
                        out.push(n as usize);
                    }
                    1 => {
                        masks[1] |= 1 << i;
                        let n = if s > 0 { (d as i64 - b + s - 1) / s } else { (b + 1 + -s - 1) / -s };
                        out.push(n as usize);
                    }
                    2 if out.len() < 3 => masks[2] |= 1 << i,
                    _ => out.push(len as usize),
                }
            }
            case.push(Node::StridedSlice { x, begin, end, strides, masks }, out)
        }
        6 => {
            let multiples: Vec<usize> = (0..rank).map(|_| 1 + below(3)).collect();
            let out: Vec<usize> = shape.iter().zip(&multiples).map(|(d, m)| d * m).collect();
            if out.iter().product::<usize>() > BUDGET {
                return x;
            }
            case.push(Node::Tile { x, multiples }, out)
        }
        _ => {
            let axis = below(rank);
            let index_shape = if below(2) == 0 { vec![1 + below(7)] } else { vec![1 + below(3), 1 + below(3)] };
            let count: usize = index_shape.iter().product();
            let indices = (0..count).map(|_| below(shape[axis]) as i32).collect();
            let out = [&shape[..axis], &index_shape[..], &shape[axis + 1..]].concat();
            if out.len() > 4 || out.iter().product::<usize>() > BUDGET {
                return x;
            }
            let axis = if below(2) == 0 { axis as i64 } else { axis as i64 - rank as i64 };
            case.push(Node::Gather { x, indices, index_shape, axis }, out)
        }
    }
}

/// The spatial sizes of a conv or pool input.
const SPATIAL: [usize; 8] = [1, 3, 7, 8, 15, 33, 63, 65];

/// The output size of a window op along one dimension, or `None` if VALID does not fit.
fn window_out(size: usize, k: usize, stride: usize, dilation: usize, same: bool) -> Option<usize> {
    let eff = (k - 1) * dilation + 1;
    if same {
        Some(size.div_ceil(stride))
    } else if eff <= size {
        Some((size - eff) / stride + 1)
    } else {
        None
    }
}

/// conv2d and depthwise_conv2d with random strides, padding and dilation (dilation with
/// stride 1, as TF), with or without a bias_add/relu/add epilogue; max_pool and avg_pool.
pub fn conv() -> impl Strategy<Value = Case> {
    (knobs(4, 3), 0..8usize, 0..8usize, 1..=3usize, 1..=3usize, 1..=2usize, any::<bool>(), 0..5u32).prop_map(
        |(k, h, w, kernel, stride, dilation, same, kind)| {
            let family = ["conv2d", "depthwise_conv2d", "conv2d epilogue", "max_pool", "avg_pool"][kind as usize];
            let mut case = Case::new(family, k.seed);
            let (mut h, mut w) = (SPATIAL[h], SPATIAL[w]);
            if h * w > 33 * 65 {
                w = 7;
            }
            let batch = 1 + k.small[0] % 2;
            let cin = SMALL[k.small[1]].min(4);
            let mult = SMALL[k.small[2]].min(4);
            let dilation = if stride > 1 || kind >= 3 { 1 } else { dilation };
            let kw = if k.rank % 2 == 0 { kernel } else { 1 + (kernel % 3) };
            let same = same || h < (kernel - 1) * dilation + 1 || w < (kw - 1) * dilation + 1;
            if kind >= 3 {
                h = h.max(kernel);
                w = w.max(kernel);
            }
            let dist = if kind == 3 && k.extreme { Dist::Ties } else { k.dist() };
            let x = case.input(vec![batch, h, w, cin], dist);
            let oh = window_out(h, kernel, stride, dilation, same).expect("fits");
            let ow = window_out(w, if kind >= 3 { kernel } else { kw }, stride, dilation, same).expect("fits");
            if kind >= 3 {
                let max = kind == 3;
                case.push(Node::Pool { x, max, k: kernel, stride, same }, vec![batch, oh, ow, cin]);
                return case;
            }
            let depthwise = kind == 1;
            let f = case.input(vec![kernel, kw, cin, mult], Dist::Mixed);
            let cout = if depthwise { cin * mult } else { mult };
            let c = case.push(Node::Conv { x, f, depthwise, stride, same, dilation }, vec![batch, oh, ow, cout]);
            if kind == 2 {
                epilogue_chain(&mut case, c, &k.steps);
            }
            case
        },
    )
}
