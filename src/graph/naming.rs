//! TensorFlow's naming rules: unique names (case-insensitive), name scopes.

use std::collections::HashMap;

use crate::error::{Error, Result};

/// TF's rule for op names (`_VALID_OP_NAME_REGEX`), as shown in its error message.
const OP_NAME_RULE: &str = "^[A-Za-z0-9.][A-Za-z0-9_.\\-/>]*$";

/// Whether `name` is a valid full op name: `[A-Za-z0-9.][A-Za-z0-9_.\-/>]*`. Scope parts after
/// the first may start with `_`, `-`, `/` or `>`, which the rule allows after the first character.
pub(crate) fn is_valid_op_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '.');
    first_ok && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/' | '>'))
}

/// `InvalidArgument` naming `name` unless it is a valid op name (TF raises `ValueError`).
pub(crate) fn check_op_name(name: &str) -> Result<()> {
    if is_valid_op_name(name) {
        return Ok(());
    }
    Err(Error::invalid_argument(format!(
        "'{name}' is not a valid node name. Accepted names conform to Regex /{OP_NAME_RULE}/"
    )))
}

/// The names in use in a graph and the current name scope.
#[derive(Debug, Default)]
pub(crate) struct Names {
    /// Lower-cased names (and scope names) in use, with TF's counters.
    in_use: HashMap<String, usize>,
    /// The current name scope, without a trailing slash ("" at the top).
    pub(crate) scope: String,
}

impl Names {
    /// TF's `Graph.unique_name`: prefixes the current scope, then makes the name unique,
    /// ignoring case (`Const`, `Const_1`, …; `foo`, `foo_1`, `foo_1_1`).
    pub(crate) fn unique(&mut self, name: &str) -> String {
        let full = self.scoped(name);
        self.unique_full(&full)
    }

    /// Makes an already scoped name unique and marks it used.
    pub(crate) fn unique_full(&mut self, full: &str) -> String {
        let key = full.to_lowercase();
        let i = self.in_use.get(&key).copied().unwrap_or(0);
        self.in_use.insert(key.clone(), i + 1);
        if i == 0 {
            return full.to_string();
        }
        let mut i = i;
        let mut candidate = format!("{key}_{i}");
        while self.in_use.contains_key(&candidate) {
            i += 1;
            candidate = format!("{key}_{i}");
        }
        self.in_use.insert(candidate, 1);
        format!("{full}_{i}")
    }

    /// Marks a name used without changing it (used when a scope name becomes an op name).
    pub(crate) fn mark(&mut self, full: &str) {
        self.in_use.entry(full.to_lowercase()).or_insert(1);
    }

    /// The name with the current scope in front.
    pub(crate) fn scoped(&self, name: &str) -> String {
        if self.scope.is_empty() {
            name.to_string()
        } else {
            format!("{}/{}", self.scope, name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_follow_tf() {
        let mut n = Names::default();
        assert_eq!(n.unique("Const"), "Const");
        assert_eq!(n.unique("Const"), "Const_1");
        assert_eq!(n.unique("Add"), "Add");
        assert_eq!(n.unique("add"), "add_1");
        assert_eq!(n.unique("Add"), "Add_2");
        assert_eq!(n.unique("foo"), "foo");
        assert_eq!(n.unique("foo"), "foo_1");
        assert_eq!(n.unique("foo_1"), "foo_1_1");
    }

    #[test]
    fn op_names_follow_tf_rule() {
        for ok in ["a", "A9", ".x", "0", "a/b", "a/_b", "a-b.c>d", "gradients/Add_grad/Sum_1"] {
            assert!(is_valid_op_name(ok), "{ok}");
        }
        for bad in ["", "bad name!", "_a", "-a", "/a", "a b", "a:0", "a\\b", "é"] {
            assert!(!is_valid_op_name(bad), "{bad}");
        }
    }
}
