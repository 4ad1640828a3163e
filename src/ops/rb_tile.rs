//! The generated parts of the register-blocked GEMM core (shaders/gemm_rb.wgsl) that matmul
//! (`linalg::gpu_rb`) and conv2d (`nn::conv_rb`) share: the tile's constants, each thread's
//! global loads and their stores into workgroup memory, the unrolled multiply-adds of a k
//! slice, and the bounds-checked stores of the results.

use std::fmt::Write;

use super::kernel::{code_of, with_prelude};
use super::wgsl;
use crate::runtime::gpu::variant::RbTile;

/// How an operand's vec4 loads run: along k, or along the other dimension (rows of A,
/// columns of B).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Along {
    K,
    Other,
}

/// The directions matmul's operands load in: along k unless stored transposed (A: `ta`), or
/// along k when stored transposed (B: `tb`, stored n x k).
pub(crate) fn matmul_along(ta: bool, tb: bool) -> (Along, Along) {
    (if ta { Along::Other } else { Along::K }, if tb { Along::K } else { Along::Other })
}

/// The register-blocked kernel for `tile`, the op's `header` (gemm_rb.wgsl's HEADER) and the
/// directions its `load_a` and `load_b` read in.
pub(crate) fn gemm_rb_wgsl(tile: RbTile, a: Along, b: Along, header: &str) -> String {
    let RbTile { bm, bn, bk, tm, tn } = tile;
    let threads = tile.threads();
    let (mut decls, mut body, mut results) = (String::new(), String::new(), String::new());
    for r in 0..tm {
        for j in 0..tn / 4 {
            let _ = writeln!(decls, "    var c{r}_{j} = vec4<f32>(0.0);");
        }
    }
    let (loads, stores) = staging(&mut decls, (bm, bn, bk, threads), (a, b), None);
    for kk in 0..bk {
        let _ = writeln!(body, "        {{");
        for q in 0..tm / 4 {
            let _ = writeln!(body, "            let a{q} = sa[(cur + {kk}u) * AQ + ty * {}u + {q}u];", tm / 4);
        }
        for q in 0..tn / 4 {
            let _ = writeln!(body, "            let b{q} = sb[(cur + {kk}u) * BQ + tx * {}u + {q}u];", tn / 4);
        }
        for r in 0..tm {
            for j in 0..tn / 4 {
                let _ = writeln!(body, "            c{r}_{j} = fma(vec4<f32>(a{}[{}]), b{j}, c{r}_{j});", r / 4, r % 4);
            }
        }
        let _ = writeln!(body, "        }}");
    }
    for r in 0..tm {
        let _ = writeln!(results, "    let r{r} = row0 + ty * {tm}u + {r}u;");
        let _ = writeln!(results, "    if (r{r} < params.m) {{");
        for j in 0..tn / 4 {
            let _ = writeln!(results, "        let q{r}_{j} = col0 / 4u + tx * {}u + {j}u;", tn / 4);
            let _ = writeln!(
                results,
                "        if (q{r}_{j} < params.n / 4u) {{\n            emit(r{r}, q{r}_{j}, c{r}_{j});\n        }}"
            );
        }
        let _ = writeln!(results, "    }}");
    }
    let code = code_of(wgsl::GEMM_RB)
        .replace("HEADER", header)
        .replace("THREADS_N", &format!("{threads}u"))
        .replace("BK_N", &format!("{bk}u"))
        .replace("BM_N", &format!("{bm}u"))
        .replace("BN_N", &format!("{bn}u"))
        .replace("TN_N", &format!("{tn}u"))
        .replace("SA_LEN", &format!("{}", 2 * bk * bm / 4))
        .replace("SB_LEN", &format!("{}", 2 * bk * bn / 4))
        .replace("DECLS", decls.trim_end())
        .replace("LOADS", loads.trim_end())
        .replace("STORES_TO_SHARED", stores.trim_end())
        .replace("BODY", body.trim_end())
        .replace("RESULTS", results.trim_end());
    with_prelude(&code)
}

