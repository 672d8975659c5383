//! [`Retention`]: how long a [`MemoryStore`](super::MemoryStore) keeps the runs that ended.

use std::time::Duration;

/// How long a [`MemoryStore`](super::MemoryStore) keeps a run once it has ended (completed, compensated, or
/// compensation failed), by whether it was started with an idempotency key. Runs that are
/// running or parked are always kept.
///
/// The default, [`Retention::new`], keeps every run for the store's lifetime: what tests and
/// tools that inspect the store after a run expect. A long-lived service sets both limits,
/// so that its memory does not grow with every request:
///
/// ```
/// use std::time::Duration;
/// use hookflow_runtime::store::{MemoryStore, Retention};
///
/// let store = MemoryStore::new().retention(
///     Retention::new()
///         // A run without an idempotency key is forgotten as it ends: its outcome went to
///         // its caller, and nothing can ask for it again.
///         .unkeyed(Duration::ZERO)
///         // A run with one answers retries with its recorded outcome for an hour after it
///         // ended; after that, the key starts a new run.
///         .keyed(Duration::from_secs(60 * 60)),
/// );
/// # let _ = store;
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    unkeyed: Option<Duration>,
    keyed: Option<Duration>,
}

impl Retention {
    /// Keeps every run for the store's lifetime (the default).
    pub const fn new() -> Self {
        Retention {
            unkeyed: None,
            keyed: None,
        }
    }

    /// Keeps a run started without an idempotency key for `time` after it ended;
    /// `Duration::ZERO` forgets it as it ends.
    #[must_use]
    pub const fn unkeyed(mut self, time: Duration) -> Self {
        self.unkeyed = Some(time);
        self
    }

    /// Keeps a run started with an idempotency key for `time` after it ended: until then, a
    /// start with the same key returns its recorded outcome; after, the key is free again and
    /// starts a new run.
    #[must_use]
    pub const fn keyed(mut self, time: Duration) -> Self {
        self.keyed = Some(time);
        self
    }

    /// How long an ended run is kept, by whether it has an idempotency key (`None`: for the
    /// store's lifetime).
    pub(super) fn of(self, keyed: bool) -> Option<Duration> {
        if keyed { self.keyed } else { self.unkeyed }
    }
}
