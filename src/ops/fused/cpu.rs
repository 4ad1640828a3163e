//! The CPU twin of a fused chain: one pass over the output in blocks that stay in the L1
//! cache, each op of the chain applied to a whole block with its table row's slice kernel
//! (so it vectorises as the unfused kernel does), the last one straight into the output, in
//! parallel over large outputs.

use std::mem::MaybeUninit;

use ndarray::{ArrayD, IxDyn};
use rayon::prelude::*;

use super::{broadcast_strides, Broadcast, ElemKind, Expr};
use crate::runtime::cpu::stream;
use crate::tensor::Tensor;

/// Elements per block: every intermediate of a chain of a few ops fits in L1 together.
const BLOCK: usize = 512;
/// Elements per parallel task.
const TASK: usize = 1 << 16;

/// Where an operand of an instruction comes from.
#[derive(Clone, Copy)]
enum Operand {
    Leaf(usize),
    Reg(usize),
}

/// One op of the chain; its result goes to the register of its own index.
struct Instr {
    kind: ElemKind,
    args: [Operand; 2],
}

/// How a leaf is read for output elements `start..start + len`.
enum Source<'a> {
    /// The output's shape: the same elements.
    Full(&'a [f32]),
    /// A suffix of the output's dimensions (a bias, a scalar): element `i % len`.
    Suffix(&'a [f32]),
    /// Any other broadcast: element offsets from the output's coordinates and these strides.
    Strided { data: &'a [f32], strides: Vec<usize> },
}

fn compile(expr: &Expr, prog: &mut Vec<Instr>) -> Operand {
    match expr {
        Expr::Leaf(k) => Operand::Leaf(*k),
        Expr::Node { kind, args, .. } => {
            let a = args.first().map_or(Operand::Leaf(0), |e| compile(e, prog));
            let b = args.get(1).map_or(a, |e| compile(e, prog));
            prog.push(Instr { kind: *kind, args: [a, b] });
            Operand::Reg(prog.len() - 1)
        }
    }
}

/// The chain on float32 contiguous leaves whose shapes broadcast; `None` otherwise (the
/// caller then runs it op by op).
pub(super) fn eval_f32(expr: &Expr, leaves: &[&Tensor]) -> Option<Tensor> {
    let arrays = leaves.iter().map(|t| t.as_f32().ok()).collect::<Option<Vec<_>>>()?;
    let shapes: Vec<&[usize]> = arrays.iter().map(|a| a.shape()).collect();
    let out_shape = expr.shape(&shapes)?;
    // Too large to count or hold: the unfused kernels report it (ResourceExhausted).
    let n = crate::tensor::check_host_alloc::<f32>(crate::tensor::DType::F32, &out_shape).ok()?;
    let sources =
        arrays.iter().map(|a| Some(source(a.as_slice()?, a.shape(), &out_shape))).collect::<Option<Vec<_>>>()?;
    let mut prog = Vec::new();
    if !matches!(compile(expr, &mut prog), Operand::Reg(_)) {
        return None;
    }
    let (mut out, recycled) = crate::runtime::cpu::recycle::take(&out_shape).ok()?;
    {
        let spare = &mut out.spare_capacity_mut()[..n];
        // Streaming pays into a recycled buffer, not into fresh pages the first touch zeroes.
        let stream = recycled && n >= stream::MIN_ELEMS;
        let task = |(t, chunk): (usize, &mut [MaybeUninit<f32>])| {
            run_task(&prog, &sources, &out_shape, t * TASK, chunk, stream)
        };
        if n > TASK {
            spare.par_chunks_mut(TASK).enumerate().for_each(task);
        } else {
            task((0, spare));
        }
    }
    // SAFETY: `run_task` writes every element of the chunks it is given, which cover `..n`.
    unsafe { out.set_len(n) };
    ArrayD::from_shape_vec(IxDyn(&out_shape), out).ok().map(Tensor::from)
}

fn source<'a>(data: &'a [f32], shape: &[usize], out: &[usize]) -> Source<'a> {
    match Broadcast::of(shape, out) {
        Broadcast::Full => Source::Full(data),
        Broadcast::Suffix => Source::Suffix(data),
        Broadcast::Strided => Source::Strided { data, strides: broadcast_strides(shape, out.len()) },
    }
}

