//! The loop budget of the GPU kernels and the multi-pass lowerings that keep to it: workgroup
//! tree reductions (shaders/reduce_tree.wgsl) for `Sum` / `Mean` / `Max`, `BiasAddGrad`,
//! softmax's row maxima and sums, and the partial sums of the filter gradient; and softmax over
//! long rows (shaders/softmax_norm.wgsl).
//!
//! Drivers cut kernels that loop too long: lavapipe stops an invocation silently after about
//! 65,535 loop iterations (all of its loops together, nested ones included), and other drivers
//! have watchdogs. Every kernel is therefore planned so that one invocation makes at most
//! [`MAX_LOOP_TRIPS`] loop trips, counting every loop at every nesting level (a constant loop
//! of 4 trips inside a loop of 100 counts 400): work beyond that is split over more threads,
//! workgroups, passes or dispatches.

use super::combine::workgroup_combine;
use super::ReduceKind;
use crate::error::{Error, Result};
use crate::ops::kernel::{code_of, slots, with_prelude, word};
use crate::ops::{cached_wgsl, wgsl, GpuLowering, Pass, PassBuf, Passes};
use crate::runtime::gpu::shaders as gpu_shaders;
use crate::runtime::gpu::variant::subgroup_reductions;
use crate::tensor::DType;

/// The most loop trips one invocation of any kernel makes, counting nested loops' trips (see
/// the module comment). A 16x margin below lavapipe's limit.
pub const MAX_LOOP_TRIPS: usize = 4096;
/// Trips a kernel may spend outside its main loop (index walks over up to 8 axes, tree steps,
/// stores): main loops are sized to `MAX_LOOP_TRIPS - OVERHEAD_TRIPS`.
pub(crate) const OVERHEAD_TRIPS: usize = 64;
/// The workgroup size of the tree kernels (a power of two: the tree halves it).
const WG: usize = 64;
/// The most elements one thread of a tree pass combines before the tree (accuracy: serial
/// runs stay short; the tree does the rest).
const PER_THREAD: usize = 64;
/// The highest rank the kernels index.
const MAX_RANK: usize = 8;

/// What a tree pass computes: the element type and the WGSL expressions of the template.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fold {
    pub(crate) dtype: DType,
    /// The identity, an expression of `acc` and `v`, and one of `acc` and `n` (the count).
    pub(crate) init: &'static str,
    pub(crate) combine: &'static str,
    pub(crate) finish: &'static str,
}

impl Fold {
    /// The fold of a reduction kind on float32 or int32 (`None` for other dtypes).
    pub(crate) fn of(kind: ReduceKind, dtype: DType) -> Option<Fold> {
        let (init, combine, finish) = match (kind, dtype) {
            (ReduceKind::Sum, DType::F32) => ("0.0", "acc + v", "acc"),
            (ReduceKind::Mean, DType::F32) => ("0.0", "acc + v", "acc / f32(n)"),
            (ReduceKind::Max, DType::F32) => ("-inf_f32()", "max_tf(acc, v)", "acc"),
            (ReduceKind::Sum, DType::I32) => ("0", "acc + v", "acc"),
            (ReduceKind::Mean, DType::I32) => ("0", "acc + v", "select(acc / max(i32(n), 1), 0, n == 0u)"),
            (ReduceKind::Max, DType::I32) => ("bitcast<i32>(0x80000000u)", "max(acc, v)", "acc"),
            _ => return None,
        };
        Some(Fold { dtype, init, combine, finish })
    }

    /// Softmax's row maximum: NaN is skipped (it then spreads through the sum), as on the CPU.
    pub(crate) const SOFTMAX_MAX: Fold =
        Fold { dtype: DType::F32, init: "-inf_f32()", combine: "select(acc, v, v > acc)", finish: "acc" };
    /// A float32 sum.
    pub(crate) const SUM_F32: Fold = Fold { dtype: DType::F32, init: "0.0", combine: "acc + v", finish: "acc" };

    fn key(&self, exp_aux: bool, subgroups: bool) -> String {
        let (d, i, c, f) = (self.dtype, self.init, self.combine, self.finish);
        format!("reduce tree {d} {i} {c} {f} exp {exp_aux} subgroups {subgroups}")
    }
}

