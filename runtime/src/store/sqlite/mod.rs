//! An embedded SQLite store, on rusqlite, with one dedicated writer thread.
//!
//! A write that finds the connection free runs at once on the caller's thread; otherwise it
//! goes to the writer thread over a channel, and writes that arrive together there (the step
//! commits of concurrent runs) are grouped into one transaction: one fsync for many runs.
//! The database is in WAL mode with `synchronous = NORMAL`: a committed step survives a crash
//! of the process; after a power loss, the last transactions before it may be lost (the
//! database stays consistent, and those runs resume from an earlier step). Use
//! [`SqliteStore::open_with`] and [`Durability::Full`] for `synchronous = FULL`, which survives
//! power loss too, at the cost of an fsync per group.

mod queries;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

use rusqlite::Connection;

use self::queries::{claim, claim_next, commit, create, release, renew};
use self::schema::migrate;
use self::writer::{Request, writer};
use super::{
    BoxFuture, Claim, Created, Lease, RunRecord, RunUpdate, Store, StoreError, StoredRun,
    StoredStatus,
};
use crate::journal::Event;
use crate::types::RunId;

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
    /// goes to the writer, which groups it with the others waiting.
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteStore {
    /// Opens (or creates) the database at `path`, migrates it, and starts its writer thread.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the file cannot be opened or written (a missing
    /// directory, no permission, a read-only file), [`StoreError::IncompatibleSchema`] when a
    /// newer hookflow wrote it.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, Durability::Normal)
    }

    /// Opens the database at `path` with the given [`Durability`].
    ///
    /// # Errors
    /// As [`SqliteStore::open`].
    pub fn open_with(path: impl AsRef<Path>, durability: Durability) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let conn = Connection::open(&path).map_err(unavailable("open the database"))?;
        let synchronous = match durability {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        };
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; PRAGMA busy_timeout = 5000;"
        ))
        .map_err(unavailable("configure the database"))?;
        migrate(&conn)?;
        let (requests, receiver) = mpsc::channel();
        let conn = Arc::new(Mutex::new(conn));
        let shared = Arc::clone(&conn);
        thread::Builder::new()
            .name("hookflow-sqlite".into())
            .spawn(move || writer(&shared, receiver))
            .map_err(|e| StoreError::Unavailable {
                context: "start the writer thread".into(),
                message: e.to_string(),
            })?;
        Ok(SqliteStore {
            requests,
            conn,
            path,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Store for SqliteStore {
    fn create<'a>(
        &'a self,
        run: &'a RunRecord,
        lease: Option<&'a Lease>,
    ) -> BoxFuture<'a, Result<Created, StoreError>> {
        self.write(
            |conn| create(conn, run, lease),
            || {
                let run = run.clone();
                let lease = lease.cloned();
                move |conn: &Connection| create(conn, &run, lease.as_ref())
            },
        )
    }

    fn commit<'a>(
        &'a self,
        run_id: RunId,
        fence: u64,
        events: &'a [Event],
        update: Option<RunUpdate>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.write(
            |conn| commit(conn, run_id, fence, events, update.as_ref()),
            || {
                let events = events.to_vec();
                let update = update.clone();
                move |conn: &Connection| commit(conn, run_id, fence, &events, update.as_ref())
            },
        )
    }

    fn claim<'a>(
        &'a self,
        run_id: RunId,
        lease: &'a Lease,
    ) -> BoxFuture<'a, Result<Claim, StoreError>> {
        self.write(
            |conn| claim(conn, run_id, lease),
            || {
                let lease = lease.clone();
                move |conn: &Connection| claim(conn, run_id, &lease)
            },
        )
    }

    fn claim_next<'a>(
        &'a self,
        lease: &'a Lease,
        workflows: &'a [(String, u32)],
        skip: &'a [RunId],
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<StoredRun>, StoreError>> {
        self.write(
            |conn| claim_next(conn, lease, workflows, skip, limit),
            || {
                let lease = lease.clone();
                let workflows = workflows.to_vec();
                let skip = skip.to_vec();
                move |conn: &Connection| claim_next(conn, &lease, &workflows, &skip, limit)
            },
        )
    }

    fn renew<'a>(
        &'a self,
        lease: &'a Lease,
        runs: &'a [RunId],
    ) -> BoxFuture<'a, Result<usize, StoreError>> {
        self.write(
            |conn| renew(conn, lease, runs),
            || {
                let lease = lease.clone();
                let runs = runs.to_vec();
                move |conn: &Connection| renew(conn, &lease, &runs)
            },
        )
    }

    fn release(&self, run_id: RunId, fence: u64) -> BoxFuture<'_, Result<(), StoreError>> {
        self.write(
            |conn| release(conn, run_id, fence),
            || move |conn: &Connection| release(conn, run_id, fence),
        )
    }

    fn load(&self, run_id: RunId) -> BoxFuture<'_, Result<(RunRecord, Vec<Event>), StoreError>> {
        self.send(move |reply| Request::Load(run_id, reply))
    }

    fn pending(&self) -> BoxFuture<'_, Result<Vec<RunRecord>, StoreError>> {
        self.send(move |reply| {
            Request::List(Some(StoredStatus::Running), None, usize::MAX, true, reply)
        })
    }

    fn list<'a>(
        &'a self,
        status: Option<StoredStatus>,
        workflow: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<RunRecord>, StoreError>> {
        let workflow = workflow.map(str::to_owned);
        self.send(move |reply| Request::List(status, workflow, limit, false, reply))
    }
}

fn unavailable(context: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |err| StoreError::Unavailable {
        context: context.to_owned(),
        message: err.to_string(),
    }
}