/// Evaluates output elements `start..start + chunk.len()` into `chunk`, block by block; with
/// `stream`, each block is computed in L1 and streamed out ([`stream::copy`]).
fn run_task(
    prog: &[Instr],
    sources: &[Source],
    out_shape: &[usize],
    start: usize,
    chunk: &mut [MaybeUninit<f32>],
    stream: bool,
) {
    let mut regs = vec![0.0f32; BLOCK * prog.len()];
    let mut gathered = vec![0.0f32; BLOCK * sources.len()];
    for (b, block) in chunk.chunks_mut(BLOCK).enumerate() {
        let (first, len) = (start + b * BLOCK, block.len());
        for (k, s) in sources.iter().enumerate() {
            let dst = &mut gathered[k * BLOCK..k * BLOCK + len];
            match s {
                Source::Full(_) => {}
                Source::Suffix(d) if d.len() == 1 => dst.fill(d[0]),
                Source::Suffix(d) => repeat(d, first % d.len(), dst),
                Source::Strided { data, strides } => gather(data, strides, out_shape, first, dst),
            }
        }
        for (r, ins) in prog.iter().enumerate() {
            let (done, rest) = regs.split_at_mut(r * BLOCK);
            let operand = |o: Operand| -> &[f32] {
                match o {
                    Operand::Reg(j) => &done[j * BLOCK..j * BLOCK + len],
                    Operand::Leaf(k) => match &sources[k] {
                        Source::Full(d) => &d[first..first + len],
                        _ => &gathered[k * BLOCK..k * BLOCK + len],
                    },
                }
            };
            let (a, b) = (operand(ins.args[0]), operand(ins.args[1]));
            // The last op writes the output block itself (no copy out of a register), unless
            // the block is streamed out; the others write their register.
            let last = r + 1 == prog.len() && !stream;
            let add = crate::ops::BinaryKind::Add;
            match ins.kind {
                ElemKind::Unary(u) if last => u.slices_f32_into(a, block),
                ElemKind::Unary(u) => u.slices_f32(a, &mut rest[..len]),
                ElemKind::Binary(k) if last => k.slices_f32_into(a, b, block),
                ElemKind::Binary(k) => k.slices_f32(a, b, &mut rest[..len]),
                ElemKind::BiasAdd if last => add.slices_f32_into(a, b, block),
                ElemKind::BiasAdd => add.slices_f32(a, b, &mut rest[..len]),
            }
        }
        if stream {
            let result = (prog.len() - 1) * BLOCK;
            stream::copy(block, &regs[result..result + len]);
        }
    }
    if stream {
        stream::fence();
    }
}

/// Fills `dst` with `d` repeated, starting at its element `at`: the leaf elements of a suffix
/// broadcast, copied a row at a time (no division per element).
fn repeat(d: &[f32], at: usize, dst: &mut [f32]) {
    let mut from = at;
    let mut rest = dst;
    while !rest.is_empty() {
        let n = (d.len() - from).min(rest.len());
        let (head, tail) = rest.split_at_mut(n);
        head.copy_from_slice(&d[from..from + n]);
        (rest, from) = (tail, 0);
    }
}

/// The leaf elements of output elements `first..first + dst.len()` for a strided broadcast.
fn gather(data: &[f32], strides: &[usize], dims: &[usize], first: usize, dst: &mut [f32]) {
    let rank = dims.len();
    let mut coord = vec![0usize; rank];
    let mut rem = first;
    for d in (0..rank).rev() {
        coord[d] = rem % dims[d].max(1);
        rem /= dims[d].max(1);
    }
    let mut offset: usize = coord.iter().zip(strides).map(|(c, s)| c * s).sum();
    for v in dst.iter_mut() {
        *v = data[offset];
        for d in (0..rank).rev() {
            coord[d] += 1;
            offset += strides[d];
            if coord[d] < dims[d] {
                break;
            }
            offset -= strides[d] * coord[d];
            coord[d] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn repeat_continues_the_suffix_from_any_element() {
        let d = [1.0, 2.0, 3.0];
        let mut dst = [0.0f32; 8];
        super::repeat(&d, 2, &mut dst);
        assert_eq!(dst, [3.0, 1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0]);
        let mut short = [0.0f32; 1];
        super::repeat(&d, 1, &mut short);
        assert_eq!(short, [2.0]);
    }
}