/// A tree pass kernel: `exp_aux` loads `exp(x - aux[output])` (aux bound second) instead of `x`;
/// `subgroups` combines the workgroup's values with subgroup shuffles instead of the tree.
pub(crate) fn tree_wgsl(fold: &Fold, exp_aux: bool, subgroups: bool) -> Result<String> {
    let (combine, builtins) = workgroup_combine(subgroups);
    let (aux, load, out) = match exp_aux {
        true => ("@group(0) @binding(2) var<storage, read> aux: array<T>;", "exp_tf(x[off] - aux[o])", "3"),
        false => ("", "x[off]", "2"),
    };
    let body = code_of(wgsl::REDUCE_TREE)
        .replace("WORKGROUP_COMBINE", combine)
        .replace("BUILTINS", builtins)
        .replace("ELEM_TYPE", gpu_shaders::wgsl_scalar(fold.dtype)?)
        .replace("REDUCE_INIT", fold.init)
        .replace("REDUCE_COMBINE", fold.combine)
        .replace("REDUCE_FINISH", fold.finish)
        .replace("AUX_BINDING", aux)
        .replace("LOAD", load)
        .replace("OUT_BINDING", out);
    Ok(with_prelude(&body))
}

/// The softmax normalisation kernel.
pub(crate) fn softmax_norm_wgsl() -> String {
    with_prelude(wgsl::SOFTMAX_NORM)
}

/// Axes of a reduction's input: the kept ones (output order) and the reduced ones, each with
/// its dims and input strides, adjacent axes of one kind merged.
#[derive(Clone, Debug, Default)]
pub(crate) struct Axes {
    pub(crate) kept: (Vec<usize>, Vec<usize>),
    pub(crate) red: (Vec<usize>, Vec<usize>),
}

impl Axes {
    /// The axes of `dims` reduced where `mask` is set; `None` past the kernels' rank.
    pub(crate) fn of(dims: &[usize], mask: &[bool]) -> Option<Axes> {
        let mut groups: Vec<(usize, bool)> = Vec::new();
        for (&d, &m) in dims.iter().zip(mask) {
            match groups.last_mut() {
                _ if d == 1 => {}
                Some((size, kind)) if *kind == m => *size *= d,
                _ => groups.push((d, m)),
            }
        }
        let mut st = vec![1usize; groups.len()];
        for i in (0..groups.len().saturating_sub(1)).rev() {
            st[i] = st[i + 1].saturating_mul(groups[i + 1].0);
        }
        let pick = |reduced: bool| -> (Vec<usize>, Vec<usize>) {
            groups.iter().zip(&st).filter(|(g, _)| g.1 == reduced).map(|(g, &s)| (g.0, s)).unzip()
        };
        let axes = Axes { kept: pick(false), red: pick(true) };
        (axes.kept.0.len() <= MAX_RANK && axes.red.0.len() <= MAX_RANK).then_some(axes)
    }

    /// The reduced elements per output.
    pub(crate) fn n(&self) -> usize {
        self.red.0.iter().product()
    }

    /// The outputs.
    pub(crate) fn outputs(&self) -> usize {
        self.kept.0.iter().product()
    }

    /// The uniforms after `[kept_rank, red_rank]`'s words: the four 8-slot arrays.
    fn slot_words(&self) -> Result<Vec<u32>> {
        let mut w = Vec::with_capacity(32);
        for (v, fill) in [(&self.kept.0, 1), (&self.kept.1, 0), (&self.red.0, 1), (&self.red.1, 0)] {
            w.extend(slots(v, fill)?);
        }
        Ok(w)
    }
}

/// The trips one thread spends per element of a serial walk over `red_rank` reduced axes (the
/// loop's own trip, the axis walk's trips and its exit test).
pub(crate) fn trips_per_element(red_rank: usize) -> usize {
    red_rank + 2
}