/// Each thread's share of the global loads of a k slice (`LOADS`: into the registers `pa{i}`,
/// `pb{i}`, declared in `decls`) and their stores into workgroup memory (`STORES_TO_SHARED`),
/// for a `bm x bk` slice of op(A) and a `bk x bn` slice of op(B) loaded by `threads`, k-major in
/// `sa` and `sb`. The copy is at `nxt`: in k rows of vec4s (`scalar` None), or in elements of
/// the type `scalar` names (each vec4's four values converted and stored apart).
pub(crate) fn staging(
    decls: &mut String,
    (bm, bn, bk, threads): (usize, usize, usize, usize),
    (a, b): (Along, Along),
    scalar: Option<&str>,
) -> (String, String) {
    let (mut loads, mut stores) = (String::new(), String::new());
    // The store of value `v` at k `k` and row (or column) `x` of a slice `rows` wide.
    let put = |stores: &mut String, shared: &str, rows: usize, k: &str, x: &str, v: &str, whole: bool| match scalar {
        None if whole => {
            let _ = writeln!(stores, "            {shared}[(nxt + {k}) * {}u + ({x}) / 4u] = {v};", rows / 4);
        }
        None => {
            let _ =
                writeln!(stores, "            {shared}[(nxt + {k}) * {}u + ({x}) / 4u][({x}) % 4u] = {v};", rows / 4);
        }
        Some(t) => {
            let _ = writeln!(stores, "            {shared}[nxt + ({k}) * {rows}u + {x}] = {t}({v});");
        }
    };
    // Each operand's slice is `len` vec4s, `len / threads` per thread.
    for (name, len, along, rows, shared) in [("a", bm * bk / 4, a, bm, "sa"), ("b", bk * bn / 4, b, bn, "sb")] {
        let quads = rows / 4;
        let call = if name == "a" { "load_a" } else { "load_b" };
        let first = if name == "a" { "row0" } else { "col0" };
        for i in 0..len / threads {
            let _ = writeln!(decls, "    var p{name}{i} = vec4<f32>(0.0);");
            let e = format!("(lid + {}u)", i * threads);
            let v = format!("p{name}{i}");
            match along {
                // Element e: row (or column) e / (BK / 4), k quad e % (BK / 4); its four k go to
                // four rows of the k-major slice.
                Along::K => {
                    let (x, kq) = (format!("{e} / {}u", bk / 4), format!("{e} % {}u", bk / 4));
                    let _ = writeln!(loads, "            {v} = {call}({first} + {x}, k0 + ({kq}) * 4u);");
                    for j in 0..4 {
                        put(&mut stores, shared, rows, &format!("({kq}) * 4u + {j}u"), &x, &format!("{v}[{j}]"), false);
                    }
                }
                // Element e: k e / (rows / 4), quad e % (rows / 4): one vec4 of the slice.
                Along::Other => {
                    let (kk, q) = (format!("{e} / {quads}u"), format!("{e} % {quads}u"));
                    let _ = writeln!(loads, "            {v} = {call}(k0 + {kk}, {first} + ({q}) * 4u);");
                    if scalar.is_none() {
                        put(&mut stores, shared, rows, &kk, &format!("({q}) * 4u"), &v, true);
                    } else {
                        for j in 0..4 {
                            let x = format!("({q}) * 4u + {j}u");
                            put(&mut stores, shared, rows, &kk, &x, &format!("{v}[{j}]"), false);
                        }
                    }
                }
            }
        }
    }
    (loads, stores)
}

/// The k one dispatch of a GEMM core (register-blocked or cooperative) covers with slices of
/// `bk`: its k loop makes one trip per slice (the slice's multiply-adds are unrolled).
pub(crate) fn k_per_dispatch(bk: usize) -> usize {
    use super::gpu_passes::{MAX_LOOP_TRIPS, OVERHEAD_TRIPS};
    (MAX_LOOP_TRIPS - OVERHEAD_TRIPS) * bk
}
