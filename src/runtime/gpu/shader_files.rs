//! The WGSL files of `shaders/`: the one place that embeds them. Each file is a named
//! constant (the prelude, the elementwise templates and the error flag are used by the GPU
//! runtime itself, the others by the op families' lowerings, which reach this module as
//! `ops::wgsl`); a unit test checks that every file of `shaders/` is listed here.

/// Declares one constant per shader file, and [`ALL`] naming each.
macro_rules! shader_files {
    ($($name:ident => $file:literal,)*) => {
        $(
            #[doc = concat!("`shaders/", $file, "`.")]
            pub(crate) const $name: &str = include_str!(concat!("../../../shaders/", $file));
        )*
        /// Every shader file: its name under `shaders/` and its text.
        #[cfg_attr(not(test), allow(dead_code))]
        pub(crate) const ALL: &[(&str, &str)] = &[$(($file, $name)),*];
    };
}

shader_files! {
    ARGMAX => "argmax.wgsl",
    BIAS_ADD => "bias_add.wgsl",
    CAST => "cast.wgsl",
    CONCAT => "concat.wgsl",
    CONV2D => "conv2d.wgsl",
    CONV2D_BACKPROP_FILTER => "conv2d_backprop_filter.wgsl",
    CONV2D_BACKPROP_INPUT => "conv2d_backprop_input.wgsl",
    CONV2D_RB => "conv2d_rb.wgsl",
    CONV2D_SG => "conv2d_sg.wgsl",
    DEPTHWISE => "depthwise.wgsl",
    ELEMENTWISE => "elementwise.wgsl",
    ELEMENTWISE_VEC4 => "elementwise_vec4.wgsl",
    ERROR_FLAG => "error_flag.wgsl",
    FILL => "fill.wgsl",
    GATHER => "gather.wgsl",
    GEMM_COOP => "gemm_coop.wgsl",
    GEMM_RB => "gemm_rb.wgsl",
    MATMUL => "matmul.wgsl",
    MATMUL_BATCH => "matmul_batch.wgsl",
    MATMUL_RB => "matmul_rb.wgsl",
    MATMUL_SG => "matmul_sg.wgsl",
    MAX_POOL_ARGMAX => "max_pool_argmax.wgsl",
    MAX_POOL_ARGMAX_COMBINE => "max_pool_argmax_combine.wgsl",
    MAX_POOL_GRAD_SLICED => "max_pool_grad_sliced.wgsl",
    PAD => "pad.wgsl",
    POOL => "pool.wgsl",
    POOL_GRAD => "pool_grad.wgsl",
    POOL_SLICED => "pool_sliced.wgsl",
    POOL_WINDOWS => "pool_windows.wgsl",
    PRELUDE => "prelude.wgsl",
    REDUCE => "reduce.wgsl",
    REDUCE_TREE => "reduce_tree.wgsl",
    ROW_COMBINE => "row_combine.wgsl",
    SOFTMAX => "softmax.wgsl",
    SOFTMAX_NORM => "softmax_norm.wgsl",
    SOFTMAX_ROWS => "softmax_rows.wgsl",
    SEGMENT_SUM => "segment_sum.wgsl",
    STRIDED_GATHER => "strided_gather.wgsl",
    TILE => "tile.wgsl",
    UNARY => "unary.wgsl",
    UNARY_VEC4 => "unary_vec4.wgsl",
    XENT => "xent.wgsl",
    XENT_ROWS => "xent_rows.wgsl",
    XENT_WG => "xent_wg.wgsl",
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_shader_file_is_listed_once() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .expect("shaders/")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".wgsl"))
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = super::ALL.iter().map(|(n, _)| n.to_string()).collect();
        listed.sort();
        assert_eq!(listed, on_disk);
        assert!(super::ALL.iter().all(|(_, text)| !text.trim().is_empty()));
    }
}
