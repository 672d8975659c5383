//! The slots of a hook point: where a handler runs among the others.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a handler runs among the handlers of its hook point: every prepended handler runs
/// before every configured one, and every configured one before every appended one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Slot {
    /// Runs first.
    Prepended,
    /// The default slot.
    Configured,
    /// Runs last.
    Appended,
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Slot::Prepended => "prepended",
            Slot::Configured => "configured",
            Slot::Appended => "appended",
        })
    }
}
