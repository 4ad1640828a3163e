//! Compute pipelines, cached by their WGSL text, with explicit bind group layouts:
//! binding 0 the uniform params, bindings 1..=n read-only storage inputs, n+1 the output, and
//! n+2 the error flag for kernels that check their input (see `flags.rs`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::context::GpuContext;
use super::lock;
use crate::error::{Error, Result};

/// A compiled kernel and what dispatching it needs.
pub struct Kernel {
    pub(crate) pipeline: wgpu::ComputePipeline,
    pub(crate) bind_layout: Arc<wgpu::BindGroupLayout>,
    /// The number of read-only storage inputs (bindings 1..=inputs).
    pub inputs: usize,
    /// `@workgroup_size` of the entry point.
    pub workgroup_size: [u32; 3],
    /// The size of the uniform params struct at binding 0.
    pub params_bytes: u64,
    /// Whether the kernel binds an error flag after its output.
    pub error_flag: bool,
}

/// The bind group layout and pipeline layout shared by kernels with the same input count
/// (and error flag or not).
type Layouts = (Arc<wgpu::BindGroupLayout>, Arc<wgpu::PipelineLayout>);

/// Pipelines keyed by the WGSL source itself (the map hashes the text and compares it in
/// full, so a key cannot drift from its shader), and bind group layouts by input count.
#[derive(Default)]
pub(crate) struct PipelineCache {
    kernels: std::sync::Mutex<HashMap<String, Arc<Kernel>>>,
    layouts: std::sync::Mutex<HashMap<(usize, bool), Layouts>>,
    compiled: AtomicU64,
}

#[cfg(feature = "test-hooks")]
impl PipelineCache {
    /// Pipelines compiled so far (cache misses).
    pub(crate) fn compiled(&self) -> u64 {
        self.compiled.load(Ordering::Relaxed)
    }
}

fn storage(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

/// What dispatching a kernel needs to know about its WGSL, from naga's parse (which also gives
/// WGSL errors with line and column).
struct Reflection {
    workgroup_size: [u32; 3],
    params_bytes: u64,
    /// The binding of the error flag, if the kernel declares one.
    error_binding: Option<u32>,
}

fn reflect(wgsl: &str) -> Result<Reflection> {
    let module = naga::front::wgsl::parse_str(wgsl)
        .map_err(|e| Error::internal(format!("WGSL does not compile:\n{}", e.emit_to_string(wgsl))))?;
    let mut compute = module.entry_points.iter().filter(|e| e.stage == naga::ShaderStage::Compute);
    let workgroup_size = match (compute.next(), compute.next()) {
        (Some(entry), None) => entry.workgroup_size,
        _ => return Err(Error::internal("a wgflow kernel must have exactly one @compute entry point")),
    };
    let params_bytes = module
        .global_variables
        .iter()
        .find(|(_, v)| v.binding.as_ref().is_some_and(|b| b.group == 0 && b.binding == 0))
        .map_or(0, |(_, v)| u64::from(module.types[v.ty].inner.size(module.to_ctx())));
    let error_binding = module
        .global_variables
        .iter()
        .find(|(_, v)| v.name.as_deref() == Some(super::flags::FLAG_GLOBAL))
        .and_then(|(_, v)| v.binding.as_ref().map(|b| b.binding));
    Ok(Reflection { workgroup_size, params_bytes, error_binding })
}

impl GpuContext {
    /// The explicit layouts for kernels with `inputs` storage inputs, and an error flag.
    fn layouts(&self, inputs: usize, error_flag: bool) -> Result<Layouts> {
        let mut layouts = lock(&self.pipelines.layouts);
        if let Some(l) = layouts.get(&(inputs, error_flag)) {
            return Ok(l.clone());
        }
        let n = u32::try_from(inputs).map_err(|_| Error::internal("too many kernel inputs"))?;
        let mut entries = vec![wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        }];
        entries.extend((1..=n).map(|b| storage(b, true)));
        entries.push(storage(n + 1, false));
        if error_flag {
            entries.push(storage(n + 2, false));
        }
        let made = self.scoped(&format!("creating the bind group layout for {inputs} inputs"), || {
            let bind = self.device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("wgflow kernel bindings"),
                entries: &entries,
            });
            let pipeline = self.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some("wgflow kernel layout"),
                bind_group_layouts: &[Some(&bind)],
                immediate_size: 0,
            });
            (Arc::new(bind), Arc::new(pipeline))
        })?;
        layouts.insert((inputs, error_flag), made.clone());
        Ok(made)
    }

    /// The kernel for `wgsl` with `inputs` storage inputs, compiling it on first use. The flag
    /// says whether this call compiled it. Concurrent callers of the same text compile it once.
    pub fn kernel(&self, wgsl: &str, inputs: usize) -> Result<(Arc<Kernel>, bool)> {
        let mut kernels = lock(&self.pipelines.kernels);
        if let Some(k) = kernels.get(wgsl) {
            if k.inputs != inputs {
                return Err(Error::internal(format!(
                    "a kernel compiled for {} inputs was dispatched with {inputs}",
                    k.inputs
                )));
            }
            return Ok((k.clone(), false));
        }
        let Reflection { workgroup_size, params_bytes, error_binding } = reflect(wgsl)?;
        let error_flag = error_binding.is_some();
        if error_binding.is_some_and(|b| b as usize != inputs + 2) {
            return Err(Error::internal(format!(
                "a kernel of {inputs} inputs must bind its error flag at {}, not {error_binding:?}",
                inputs + 2
            )));
        }
        let (bind_layout, layout) = self.layouts(inputs, error_flag)?;
        let pipeline = self.scoped("creating a compute pipeline", || {
            let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("wgflow kernel"),
                source: wgpu::ShaderSource::Wgsl(Cow::Borrowed(wgsl)),
            });
            self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some("wgflow kernel"),
                layout: Some(&layout),
                module: &module,
                entry_point: None,
                compilation_options: wgpu::PipelineCompilationOptions::default(),
                cache: None,
            })
        })?;
        let kernel = Arc::new(Kernel { pipeline, bind_layout, inputs, workgroup_size, params_bytes, error_flag });
        kernels.insert(wgsl.to_string(), kernel.clone());
        self.pipelines.compiled.fetch_add(1, Ordering::Relaxed);
        Ok((kernel, true))
    }
}
