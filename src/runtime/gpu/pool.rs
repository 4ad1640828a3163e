//! A per-session pool of device buffers, reused by size class (a power of two, at least 256
//! bytes) and kind. Dropping the pool frees every buffer it allocated.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::context::GpuContext;
use super::GpuStats;
use crate::error::{Error, Result};

/// What a pooled buffer is for; each kind has its own usage flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BufferKind {
    /// Tensors: storage, copy source and destination.
    Storage,
    /// Readback: map-read, copy destination.
    Staging,
    /// Kernel params: uniform, copy destination.
    Uniform,
}

impl BufferKind {
    fn usage(self) -> wgpu::BufferUsages {
        use wgpu::BufferUsages as U;
        match self {
            BufferKind::Storage => U::STORAGE | U::COPY_SRC | U::COPY_DST,
            BufferKind::Staging => U::MAP_READ | U::COPY_DST,
            BufferKind::Uniform => U::UNIFORM | U::COPY_DST,
        }
    }
    fn of(usage: wgpu::BufferUsages) -> Self {
        if usage.contains(wgpu::BufferUsages::MAP_READ) {
            BufferKind::Staging
        } else if usage.contains(wgpu::BufferUsages::UNIFORM) {
            BufferKind::Uniform
        } else {
            BufferKind::Storage
        }
    }
}

/// The size a request of `bytes` is served with: the next power of two from 256 bytes, or
/// `bytes` rounded up to 256 where that power of two is over `max_buffer_size`.
pub fn size_class(bytes: u64, max_buffer_size: u64) -> u64 {
    let b = bytes.max(256);
    match b.checked_next_power_of_two() {
        Some(p) if p <= max_buffer_size => p,
        _ => b.div_ceil(256).saturating_mul(256),
    }
}

/// The bytes a pool holds, readable after the pool is dropped.
#[derive(Clone, Debug, Default)]
pub struct HeldBytes(Arc<AtomicU64>);

impl HeldBytes {
    /// Bytes currently allocated by the pool (in use or free for reuse).
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A session's device buffers. `take` reuses a free buffer of the size class or allocates one;
/// `give` returns it for reuse.
pub struct BufferPool {
    ctx: Arc<GpuContext>,
    free: HashMap<(u64, BufferKind), Vec<Arc<wgpu::Buffer>>>,
    /// Every buffer this pool allocated, by address.
    owned: HashMap<usize, Arc<wgpu::Buffer>>,
    free_set: HashSet<usize>,
    held: HeldBytes,
    /// The most bytes held since the last [`BufferPool::reset_peak`].
    peak: u64,
    /// The session's GPU memory budget, if any.
    budget: Option<u64>,
    pub(crate) stats: GpuStats,
}

/// Frees `buffer` now and takes its bytes off the counts.
fn forget(held: &HeldBytes, ctx: &GpuContext, buffer: &wgpu::Buffer) {
    buffer.destroy();
    held.0.fetch_sub(buffer.size(), Ordering::Relaxed);
    ctx.sub_held(buffer.size());
}

fn key(buffer: &Arc<wgpu::Buffer>) -> usize {
    Arc::as_ptr(buffer) as usize
}

impl BufferPool {
    /// An empty pool on `ctx`.
    pub fn new(ctx: Arc<GpuContext>) -> Self {
        BufferPool {
            ctx,
            free: HashMap::new(),
            owned: HashMap::new(),
            free_set: HashSet::new(),
            held: HeldBytes::default(),
            peak: 0,
            budget: None,
            stats: GpuStats::default(),
        }
    }

    /// Limits the bytes this pool may hold: an allocation past it first frees the pool's idle
    /// buffers, then fails with `ResourceExhausted`.
    pub fn set_budget(&mut self, budget: Option<u64>) {
        self.budget = budget;
    }

    /// The most bytes held since the last reset.
    pub fn peak(&self) -> u64 {
        self.peak
    }

    /// Starts a new peak measurement from the bytes held now.
    pub fn reset_peak(&mut self) {
        self.peak = self.bytes_held();
    }

    /// The context the buffers live on.
    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    /// A storage buffer of at least `bytes`. Over the device's storage binding limit is
    /// `ResourceExhausted` naming the size and the limit (the caller adds the node).
    pub fn take(&mut self, bytes: u64) -> Result<Arc<wgpu::Buffer>> {
        self.take_kind(bytes, BufferKind::Storage)
    }

