//! Every WGSL source parses and validates with naga, without a GPU: the standalone files in
//! shaders/ as they are, and the templates through the functions that instantiate them.

use std::path::Path;

use wgflow::testing::instantiations;
use wgflow::testing::{
    binary_vec4_wgsl, binary_wgsl, binary_wgsl_typed, error_flag_wgsl, unary_vec4_wgsl, unary_wgsl, unary_wgsl_typed,
    PRELUDE,
};
use wgflow::DType;

/// Template files and the instantiations that cover them.
/// A template is a file containing `OP_EXPR` or starting with `// TEMPLATE`.
const TEMPLATES: &[&str] = &[
    "elementwise.wgsl",
    "pad.wgsl",
    "cast.wgsl",
    "argmax.wgsl",
    "strided_gather.wgsl",
    "unary.wgsl",
    "elementwise_vec4.wgsl",
    "unary_vec4.wgsl",
    "matmul.wgsl",
    "matmul_sg.wgsl",
    "conv2d.wgsl",
    "conv2d_sg.wgsl",
    "gemm_rb.wgsl",
    "matmul_rb.wgsl",
    "gemm_coop.wgsl",
    "conv2d_rb.wgsl",
    "depthwise.wgsl",
    "reduce.wgsl",
    "reduce_tree.wgsl",
    "softmax.wgsl",
    "softmax_norm.wgsl",
    "softmax_rows.wgsl",
    "concat.wgsl",
    "error_flag.wgsl",
    "xent_rows.wgsl",
    "xent.wgsl",
    "xent_wg.wgsl",
    "pool_grad.wgsl",
    "pool.wgsl",
    "pool_sliced.wgsl",
    "max_pool_argmax.wgsl",
    "max_pool_argmax_combine.wgsl",
    "max_pool_grad_sliced.wgsl",
    "fill.wgsl",
    "tile.wgsl",
    "gather.wgsl",
    "segment_sum.wgsl",
];
/// The NN templates, instantiated as `template_wgsl` (src/ops/kernel.rs) does: the prelude, then
/// the template with `WORKGROUP_SIZE` replaced.
const NN_TEMPLATES: &[&str] = &["bias_add.wgsl", "conv2d_backprop_input.wgsl", "conv2d_backprop_filter.wgsl"];
const BINARY_EXPRS: &[&str] =
    &["a + b", "select(select(b, a, a >= b), a + b, is_nan(a) || is_nan(b))", "pow_tf(a, b)", "max_tf(a, b)"];
const UNARY_EXPRS: &[&str] = &["-a", "log_tf(a)", "tanh_tf(a)", "sqrt_tf(a)", "select(a, 0.0, a < 0.0)"];

fn validate(what: &str, source: &str) {
    let module = match naga::front::wgsl::parse_str(source) {
        Ok(m) => m,
        Err(e) => panic!("{what} does not parse:\n{}", e.emit_to_string(source)),
    };
    let mut validator =
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all());
    if let Err(e) = validator.validate(&module) {
        panic!("{what} does not validate:\n{}", e.emit_to_string(source));
    }
    println!("validated {what}");
}

/// Writes `source` as SPIR-V 1.6 with naga's backend (after validating it).
fn spirv(what: &str, source: &str) {
    let module = naga::front::wgsl::parse_str(source).unwrap_or_else(|e| panic!("{what}: {e}"));
    let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all())
        .validate(&module)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let options = naga::back::spv::Options { lang_version: (1, 6), ..Default::default() };
    let words = naga::back::spv::write_vec(&module, &info, &options, None)
        .unwrap_or_else(|e| panic!("{what} does not write as SPIR-V: {e}"));
    assert!(words.len() > 100, "{what}: {} SPIR-V words", words.len());
    println!("wrote {what} as SPIR-V ({} words)", words.len());
}

