//! Which matmul / conv2d kernel variant runs on an adapter, and its tile sizes.
//!
//! Kernels are lowered for the device they run on: a GPU run sets its device's [`Target`]
//! around its lowerings ([`lowering_for`]), so that a session with GPUs on different adapters
//! lowers each kernel for its own adapter. Without one set (tests, reports), the process's
//! default device is used.
//!
//! - `sg8`: the subgroup kernels (shaders/matmul_sg.wgsl, conv2d_sg.wgsl), written for
//!   subgroups of exactly 8 lanes (lavapipe on 256-bit SIMD); the default there.
//! - `regblock`: the register-blocked GEMM core (shaders/gemm_rb.wgsl), any subgroup size;
//!   the default on every other adapter. Its tile is picked from the adapter's limits.
//! - `coop`: cooperative matrix tiles (shaders/matmul_coop.wgsl) where the adapter offers a
//!   configuration wgflow can use (f32 inputs, or f16 inputs with `allow_f16_matmul`).
//! - `tiled`: the first workgroup-tiled kernels, on every adapter.
//!
//! `WGFLOW_KERNEL` ([`KERNEL_ENV`](super::context::KERNEL_ENV)) forces one; a variant the
//! adapter cannot run falls back to the default with a warning. Shapes a variant does not
//! cover (say, `n` not a multiple of 4) fall back to `tiled`.

use std::cell::Cell;
use std::sync::OnceLock;

use super::context::{current, GpuContext, KERNEL_ENV};

/// A matmul / conv2d kernel family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelVariant {
    /// The workgroup-tiled kernels (32x32 tiles, 4x4 per thread, scalar loads).
    Tiled,
    /// The register-blocked GEMM with vec4 loads and double-buffered k slices.
    RegBlock,
    /// The kernels for subgroups of 8 lanes.
    Sg8,
    /// Cooperative matrix tiles.
    Coop,
}

impl KernelVariant {
    /// The name `WGFLOW_KERNEL` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            KernelVariant::Tiled => "tiled",
            KernelVariant::RegBlock => "regblock",
            KernelVariant::Sg8 => "sg8",
            KernelVariant::Coop => "coop",
        }
    }

    fn parse(s: &str) -> Option<Option<KernelVariant>> {
        Some(match s.trim() {
            "" | "auto" => None,
            "tiled" => Some(KernelVariant::Tiled),
            "regblock" => Some(KernelVariant::RegBlock),
            "sg8" => Some(KernelVariant::Sg8),
            "coop" => Some(KernelVariant::Coop),
            _ => return None,
        })
    }
}

/// The register-blocked kernel's tile: a workgroup computes `bm x bn` outputs over k slices of
/// `bk`, each thread a `tm x tn` block (multiples of 4: whole vec4s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RbTile {
    /// Output rows per workgroup.
    pub bm: usize,
    /// Output columns per workgroup.
    pub bn: usize,
    /// k per staged slice.
    pub bk: usize,
    /// Output rows per thread.
    pub tm: usize,
    /// Output columns per thread.
    pub tn: usize,
}

impl RbTile {
    /// 64 x 64 outputs, 4 x 4 per thread (256 threads), k slices of 16: 16 KiB of staging.
    pub const SMALL: RbTile = RbTile { bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 };
    /// 128 x 128 outputs, 8 x 8 per thread (256 threads), k slices of 8: 16 KiB of staging.
    pub const LARGE: RbTile = RbTile { bm: 128, bn: 128, bk: 8, tm: 8, tn: 8 };
    /// 32 x 32 outputs, 4 x 4 per thread (64 threads), k slices of 16: 8 KiB of staging, for
    /// adapters with fewer than 256 invocations per workgroup.
    pub const TINY: RbTile = RbTile { bm: 32, bn: 32, bk: 16, tm: 4, tn: 4 };

    /// Threads per workgroup.
    pub fn threads(&self) -> usize {
        (self.bm / self.tm) * (self.bn / self.tn)
    }

    /// Bytes of workgroup memory: both operands' slices, twice (double-buffered).
    pub fn staging_bytes(&self) -> usize {
        2 * self.bk * (self.bm + self.bn) * 4
    }

