//! Device requests as TF writes them (`/gpu:0`, `/device:CPU:0`, a full
//! `/job:localhost/replica:0/task:0/device:GPU:0`, …): the kind and index they name, and the
//! canonical form placement errors quote.

use super::DeviceKind;
use crate::error::{Error, Result};

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

/// The device index a request names (`/gpu:7` → 7), `None` for none or `*`.
pub(super) fn requested_index(spec: &str) -> Option<usize> {
    let last = spec.rsplit('/').find(|p| !p.is_empty())?;
    let kind = last.strip_prefix("device:").unwrap_or(last);
    kind.split(':').nth(1)?.trim().parse().ok()
}

/// TF's form of a device request in placement errors: `/gpu:7` → `/device:GPU:7`, with the
/// job, replica and task parts kept.
pub(super) fn canonical_request(spec: &str, kind: DeviceKind, index: usize) -> String {
    let prefix: Vec<&str> =
        spec.split('/').filter(|p| !p.is_empty() && p.contains(':') && !is_device_part(p)).collect();
    let kind = match kind {
        DeviceKind::Cpu => "CPU",
        DeviceKind::Gpu => "GPU",
    };
    let mut out: String = prefix.iter().map(|p| format!("/{p}")).collect();
    out.push_str(&format!("/device:{kind}:{index}"));
    out
}

fn is_device_part(p: &str) -> bool {
    let p = p.strip_prefix("device:").unwrap_or(p);
    let name = p.split(':').next().unwrap_or("").to_ascii_uppercase();
    name == "CPU" || name == "GPU"
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

    #[test]
    fn device_indices_and_tf_forms_of_requests() {
        assert_eq!(requested_index("/gpu:7"), Some(7));
        assert_eq!(requested_index("/device:CPU:3"), Some(3));
        assert_eq!(requested_index("/job:localhost/replica:0/task:0/device:GPU:1"), Some(1));
        assert_eq!(requested_index("GPU"), None);
        assert_eq!(canonical_request("/gpu:7", DeviceKind::Gpu, 7), "/device:GPU:7");
        assert_eq!(
            canonical_request("/job:localhost/replica:0/task:0/cpu:3", DeviceKind::Cpu, 3),
            "/job:localhost/replica:0/task:0/device:CPU:3"
        );
    }
}
