//! Handler names: what a handler is recorded under in the run's journal, shown by the CLI and
//! the diagrams, and compared when a run resumes.
//!
//! A name given at registration (`.named("check-minimum")`) is used as is. Otherwise the
//! default is the function's own identifier: the last segment of
//! `std::any::type_name::<F>()` when that is a plain path of identifiers
//! (`shop::hooks::check_minimum` gives `check_minimum`); for anything else (a closure, a
//! generic function instantiated with types) it is `"{hook}#{n}"`, the `n`th handler
//! registered on the hook (from 1). The default thus depends on the function's identifier
//! (renaming it renames the handler) and, for the first rule, on `type_name` still printing a
//! function item as its path; it never includes the module path, which moves with the code.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use crate::types::lock;

/// The default name of handler `F`, the `n`th (from 1) registered on hook `hook`.
pub(crate) fn default_name<F>(hook: &str, n: usize) -> &'static str {
    plain_identifier(std::any::type_name::<F>()).unwrap_or_else(|| intern(format!("{hook}#{n}")))
}

/// The last segment of `path` if every segment is an identifier.
fn plain_identifier(path: &'static str) -> Option<&'static str> {
    let mut last = None;
    for segment in path.split("::") {
        let mut chars = segment.chars();
        let first = chars.next()?;
        let identifier = (first.is_alphabetic() || first == '_')
            && chars.all(|c| c.is_alphanumeric() || c == '_');
        if !identifier {
            return None;
        }
        last = Some(segment);
    }
    last
}

/// `name`, kept for the life of the process: each distinct name is allocated once however
/// many engines register it.
fn intern(name: String) -> &'static str {
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = lock(NAMES.get_or_init(Mutex::default));
    if let Some(known) = names.get(name.as_str()) {
        return known;
    }
    let leaked: &'static str = Box::leak(name.into_boxed_str());
    names.insert(leaked);
    leaked
}

/// Whether a handler recorded as `recorded` is the handler named `now`: the same name, or a
/// name recorded by an older build, which used the full `type_name` path
/// (`shop::hooks::check_minimum` for `check_minimum`).
pub(crate) fn same_handler(recorded: &str, now: &str) -> bool {
    recorded == now
        || recorded
            .strip_suffix(now)
            .is_some_and(|prefix| prefix.ends_with("::"))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn check_minimum() {}

    #[test]
    fn a_function_is_named_by_its_identifier() {
        fn name_of<F>(_: &F) -> &'static str {
            default_name::<F>("validate", 1)
        }
        assert_eq!(name_of(&check_minimum), "check_minimum");
        let closure = |x: u32| x;
        assert_eq!(name_of(&closure), "validate#1");
        assert_eq!(name_of(&std::convert::identity::<u32>), "validate#1");
    }

    #[test]
    fn plain_paths_only() {
        assert_eq!(plain_identifier("a::b_2::c"), Some("c"));
        assert_eq!(plain_identifier("c"), Some("c"));
        assert_eq!(plain_identifier("a::{{closure}}"), None);
        assert_eq!(plain_identifier("a::f<u32>"), None);
        assert_eq!(plain_identifier("a::::f"), None);
        assert_eq!(plain_identifier(""), None);
    }

    #[test]
    fn interned_once() {
        let a = intern("hook#7".to_owned());
        let b = intern("hook#7".to_owned());
        assert!(std::ptr::eq(a, b));
    }

    #[test]
    fn an_older_build_full_path_is_the_same_handler() {
        assert!(same_handler("check_minimum", "check_minimum"));
        assert!(same_handler("shop::hooks::check_minimum", "check_minimum"));
        assert!(!same_handler(
            "shop::hooks::not_check_minimum",
            "check_minimum"
        ));
        assert!(!same_handler("check_minimum2", "check_minimum"));
        assert!(!same_handler("credit_limit", "check_minimum"));
    }
}
