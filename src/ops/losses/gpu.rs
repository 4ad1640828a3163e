//! GPU lowerings of the cross-entropy losses (float32): one thread per row for short rows
//! (shaders/xent.wgsl), a workgroup per row for longer ones (xent_wg.wgsl), and workgroup
//! trees then one pass per element for rows past that kernel's loop budget (xent_rows.wgsl). Each template serves dense and sparse labels through its placeholders;
//! the sparse kernels check their labels through the error flag.

use super::Xent;
use crate::error::Result;
use crate::ops::gpu_passes::{tree_passes, Axes, Fold};
use crate::ops::kernel::{template_wgsl, word};
use crate::ops::reduce::combine::row_combines;
use crate::ops::{cached_wgsl, wgsl, GpuLowering, Pass, PassBuf, Passes};
use crate::runtime::gpu::flags::error_flag_wgsl;
use crate::tensor::DType;

impl Xent {
    /// The lowering for rows too long for one thread: the rows' maxima and sums of exponentials
    /// as workgroup trees, then one thread per element (the backprop, or the dense loss's terms,
    /// which a last tree sums) or per row (the sparse loss).
    pub(super) fn long_rows(&self, batch: usize, classes: usize) -> Result<GpuLowering> {
        let out = if self.grad { vec![batch, classes] } else { vec![batch] };
        let mut p = Passes::new(DType::F32, out);
        let axes = Axes { kept: (vec![batch], vec![classes]), red: (vec![classes], vec![1]) };
        let (max, sum) = (p.temp(DType::F32, vec![batch]), p.temp(DType::F32, vec![batch]));
        tree_passes(&mut p, &Fold::SOFTMAX_MAX, &axes, PassBuf::Input(0), None, max)?;
        tree_passes(&mut p, &Fold::SUM_F32, &axes, PassBuf::Input(0), Some(max), sum)?;
        let wgsl = xent_rows_wgsl(self.sparse)?;
        // The dense loss: its terms into a temporary, summed per row below.
        let terms = (!self.sparse && !self.grad).then(|| p.temp(DType::F32, vec![batch, classes]));
        let threads = if self.sparse && !self.grad { batch } else { batch * classes };
        p.passes.push(Pass {
            wgsl: wgsl.into(),
            uniforms: vec![word(classes)?, u32::from(self.grad), 0],
            invocations: u64::from(word(threads)?),
            workgroup_size: 64,
            inputs: vec![PassBuf::Input(0), PassBuf::Input(1), max, sum],
            output: terms.unwrap_or(PassBuf::Out),
        });
        if let Some(terms) = terms {
            tree_passes(&mut p, &Fold::SUM_F32, &axes, terms, None, PassBuf::Out)?;
        }
        Ok(p.lowering())
    }
}

/// The dense labels' code for the placeholders of shaders/xent.wgsl.
const DENSE: [(&str, &str); 4] = [
    ("LABEL_ELEM", "f32"),
    ("LABEL_CHECK", ""),
    ("BACKPROP", "exp_tf(logits[base + j] - m) / sum - labels[base + j]"),
    (
        "LOSS",
        "let lse = log_tf(sum);
    var loss = 0.0;
    for (var j = 0u; j < params.classes; j = j + 1u) {
        loss = loss + labels[base + j] * (lse - (logits[base + j] - m));
    }
    out[row] = loss;",
    ),
];

/// The sparse labels' code for the placeholders of shaders/xent.wgsl: the label check, and
/// NaN for a row whose label is out of range.
const SPARSE: [(&str, &str); 4] = [
    ("LABEL_ELEM", "i32"),
    (
        "LABEL_CHECK",
        "let label = labels[row];
    let valid = label >= 0 && u32(label) < params.classes;
    if (!valid) {
        raise_label_error(label, params.classes);
    }",
    ),
    ("BACKPROP", "select(nan_f32(), exp_tf(logits[base + j] - m) / sum - select(0.0, 1.0, i32(j) == label), valid)"),
    (
        "LOSS",
        "if (!valid) {
        out[row] = nan_f32();
        return;
    }
    out[row] = log_tf(sum) - (logits[base + u32(label)] - m);",
    ),
];

/// The dense labels' code for the placeholders of shaders/xent_rows.wgsl: one thread per
/// element of the logits.
const ROWS_DENSE: [(&str, &str); 4] = [
    ("LABEL_ELEM", "f32"),
    ("LABEL_CHECK", "let row = i / params.classes;"),
    ("BACKPROP", "exp_tf(logits[i] - m) / sum - labels[i]"),
    ("LOSS", "out[i] = labels[i] * (log_tf(sum) - (logits[i] - m));"),
];

/// The sparse labels' code for the placeholders of shaders/xent_rows.wgsl: one thread per
/// element for the backprop, per row for the loss; the first thread of a row checks its label,
/// and a row whose label is out of range is NaN.
const ROWS_SPARSE: [(&str, &str); 4] = [
    ("LABEL_ELEM", "i32"),
    (
        "LABEL_CHECK",
        "let row = select(i, i / params.classes, params.grad != 0u);
    let label = labels[row];
    let valid = label >= 0 && u32(label) < params.classes;
    let first = params.grad == 0u || i % params.classes == 0u;
    if (!valid && first) {
        raise_label_error(label, params.classes);
    }",
    ),
    (
        "BACKPROP",
        "select(nan_f32(), exp_tf(logits[i] - m) / sum - select(0.0, 1.0, i32(i % params.classes) == label), valid)",
    ),
    (
        "LOSS",
        "if (!valid) {
        out[row] = nan_f32();
        return;
    }
    out[row] = log_tf(sum) - (logits[row * params.classes + u32(label)] - m);",
    ),
];