    /// Whether the adapter's limits allow this tile.
    fn fits(&self, limits: &wgpu::Limits) -> bool {
        self.threads() <= limits.max_compute_invocations_per_workgroup as usize
            && self.threads() <= limits.max_compute_workgroup_size_x as usize
            && self.staging_bytes() <= limits.max_compute_workgroup_storage_size as usize
    }
}

/// A cooperative matrix configuration wgflow's kernel can use: square tiles of `side` with
/// f32 accumulators, and f16 inputs when `f16` (else f32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoopShape {
    /// The side of the square tiles (8 or 16).
    pub side: usize,
    /// Whether the inputs are f16 (`GpuOptions::allow_f16_matmul`).
    pub f16: bool,
    /// The subgroup size the configuration is for (the kernel's workgroup size).
    pub lanes: usize,
}

/// What the adapter runs: the variant and, for `regblock`, the tiles for large and small
/// products.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Kernels {
    pub(crate) variant: KernelVariant,
    pub(crate) large: RbTile,
    pub(crate) small: RbTile,
    pub(crate) coop: Option<CoopShape>,
    /// The adapter's invocations per workgroup and bytes of workgroup memory.
    pub(crate) max_threads: usize,
    pub(crate) max_staging: usize,
}

impl Kernels {
    /// The register-blocked tile for an `m x n` output (times `batches`): the large tile when
    /// it still gives the adapter a few workgroups' worth of work, else the small one.
    pub(crate) fn tile_for(&self, m: usize, n: usize, batches: usize) -> RbTile {
        let large = self.large;
        if m.div_ceil(large.bm) * n.div_ceil(large.bn) * batches >= 32 {
            large
        } else {
            self.small
        }
    }
}

thread_local! {
    /// The device the kernels lowered on this thread now are for, when a GPU run set it.
    static TARGET: Cell<Option<Target>> = const { Cell::new(None) };
}

/// What lowering needs to know of the device a kernel runs on, taken once per run and device:
/// its matmul / conv2d kernels, whether it is a CPU-type driver (see [`grid_threads`]) and
/// whether its reductions may use subgroups (see [`subgroup_reductions`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    kernels: Kernels,
    cpu_driver: bool,
    sg_reductions: bool,
}

impl Target {
    /// The target of `ctx`, with `allow_f16` the session's `GpuOptions::allow_f16_matmul`.
    pub(crate) fn of(ctx: &GpuContext, allow_f16: bool) -> Target {
        Target {
            kernels: choose(ctx, forced(), allow_f16),
            cpu_driver: ctx.info().device_type == wgpu::DeviceType::Cpu,
            sg_reductions: sg_reductions_on(ctx),
        }
    }
}

/// Runs `f` with the kernels it lowers lowered for `target` (a cell write and a restore: no
/// lock, no allocation).
pub(crate) fn lowering_for<T>(target: Target, f: impl FnOnce() -> T) -> T {
    let before = TARGET.with(|c| c.replace(Some(target)));
    let out = f();
    TARGET.with(|c| c.set(before));
    out
}

fn target() -> Option<Target> {
    TARGET.with(Cell::get)
}

/// The variant `WGFLOW_KERNEL` forces, if any (read once per process).
fn forced() -> Option<KernelVariant> {
    static FORCED: OnceLock<Option<KernelVariant>> = OnceLock::new();
    *FORCED.get_or_init(|| {
        let v = std::env::var(KERNEL_ENV).unwrap_or_default();
        KernelVariant::parse(&v).unwrap_or_else(|| {
            log::warn!("{KERNEL_ENV}={v:?} is not a kernel variant (tiled, regblock, sg8, coop, auto); using auto");
            None
        })
    })
}

/// The kernels of `ctx` (without `GpuOptions::allow_f16_matmul`), for reports.
pub(crate) fn kernels_for(ctx: &GpuContext) -> Kernels {
    choose(ctx, forced(), false)
}

/// The kernels of the device being lowered for, else of the process's open context (`tiled`
/// while none is open).
pub(crate) fn kernels() -> Kernels {
    if let Some(t) = target() {
        return t.kernels;
    }
    match current() {
        Some(ctx) => kernels_for(&ctx),
        None => Kernels {
            variant: KernelVariant::Tiled,
            large: RbTile::TINY,
            small: RbTile::TINY,
            coop: None,
            max_threads: 64,
            max_staging: 16384,
        },
    }
}

