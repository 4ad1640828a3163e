//! A ConfigProto-like session configuration, and per-run options and metadata.

use std::collections::BTreeMap;
use std::time::Duration;

/// Session configuration, after TF's `ConfigProto`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigProto {
    /// Devices per type, e.g. `{"GPU": 0}` forces everything onto the CPU.
    pub device_count: BTreeMap<String, usize>,
    /// Fall back to the CPU when a node cannot go where it was asked.
    pub allow_soft_placement: bool,
    /// Log each node's device, in TF's format.
    pub log_device_placement: bool,
    /// GPU memory and adapter options.
    pub gpu_options: GpuOptions,
    /// Threads for the CPU kernels; 0 uses every core.
    pub intra_op_parallelism_threads: usize,
    /// How nodes that could run on either device are placed (TF's rule by default).
    pub placement_policy: crate::placement::PlacementPolicy,
    /// Graph rewrites after placement.
    pub graph_options: GraphOptions,
}

/// Graph rewrites, after TF's `GraphOptions` / `RewriterConfig`.
#[derive(Clone, Debug, PartialEq)]
pub struct GraphOptions {
    /// TF's `rewrite_options.remapping` (on by default): fuse each chain of float32
    /// elementwise ops on one device (`BiasAdd` included) into one kernel, and a chain that
    /// consumes a `Conv2D` / `MatMul` into that kernel's epilogue (`_FusedConv2D`,
    /// `_FusedMatMul`). Values a fetch or a second consumer reads are never fused away.
    pub remapping: bool,
}

impl Default for GraphOptions {
    fn default() -> Self {
        GraphOptions { remapping: true }
    }
}

impl Default for ConfigProto {
    fn default() -> Self {
        ConfigProto {
            device_count: BTreeMap::new(),
            allow_soft_placement: true,
            log_device_placement: false,
            gpu_options: GpuOptions::default(),
            intra_op_parallelism_threads: 0,
            placement_policy: crate::placement::PlacementPolicy::Tf,
            graph_options: GraphOptions::default(),
        }
    }
}

impl ConfigProto {
    /// A config that runs everything on the CPU (`device_count {"GPU": 0}`).
    pub fn cpu_only() -> Self {
        let mut c = ConfigProto::default();
        c.device_count.insert("GPU".into(), 0);
        c
    }
    /// How many devices of `kind` ("GPU", "CPU") the config allows, if it says.
    pub fn devices(&self, kind: &str) -> Option<usize> {
        self.device_count.get(kind).copied()
    }
}

/// GPU options, after TF's `GPUOptions`.
#[derive(Clone, Debug, PartialEq)]
pub struct GpuOptions {
    /// Fraction of the adapter's memory this process may use (when the adapter reports it).
    pub per_process_gpu_memory_fraction: f64,
    /// An explicit byte budget for GPU allocations.
    pub memory_limit_bytes: Option<u64>,
    /// The adapter's memory in bytes, which `per_process_gpu_memory_fraction` applies to. wgpu
    /// offers no query for it, so it is `None` (no fraction budget) unless set here.
    pub adapter_memory_bytes: Option<u64>,
    /// Allocate as needed (`true`). `false` asks TF's "reserve the budget up front", which wgflow
    /// does not do: its buffers are separate wgpu allocations, not carved from one block. The
    /// session logs a warning and allocates as needed, within the budget either way.
    pub allow_growth: bool,
    /// The adapter to use, by index or by a substring of its name (`WGFLOW_ADAPTER` also works),
    /// when `visible_device_list` is empty.
    pub adapter: Option<String>,
    /// TF's `visible_device_list`: the adapters (indices into `wgflow::gpu::adapters()`, TF's
    /// physical GPU ids) the session uses, comma-separated, in the order of their ordinals
    /// (`"1,0"` makes adapter 1 `GPU:0`). Each is its own wgpu device, with its own buffer
    /// pool and stream. Empty (the default): one adapter, the one `adapter` names, else the
    /// best one: wgpu's list often holds a software renderer too, which TF's never does. An id
    /// that is not an adapter, a duplicate or a malformed entry fails with TF's message.
    pub visible_device_list: String,
    /// TF's `GPUOptions.Experimental.virtual_devices`: several GPUs from one adapter. Empty
    /// (the default): one GPU per visible adapter; otherwise one entry per visible adapter,
    /// each listing the GPUs made from it. Each is its own wgpu device on that adapter, so
    /// `vec![VirtualDevices::split(2)]` makes `GPU:0` and `GPU:1` of one adapter (how the tests
    /// run two GPUs on lavapipe).
    pub virtual_devices: Vec<VirtualDevices>,
    /// Lets float32 matmuls run on cooperative matrices with f16 inputs (tensor cores) where the
    /// adapter offers only those (NVIDIA's Vulkan drivers): off by default. The inputs are
    /// rounded to f16 (11 significant bits, largest finite value 65,504; a relative error of up to
    /// 2^-11 ≈ 4.9e-4 per input) and the products accumulate in f32, so a result is off by about
    /// 1e-3 of the sum of `|a_ik * b_kj|`, not float32's 1e-7: outside the goldens' tolerances,
    /// hence opt-in. Values past 65,504 become infinite. Where the adapter offers f32 inputs,
    /// those are used whatever this says; where it offers none, it changes nothing.
    pub allow_f16_matmul: bool,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            per_process_gpu_memory_fraction: 1.0,
            memory_limit_bytes: None,
            adapter_memory_bytes: None,
            allow_growth: true,
            adapter: None,
            visible_device_list: String::new(),
            virtual_devices: Vec::new(),
            allow_f16_matmul: false,
        }
    }
}