/// The workgroup-per-row kernel's code for dense labels (shaders/xent_wg.wgsl); its LOSS sums
/// the terms with the workgroup combine COMBINE_SUM.
const WG_DENSE_LOSS: &str = "let lse = log_tf(sum);
    acc = 0.0;
    for (var j = lid; j < params.classes; j = j + WG_SIZE) {
        acc = acc + labels[base + j] * (lse - (logits[base + j] - m));
    }
COMBINE_SUM
    if (lid == 0u) {
        out[row] = acc;
    }";
/// ... and for sparse labels: thread 0 checks the label and writes the loss.
const WG_SPARSE_CHECK: &str = "let label = labels[row];
    let valid = label >= 0 && u32(label) < params.classes;
    if (!valid && lid == 0u) {
        raise_label_error(label, params.classes);
    }";
const WG_SPARSE_LOSS: &str = "if (lid == 0u) {
        if (valid) {
            out[row] = log_tf(sum) - (logits[base + u32(label)] - m);
        } else {
            out[row] = nan_f32();
        }
    }";

/// `template` (a loss kernel named `name`) with the dense or the sparse labels' `parts`: the
/// sparse one (`flag` given: its output's binding) gets the error flag its label check raises,
/// bound after its output.
fn with_labels(name: &str, template: &str, parts: &[(&str, &str)], flag: Option<u32>) -> Result<&'static str> {
    let Some(binding) = flag else {
        return template_wgsl(&format!("{name} dense"), template, parts);
    };
    let body = template_wgsl(&format!("{name} sparse"), template, parts)?;
    cached_wgsl(format!("{name} sparse checked"), || Ok(format!("{body}\n{}", error_flag_wgsl(binding))))
}

/// The one-thread-per-row cross-entropy kernel for dense or `sparse` labels (the sparse one's
/// error flag after its output, at binding 4).
pub(crate) fn xent_wgsl(sparse: bool) -> Result<&'static str> {
    match sparse {
        false => with_labels("xent", wgsl::XENT, &DENSE, None),
        true => with_labels("xent", wgsl::XENT, &SPARSE, Some(3)),
    }
}

/// The cross-entropy's last pass over long rows for dense or `sparse` labels (the sparse one's
/// error flag after its output, at binding 6).
pub(crate) fn xent_rows_wgsl(sparse: bool) -> Result<&'static str> {
    match sparse {
        false => with_labels("xent_rows", wgsl::XENT_ROWS, &ROWS_DENSE, None),
        true => with_labels("xent_rows", wgsl::XENT_ROWS, &ROWS_SPARSE, Some(5)),
    }
}

/// The workgroup-per-row cross-entropy kernel for dense or `sparse` labels (the sparse one's
/// error flag after its output, at binding 4), its combines with `subgroups` or the tree.
pub(crate) fn xent_wg_wgsl(sparse: bool, subgroups: bool) -> Result<&'static str> {
    let row = row_combines(subgroups);
    let dense_loss = WG_DENSE_LOSS.replace("COMBINE_SUM", &row.sum);
    let (check, backprop, loss) = match sparse {
        false => ("", DENSE[2].1, dense_loss.as_str()),
        true => (WG_SPARSE_CHECK, SPARSE[2].1, WG_SPARSE_LOSS),
    };
    let parts = [
        ("LABEL_ELEM", if sparse { "i32" } else { "f32" }),
        ("ROW_MAX", row.max.as_str()),
        ("ROW_SUM", row.sum.as_str()),
        ("BUILTINS", row.builtins),
        ("ROW_HELPERS", row.helpers.as_str()),
        ("LABEL_CHECK", check),
        ("BACKPROP", backprop),
        ("LOSS", loss),
    ];
    let name = format!("xent_wg subgroups {subgroups}");
    with_labels(&name, wgsl::XENT_WG, &parts, sparse.then_some(3))
}

/// Every instantiation of the loss templates, named, for the naga validation test.
pub(crate) fn instantiations() -> Result<Vec<(String, String)>> {
    let mut all = vec![
        ("xent.wgsl dense".into(), xent_wgsl(false)?.to_string()),
        ("xent.wgsl sparse with its error flag".into(), xent_wgsl(true)?.to_string()),
        ("xent_rows.wgsl dense".into(), xent_rows_wgsl(false)?.to_string()),
        ("xent_rows.wgsl sparse with its error flag".into(), xent_rows_wgsl(true)?.to_string()),
    ];
    for sparse in [false, true] {
        for sg in [false, true] {
            all.push((format!("xent_wg.wgsl sparse {sparse} subgroups {sg}"), xent_wg_wgsl(sparse, sg)?.to_string()));
        }
    }
    Ok(all)
}