/// The cooperative matrix shape this adapter offers wgflow, if any.
pub(crate) fn coop_shape(ctx: &GpuContext, allow_f16: bool) -> Option<CoopShape> {
    let f = ctx.device_features();
    if !f.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX) {
        return None;
    }
    let info = ctx.info();
    if info.subgroup_min_size != info.subgroup_max_size {
        // The kernel's subgroups are `lanes` threads of its workgroup: one fixed size.
        return None;
    }
    let f16 = allow_f16 && f.contains(wgpu::Features::SHADER_F16);
    pick_coop(ctx.cooperative_matrices(), info.subgroup_max_size as usize, f16)
}

/// The configuration the kernel uses among `offered`: square 8x8 or 16x16 tiles accumulating in
/// f32, with f32 inputs, else (when `f16` is allowed) f16 inputs.
fn pick_coop(offered: &[wgpu::CooperativeMatrixProperties], lanes: usize, f16: bool) -> Option<CoopShape> {
    let usable = |p: &wgpu::CooperativeMatrixProperties, f16: bool| {
        let input = if f16 { wgpu::CooperativeScalarType::F16 } else { wgpu::CooperativeScalarType::F32 };
        p.m_size == p.n_size
            && p.n_size == p.k_size
            && matches!(p.m_size, 8 | 16)
            && p.ab_type == input
            && p.cr_type == wgpu::CooperativeScalarType::F32
    };
    let pick =
        |f16: bool| offered.iter().find(|p| usable(p, f16)).map(|p| CoopShape { side: p.m_size as usize, f16, lanes });
    if lanes == 0 {
        return None;
    }
    pick(false).or_else(|| if f16 { pick(true) } else { None })
}

/// The kernels for `ctx`, with `forced` the variant asked for (if any).
fn choose(ctx: &GpuContext, forced: Option<KernelVariant>, allow_f16: bool) -> Kernels {
    let limits = ctx.limits();
    let small = [RbTile::SMALL, RbTile::TINY].into_iter().find(|t| t.fits(limits)).unwrap_or(RbTile::TINY);
    let large = if RbTile::LARGE.fits(limits) { RbTile::LARGE } else { small };
    let sg8 = ctx.device_features().contains(wgpu::Features::SUBGROUP)
        && ctx.info().subgroup_min_size == 8
        && ctx.info().subgroup_max_size == 8;
    let coop = coop_shape(ctx, allow_f16);
    let auto = if coop.is_some() {
        KernelVariant::Coop
    } else if sg8 {
        KernelVariant::Sg8
    } else {
        KernelVariant::RegBlock
    };
    let variant = match forced {
        None => auto,
        Some(KernelVariant::Sg8) if !sg8 => warn_once(KernelVariant::Sg8, auto),
        Some(KernelVariant::Coop) if coop.is_none() => warn_once(KernelVariant::Coop, auto),
        Some(v) => v,
    };
    let max_threads = limits.max_compute_invocations_per_workgroup.min(limits.max_compute_workgroup_size_x) as usize;
    let max_staging = limits.max_compute_workgroup_storage_size as usize;
    Kernels { variant, large, small, coop, max_threads, max_staging }
}

fn warn_once(asked: KernelVariant, used: KernelVariant) -> KernelVariant {
    static WARNED: OnceLock<()> = OnceLock::new();
    WARNED.get_or_init(|| {
        log::warn!("{KERNEL_ENV}={} cannot run on this adapter; using {}", asked.as_str(), used.as_str());
    });
    used
}

/// Whether the kernels being lowered are for a CPU-type driver (lavapipe), where a thread
/// that walks more work often beats more threads that share it.
pub(crate) fn cpu_driver() -> bool {
    match target() {
        Some(t) => t.cpu_driver,
        None => current().is_some_and(|c| c.info().device_type == wgpu::DeviceType::Cpu),
    }
}

/// Sets the most threads of the grid-stride elementwise kernels (see [`grid_threads`]), to test
/// or tune them; read once per process.
pub const GRID_THREADS_ENV: &str = "WGFLOW_GRID_THREADS";

