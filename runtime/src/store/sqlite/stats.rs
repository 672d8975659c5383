//! How the store's writes reached the database: on their callers' threads, or grouped by the
//! writer thread ([`SqliteStore::write_stats`]); and what sends a write to the writer thread:
//! writes waiting for it, or its last group of more than one.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use super::SqliteStore;

/// How a [`SqliteStore`]'s writes reached the database since it was opened
/// ([`SqliteStore::write_stats`]): each write transaction is one commit of the database.
///
/// A write runs at once on its caller's thread, in its own transaction, when the connection
/// is free and no write waits for the writer thread; otherwise the writer thread runs it in a
/// transaction with the other writes waiting (a group). Under concurrent runs, the writes per
/// group tell how many commits shared one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct WriteStats {
    /// Writes made on their callers' threads, one transaction each.
    pub on_callers_thread: u64,
    /// Transactions of the writer thread, each with a group of writes.
    pub groups: u64,
    /// Writes in those groups.
    pub grouped_writes: u64,
}

impl WriteStats {
    /// The write transactions: [`on_callers_thread`](Self::on_callers_thread) plus
    /// [`groups`](Self::groups).
    pub fn transactions(&self) -> u64 {
        self.on_callers_thread + self.groups
    }

    /// The writes: those on their callers' threads plus those grouped.
    pub fn writes(&self) -> u64 {
        self.on_callers_thread + self.grouped_writes
    }
}

/// The counters behind [`WriteStats`], shared by the store and its writer thread, and the
/// writes queued for the writer thread.
#[derive(Debug, Default)]
pub(super) struct Counters {
    on_callers_thread: AtomicU64,
    groups: AtomicU64,
    grouped_writes: AtomicU64,
    /// Writes sent to the writer thread and not yet written (answered).
    queued: AtomicUsize,
    /// Whether the writer thread's last group had more than one write: writes of concurrent
    /// runs arrive together, and the next ones go to the writer thread too, to share its
    /// transactions. Cleared by a group of one (the writes come one at a time again).
    contended: AtomicBool,
}

impl Counters {
    /// Whether a new write should go to the writer thread, to be grouped: writes wait for it,
    /// or its last group had more than one.
    pub(super) fn to_writer(&self) -> bool {
        self.queued.load(Ordering::Acquire) > 0 || self.contended.load(Ordering::Relaxed)
    }

    /// A write made on its caller's thread.
    pub(super) fn on_callers_thread(&self) {
        self.on_callers_thread.fetch_add(1, Ordering::Relaxed);
    }

    /// A write sent to the writer thread.
    pub(super) fn queue(&self) {
        self.queued.fetch_add(1, Ordering::AcqRel);
    }

    /// A write that could not be sent to the writer thread (it stopped).
    pub(super) fn unqueue(&self) {
        self.queued.fetch_sub(1, Ordering::AcqRel);
    }

    /// A group of `size` writes written by the writer thread (counted before they are answered).
    pub(super) fn grouped(&self, size: usize) {
        self.groups.fetch_add(1, Ordering::Relaxed);
        self.grouped_writes
            .fetch_add(u64::try_from(size).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.contended.store(size > 1, Ordering::Relaxed);
        self.queued.fetch_sub(size, Ordering::AcqRel);
    }

    fn snapshot(&self) -> WriteStats {
        WriteStats {
            on_callers_thread: self.on_callers_thread.load(Ordering::Relaxed),
            groups: self.groups.load(Ordering::Relaxed),
            grouped_writes: self.grouped_writes.load(Ordering::Relaxed),
        }
    }
}

impl SqliteStore {
    /// How this store's writes reached the database since it was opened: on their callers'
    /// threads (one transaction each) or in the writer thread's groups. Reads are not
    /// counted, nor a transactional step's own transaction. It never blocks.
    pub fn write_stats(&self) -> WriteStats {
        self.counters.snapshot()
    }

    /// The writes waiting for the writer thread now: sent to it, not yet written and answered.
    /// It never blocks.
    pub fn queued_writes(&self) -> usize {
        self.counters.queued.load(Ordering::Acquire)
    }
}