    /// A buffer of `kind` of at least `bytes`.
    pub fn take_kind(&mut self, bytes: u64, kind: BufferKind) -> Result<Arc<wgpu::Buffer>> {
        self.ctx.ensure_alive()?;
        let limits = self.ctx.limits();
        let (limit, what) = match kind {
            BufferKind::Storage => (limits.max_storage_buffer_binding_size, "max_storage_buffer_binding_size"),
            BufferKind::Uniform => (limits.max_uniform_buffer_binding_size, "max_uniform_buffer_binding_size"),
            BufferKind::Staging => (limits.max_buffer_size, "max_buffer_size"),
        };
        if bytes > limit {
            return Err(Error::resource_exhausted(format!(
                "a tensor of {bytes} bytes is over the GPU's {what} of {limit} bytes ({})",
                self.ctx.info().name
            )));
        }
        let class = size_class(bytes, limits.max_buffer_size);
        if let Some(buffer) = self.free.get_mut(&(class, kind)).and_then(Vec::pop) {
            self.free_set.remove(&key(&buffer));
            return Ok(buffer);
        }
        if let Some(budget) = self.budget {
            if self.bytes_held() + class > budget {
                self.release_free();
            }
            if self.bytes_held() + class > budget {
                return Err(Error::resource_exhausted(format!(
                    "OOM when allocating a GPU buffer of {class} bytes: the session holds {} of its {budget}-byte \
                     GPU memory budget",
                    self.bytes_held()
                )));
            }
        }
        let buffer = self.ctx.scoped(&format!("allocating a GPU buffer of {class} bytes"), || {
            self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("wgflow pooled buffer"),
                size: class,
                usage: kind.usage(),
                mapped_at_creation: false,
            })
        })?;
        let buffer = Arc::new(buffer);
        self.owned.insert(key(&buffer), buffer.clone());
        self.held.0.fetch_add(class, Ordering::Relaxed);
        self.ctx.add_held(class);
        self.peak = self.peak.max(self.bytes_held());
        Ok(buffer)
    }

    /// Returns a buffer for reuse. Its holder must not use it afterwards. A buffer this pool
    /// did not allocate, or one already given back, is ignored (and logged).
    pub fn give(&mut self, buffer: Arc<wgpu::Buffer>) {
        let k = key(&buffer);
        if !self.owned.contains_key(&k) {
            log::warn!("a GPU buffer from another pool was given back; ignored");
            return;
        }
        if !self.free_set.insert(k) {
            log::warn!("a GPU buffer was given back twice; ignored");
            return;
        }
        let kind = BufferKind::of(buffer.usage());
        self.free.entry((buffer.size(), kind)).or_default().push(buffer);
    }

    /// Frees the buffers not in use.
    pub fn release_free(&mut self) {
        for (_, list) in self.free.drain() {
            for buffer in list {
                let k = key(&buffer);
                self.free_set.remove(&k);
                if self.owned.remove(&k).is_some() {
                    forget(&self.held, &self.ctx, &buffer);
                }
            }
        }
    }

    /// Bytes allocated by this pool and not yet freed.
    pub fn bytes_held(&self) -> u64 {
        self.held.get()
    }

    /// A handle on [`BufferPool::bytes_held`] that outlives the pool (for the memory tests).
    #[cfg(feature = "test-hooks")]
    pub fn held_counter(&self) -> HeldBytes {
        self.held.clone()
    }

    /// The number of buffers this pool has allocated and not freed.
    pub fn buffers_allocated(&self) -> usize {
        self.owned.len()
    }

    /// Transfer and compile counts of this pool's streams, and the bytes it holds.
    pub fn stats(&self) -> GpuStats {
        GpuStats { bytes_held: self.bytes_held(), ..self.stats }
    }
}

impl Drop for BufferPool {
    /// Frees every buffer the pool allocated, including any still referenced elsewhere.
    fn drop(&mut self) {
        self.free.clear();
        self.free_set.clear();
        for (_, buffer) in self.owned.drain() {
            forget(&self.held, &self.ctx, &buffer);
        }
    }
}

impl std::fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferPool")
            .field("buffers", &self.owned.len())
            .field("bytes_held", &self.bytes_held())
            .finish_non_exhaustive()
    }
}
