//! Where a step or a hook firing is in its run's code, the same on every execution of the run.

/// The place of a step (or of a hook firing) in its run's code: what a resumed run matches
/// its journal by, and what its idempotency key and its jobs' ids are made of.
///
/// A step of the body's own sequence is `Top(n)`: the `n`-th step the body calls outside any
/// `parallel!` branch (for a body without branches, its position). A step inside a branch is
/// known by its path, `"p{group}.{branch}/{n}"`: the `parallel!` group (counted in the code
/// around it), the branch (in the order the macro lists them) and the step's place in that
/// branch; nested groups add to the path (`"p0.1/p0.0/2"`). The run keeps the paths in a
/// table, and a `Branch` key is an index into it, so that a key is a small `Copy` value. So
/// a key does not depend on the order in which the branches' futures happen to be polled,
/// nor on which branch finished first before a crash.
///
/// Hook firings are keyed the same way, in a space of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    /// The `n`-th step (or firing) outside any branch.
    Top(u32),
    /// A path through `parallel!` branches: its index in the run's table of paths.
    Branch(u32),
}

/// A key as the journal writes it: the number of a `Top` key, or a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyText<'a> {
    /// A `Top` key's number.
    Top(u32),
    /// A `Branch` key's path.
    Path(&'a str),
}

impl<'a> KeyText<'a> {
    /// Reads a key as the journal writes it.
    pub(crate) fn parse(text: &'a str) -> Self {
        match text.parse::<u32>() {
            Ok(n) => KeyText::Top(n),
            Err(_) => KeyText::Path(text),
        }
    }

    /// The key as the journal records it beside `position`: nothing when it is the position
    /// itself (every step of a body without `parallel!` branches).
    #[inline(always)]
    pub(crate) fn unless_position(self, position: u32) -> Option<Box<str>> {
        match self {
            KeyText::Top(n) if n == position => None,
            key => Some(key.boxed()),
        }
    }

    /// The key's text, boxed (a `parallel!` branch's steps and firings).
    #[cold]
    #[inline(never)]
    fn boxed(self) -> Box<str> {
        match self {
            KeyText::Top(n) => n.to_string().into(),
            KeyText::Path(path) => path.into(),
        }
    }
}

impl std::fmt::Display for KeyText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyText::Top(n) => write!(f, "{n}"),
            KeyText::Path(path) => f.write_str(path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_reads_back_as_it_is_written() {
        for key in [KeyText::Top(0), KeyText::Top(17), KeyText::Path("p0.1/2")] {
            assert_eq!(KeyText::parse(&key.to_string()), key);
        }
        assert_eq!(KeyText::Top(3).unless_position(3), None);
        assert_eq!(KeyText::Top(3).unless_position(4).as_deref(), Some("3"));
        assert_eq!(
            KeyText::Path("p0.0/0").unless_position(0).as_deref(),
            Some("p0.0/0")
        );
    }
}