#[test]
fn every_wgsl_file_and_template_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no WGSL files in {}", dir.display());
    for path in &files {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let source = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {name}: {e}"));
        if NN_TEMPLATES.contains(&name.as_str()) {
            let mut wgsl = format!("{PRELUDE}\n{}", source.replace("WORKGROUP_SIZE", "64u"));
            if source.contains("raise_label_error") {
                // The kernels that check their labels get the error flag after their output.
                wgsl = format!("{wgsl}\n{}", error_flag_wgsl(3));
            }
            validate(&format!("{name} instantiated"), &wgsl);
        } else if source.contains("OP_EXPR") || source.starts_with("// TEMPLATE") {
            assert!(TEMPLATES.contains(&name.as_str()), "template {name} is not covered by an instantiation below");
            println!("template {name}: validated through its instantiations");
        } else {
            validate(&format!("shaders/{name}"), &source);
        }
    }
    for expr in BINARY_EXPRS {
        validate(&format!("elementwise.wgsl with {expr:?}"), &binary_wgsl(expr));
    }
    for expr in UNARY_EXPRS {
        validate(&format!("unary.wgsl with {expr:?}"), &unary_wgsl(expr));
    }
    for (expr, dtype) in [("pow_tf(a, b)", DType::F32), ("a + b", DType::F32), ("max(a, b)", DType::I32)] {
        let src = binary_vec4_wgsl(expr, dtype, true).expect("a GPU type");
        validate(&format!("elementwise_vec4.wgsl with {expr:?} on {dtype}"), &src);
    }
    for (expr, dtype) in [("exp_tf(a)", DType::F32), ("tanh_tf(a)", DType::F32), ("-a", DType::I32)] {
        let src = unary_vec4_wgsl(expr, dtype, false).expect("a GPU type");
        validate(&format!("unary_vec4.wgsl with {expr:?} on {dtype}"), &src);
    }
    let int_add = binary_wgsl_typed("a + b", DType::I32, DType::I32).expect("int32 is a GPU type");
    validate("elementwise.wgsl with \"a + b\" on int32", &int_add);
    for expr in ["floor_div_checked(a, b)", "truncate_div_checked(a, b)"] {
        let src = binary_wgsl_typed(expr, DType::I32, DType::I32).expect("int32 is a GPU type");
        validate(
            &format!("error_flag.wgsl in elementwise.wgsl with {expr:?}"),
            &format!("{src}\n{}", error_flag_wgsl(3)),
        );
    }
    let int_neg = unary_wgsl_typed("-a", DType::I32, DType::I32).expect("int32 is a GPU type");
    validate("unary.wgsl with \"-a\" on int32", &int_neg);
    let ops = instantiations().expect("the op kernels instantiate");
    for name in [
        "matmul.wgsl",
        "matmul_sg.wgsl",
        "gemm_rb.wgsl + matmul_rb.wgsl",
        "gemm_rb.wgsl + conv2d_rb.wgsl",
        "gemm_coop.wgsl + matmul_rb.wgsl",
        "gemm_coop.wgsl + conv2d_rb.wgsl",
        "depthwise.wgsl",
        "reduce.wgsl",
        "reduce_tree.wgsl",
        "softmax.wgsl",
        "softmax_norm.wgsl",
        "softmax_rows.wgsl",
        "strided_gather.wgsl",
        "concat.wgsl",
        "xent_rows.wgsl",
        "xent.wgsl",
        "xent_wg.wgsl",
        "pool_grad.wgsl",
        "pool.wgsl",
        "pool_sliced.wgsl",
        "max_pool_argmax.wgsl",
        "max_pool_argmax_combine.wgsl",
        "max_pool_grad_sliced.wgsl",
        "fill.wgsl",
        "tile.wgsl",
        "gather.wgsl",
        "segment_sum.wgsl",
    ] {
        assert!(ops.iter().any(|(n, _)| n.starts_with(name)), "no instantiation of {name}");
    }
    for (name, source) in &ops {
        validate(name, source);
    }
    // The cooperative matrix kernels run on no adapter here: also write them as SPIR-V, as wgpu's
    // Vulkan backend would.
    for (name, source) in ops.iter().filter(|(n, _)| n.starts_with("gemm_coop.wgsl")) {
        spirv(name, source);
    }
}
