//! The unrolled WGSL the two subgroup kernels share (shaders/matmul_sg.wgsl for `linalg`,
//! conv2d_sg.wgsl for `nn`): each lane accumulates a tile of `rows` rows (8 apart) by
//! `8 * vcols` vec4 columns in the variables `c{i}_{c}`, fed by subgroup broadcasts of the
//! lanes' vec4s of B, and stores it with bounds checks at the end.

use std::fmt::Write;

use super::kernel::{code_of, with_prelude};

/// A lane's tile: `rows` rows by `vcols` vec4 columns of 8 lanes each.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SgTile {
    pub(crate) rows: usize,
    pub(crate) vcols: usize,
}

/// The names a kernel's template gives to what the tile's stores use.
pub(crate) struct TileStore<'a> {
    /// The lane's first row (its rows are `first + 8i`).
    pub(crate) first: &'a str,
    /// The output's number of rows: rows at or past it are not stored.
    pub(crate) rows_end: &'a str,
    /// The output's vec4s per row: columns at or past it are not stored.
    pub(crate) width: &'a str,
    /// The output index of row 0 (empty, or an offset followed by ` + `).
    pub(crate) base: &'a str,
    /// The WGSL function that stores a vec4 at an output index.
    pub(crate) store: &'a str,
}

impl SgTile {
    /// Vec4 columns of the tile.
    fn cols(&self) -> usize {
        8 * self.vcols
    }

    /// Declares row `i`'s accumulators, zeroed.
    pub(crate) fn zero_row(&self, decls: &mut String, i: usize) {
        for c in 0..self.cols() {
            let _ = writeln!(decls, "    var c{i}_{c} = vec4<f32>(0.0);");
        }
    }

    /// One step's multiply-adds: lane `l`'s vec4 `b{v}` broadcast to the subgroup as `bb{c}`
    /// (`c = 8v + l`), times each row's splatted A value `{a}{i}`, into `c{i}_{c}`.
    pub(crate) fn fma(&self, body: &mut String, indent: &str, a: &str) {
        for v in 0..self.vcols {
            for l in 0..8 {
                let c = 8 * v + l;
                let _ = writeln!(body, "{indent}let bb{c} = subgroupBroadcast(b{v}, {l}u);");
                for i in 0..self.rows {
                    let _ = writeln!(body, "{indent}c{i}_{c} = fma({a}{i}, bb{c}, c{i}_{c});");
                }
            }
        }
    }

    /// The tile's stores, each row and vec4 column within the output.
    pub(crate) fn stores(&self, out: &TileStore) -> String {
        let TileStore { first, rows_end, width, base, store } = out;
        let mut stores = String::new();
        for i in 0..self.rows {
            let _ = writeln!(stores, "    let r{i} = {first} + {}u;", 8 * i);
            let _ = writeln!(stores, "    if (r{i} < {rows_end}) {{");
            for c in 0..self.cols() {
                let _ = writeln!(
                    stores,
                    "        if (col0 + {c}u < {width}) {{\n            {store}({base}r{i} * {width} + col0 + {c}u, c{i}_{c});\n        }}"
                );
            }
            let _ = writeln!(stores, "    }}");
        }
        stores
    }

    /// `template` with the kernel's own `parts` filled in first, then the tile's size (`ROWS`,
    /// `VCOLS`), the generated `DECLS`, `BODY` and `STORES`, and last the `OUTPUT` code; the
    /// prelude prepended.
    pub(crate) fn instantiate(&self, template: &str, parts: &[(&str, &str)], code: [&str; 3], output: &str) -> String {
        let [decls, body, stores] = code;
        let filled = parts.iter().fold(code_of(template), |t, (name, text)| t.replace(name, text));
        let filled = filled
            .replace("ROWS", &format!("{}u", self.rows))
            .replace("VCOLS", &format!("{}u", self.vcols))
            .replace("DECLS", decls.trim_end())
            .replace("BODY", body.trim_end())
            .replace("STORES", stores.trim_end())
            .replace("OUTPUT", output);
        with_prelude(&filled)
    }
}