/// The most threads a grid-stride vec4 elementwise kernel runs. On a GPU, 2^18: enough to fill
/// a large one (an H100 holds about 270,000 resident threads), few enough that a large tensor
/// gives each thread several vec4s. On a CPU driver (lavapipe), one thread per vec4: there the
/// loop ran add of 16M floats in 102 ms against 31 ms. `WGFLOW_GRID_THREADS` overrides both.
pub(crate) fn grid_threads() -> usize {
    // Lowering runs for every GPU op of every run: the variable is read once, not each time.
    static FORCED: OnceLock<Option<usize>> = OnceLock::new();
    let forced = FORCED.get_or_init(|| {
        std::env::var(GRID_THREADS_ENV).ok().and_then(|v| v.trim().parse::<usize>().ok()).map(|n| n.max(1))
    });
    if let Some(n) = *forced {
        return n;
    }
    if cpu_driver() {
        usize::MAX
    } else {
        1 << 18
    }
}

/// Whether reductions combine each workgroup's values with subgroup shuffles: the device has
/// `SUBGROUP` with subgroups of 4 to 64 lanes, and `WGFLOW_KERNEL` does not force `tiled` (which
/// keeps every kernel off subgroup operations).
pub(crate) fn subgroup_reductions() -> bool {
    forced() != Some(KernelVariant::Tiled)
        && match target() {
            Some(t) => t.sg_reductions,
            None => current().is_some_and(|c| sg_reductions_on(&c)),
        }
}

/// Whether `ctx` has subgroups of 4 to 64 lanes.
fn sg_reductions_on(c: &GpuContext) -> bool {
    c.device_features().contains(wgpu::Features::SUBGROUP)
        && c.info().subgroup_min_size >= 4
        && c.info().subgroup_max_size <= 64
}

/// The variant matmul and conv2d use on the process's open GPU context (`Tiled` while none is
/// open): for reports and tests.
pub fn active_variant() -> KernelVariant {
    kernels().variant
}

#[cfg(test)]
mod tests {
    use super::*;
    use wgpu::CooperativeScalarType::{F16, F32};

    fn config(
        side: u32,
        ab: wgpu::CooperativeScalarType,
        cr: wgpu::CooperativeScalarType,
    ) -> wgpu::CooperativeMatrixProperties {
        wgpu::CooperativeMatrixProperties {
            m_size: side,
            n_size: side,
            k_size: side,
            ab_type: ab,
            cr_type: cr,
            saturating_accumulation: false,
        }
    }

    #[test]
    fn f16_inputs_only_with_allow_f16_matmul() {
        // As NVIDIA's Vulkan driver: f16 inputs with f16 or f32 accumulators.
        let nvidia = [config(16, F16, F16), config(16, F16, F32)];
        assert_eq!(pick_coop(&nvidia, 32, false), None);
        assert_eq!(pick_coop(&nvidia, 32, true), Some(CoopShape { side: 16, f16: true, lanes: 32 }));
        // As Apple's simdgroup matrices: f32 8x8, used whatever the option says.
        let apple = [config(8, F16, F16), config(8, F32, F32)];
        assert_eq!(pick_coop(&apple, 32, false), Some(CoopShape { side: 8, f16: false, lanes: 32 }));
        assert_eq!(pick_coop(&apple, 32, true), Some(CoopShape { side: 8, f16: false, lanes: 32 }));
        // Shapes the kernel does not tile, and f16 accumulators, are not used.
        assert_eq!(pick_coop(&[config(32, F32, F32), config(16, F16, F16)], 32, true), None);
        assert_eq!(pick_coop(&[], 32, true), None);
    }

    #[test]
    fn tiles_fit_limits_and_threads_divide_their_loads() {
        for t in [RbTile::SMALL, RbTile::LARGE, RbTile::TINY] {
            assert!(t.bm % t.tm == 0 && t.bn % t.tn == 0 && t.tm % 4 == 0 && t.tn % 4 == 0 && t.bk % 4 == 0, "{t:?}");
            assert_eq!((t.bm * t.bk / 4) % t.threads(), 0, "{t:?}");
            assert_eq!((t.bn * t.bk / 4) % t.threads(), 0, "{t:?}");
            assert!(t.staging_bytes() <= 16384, "{t:?}: WebGPU's default workgroup memory");
        }
        let low = wgpu::Limits { max_compute_invocations_per_workgroup: 128, ..wgpu::Limits::default() };
        assert!(!RbTile::SMALL.fits(&low) && RbTile::TINY.fits(&low));
    }
}
