//! An embedded SQLite store, on rusqlite, with one dedicated writer thread.
//!
//! A write that finds the connection free runs at once on the caller's thread; otherwise it
//! goes to the writer thread over a channel, and writes that arrive together there (the step
//! commits of concurrent runs) are grouped into one transaction: one fsync for many runs.
//! The database is in WAL mode with `synchronous = NORMAL`: a committed step survives a crash
//! of the process; after a power loss, the last transactions before it may be lost (the
//! database stays consistent, and those runs resume from an earlier step). Use
//! [`SqliteBuilder::durability`] and [`Durability::Full`] for `synchronous = FULL`, which
//! survives power loss too, at the cost of an fsync per group. The write-ahead log is
//! checkpointed into the database file by a thread of the store's own, so that a commit does
//! not wait for the syncs of a checkpoint (but about one in every 8,000 pages written).
//!
//! Processes may share the file (each with its own worker id): every write transaction takes
//! the write lock up front (`BEGIN IMMEDIATE`), and waits for another process's up to the
//! busy timeout ([`SqliteBuilder::busy_timeout`], [`SqliteStore::BUSY_TIMEOUT`] by default)
//! before failing with "database is locked". Opening a new file is race-free too: the schema
//! version is read and the migrations applied under one write lock.

mod by_key;
mod checkpoint;
mod encoded;
mod errors;
mod fixed;
mod open;
mod page;
#[cfg(test)]
mod plans;
mod queries;
mod read;
mod schedules;
mod schema;
mod sql;
mod stats;
mod transaction;
mod waiting;
mod writer;

pub(crate) use self::transaction::SqliteTx;

pub use self::stats::WriteStats;

/// The rusqlite this store is built on: the connection a transactional step writes with is
/// one of its (`Transaction::sqlite`).
pub use rusqlite;

use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};

use std::thread;
use std::time::Duration;
use tokio::sync::Mutex;

use rusqlite::Connection;

use self::errors::{refusable, unavailable};
use self::fixed::Db;
use self::queries::{claim, claim_next, commit, create, prune, release, renew};
use self::writer::{Request, writer};
use super::{
    BoxFuture, Cancelling, Claim, Created, Delivery, Found, Lease, Message, RunRecord, RunUpdate,
    Store, StoreError, StoredRun, StoredStatus, Suspension, Wake, WakeupSignal, Wakeups,
};
use crate::journal::Event;
use crate::types::{CancelRequest, RunId};

/// How much a commit survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous = NORMAL` in WAL mode: survives a process crash, may lose the last
    /// transactions on power loss.
    #[default]
    Normal,
    /// `synchronous = FULL`: survives power loss too.
    Full,
}

/// A [`Store`] in a SQLite file.
///
/// ```
/// # fn main() -> Result<(), hookflow_runtime::store::StoreError> {
/// use hookflow_runtime::store::sqlite::SqliteStore;
/// let dir = std::env::temp_dir().join(format!("hookflow-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let store = SqliteStore::open(dir.join("runs.db"))?;
/// // Engine::builder().store(store).workflow::<Checkout>().build()
/// # drop(store); std::fs::remove_dir_all(dir).unwrap();
/// # Ok(()) }
/// ```
pub struct SqliteStore {
    requests: mpsc::Sender<Request>,
    /// The connection, shared with the writer thread: a write that finds it free runs at
    /// once on the caller's thread (no hop to the writer and back); one that finds it busy
    /// goes to the writer, which groups it with the others waiting. A transactional step
    /// holds it for its whole transaction ([`transaction`]); an asynchronous mutex, so that
    /// the step can hold it across its awaits.
    conn: Arc<Mutex<fixed::Db>>,
    path: PathBuf,
    /// Opened with [`SqliteStore::open_read_only`]: every write is refused.
    read_only: bool,
    /// Wakes the workers of this process waiting on this store ([`SqliteStore::claimable`]).
    wakeup: WakeupSignal,
    /// How the writes went ([`SqliteStore::write_stats`]), and the writes queued for the
    /// writer thread, shared with it.
    counters: Arc<stats::Counters>,
    /// The log's checkpoints, off the committing thread (`None` for a store opened read-only).
    checkpoints: Option<Arc<checkpoint::Checkpoints>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

/// How a [`SqliteStore`] is opened: its [`Durability`] and busy timeout.
///
/// ```
/// # fn main() -> Result<(), hookflow_runtime::store::StoreError> {
/// use std::time::Duration;
/// use hookflow_runtime::store::sqlite::{Durability, SqliteStore};
/// # let dir = std::env::temp_dir().join(format!("hookflow-doc-b-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// let store = SqliteStore::builder()
///     .durability(Durability::Full)
///     .busy_timeout(Duration::from_secs(30))
///     .open(dir.join("runs.db"))?;
/// # drop(store); std::fs::remove_dir_all(dir).unwrap();
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct SqliteBuilder {
    durability: Durability,
    busy_timeout: Duration,
    max_length: Option<u32>,
}

impl Default for SqliteBuilder {
    fn default() -> Self {
        SqliteBuilder {
            durability: Durability::Normal,
            busy_timeout: SqliteStore::BUSY_TIMEOUT,
            max_length: None,
        }
    }
}

impl SqliteBuilder {
    /// How much a commit survives ([`Durability::Normal`] by default).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// How long a write (or the migration when opening) waits for the write lock another
    /// process holds on the file before it fails with "database is locked"
    /// ([`SqliteStore::BUSY_TIMEOUT`], 5 s, by default). A run whose commit fails so ends
    /// `Interrupted`, to be resumed.
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// The largest string a store opened for writing writes or reads, in bytes: SQLite's
    /// `SQLITE_LIMIT_LENGTH`, 1,000,000,000 by default (the most it can be). A commit with a
    /// larger value (a step's output, in its journal event) is refused with "string or blob
    /// too big" ([`StoreError::Refused`]), and its run parked; a start with a larger input
    /// is rejected. Below [`EngineBuilder::max_record_bytes`](crate::EngineBuilder) it bounds
    /// what that lets through. A run already stored with a larger value cannot be read back
    /// while it is lower: lower it on a new store, or above what the store holds.
    pub fn max_length(mut self, bytes: u32) -> Self {
        self.max_length = Some(bytes);
        self
    }