/// Appends the tree passes reducing `src` (laid out as `axes` describes) with `fold`, the last
/// writing `dst` (one element per output, in output order). With `aux`, the first pass loads
/// `exp(x - aux[output])`.
pub(crate) fn tree_passes(
    p: &mut Passes,
    fold: &Fold,
    axes: &Axes,
    src: PassBuf,
    aux: Option<PassBuf>,
    dst: PassBuf,
) -> Result<()> {
    let outputs = axes.outputs();
    let total = axes.n();
    let mut axes = axes.clone();
    let (mut src, mut aux) = (src, aux);
    loop {
        let n = axes.n();
        let per_thread = n.div_ceil(WG).clamp(1, PER_THREAD);
        // (Within the budget at any rank: 64 * (8 + 2) + overhead.)
        debug_assert!(per_thread * trips_per_element(axes.red.0.len()) + OVERHEAD_TRIPS <= MAX_LOOP_TRIPS);
        let chunks = n.div_ceil(WG * per_thread).max(1);
        let last = chunks == 1;
        let groups = outputs
            .checked_mul(chunks)
            .filter(|g| g.checked_mul(WG).is_some_and(|i| i <= u32::MAX as usize))
            .ok_or_else(|| {
                Error::resource_exhausted(format!(
                    "a reduction of {outputs} x {n} elements is too large for a GPU kernel"
                ))
            })?;
        let target = if last { dst } else { p.temp(fold.dtype, vec![outputs, chunks]) };
        let exp_aux = aux.is_some();
        let sg = subgroup_reductions();
        let wgsl = cached_wgsl(fold.key(exp_aux, sg), || tree_wgsl(fold, exp_aux, sg))?;
        let mut uniforms = vec![
            word(axes.kept.0.len())?,
            word(axes.red.0.len())?,
            word(n)?,
            word(chunks)?,
            word(per_thread)?,
            u32::from(last),
            word(total)?,
        ];
        uniforms.extend(axes.slot_words()?);
        let mut inputs = vec![src];
        inputs.extend(aux.take());
        p.passes.push(Pass {
            wgsl: wgsl.into(),
            uniforms,
            invocations: (groups * WG) as u64,
            workgroup_size: WG as u32,
            inputs,
            output: target,
        });
        if last {
            return Ok(());
        }
        // The next pass reduces the [outputs, chunks] partials along their last axis.
        src = target;
        axes = Axes { kept: (vec![outputs], vec![chunks]), red: (vec![chunks], vec![1]) };
    }
}

/// Reduced axes up to this long always run one thread per output.
const SHORT_AXIS: usize = 64;
/// With this many outputs, a reduction within the loop budget runs one thread per output.
const MANY_OUTPUTS: usize = 4096;

/// Whether a reduction of `n` elements per output over `red_rank` axes into `outputs` outputs
/// runs one thread per output (a serial walk: short axes, or enough outputs to keep the threads
/// busy, within the loop budget), rather than as workgroup trees.
pub(crate) fn serial(n: usize, red_rank: usize, outputs: usize) -> bool {
    let trips = n.saturating_mul(trips_per_element(red_rank)).saturating_add(OVERHEAD_TRIPS);
    trips <= MAX_LOOP_TRIPS && (n <= SHORT_AXIS || outputs >= MANY_OUTPUTS)
}

/// Appends the passes of a `kind` reduction of `src` (laid out as `axes` describes) into `dst`:
/// one thread per output (shaders/reduce.wgsl) where [`serial`] says so, else tree passes.
pub(crate) fn reduce_passes(
    p: &mut Passes,
    (kind, dtype): (ReduceKind, DType),
    axes: &Axes,
    src: PassBuf,
    dst: PassBuf,
) -> Result<()> {
    let fold = Fold::of(kind, dtype).ok_or_else(|| Error::unimplemented(format!("no GPU reduction for {dtype}")))?;
    let (n, outputs) = (axes.n(), axes.outputs());
    if !serial(n, axes.red.0.len(), outputs) {
        return tree_passes(p, &fold, axes, src, None, dst);
    }
    let wgsl = cached_wgsl(format!("reduce {kind:?} {dtype}"), || super::gpu::reduce_wgsl(kind, dtype))?;
    let mut uniforms = vec![word(axes.kept.0.len())?, word(axes.red.0.len())?, word(n)?];
    uniforms.extend(axes.slot_words()?);
    p.passes.push(Pass {
        wgsl: wgsl.into(),
        uniforms,
        invocations: u64::from(word(outputs)?),
        workgroup_size: WG as u32,
        inputs: vec![src],
        output: dst,
    });
    Ok(())
}

