//! The process's instantiated WGSL kernels, built once per key and kept for its lifetime.

use crate::error::Result;

/// WGSL sources built once per process and kept for its lifetime (one per op kind and
/// dtype, so the set is small and bounded).
pub(crate) fn cached_wgsl(key: String, make: impl FnOnce() -> Result<String>) -> Result<&'static str> {
    let mut map = wgsl_cache().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = map.get(&key) {
        return Ok(s);
    }
    let text: &'static str = Box::leak(make()?.into_boxed_str());
    map.insert(key, text);
    Ok(text)
}

/// The kernels [`cached_wgsl`] built, by key.
fn wgsl_cache() -> &'static std::sync::Mutex<std::collections::HashMap<String, &'static str>> {
    static CACHE: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<String, &'static str>>> =
        std::sync::OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The keys of the kernels this process instantiated (`matmul rb f32 64x64x16 4x4 ...`), sorted:
/// which kernel variant ran.
#[cfg(feature = "test-hooks")]
pub fn kernels_built() -> Vec<String> {
    let mut keys: Vec<String> = wgsl_cache().lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect();
    keys.sort();
    keys
}
