//! The harness's outputs: the markdown table, `latest.json` and the SVG chart.

use serde_json::{json, Value};

use crate::measure::{Policy, Timing};
use crate::suite::Rate;

/// The figures of one entry on one device set.
pub struct Row {
    pub name: String,
    pub flops: f64,
    pub bytes: f64,
    pub rate: Rate,
    /// Per policy, in `Policy::ALL` order; `None` where it could not run (no GPU), with the reason.
    pub timings: Vec<(Policy, std::result::Result<Timing, String>)>,
    /// Host memcpy and device copy of the same bytes (median seconds), for memory-bound entries.
    pub memcpy_cpu_s: Option<f64>,
    pub memcpy_gpu_s: Option<f64>,
}

impl Row {
    pub fn timing(&self, p: Policy) -> Option<&Timing> {
        self.timings.iter().find(|(q, _)| *q == p).and_then(|(_, t)| t.as_ref().ok())
    }

    fn speed(&self, seconds: f64) -> String {
        match self.rate {
            Rate::Flops => format!("{:.1} GFLOP/s", self.flops / seconds / 1e9),
            Rate::Bytes => format!("{:.1} GB/s", self.bytes / seconds / 1e9),
            Rate::Time => String::new(),
        }
    }

    /// all-CPU median over all-GPU median: above 1, the GPU is faster.
    pub fn gpu_speedup(&self) -> Option<f64> {
        Some(self.timing(Policy::AllCpu)?.median_s / self.timing(Policy::AllGpu)?.median_s)
    }

    /// The cost model's median over the better of all-CPU and all-GPU.
    pub fn cost_vs_best(&self) -> Option<f64> {
        let best = match (self.timing(Policy::AllCpu), self.timing(Policy::AllGpu)) {
            (Some(c), Some(g)) => c.median_s.min(g.median_s),
            (Some(c), None) => c.median_s,
            _ => return None,
        };
        Some(self.timing(Policy::CostModel)?.median_s / best)
    }
}

/// Milliseconds or microseconds, whichever reads better.
pub fn duration(s: f64) -> String {
    if s < 1e-3 {
        format!("{:.1} µs", s * 1e6)
    } else {
        format!("{:.2} ms", s * 1e3)
    }
}

fn cell(row: &Row, p: Policy) -> String {
    match row.timings.iter().find(|(q, _)| *q == p).map(|(_, t)| t) {
        Some(Ok(t)) => {
            let speed = row.speed(t.median_s);
            let placed = match (p, t.nodes_cpu, t.nodes_gpu) {
                (Policy::CostModel, 0, _) => " (GPU)",
                (Policy::CostModel, _, 0) => " (CPU)",
                (Policy::CostModel, _, _) => " (mixed)",
                _ => "",
            };
            let speed = if speed.is_empty() { String::new() } else { format!(", {speed}") };
            format!("{} / {}{speed}{placed}", duration(t.median_s), duration(t.min_s))
        }
        Some(Err(_)) | None => "–".into(),
    }
}

/// The markdown table: one row per entry, median / min and speed per policy.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| entry | all-CPU | all-GPU | TF default | cost model | GPU/CPU | cost / best | memcpy CPU, GPU |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let ratio = r.gpu_speedup().map_or("–".into(), |x| format!("{x:.2}x"));
        let cost = r.cost_vs_best().map_or("–".into(), |x| format!("{x:.2}"));
        let memcpy = match (r.memcpy_cpu_s, r.memcpy_gpu_s) {
            (Some(c), Some(g)) => format!("{}, {}", duration(c), duration(g)),
            (Some(c), None) => duration(c),
            _ => String::new(),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {ratio} | {cost} | {memcpy} |\n",
            r.name,
            cell(r, Policy::AllCpu),
            cell(r, Policy::AllGpu),
            cell(r, Policy::Tf),
            cell(r, Policy::CostModel)
        ));
    }
    out
}

/// One entry as JSON.
pub fn row_json(r: &Row) -> Value {
    let policies: serde_json::Map<String, Value> = r
        .timings
        .iter()
        .map(|(p, t)| {
            let v = match t {
                Ok(t) => json!({
                    "median_s": t.median_s, "min_s": t.min_s, "runs": t.runs,
                    "gflops": r.flops / t.median_s / 1e9, "gbps": r.bytes / t.median_s / 1e9,
                    "nodes_cpu": t.nodes_cpu, "nodes_gpu": t.nodes_gpu,
                }),
                Err(e) => json!({ "error": e }),
            };
            (p.label().to_string(), v)
        })
        .collect();
    json!({
        "name": r.name, "flops": r.flops, "bytes": r.bytes,
        "rate": match r.rate { Rate::Flops => "GFLOP/s", Rate::Bytes => "GB/s", Rate::Time => "time" },
        "policies": policies,
        "gpu_over_cpu_speedup": r.gpu_speedup(),
        "cost_model_over_best": r.cost_vs_best(),
        "memcpy_cpu_s": r.memcpy_cpu_s, "memcpy_gpu_s": r.memcpy_gpu_s,
    })
}