/// A `kind` reduction of `dims` over the axes in `mask`, the output of shape `out`; `None` past
/// the kernels' rank or for dtypes without a kernel.
pub(crate) fn reduction(
    (kind, dtype): (ReduceKind, DType),
    dims: &[usize],
    mask: &[bool],
    out: Vec<usize>,
) -> Option<Result<GpuLowering>> {
    let axes = Axes::of(dims, mask)?;
    Fold::of(kind, dtype)?;
    Some((|| {
        word(dims.iter().product())?;
        let mut p = Passes::new(dtype, out);
        reduce_passes(&mut p, (kind, dtype), &axes, PassBuf::Input(0), PassBuf::Out)?;
        Ok(single(p))
    })())
}

/// One pass over the op's input 0 writing its output, as a plain kernel; else the passes.
pub(crate) fn single(mut p: Passes) -> GpuLowering {
    let plain = p.passes.len() == 1
        && p.temps.is_empty()
        && p.passes[0].output == PassBuf::Out
        && p.passes[0].inputs == [PassBuf::Input(0)];
    match p.passes.pop() {
        Some(k) if plain => GpuLowering::Kernel {
            wgsl: k.wgsl,
            uniforms: k.uniforms,
            invocations: k.invocations,
            workgroup_size: k.workgroup_size,
            out: p.out,
        },
        Some(k) => {
            p.passes.push(k);
            p.lowering()
        }
        None => p.lowering(),
    }
}

/// Softmax of float32 `[outer, n, inner]` along `n` in passes: the rows' maxima and sums of
/// exponentials as trees, then one thread per element.
pub(crate) fn softmax_passes(dims: &[usize], (outer, n, inner): (usize, usize, usize)) -> Result<GpuLowering> {
    let rows = outer * inner;
    let mut p = Passes::new(DType::F32, dims.to_vec());
    let axes = Axes { kept: (vec![outer, inner], vec![n * inner, 1]), red: (vec![n], vec![inner]) };
    let max = p.temp(DType::F32, vec![rows]);
    let sum = p.temp(DType::F32, vec![rows]);
    tree_passes(&mut p, &Fold::SOFTMAX_MAX, &axes, PassBuf::Input(0), None, max)?;
    tree_passes(&mut p, &Fold::SUM_F32, &axes, PassBuf::Input(0), Some(max), sum)?;
    let wgsl = cached_wgsl("softmax norm f32".into(), || Ok(softmax_norm_wgsl()))?;
    let count = word(outer * n * inner)?;
    p.passes.push(Pass {
        wgsl: wgsl.into(),
        uniforms: vec![word(n)?, word(inner.max(1))?, 0],
        invocations: u64::from(count),
        workgroup_size: WG as u32,
        inputs: vec![PassBuf::Input(0), max, sum],
        output: PassBuf::Out,
    });
    Ok(p.lowering())
}

/// Every instantiation of the templates here, named, for the naga validation test.
pub fn instantiations() -> Result<Vec<(String, String)>> {
    let mut all = Vec::new();
    for kind in [ReduceKind::Sum, ReduceKind::Mean, ReduceKind::Max] {
        for dtype in [DType::F32, DType::I32] {
            if let Some(f) = Fold::of(kind, dtype) {
                all.push((format!("reduce_tree.wgsl {kind:?} {dtype}"), tree_wgsl(&f, false, false)?));
                all.push((format!("reduce_tree.wgsl {kind:?} {dtype} subgroups"), tree_wgsl(&f, false, true)?));
            }
        }
    }
    for sg in [false, true] {
        all.push((format!("reduce_tree.wgsl softmax max subgroups {sg}"), tree_wgsl(&Fold::SOFTMAX_MAX, false, sg)?));
        all.push((format!("reduce_tree.wgsl softmax sum of exp subgroups {sg}"), tree_wgsl(&Fold::SUM_F32, true, sg)?));
    }
    all.push(("softmax_norm.wgsl".into(), softmax_norm_wgsl()));
    Ok(all)
}
