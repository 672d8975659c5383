//! Checkpoints off the committing thread. A checkpoint copies the pages of the write-ahead log
//! into the database file and syncs both (two fsyncs); SQLite's automatic one runs inside the
//! commit that takes the log past 1,000 pages, so that one commit in every few dozen runs
//! waited for the disk (a third of a sequential run's time). Here the store's connection has
//! no automatic checkpoint: a commit that leaves the log [`BACKGROUND`] pages larger than when
//! it last did wakes the store's checkpoint thread, which checkpoints on a connection of its
//! own (`PASSIVE`: it never waits for, nor blocks, a writer or a reader).
//!
//! A log is written again from its start only once a checkpoint copied all of it, and
//! commits that follow each other closely always leave a few pages the background checkpoint
//! has not copied: once the log holds [`INLINE`] pages or more, and the checkpoint thread
//! copied all but [`LEFT`] of them at most, a commit checkpoints the rest itself, on its own
//! connection, the store's other writes waiting, so that the next write starts the log again
//! (a commit at `INLINE` pages wakes the thread first if more is left); from twice `INLINE`
//! pages, the commit waits for the thread to end its checkpoint (on a disk slow to sync) and
//! checkpoints whatever is left. So the log stays under about `INLINE` pages of the store's
//! own writes, and never grows much past twice as many (a reader that holds an old snapshot
//! keeps it longer, as it always did).

use std::cell::Cell;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, TryLockError, mpsc};
use std::thread;
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::hooks::Wal;

use super::{Durability, unavailable};
use crate::store::StoreError;
use crate::types::lock;

/// How many pages the log grows by between two wakes of the checkpoint thread: SQLite's
/// default automatic checkpoint.
pub(super) const BACKGROUND: i32 = 1000;

/// The log's size in pages from which a commit checkpoints itself, so that the log starts
/// again: 16 MiB of a new store's 2 KiB pages (32 MiB of an older store's 4 KiB). The commit waits for the checkpoint's two syncs: one commit
/// in every 8,000 pages written. (A smaller log costs less CPU in the kernel, 2,000 pages
/// 10-15 µs less a sequential W5 run, but makes four times as many commits wait for the
/// disk: on a disk busy with other writes, up to 50 µs more a run.)
pub(super) const INLINE: i32 = 8000;

/// The most pages the checkpoint thread may have left for a commit at [`INLINE`] pages to
/// checkpoint them itself.
pub(super) const LEFT: i32 = 500;

thread_local! {
    /// The log's size in pages after the last commit on this thread (set by [`wal_size`]).
    static WAL_PAGES: Cell<i32> = const { Cell::new(0) };
}

/// The connection's write-ahead log hook: it replaces SQLite's automatic checkpoint, and
/// notes the log's size for [`Checkpoints::committed`], called on the same thread once the
/// commit returned.
#[allow(clippy::unnecessary_wraps)] // the hook's signature is rusqlite's
fn wal_size(_wal: &Wal, pages: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_PAGES.set(pages);
    Ok(())
}

/// The checkpoints of a store opened for writing: its checkpoint thread, woken over a channel.
#[derive(Debug)]
pub(super) struct Checkpoints {
    wake: mpsc::SyncSender<()>,
    /// The log's size when the checkpoint thread was last woken (0 once the log started
    /// again).
    woken_at: AtomicI32,
    /// Held by whoever checkpoints: the checkpoint thread, or a commit (a checkpoint made
    /// meanwhile would find the log busy and copy nothing). It holds the pages of the log the
    /// last checkpoint copied.
    checkpointing: Arc<Mutex<i32>>,
}

impl Checkpoints {
    /// Takes over the checkpoints of the store's connection `conn` (in WAL mode already), and
    /// starts the checkpoint thread, with a connection of its own to `path`. The thread ends
    /// once the store and its writer thread dropped their `Checkpoints`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the thread or its connection cannot be started.
    pub(super) fn start(
        conn: &Connection,
        path: &Path,
        durability: Durability,
        busy_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let own = Connection::open(path).map_err(unavailable("open the checkpoint connection"))?;
        own.busy_timeout(busy_timeout)
            .map_err(unavailable("configure the checkpoint connection"))?;
        // A checkpoint syncs as its connection says: as the store's commits do.
        let synchronous = match durability {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        };
        own.execute_batch(&format!("PRAGMA synchronous = {synchronous};"))
            .map_err(unavailable("configure the checkpoint connection"))?;
        let (wake, woken) = mpsc::sync_channel(1);
        let checkpointing = Arc::new(Mutex::new(0));
        let thread_checkpointing = Arc::clone(&checkpointing);
        thread::Builder::new()
            .name("hookflow-sqlite-checkpoint".into())
            .spawn(move || checkpointer(&own, &woken, &thread_checkpointing))
            .map_err(|e| StoreError::Unavailable {
                context: "start the checkpoint thread".into(),
                message: e.to_string(),
            })?;
        conn.wal_hook(Some(wal_size));
        Ok(Checkpoints {
            wake,
            woken_at: AtomicI32::new(0),
            checkpointing,
        })
    }

    /// After a commit on `conn` on this thread: wakes the checkpoint thread if the log grew by
    /// [`BACKGROUND`] pages since it last did; from [`INLINE`] pages, checkpoints here what
    /// the thread left (at most [`LEFT`] pages, or, from twice `INLINE`, whatever it left
    /// once it is done). Call it while the store's connection is still held, so that no write
    /// of this store comes in between.
    pub(super) fn committed(&self, conn: &Connection) {
        let pages = WAL_PAGES.replace(0);
        let mut woken_at = self.woken_at.load(Ordering::Relaxed);
        if pages < woken_at {
            // The log started again.
            woken_at = 0;
            self.woken_at.store(0, Ordering::Relaxed);
        }
        if pages >= INLINE {
            let copied = match self.checkpointing.try_lock() {
                Ok(copied) => Some(copied),
                Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
                Err(TryLockError::WouldBlock) if pages >= 2 * INLINE => {
                    Some(lock(&self.checkpointing))
                }
                Err(TryLockError::WouldBlock) => None,
            };
            match copied {
                Some(mut copied) if pages - *copied <= LEFT || pages >= 2 * INLINE => {
                    *copied = checkpoint(conn);
                    return;
                }
                // The thread copies most of it first.
                Some(_) => woken_at = 0,
                // The thread is at it.
                None => return,
            }
        }
        if pages >= woken_at + BACKGROUND {
            self.woken_at.store(pages, Ordering::Relaxed);
            // Full: the thread is woken already.
            let _ = self.wake.try_send(());
        }
    }
}

/// The checkpoint thread: a passive checkpoint each time it is woken, until the store is gone.
fn checkpointer(conn: &Connection, woken: &mpsc::Receiver<()>, checkpointing: &Mutex<i32>) {
    while woken.recv().is_ok() {
        let mut copied = lock(checkpointing);
        *copied = checkpoint(conn);
    }
}

/// A passive checkpoint on `conn`: as much of the log as no reader still needs. Returns the
/// pages of the log copied into the database so far (0 if it failed).
fn checkpoint(conn: &Connection) -> i32 {
    // Its row: whether it found the log busy, the log's pages, the pages copied.
    let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(2));
    done.unwrap_or_else(|err| {
        tracing::warn!(%err, "hookflow: a SQLite checkpoint failed");
        0
    })
}
