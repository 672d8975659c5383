//! Where a step or a hook firing is in its run's code, the same on every execution of the run.

use std::fmt;
use std::sync::Arc;

/// The place of a step (or of a hook firing) in its run's code: what a resumed run matches
/// its journal by, and what its idempotency key and its jobs' ids are made of.
///
/// A step of the body's own sequence is `Top(n)`: the `n`-th step the body calls outside any
/// `parallel!` branch (for a body without branches, its position). A step inside a branch is
/// keyed by its path, `"p{group}.{branch}/{n}"`: the `parallel!` group (counted in the code
/// around it), the branch (in the order the macro lists them) and the step's place in that
/// branch; nested groups add to the path (`"p0.1/p0.0/2"`). So a key does not depend on the
/// order in which the branches' futures happen to be polled, nor on which branch finished
/// first before a crash.
///
/// Hook firings are keyed the same way, in a space of their own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    /// The `n`-th step (or firing) outside any branch.
    Top(u32),
    /// A path through `parallel!` branches, ending with the step's (or firing's) place in
    /// its branch.
    Branch(Arc<str>),
}

impl Key {
    /// Reads a key as [`Key`]'s `Display` writes it.
    pub(crate) fn parse(text: &str) -> Key {
        match text.parse::<u32>() {
            Ok(n) => Key::Top(n),
            Err(_) => Key::Branch(text.into()),
        }
    }

    /// The key as the journal records it beside `position`: nothing when it is the position
    /// itself (every step of a body without `parallel!` branches).
    pub(crate) fn unless_position(&self, position: u32) -> Option<Box<str>> {
        match self {
            Key::Top(n) if *n == position => None,
            key => Some(key.to_string().into()),
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Top(n) => write!(f, "{n}"),
            Key::Branch(path) => f.write_str(path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_reads_back_as_it_is_written() {
        for key in [Key::Top(0), Key::Top(17), Key::Branch("p0.1/2".into())] {
            assert_eq!(Key::parse(&key.to_string()), key);
        }
        assert_eq!(Key::Top(3).unless_position(3), None);
        assert_eq!(Key::Top(3).unless_position(4).as_deref(), Some("3"));
        assert_eq!(
            Key::Branch("p0.0/0".into()).unless_position(0).as_deref(),
            Some("p0.0/0")
        );
    }
}
