//! A description of the process's adapter for people and reports: name, driver, subgroup
//! sizes, the features wgflow's kernels use, the limits that size them, and the cooperative
//! matrix configurations the adapter offers (what `scripts/device-bench.sh` prints first).

use std::fmt::Write;

use super::context::GpuContext;

impl GpuContext {
    /// A multi-line report of the adapter (see the module doc).
    pub fn report(&self) -> String {
        let (info, l, f) = (self.info(), self.limits(), self.adapter_features());
        let mut s = String::new();
        let _ = writeln!(s, "adapter: {}", self.description());
        let _ = writeln!(
            s,
            "driver: {} {} (vendor 0x{:04x}, device 0x{:04x})",
            info.driver, info.driver_info, info.vendor, info.device
        );
        let _ = writeln!(s, "subgroup sizes: {} to {}", info.subgroup_min_size, info.subgroup_max_size);
        let named = [
            ("SUBGROUP", wgpu::Features::SUBGROUP),
            ("SHADER_F16", wgpu::Features::SHADER_F16),
            ("TIMESTAMP_QUERY", wgpu::Features::TIMESTAMP_QUERY),
            ("EXPERIMENTAL_COOPERATIVE_MATRIX", wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX),
        ];
        let has: Vec<String> =
            named.iter().map(|(n, bit)| format!("{n} {}", if f.contains(*bit) { "yes" } else { "no" })).collect();
        let _ = writeln!(s, "features: {}", has.join(", "));
        let _ = writeln!(
            s,
            "limits: workgroup {}x{}x{} (at most {} invocations), workgroup memory {} bytes, storage binding {} bytes, buffer {} bytes, {} storage buffers per stage",
            l.max_compute_workgroup_size_x,
            l.max_compute_workgroup_size_y,
            l.max_compute_workgroup_size_z,
            l.max_compute_invocations_per_workgroup,
            l.max_compute_workgroup_storage_size,
            l.max_storage_buffer_binding_size,
            l.max_buffer_size,
            l.max_storage_buffers_per_shader_stage
        );
        let coop = self.cooperative_matrices();
        if coop.is_empty() {
            let _ = writeln!(s, "cooperative matrices: none offered");
        }
        for c in coop {
            let _ = writeln!(
                s,
                "cooperative matrix: {}x{}x{} (M x N x K), A/B {:?}, C/result {:?}{}",
                c.m_size,
                c.n_size,
                c.k_size,
                c.ab_type,
                c.cr_type,
                if c.saturating_accumulation { ", saturating" } else { "" }
            );
        }
        let k = super::variant::kernels_for(self);
        let t = |t: super::variant::RbTile| format!("{}x{}x{} ({}x{} per thread)", t.bm, t.bn, t.bk, t.tm, t.tn);
        let _ = writeln!(
            s,
            "matmul/conv2d kernels: {} (register-blocked tiles {} and {}{})",
            k.variant.as_str(),
            t(k.large),
            t(k.small),
            k.coop.map_or(String::new(), |c| format!(
                "; cooperative {}x{} tiles, {} inputs",
                c.side,
                c.side,
                if c.f16 { "f16" } else { "f32" }
            ))
        );
        s
    }
}