/// The GPUs made from one visible adapter, after TF's `VirtualDevices`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VirtualDevices {
    /// One entry per GPU: its memory budget in bytes, or `None` for the session's budget
    /// (`GpuOptions::memory_limit_bytes`, else the fraction of `adapter_memory_bytes`). Empty:
    /// one GPU, as without virtual devices.
    pub memory_limit_bytes: Vec<Option<u64>>,
}

impl VirtualDevices {
    /// `n` GPUs on one adapter, each with the session's budget.
    pub fn split(n: usize) -> VirtualDevices {
        VirtualDevices { memory_limit_bytes: vec![None; n] }
    }
}

/// One device of a session, after TF's `DeviceAttributes` (what `Session.list_devices()`
/// returns).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceAttributes {
    /// TF's full name, e.g. `/job:localhost/replica:0/task:0/device:GPU:1`.
    pub name: String,
    /// `CPU` or `GPU`.
    pub device_type: String,
    /// The device's memory budget in bytes, if it has one.
    pub memory_limit_bytes: Option<u64>,
    /// For a GPU, its adapter and which device of the adapter it is:
    /// `#0 llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan, Cpu) device 1`.
    pub description: String,
}

/// How much a run records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TraceLevel {
    /// Nothing.
    #[default]
    NoTrace,
    /// Per-node step stats.
    FullTrace,
}

/// Options for one run, after TF's `RunOptions`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunOptions {
    /// What the run records into its metadata.
    pub trace_level: TraceLevel,
    /// Fail with `DeadlineExceeded` when the run takes longer.
    pub timeout: Option<Duration>,
}

/// One node's execution record.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeStats {
    /// Node name.
    pub name: String,
    /// Op type.
    pub op: String,
    /// Full device name, e.g. `/job:localhost/replica:0/task:0/device:CPU:0`.
    pub device: String,
    /// Start, in microseconds since the run began.
    pub start_us: f64,
    /// Duration in microseconds.
    pub duration_us: f64,
    /// For a fused step (`op` `_FusedElementwise`, `_FusedConv2D`, ...), the nodes it ran
    /// besides `name`, in execution order; empty otherwise.
    pub fused_nodes: Vec<String>,
}

/// Bytes one device moved in a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransferBytes {
    /// Copied from the host to the device.
    pub uploaded: u64,
    /// Read back from the device.
    pub downloaded: u64,
}

/// What a run recorded, after TF's `RunMetadata`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunMetadata {
    /// Per-node stats, in execution order (with `TraceLevel::FullTrace`).
    pub step_stats: Vec<NodeStats>,
    /// Bytes this run copied from the host to the GPU.
    pub bytes_uploaded: u64,
    /// Bytes this run read back from the GPU.
    pub bytes_downloaded: u64,
    /// The same two figures per GPU, by full device name (GPUs that moved nothing are left
    /// out). A copy from one GPU to another counts as a download from the one and an upload
    /// to the other.
    pub gpu_bytes: BTreeMap<String, TransferBytes>,
    /// Bytes this run copied from one GPU to another (through the host: `MemcpyDtoD` steps).
    pub bytes_between_gpus: u64,
    /// The run's partition: the nodes (and transfers) of its plan on each device, in order.
    pub partition: BTreeMap<String, Vec<String>>,
    /// Whether the GPU nodes' step stats are their kernels' times from GPU timestamp queries
    /// (start on the host timeline from the submit on, duration the kernels' sum); otherwise
    /// they are recording times and the GPU's work shows as one `gpu_submit` record.
    pub gpu_kernel_timestamps: bool,
    /// The most bytes held at once during the run, per device: the session's GPU buffers
    /// (variables, constants and intermediates), and the host values of the run.
    pub peak_bytes: BTreeMap<String, u64>,
}

impl RunMetadata {
    /// The executed nodes grouped by device (the run's partition), in execution order.
    pub fn nodes_by_device(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for s in &self.step_stats {
            out.entry(s.device.clone()).or_default().push(s.name.clone());
        }
        out
    }

    /// The step stats as a Chrome trace (JSON for Perfetto or chrome://tracing), like TF's
    /// timeline: one process per device, one complete event per node.
    pub fn to_chrome_trace(&self) -> String {
        let devices: Vec<&str> = {
            let mut d: Vec<&str> = self.step_stats.iter().map(|s| s.device.as_str()).collect();
            d.sort_unstable();
            d.dedup();
            d
        };
        let pid = |device: &str| devices.iter().position(|d| *d == device).unwrap_or(0);
        let mut events: Vec<serde_json::Value> = devices
            .iter()
            .enumerate()
            .map(|(i, d)| serde_json::json!({"name": "process_name", "ph": "M", "pid": i, "args": {"name": d}}))
            .collect();
        events.extend(self.step_stats.iter().map(|s| {
            serde_json::json!({
                "name": s.name, "cat": s.op, "ph": "X", "pid": pid(&s.device), "tid": 0,
                "ts": s.start_us, "dur": s.duration_us, "args": {"name": s.name, "op": s.op},
            })
        }));
        serde_json::json!({ "traceEvents": events }).to_string()
    }
}
