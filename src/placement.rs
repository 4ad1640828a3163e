//! Device placement: which device each node of a plan runs on, after TF's placer.
//!
//! The rules so far: an explicit device request (`/cpu:0`, `/device:GPU:0`, a full
//! `/job:localhost/replica:0/task:0/device:CPU:0`, …) is honoured; a node without one goes to
//! the GPU when the session has one. A GPU request without a GPU falls back to the CPU under
//! soft placement and fails without it. Variables, their assignments and their readers stay
//! with the session's variable store (the GPU in a GPU session), as TF colocates them.

use crate::error::{Error, Result};
use crate::ops::OpKind;

/// A device a node can run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// The host CPU.
    Cpu,
    /// The session's GPU adapter.
    Gpu,
}

impl DeviceKind {
    /// TF's full device name, e.g. `/job:localhost/replica:0/task:0/device:GPU:0`.
    pub fn full_name(self) -> &'static str {
        match self {
            DeviceKind::Cpu => "/job:localhost/replica:0/task:0/device:CPU:0",
            DeviceKind::Gpu => "/job:localhost/replica:0/task:0/device:GPU:0",
        }
    }
}

/// The device kind a request names, `None` for no request. Accepts TF's forms, partial
/// (`/gpu:0`, `/device:CPU:0`, `GPU`) or full (`/job:localhost/replica:0/task:0/device:GPU:0`).
pub fn requested(spec: &str) -> Result<Option<DeviceKind>> {
    let last = spec.rsplit('/').find(|p| !p.is_empty()).unwrap_or("");
    if spec.trim().is_empty() {
        return Ok(None);
    }
    let kind = last.strip_prefix("device:").unwrap_or(last);
    let name = kind.split(':').next().unwrap_or("").to_ascii_uppercase();
    match name.as_str() {
        "CPU" => Ok(Some(DeviceKind::Cpu)),
        "GPU" => Ok(Some(DeviceKind::Gpu)),
        _ => Err(Error::invalid_argument(format!("Malformed device specification '{spec}'"))),
    }
}

/// The device of one node. `gpu` says whether the session has a GPU.
pub(crate) fn place(name: &str, op: &OpKind, device: &str, gpu: bool, soft: bool) -> Result<DeviceKind> {
    let stateful = matches!(
        op,
        OpKind::Variable(_) | OpKind::Assign(_) | OpKind::IsVariableInitialized | OpKind::ReportUninitialized
    );
    let default = if gpu { DeviceKind::Gpu } else { DeviceKind::Cpu };
    if stateful {
        return Ok(default);
    }
    match requested(device).map_err(|e| e.at(name))? {
        Some(DeviceKind::Cpu) => Ok(DeviceKind::Cpu),
        Some(DeviceKind::Gpu) if gpu => Ok(DeviceKind::Gpu),
        Some(DeviceKind::Gpu) if soft => Ok(DeviceKind::Cpu),
        Some(DeviceKind::Gpu) => Err(Error::invalid_argument(format!(
            "Cannot assign a device for operation {name}: {{{{node {name}}}}} was explicitly assigned to {device} but \
             available devices are [ {} ]. Make sure the device specification refers to a valid device.",
            DeviceKind::Cpu.full_name()
        ))
        .at(name)),
        None => Ok(default),
    }
}

/// TF's placement log line: `conv: (Conv2D): /job:localhost/replica:0/task:0/device:GPU:0`.
pub(crate) fn log_line(name: &str, op_type: &str, device: DeviceKind) -> String {
    format!("{name}: ({op_type}): {}", device.full_name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_requests_in_tf_forms() {
        for (spec, want) in [
            ("", None),
            ("/cpu:0", Some(DeviceKind::Cpu)),
            ("/device:CPU:0", Some(DeviceKind::Cpu)),
            ("/gpu:0", Some(DeviceKind::Gpu)),
            ("/device:GPU:0", Some(DeviceKind::Gpu)),
            ("/job:localhost/replica:0/task:0/device:GPU:0", Some(DeviceKind::Gpu)),
            ("GPU", Some(DeviceKind::Gpu)),
        ] {
            assert_eq!(requested(spec).unwrap(), want, "{spec}");
        }
        assert!(requested("/tpu:0").is_err());
    }
}
