//! The strategies: every family draws the same [`Knobs`] (sizes, rank, a list of step codes,
//! the value seed) and builds a valid [`Case`] from them deterministically, so that proptest
//! shrinks towards fewer steps, smaller sizes and lower op codes.

use proptest::prelude::*;

use super::case::{Bin, Case, Dist, Node, Red, Un};
use super::values::Rng;

/// The odd sizes of the issue; one dimension of a shape takes one.
pub const ODD: [usize; 8] = [1, 3, 7, 63, 65, 129, 1023, 1025];
/// The other dimensions.
pub const SMALL: [usize; 5] = [1, 2, 3, 5, 7];

#[derive(Clone, Debug)]
pub struct Knobs {
    pub big: usize,
    pub big_at: usize,
    pub small: Vec<usize>,
    pub rank: usize,
    pub steps: Vec<u32>,
    pub seed: u64,
    pub extreme: bool,
}

pub fn knobs(max_rank: usize, max_steps: usize) -> impl Strategy<Value = Knobs> {
    (
        0..ODD.len(),
        0..4usize,
        proptest::collection::vec(0..SMALL.len(), 4),
        1..=max_rank,
        proptest::collection::vec(any::<u32>(), 1..=max_steps),
        any::<u64>(),
        proptest::bool::weighted(0.25),
    )
        .prop_map(|(big, big_at, small, rank, steps, seed, extreme)| Knobs {
            big,
            big_at,
            small,
            rank,
            steps,
            seed,
            extreme,
        })
}

impl Knobs {
    /// A shape of `self.rank` dimensions, one of them odd-sized, at most `budget` elements.
    pub fn shape(&self, budget: usize) -> Vec<usize> {
        let mut dims: Vec<usize> = (0..self.rank).map(|i| SMALL[self.small[i]]).collect();
        let at = self.big_at % self.rank;
        dims[at] = ODD[self.big];
        while dims.iter().product::<usize>() > budget {
            let (i, _) = dims.iter().enumerate().filter(|&(i, _)| i != at).max_by_key(|&(_, d)| *d).expect("a dim");
            dims[i] = 1;
        }
        dims
    }
    /// The distribution of the general inputs.
    pub fn dist(&self) -> Dist {
        if self.extreme {
            Dist::Extreme
        } else {
            Dist::Mixed
        }
    }
}

/// `shape` with the dimensions in `mask` set to 1 and the first `drop` removed: a shape that
/// broadcasts to `shape`.
pub fn broadcast(shape: &[usize], mask: u32, drop: usize) -> Vec<usize> {
    let dims = shape.iter().enumerate().map(|(i, &d)| if mask >> i & 1 == 1 { 1 } else { d });
    dims.skip(drop.min(shape.len())).collect()
}

const CHAIN_UN: [Un; 8] = [Un::Relu, Un::Neg, Un::Abs, Un::Tanh, Un::Sigmoid, Un::Relu6, Un::Elu, Un::Square];
const CHAIN_BIN: [Bin; 6] = [Bin::Add, Bin::Sub, Bin::Mul, Bin::Maximum, Bin::Minimum, Bin::SquaredDifference];