    /// Opens (or creates) the database at `path`, migrates it, and starts its writer thread.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the file cannot be opened or written (a missing
    /// directory, no permission, a read-only file), [`StoreError::NotAStore`] when it is
    /// another application's database (left as it was), [`StoreError::IncompatibleSchema`]
    /// when a newer hookflow wrote it.
    pub fn open(&self, path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let conn = open::read_write(&path, self.durability, self.busy_timeout)?;
        if let Some(bytes) = self.max_length {
            let bytes = i32::try_from(bytes).unwrap_or(i32::MAX);
            conn.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH, bytes)
                .map_err(unavailable("set the length limit"))?;
        }
        let checkpoints =
            checkpoint::Checkpoints::start(&conn, &path, self.durability, self.busy_timeout)?;
        SqliteStore::start(conn, path, Some(checkpoints))
    }

    /// Opens the existing database at `path` to read it only: nothing is ever created,
    /// migrated or written (the file stays byte for byte as it was), and every write
    /// ([`Store::create`], [`Store::commit`], claims...) fails with
    /// [`StoreError::ReadOnly`]. The database is read under SQLite's locks, so that an engine
    /// may be writing to it meanwhile; on a read-only medium, where SQLite cannot create the
    /// `-wal` and `-shm` files it reads a WAL database with, a database without a `-wal` file
    /// is read as immutable.
    ///
    /// # Errors
    /// [`StoreError::NotAStore`] for an empty file, another application's database or a
    /// file that is not a SQLite database; [`StoreError::SchemaOutdated`] for a store an
    /// older hookflow wrote (opening it for writing once migrates it);
    /// [`StoreError::IncompatibleSchema`] for a newer hookflow's; [`StoreError::Unavailable`]
    /// when the file cannot be opened.
    pub fn open_read_only(&self, path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let conn = open::read_only(&path, self.busy_timeout)?;
        SqliteStore::start(conn, path, None)
    }
}

impl SqliteStore {
    /// How long a write waits for another process's write lock on the file, unless
    /// [`SqliteBuilder::busy_timeout`] says otherwise.
    pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

    /// How the store is opened: its durability and busy timeout.
    pub fn builder() -> SqliteBuilder {
        SqliteBuilder::default()
    }

