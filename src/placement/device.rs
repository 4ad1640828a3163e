//! The devices of a session: the kind of a device ([`DeviceKind`]) and a device itself with its
//! ordinal ([`DeviceId`], TF's `/device:GPU:1`), with TF's full names.

/// A kind of device a node can run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeviceKind {
    /// The host CPU.
    Cpu,
    /// A GPU of the session.
    Gpu,
}

impl DeviceKind {
    /// TF's full name of the first device of this kind, e.g.
    /// `/job:localhost/replica:0/task:0/device:GPU:0`.
    pub fn full_name(self) -> &'static str {
        DeviceId { kind: self, index: 0 }.full_name()
    }

    /// TF's name of the kind: `CPU` or `GPU`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Cpu => "CPU",
            DeviceKind::Gpu => "GPU",
        }
    }
}

/// The most GPUs a session can have.
pub const MAX_GPUS: usize = 16;

/// TF's full names of the GPUs, by ordinal.
const GPU_NAMES: [&str; MAX_GPUS] = [
    "/job:localhost/replica:0/task:0/device:GPU:0",
    "/job:localhost/replica:0/task:0/device:GPU:1",
    "/job:localhost/replica:0/task:0/device:GPU:2",
    "/job:localhost/replica:0/task:0/device:GPU:3",
    "/job:localhost/replica:0/task:0/device:GPU:4",
    "/job:localhost/replica:0/task:0/device:GPU:5",
    "/job:localhost/replica:0/task:0/device:GPU:6",
    "/job:localhost/replica:0/task:0/device:GPU:7",
    "/job:localhost/replica:0/task:0/device:GPU:8",
    "/job:localhost/replica:0/task:0/device:GPU:9",
    "/job:localhost/replica:0/task:0/device:GPU:10",
    "/job:localhost/replica:0/task:0/device:GPU:11",
    "/job:localhost/replica:0/task:0/device:GPU:12",
    "/job:localhost/replica:0/task:0/device:GPU:13",
    "/job:localhost/replica:0/task:0/device:GPU:14",
    "/job:localhost/replica:0/task:0/device:GPU:15",
];

/// One device of a session: the CPU (`CPU:0`) or one of its GPUs by ordinal (`GPU:0`,
/// `GPU:1`, …, in the order of `GpuOptions::visible_device_list` and its virtual devices).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId {
    /// CPU or GPU.
    pub kind: DeviceKind,
    /// The ordinal among the session's devices of this kind (always 0 for the CPU); below
    /// [`MAX_GPUS`].
    pub index: u8,
}

impl DeviceId {
    /// The host CPU, `CPU:0`.
    pub const CPU: DeviceId = DeviceId { kind: DeviceKind::Cpu, index: 0 };

    /// GPU `index` of the session (`GPU:<index>`).
    pub const fn gpu(index: u8) -> DeviceId {
        DeviceId { kind: DeviceKind::Gpu, index }
    }

    /// Whether this is one of the GPUs.
    pub fn is_gpu(self) -> bool {
        self.kind == DeviceKind::Gpu
    }

    /// The GPU ordinal as an index into the session's GPUs, `None` for the CPU.
    pub fn gpu_index(self) -> Option<usize> {
        self.is_gpu().then_some(usize::from(self.index))
    }

    /// TF's full device name, e.g. `/job:localhost/replica:0/task:0/device:GPU:1`.
    pub fn full_name(self) -> &'static str {
        match self.kind {
            DeviceKind::Cpu => "/job:localhost/replica:0/task:0/device:CPU:0",
            DeviceKind::Gpu => GPU_NAMES.get(usize::from(self.index)).copied().unwrap_or("/device:GPU:?"),
        }
    }
}

impl std::fmt::Display for DeviceId {
    /// The short form, `GPU:1`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_names_carry_the_ordinal() {
        assert_eq!(DeviceId::CPU.full_name(), "/job:localhost/replica:0/task:0/device:CPU:0");
        assert_eq!(DeviceKind::Gpu.full_name(), "/job:localhost/replica:0/task:0/device:GPU:0");
        for i in 0..MAX_GPUS {
            let d = DeviceId::gpu(i as u8);
            assert_eq!(d.full_name(), format!("/job:localhost/replica:0/task:0/device:GPU:{i}"));
            assert_eq!(d.to_string(), format!("GPU:{i}"));
            assert_eq!(d.gpu_index(), Some(i));
        }
        assert_eq!(DeviceId::CPU.gpu_index(), None);
    }
}