/// A bar chart of each policy's speed relative to all-CPU (log scale), one group per entry.
pub fn svg(title: &str, rows: &[Row]) -> String {
    const LEFT: f64 = 300.0;
    const WIDTH: f64 = 520.0;
    const BAR: f64 = 9.0;
    let policies = [(Policy::AllGpu, "#d9534f"), (Policy::Tf, "#f0ad4e"), (Policy::CostModel, "#5cb85c")];
    // x axis: log2 of the speedup over all-CPU, from 1/64 to 64.
    let span = 6.0;
    let x = |ratio: f64| LEFT + WIDTH / 2.0 + (ratio.log2().clamp(-span, span) / span) * WIDTH / 2.0;
    let group = BAR * policies.len() as f64 + 8.0;
    let height = 70.0 + group * rows.len() as f64 + 30.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"18\" font-size=\"13\">{}</text>\n\
         <text x=\"10\" y=\"34\">speed relative to all-CPU (log scale; right of the line is faster than the CPU)</text>\n",
        escape(title),
        w = LEFT + WIDTH + 20.0
    );
    for (i, (p, color)) in policies.iter().enumerate() {
        let lx = LEFT + i as f64 * 130.0;
        s.push_str(&format!(
            "<rect x=\"{lx}\" y=\"42\" width=\"10\" height=\"10\" fill=\"{color}\"/><text x=\"{}\" y=\"51\">{}</text>\n",
            lx + 14.0,
            p.label()
        ));
    }
    let top = 62.0;
    for k in -6..=6 {
        let r = 2f64.powi(k);
        let gx = x(r);
        let label = if k >= 0 { format!("{}x", 1 << k) } else { format!("1/{}", 1 << -k) };
        let stroke = if k == 0 { "#000" } else { "#ddd" };
        s.push_str(&format!(
            "<line x1=\"{gx:.1}\" y1=\"{top}\" x2=\"{gx:.1}\" y2=\"{}\" stroke=\"{stroke}\"/><text x=\"{gx:.1}\" y=\"{}\" text-anchor=\"middle\">{label}</text>\n",
            height - 25.0,
            height - 12.0
        ));
    }
    for (i, r) in rows.iter().enumerate() {
        let y0 = top + 4.0 + group * i as f64;
        s.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n",
            LEFT - 6.0,
            y0 + group / 2.0,
            escape(&r.name)
        ));
        let Some(cpu) = r.timing(Policy::AllCpu) else { continue };
        for (j, (p, color)) in policies.iter().enumerate() {
            let Some(t) = r.timing(*p) else { continue };
            let (a, b) = (x(1.0), x(cpu.median_s / t.median_s));
            s.push_str(&format!(
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{}\" fill=\"{color}\"/>\n",
                a.min(b),
                y0 + BAR * j as f64,
                (b - a).abs().max(1.0),
                BAR - 1.0
            ));
        }
    }
    s.push_str("</svg>\n");
    s
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(median_s: f64) -> std::result::Result<Timing, String> {
        Ok(Timing { median_s, min_s: median_s / 2.0, runs: 3, nodes_cpu: 1, nodes_gpu: 0 })
    }

    fn row() -> Row {
        Row {
            name: "matmul <b>".into(),
            flops: 2e9,
            bytes: 12e6,
            rate: Rate::Flops,
            timings: vec![
                (Policy::AllCpu, timing(0.02)),
                (Policy::AllGpu, timing(0.2)),
                (Policy::Tf, Err("no GPU".into())),
                (Policy::CostModel, timing(0.022)),
            ],
            memcpy_cpu_s: None,
            memcpy_gpu_s: None,
        }
    }

    #[test]
    fn ratios_compare_medians() {
        let r = row();
        assert!((r.gpu_speedup().unwrap() - 0.1).abs() < 1e-12);
        assert!((r.cost_vs_best().unwrap() - 1.1).abs() < 1e-12);
        assert_eq!(crate::measure::median(&mut [3.0, 1.0, 2.0, 10.0]), 2.5);
    }

    #[test]
    fn the_table_shows_median_min_speed_and_placement() {
        let t = table(&[row()]);
        let line = t.lines().nth(2).unwrap();
        assert!(line.starts_with("| matmul <b> | 20.00 ms / 10.00 ms, 100.0 GFLOP/s | 200.00 ms"), "{line}");
        assert!(line.contains("| – | 22.00 ms / 11.00 ms, 90.9 GFLOP/s (CPU) | 0.10x | 1.10 |"), "{line}");
        let svg = svg("t", &[row()]);
        assert!(svg.contains("matmul &lt;b&gt;") && svg.ends_with("</svg>\n"));
    }
}