    /// Opens (or creates) the database at `path`, migrates it, and starts its writer thread.
    ///
    /// # Errors
    /// As [`SqliteBuilder::open`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::builder().open(path)
    }

    /// Opens the database at `path` with the given [`Durability`].
    ///
    /// # Errors
    /// As [`SqliteBuilder::open`].
    pub fn open_with(path: impl AsRef<Path>, durability: Durability) -> Result<Self, StoreError> {
        Self::builder().durability(durability).open(path)
    }

    /// Opens the existing database at `path` to read it only: see
    /// [`SqliteBuilder::open_read_only`].
    ///
    /// # Errors
    /// As [`SqliteBuilder::open_read_only`].
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::builder().open_read_only(path)
    }

    /// Starts the writer thread; a store without `checkpoints` is read-only.
    fn start(
        conn: Connection,
        path: PathBuf,
        checkpoints: Option<checkpoint::Checkpoints>,
    ) -> Result<Self, StoreError> {
        let (requests, receiver) = mpsc::channel();
        let conn = Arc::new(Mutex::new(fixed::Db::new(conn)));
        let shared = Arc::clone(&conn);
        let counters = Arc::new(stats::Counters::default());
        let writer_counters = Arc::clone(&counters);
        let read_only = checkpoints.is_none();
        let checkpoints = checkpoints.map(Arc::new);
        let writer_checkpoints = checkpoints.clone();
        thread::Builder::new()
            .name("hookflow-sqlite".into())
            .spawn(move || {
                writer(
                    &shared,
                    receiver,
                    &writer_counters,
                    writer_checkpoints.as_deref(),
                );
            })
            .map_err(|e| StoreError::Unavailable {
                context: "start the writer thread".into(),
                message: e.to_string(),
            })?;
        Ok(SqliteStore {
            requests,
            conn,
            path,
            read_only,
            wakeup: WakeupSignal::default(),
            counters,
            checkpoints,
        })
    }

    /// Wakes the workers of this process waiting on this store ([`Store::wakeups`]): a run
    /// became claimable. Every write through this store that makes a run claimable calls it
    /// once the write is committed (creating a free run, releasing one). Other processes
    /// sharing the file are not woken: they find the run at their next poll.
    pub(crate) fn claimable(&self) {
        self.wakeup.claimable();
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the store was opened read-only ([`SqliteStore::open_read_only`]).
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }
}