/// Appends one elementwise step (decoded from `code`) to the chain ending at `cur`, whose
/// shape is `shape`; returns the new end. Steps read fresh inputs that broadcast, earlier
/// nodes of the chain (then not fused), and keep log/sqrt/rsqrt/pow/exp in their domains.
pub fn chain_step(case: &mut Case, cur: usize, code: u32, dist: Dist) -> usize {
    let shape = case.shape(cur).to_vec();
    let mut r = Rng::new(u64::from(code));
    let rank = shape.len();
    let fresh = |case: &mut Case, r: &mut Rng, d: Dist| {
        let mask = r.below(1 << rank) as u32;
        let drop = r.below(rank as u64 + 1) as usize;
        let s = if r.below(3) == 0 { broadcast(&shape, mask, drop) } else { shape.clone() };
        case.input(s, d)
    };
    let pick = |r: &mut Rng, n: usize| r.below(n as u64) as usize;
    let out = shape.clone();
    match code % 7 {
        0 => case.push(Node::Unary(CHAIN_UN[pick(&mut r, CHAIN_UN.len())], cur), out),
        1 | 2 => {
            let op = CHAIN_BIN[pick(&mut r, CHAIN_BIN.len())];
            let y = fresh(case, &mut r, dist);
            let node = if r.below(2) == 0 { Node::Binary(op, cur, y) } else { Node::Binary(op, y, cur) };
            case.push(node, out)
        }
        3 => {
            let y = fresh(case, &mut r, Dist::NonZero);
            case.push(Node::Binary(Bin::Div, cur, y), out)
        }
        4 => {
            let un = [Un::Log, Un::Sqrt, Un::Rsqrt, Un::Exp][pick(&mut r, 4)];
            let d = if un == Un::Exp { Dist::Small } else { Dist::Positive };
            let y = fresh(case, &mut r, d);
            let ys = case.shape(y).to_vec();
            let u = case.push(Node::Unary(un, y), ys);
            let op = [Bin::Add, Bin::Mul][pick(&mut r, 2)];
            case.push(Node::Binary(op, cur, u), out)
        }
        5 => {
            let x = fresh(case, &mut r, Dist::Positive);
            let (xs, y) = (case.shape(x).to_vec(), case.input(case.shape(x).to_vec(), Dist::Small));
            let p = case.push(Node::Binary(Bin::Pow, x, y), xs);
            case.push(Node::Binary(Bin::Add, cur, p), out)
        }
        _ => {
            // An earlier node of the same shape read a second time.
            let same: Vec<usize> = (0..=cur).filter(|&i| case.shape(i) == shape.as_slice()).collect();
            let other = same[pick(&mut r, same.len())];
            let op = CHAIN_BIN[pick(&mut r, 3)];
            case.push(Node::Binary(op, cur, other), out)
        }
    }
}

/// Elementwise chains (what fusion fuses): two inputs of complementary broadcast patterns,
/// then the steps.
pub fn elementwise() -> impl Strategy<Value = Case> {
    (knobs(4, 5), any::<u32>()).prop_map(|(k, pattern)| {
        let mut case = Case::new("elementwise", k.seed);
        let shape = k.shape(60_000);
        let rank = shape.len();
        let (m1, drop) = (pattern & 0xf, (pattern >> 4) as usize % (rank + 1));
        // Every dimension is full on one side at least; the dropped leading ones on b.
        let keep_a = (1u32 << drop.min(rank)) - 1;
        let m1 = m1 & !keep_a;
        let m2 = (pattern >> 8) & 0xf & !m1;
        let a = case.input(broadcast(&shape, m1, 0), k.dist());
        let b = case.input(broadcast(&shape, m2, drop), k.dist());
        let op = CHAIN_BIN[(pattern >> 12) as usize % CHAIN_BIN.len()];
        let mut cur = case.push(Node::Binary(op, a, b), shape);
        for &code in &k.steps {
            cur = chain_step(&mut case, cur, code, k.dist());
        }
        case
    })
}

/// Matmul (rank 2, or batched with broadcast batch dimensions) with transposes; with
/// `epilogue`, followed by bias_add and a relu/add chain (fused into the matmul).
pub fn matmul() -> impl Strategy<Value = Case> {
    (knobs(3, 3), 0..4usize, 0..4u32, any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
        |(k, batch, bmask, ta, tb, epilogue)| {
            let mut case = Case::new(if epilogue { "matmul epilogue" } else { "matmul" }, k.seed);
            let mut mkn: Vec<usize> = (0..3).map(|i| SMALL[k.small[i]]).collect();
            if k.big_at < 3 {
                mkn[k.big_at] = ODD[k.big];
            }
            let (m, kk, n) = (mkn[0], mkn[1], mkn[2]);
            let bdims: Vec<usize> = (0..batch.min(2)).map(|i| SMALL[k.small[3 - i]].min(3)).collect();
            let ba = broadcast(&bdims, bmask & 1, 0);
            let bb = if batch == 3 { Vec::new() } else { broadcast(&bdims, bmask & 2, 0) };
            // The batch dims broadcast, aligned at the right.
            let long = if ba.len() >= bb.len() { &ba } else { &bb };
            let short = if ba.len() >= bb.len() { &bb } else { &ba };
            let off = long.len() - short.len();
            let out_b: Vec<usize> =
                long.iter().enumerate().map(|(i, &d)| if i < off { d } else { d.max(short[i - off]) }).collect();
            let sa = [ba, if ta { vec![kk, m] } else { vec![m, kk] }].concat();
            let sb = [bb, if tb { vec![n, kk] } else { vec![kk, n] }].concat();
            let a = case.input(sa, k.dist());
            let b = case.input(sb, Dist::Mixed);
            let out = [out_b, vec![m, n]].concat();
            let mm = case.push(Node::MatMul { a, b, ta, tb }, out);
            if epilogue {
                epilogue_chain(&mut case, mm, &k.steps);
            }
            case
        },
    )
}

