//! The op kernels' WGSL files: the one place that embeds `shaders/*.wgsl` for the op
//! families (the elementwise templates, the error flag and the prelude are the GPU runtime's,
//! in `runtime::gpu`). Each file is a named constant; no other module embeds an op shader.

/// Declares one constant per shader file.
macro_rules! shader_files {
    ($($name:ident => $file:literal,)*) => {
        $(
            #[doc = concat!("`shaders/", $file, "`.")]
            pub(crate) const $name: &str = include_str!(concat!("../../shaders/", $file));
        )*
    };
}

shader_files! {
    BIAS_ADD => "bias_add.wgsl",
    CONCAT => "concat.wgsl",
    CONV2D => "conv2d.wgsl",
    CONV2D_BACKPROP_FILTER => "conv2d_backprop_filter.wgsl",
    CONV2D_BACKPROP_INPUT => "conv2d_backprop_input.wgsl",
    CONV2D_SG => "conv2d_sg.wgsl",
    FILL => "fill.wgsl",
    MATMUL => "matmul.wgsl",
    MATMUL_SG => "matmul_sg.wgsl",
    MAX_POOL_ARGMAX => "max_pool_argmax.wgsl",
    MAX_POOL_ARGMAX_COMBINE => "max_pool_argmax_combine.wgsl",
    MAX_POOL_GRAD_SLICED => "max_pool_grad_sliced.wgsl",
    POOL => "pool.wgsl",
    POOL_GRAD => "pool_grad.wgsl",
    POOL_SLICED => "pool_sliced.wgsl",
    REDUCE => "reduce.wgsl",
    REDUCE_TREE => "reduce_tree.wgsl",
    SOFTMAX => "softmax.wgsl",
    SOFTMAX_NORM => "softmax_norm.wgsl",
    SPARSE_XENT_ROWS => "sparse_xent_rows.wgsl",
    TRANSPOSE => "transpose.wgsl",
    XENT => "xent.wgsl",
    XENT_ROWS => "xent_rows.wgsl",
}