impl Store for SqliteStore {
    fn create<'a>(
        &'a self,
        run: &'a RunRecord,
        lease: Option<&'a Lease>,
    ) -> BoxFuture<'a, Result<Created, StoreError>> {
        let written = self.write(
            "record a new run",
            |conn| create(conn, run, lease),
            || {
                // Encoded here, on the caller's thread: the writer thread only writes.
                let encoded = queries::RunJson::of(run);
                let run = run.clone();
                let lease = lease.cloned();
                move |conn: &Db| queries::create_encoded(conn, &run, &encoded, lease.as_ref())
            },
        );
        Box::pin(async move {
            let created = written.await?;
            if lease.is_none() && created == Created::New {
                self.claimable();
            }
            Ok(created)
        })
    }

    fn commit<'a>(
        &'a self,
        run_id: RunId,
        fence: u64,
        events: &'a [Event],
        update: Option<RunUpdate>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.write(
            "commit",
            |conn| commit(conn, run_id, fence, events, update.as_ref()),
            || queries::commit_later(run_id, fence, events, update.as_ref()),
        )
    }

    fn commit_encoded<'a>(
        &'a self,
        run_id: RunId,
        fence: u64,
        events: &[Event],
        update: Option<&RunUpdate>,
    ) -> Option<BoxFuture<'a, Result<(), StoreError>>> {
        let write = queries::commit_later(run_id, fence, events, update);
        Some(Box::pin(
            async move { self.write_now("commit", write).await },
        ))
    }

    fn claim<'a>(
        &'a self,
        run_id: RunId,
        lease: &'a Lease,
    ) -> BoxFuture<'a, Result<Claim, StoreError>> {
        self.write(
            "claim a run",
            |conn| claim(conn, run_id, lease),
            || {
                let lease = lease.clone();
                move |conn: &Db| claim(conn, run_id, &lease)
            },
        )
    }

    fn claim_next<'a>(
        &'a self,
        lease: &'a Lease,
        workflows: &'a [(String, u32)],
        skip: &'a [RunId],
        limit: usize,
    ) -> BoxFuture<'a, Result<Found<StoredRun>, StoreError>> {
        self.write(
            "claim runs",
            |conn| claim_next(conn, lease, workflows, skip, limit),
            || {
                let lease = lease.clone();
                let workflows = workflows.to_vec();
                let skip = skip.to_vec();
                move |conn: &Db| claim_next(conn, &lease, &workflows, &skip, limit)
            },
        )
    }

    fn renew<'a>(
        &'a self,
        lease: &'a Lease,
        runs: &'a [RunId],
    ) -> BoxFuture<'a, Result<usize, StoreError>> {
        self.write(
            "renew a lease",
            |conn| renew(conn, lease, runs),
            || {
                let lease = lease.clone();
                let runs = runs.to_vec();
                move |conn: &Db| renew(conn, &lease, &runs)
            },
        )
    }

    fn release(&self, run_id: RunId, fence: u64) -> BoxFuture<'_, Result<(), StoreError>> {
        let written = self.write(
            "release a run",
            |conn| release(conn, run_id, fence),
            || move |conn: &Db| release(conn, run_id, fence),
        );
        Box::pin(async move {
            written.await?;
            self.claimable();
            Ok(())
        })
    }

    fn load(&self, run_id: RunId) -> BoxFuture<'_, Result<(RunRecord, Vec<Event>), StoreError>> {
        self.send(move |reply| Request::Load(run_id, reply))
    }

    fn pending(&self) -> BoxFuture<'_, Result<Found<RunRecord>, StoreError>> {
        // Read-only: report the unreadable runs without quarantining them.
        if self.read_only {
            return self.send(Request::Pending);
        }
        // Quarantining writes: in one write transaction with the reads.
        self.write(
            "quarantine unreadable runs",
            |conn| read::pending(conn, true),
            || move |conn: &Db| read::pending(conn, true),
        )
    }

    fn list<'a>(
        &'a self,
        status: Option<StoredStatus>,
        workflow: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Found<RunRecord>, StoreError>> {
        let workflow = workflow.map(str::to_owned);
        self.send(move |reply| Request::List(status, workflow, limit, false, reply))
    }

    fn prune(
        &self,
        ended_before_micros: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<usize, StoreError>> {
        self.write(
            "prune ended runs",
            |conn| prune(conn, ended_before_micros, limit),
            || move |conn: &Db| prune(conn, ended_before_micros, limit),
        )
    }

    fn suspend<'a>(
        &'a self,
        run_id: RunId,
        fence: u64,
        events: &'a [Event],
        suspension: &'a Suspension,
    ) -> BoxFuture<'a, Result<Option<Wake>, StoreError>> {
        self.write(
            "suspend a run",
            |conn| waiting::suspend(conn, run_id, fence, events, suspension),
            || {
                let events = events.to_vec();
                let suspension = suspension.clone();
                move |conn: &Db| waiting::suspend(conn, run_id, fence, &events, &suspension)
            },
        )
    }

    fn deliver<'a>(
        &'a self,
        run_id: RunId,
        workflow: &'a str,
        message: &'a Message,
    ) -> BoxFuture<'a, Result<Delivery, StoreError>> {
        let delivered = self.write(
            "deliver an event",
            |conn| waiting::deliver(conn, run_id, workflow, message),
            || {
                let workflow = workflow.to_owned();
                let message = message.clone();
                move |conn: &Db| waiting::deliver(conn, run_id, &workflow, &message)
            },
        );
        Box::pin(async move {
            let delivery = delivered.await?;
            if delivery == (Delivery::Accepted { woke: true }) {
                self.claimable();
            }
            Ok(delivery)
        })
    }

    fn message<'a>(
        &'a self,
        run_id: RunId,
        event: &'a str,
        index: u32,
    ) -> BoxFuture<'a, Result<Option<Message>, StoreError>> {
        self.write(
            "read a run's inbox",
            |conn| waiting::message(conn, run_id, event, index),
            || {
                let event = event.to_owned();
                move |conn: &Db| waiting::message(conn, run_id, &event, index)
            },
        )
    }

    fn cancel<'a>(
        &'a self,
        run_id: RunId,
        request: &'a CancelRequest,
    ) -> BoxFuture<'a, Result<Cancelling, StoreError>> {
        let cancelled = self.write(
            "cancel a run",
            |conn| waiting::cancel(conn, run_id, request),
            || {
                let request = request.clone();
                move |conn: &Db| waiting::cancel(conn, run_id, &request)
            },
        );
        Box::pin(async move {
            let cancelling = cancelled.await?;
            if cancelling == (Cancelling::Requested { woke: true }) {
                self.claimable();
            }
            Ok(cancelling)
        })
    }

    fn cancel_requests<'a>(
        &'a self,
        runs: &'a [RunId],
    ) -> BoxFuture<'a, Result<Vec<(RunId, CancelRequest)>, StoreError>> {
        self.write(
            "look for cancellations",
            |conn| waiting::cancel_requests(conn, runs),
            || {
                let runs = runs.to_vec();
                move |conn: &Db| waiting::cancel_requests(conn, &runs)
            },
        )
    }

    fn list_page<'a>(
        &'a self,
        filter: &'a super::RunFilter,
    ) -> BoxFuture<'a, Result<super::RunPage, StoreError>> {
        let filter = Box::new(filter.clone());
        self.send(move |reply| Request::Page(filter, reply))
    }

    fn wakeups(&self) -> Wakeups {
        if self.read_only {
            return Wakeups::never();
        }
        self.wakeup.subscribe()
    }

    fn begin(&self) -> BoxFuture<'_, Result<Box<dyn super::StoreTransaction>, StoreError>> {
        self.begin_transaction()
    }
    crate::store::schedules::forward_schedules!();

    fn find_by_idempotency_key<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<RunRecord>, StoreError>> {
        // A read: through the writer thread, in a store opened read-only too.
        let key = key.to_owned();
        self.send(move |reply| {
            Request::Read(Box::new(move |conn: &Connection| {
                let _ = reply.send(by_key::find(conn, &key));
            }))
        })
    }
}