/// bias_add then up to three of relu, relu6, add (a fresh input), tanh: a conv/matmul
/// epilogue.
pub fn epilogue_chain(case: &mut Case, head: usize, steps: &[u32]) -> usize {
    let shape = case.shape(head).to_vec();
    let bias = case.input(vec![shape[shape.len() - 1]], Dist::Mixed);
    let mut cur = case.push(Node::BiasAdd { x: head, bias }, shape.clone());
    for &code in steps {
        cur = match code % 4 {
            0 => case.push(Node::Unary(Un::Relu, cur), shape.clone()),
            1 => case.push(Node::Unary(Un::Relu6, cur), shape.clone()),
            2 => {
                let y = case.input(shape.clone(), Dist::Mixed);
                case.push(Node::Binary(Bin::Add, cur, y), shape.clone())
            }
            _ => case.push(Node::Unary(Un::Tanh, cur), shape.clone()),
        };
    }
    cur
}

/// Reductions over random axes, softmax, bias_add and argmax.
pub fn reduce() -> impl Strategy<Value = Case> {
    (knobs(4, 2), 0..16u32, any::<bool>(), 0..6u32).prop_map(|(k, axes_mask, keep, which)| {
        let mut case = Case::new("reduce", k.seed);
        let shape = k.shape(60_000);
        let rank = shape.len() as i64;
        let axis = |i: u32| {
            let a = i64::from(i) % rank;
            if i & 4 == 4 {
                a - rank
            } else {
                a
            }
        };
        let dist = if which == 5 { Dist::Ties } else { k.dist() };
        let x = case.input(shape.clone(), dist);
        match which {
            0..=2 => {
                let mut axes: Vec<i64> = (0..rank).filter(|a| axes_mask >> a & 1 == 1).collect();
                // No axes (axes_mask 0) reduces nothing, as TF.
                let out: Vec<usize> = (0..rank as usize)
                    .filter_map(|d| match (axes.contains(&(d as i64)), keep) {
                        (false, _) => Some(shape[d]),
                        (true, true) => Some(1),
                        (true, false) => None,
                    })
                    .collect();
                if axes_mask & 1 == 1 {
                    axes = axes.iter().map(|a| a - rank).collect();
                }
                let op = [Red::Sum, Red::Mean, Red::Max][which as usize];
                case.push(Node::Reduce { op, x, axes, keep }, out);
            }
            3 => {
                case.push(Node::Softmax { x, axis: axis(axes_mask) }, shape);
            }
            4 => {
                // BiasAdd needs rank 2 at least (as TF).
                let x = if shape.len() == 1 {
                    case.push(Node::Reshape { x, shape: vec![1, -1] }, [&[1], &shape[..]].concat())
                } else {
                    x
                };
                let shape = case.shape(x).to_vec();
                let bias = case.input(vec![shape[shape.len() - 1]], Dist::Mixed);
                let b = case.push(Node::BiasAdd { x, bias }, shape.clone());
                if keep {
                    case.push(Node::Unary(Un::Relu, b), shape);
                }
            }
            _ => {
                let a = axis(axes_mask);
                let out = shape.iter().enumerate().filter(|&(d, _)| d as i64 != a.rem_euclid(rank)).map(|(_, &s)| s);
                case.push(Node::ArgMax { x, axis: a }, out.collect());
            }
        }
        case
    })
}
