//! The GPUs of a session, from its config: which adapters are visible
//! (`GpuOptions::visible_device_list`), how many GPUs each makes
//! (`GpuOptions::virtual_devices`), capped by `device_count {"GPU": n}`, each opened as its own
//! wgpu device with its memory budget and what placement knows of it. The rules and messages
//! are TF's (`ParseVisibleDeviceList`, `VerifyVirtualDeviceSettings`).

use std::sync::Arc;

use super::{calibrate, ConfigProto};
use crate::error::{Code, Error, Result};
use crate::placement::{CostModel, GpuTarget, PlacementPolicy, MAX_GPUS};
use crate::runtime::gpu::context::{adapter_count, GpuContext};
use crate::runtime::gpu::variant::Target;

/// One GPU of a session: its device and what placement knows of it.
pub(super) struct SessionGpu {
    pub(super) ctx: Arc<GpuContext>,
    pub(super) target: GpuTarget,
}

/// The session's GPUs, `GPU:0` first; none for a CPU session (`GPU: 0`, or no adapter).
pub(super) fn open_gpus(config: &ConfigProto) -> Result<Vec<SessionGpu>> {
    let cap = config.devices("GPU").unwrap_or(usize::MAX);
    if cap == 0 {
        return Ok(Vec::new());
    }
    let options = &config.gpu_options;
    if !(options.per_process_gpu_memory_fraction > 0.0 && options.per_process_gpu_memory_fraction <= 1.0) {
        return Err(Error::invalid_argument(format!(
            "per_process_gpu_memory_fraction must be in (0, 1], got {}",
            options.per_process_gpu_memory_fraction
        )));
    }
    let list = options.visible_device_list.trim();
    // The default adapter: `GpuOptions::adapter`, `WGFLOW_ADAPTER`, else the best one.
    let default = if list.is_empty() {
        match GpuContext::get(options.adapter.as_deref()) {
            Ok(ctx) => Some(ctx),
            Err(e) if e.code == Code::NotFound => {
                log::info!("no GPU adapter ({}): the session runs on the CPU", e.message);
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    let adapters = match &default {
        Some(ctx) => vec![ctx.index()],
        None => {
            let count = adapter_count();
            if count == 0 {
                log::info!("no GPU adapter: the session runs on the CPU");
                return Ok(Vec::new());
            }
            visible_adapters(list, count)?
        }
    };
    let adapters = &adapters[..adapters.len().min(cap)];
    let budget = options.memory_limit_bytes.or_else(|| {
        options.adapter_memory_bytes.map(|total| (total as f64 * options.per_process_gpu_memory_fraction) as u64)
    });
    let mut gpus = Vec::new();
    for (adapter, budget) in split(adapters, &options.virtual_devices, budget)? {
        if gpus.len() == MAX_GPUS {
            return Err(Error::invalid_argument(format!("a session has at most {MAX_GPUS} GPUs")));
        }
        let ordinal = gpus.iter().filter(|g: &&SessionGpu| g.ctx.index() == adapter).count();
        let ctx = match &default {
            Some(ctx) if ctx.index() == adapter && ordinal == 0 => ctx.clone(),
            _ => GpuContext::on_adapter(adapter, ordinal)?,
        };
        let model = match config.placement_policy {
            PlacementPolicy::CostModel { calibrate: true } => calibrate::model(&ctx)?,
            _ => CostModel::for_adapter(ctx.info().device_type),
        };
        let target = GpuTarget {
            max_binding: ctx.limits().max_storage_buffer_binding_size,
            budget,
            model,
            lowering: Some(Target::of(&ctx, options.allow_f16_matmul)),
        };
        gpus.push(SessionGpu { ctx, target });
    }
    Ok(gpus)
}

/// The adapters `list` names (TF's `visible_device_list`), among `count`.
fn visible_adapters(list: &str, count: usize) -> Result<Vec<usize>> {
    let mut out: Vec<usize> = Vec::new();
    for entry in list.split(',') {
        let id: usize = entry.trim().parse().map_err(|_| {
            Error::invalid_argument(format!(
                "Could not parse entry in 'visible_device_list': '{entry}'. visible_device_list = {list}"
            ))
        })?;
        if id >= count {
            return Err(Error::invalid_argument(format!(
                "'visible_device_list' listed an invalid Device id '{id}' but visible device count is {count}"
            )));
        }
        out.push(id);
    }
    let mut unique = out.clone();
    unique.sort_unstable();
    unique.dedup();
    if unique.len() != out.len() {
        return Err(Error::invalid_argument(format!("visible_device_list contained a duplicate entry: {list}")));
    }
    Ok(out)
}

/// The GPUs made from `adapters` with `virtual_devices`: (adapter, memory budget) in ordinal
/// order; `budget` is the session's.
fn split(
    adapters: &[usize],
    virtual_devices: &[super::config::VirtualDevices],
    budget: Option<u64>,
) -> Result<Vec<(usize, Option<u64>)>> {
    if virtual_devices.is_empty() {
        return Ok(adapters.iter().map(|&a| (a, budget)).collect());
    }
    if virtual_devices.len() != adapters.len() {
        return Err(Error::invalid_argument(format!(
            "The number of GPUs in visible_device_list doesn't match the number of elements in the virtual_devices \
             list. #GPUs in visible_device_list: {} virtual_devices.size(): {}",
            adapters.len(),
            virtual_devices.len()
        )));
    }
    let mut out = Vec::new();
    for (&adapter, v) in adapters.iter().zip(virtual_devices) {
        if v.memory_limit_bytes.is_empty() {
            out.push((adapter, budget));
        }
        out.extend(v.memory_limit_bytes.iter().map(|limit| (adapter, limit.or(budget))));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::config::VirtualDevices;
    use super::*;

    #[test]
    fn visible_device_lists_as_tf_reads_them() {
        assert_eq!(visible_adapters("1,0", 2).unwrap(), vec![1, 0]);
        assert_eq!(visible_adapters(" 0 ", 1).unwrap(), vec![0]);
        let e = visible_adapters("0,1", 1).unwrap_err();
        assert_eq!(e.message, "'visible_device_list' listed an invalid Device id '1' but visible device count is 1");
        let e = visible_adapters("0,0", 2).unwrap_err();
        assert_eq!(e.message, "visible_device_list contained a duplicate entry: 0,0");
        let e = visible_adapters("0,x", 2).unwrap_err();
        assert_eq!(e.message, "Could not parse entry in 'visible_device_list': 'x'. visible_device_list = 0,x");
    }

    #[test]
    fn virtual_devices_split_adapters_into_gpus_with_their_budgets() {
        assert_eq!(split(&[0, 1], &[], Some(5)).unwrap(), vec![(0, Some(5)), (1, Some(5))]);
        let v = [VirtualDevices { memory_limit_bytes: vec![Some(7), None] }];
        assert_eq!(split(&[0], &v, Some(5)).unwrap(), vec![(0, Some(7)), (0, Some(5))]);
        assert_eq!(split(&[0], &[VirtualDevices::default()], None).unwrap(), vec![(0, None)]);
        let e = split(&[0], &[VirtualDevices::split(1), VirtualDevices::split(1)], None).unwrap_err();
        assert!(e.message.starts_with("The number of GPUs in visible_device_list doesn't match"), "{e}");
    }
}
