//! The op families, named once. Each row gives a family's name, the TF op types it provides
//! and its WGSL instantiations (for the naga validation test): the instantiation list and the
//! set of op types are assembled from here, and adding an op family is its folder plus one
//! row of [`FAMILIES`].

use crate::error::Result;

/// One op family.
pub(crate) struct Family {
    /// The family's folder under `src/ops/`.
    #[cfg_attr(not(any(test, feature = "test-hooks")), allow(dead_code))]
    pub(crate) name: &'static str,
    /// The TF op types its ops have (read by [`family_of`]).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) types: fn() -> Vec<&'static str>,
    /// Every instantiation of its WGSL templates, named.
    #[cfg_attr(not(any(test, feature = "test-hooks")), allow(dead_code))]
    pub(crate) instantiations: fn() -> Result<Vec<(String, String)>>,
}

/// Every op family.
pub(crate) const FAMILIES: &[Family] = &[
    Family {
        name: "elementwise",
        types: super::elementwise::types,
        instantiations: super::elementwise::instantiations,
    },
    Family { name: "linalg", types: super::linalg::types, instantiations: super::linalg::instantiations },
    Family { name: "reduce", types: super::reduce::types, instantiations: super::reduce::instantiations },
    Family { name: "nn", types: super::nn::types, instantiations: super::nn::instantiations },
    Family { name: "nn_grad", types: super::nn_grad::types, instantiations: super::nn_grad::instantiations },
    Family { name: "losses", types: super::losses::types, instantiations: super::losses::instantiations },
    Family { name: "array", types: super::array::types, instantiations: super::array::instantiations },
    Family { name: "state", types: super::state::types, instantiations: super::state::instantiations },
    Family { name: "fused", types: super::fused::types, instantiations: super::fused::instantiations },
];

// Read by the registry's tests today; the GraphDef import's table of TF op names is to come
// from here too.
#[cfg_attr(not(test), allow(dead_code))]
/// The family that provides the TF op type `type_name`.
pub(crate) fn family_of(type_name: &str) -> Option<&'static Family> {
    FAMILIES.iter().find(|f| (f.types)().contains(&type_name))
}

/// Every instantiation of every family's WGSL templates, named, for the naga validation test.
#[cfg(any(test, feature = "test-hooks"))]
pub fn instantiations() -> Result<Vec<(String, String)>> {
    let mut all = Vec::new();
    for family in FAMILIES {
        all.extend((family.instantiations)().map_err(|e| e.at(family.name))?);
    }
    Ok(all)
}

#[cfg(test)]
mod tests;
