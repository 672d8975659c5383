//! An embedded SQLite store, on rusqlite, with one dedicated writer thread.
//!
//! Every operation goes to that thread over a channel. Writes that arrive together (the step
//! commits of concurrent runs) are grouped into one transaction: one fsync for many runs.
//! The database is in WAL mode with `synchronous = NORMAL`: a committed step survives a crash
//! of the process; after a power loss, the last transactions before it may be lost (the
//! database stays consistent, and those runs resume from an earlier step). Use
//! [`SqliteStore::open_with`] and [`Durability::Full`] for `synchronous = FULL`, which survives
//! power loss too, at the cost of an fsync per group.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use super::row::{self, RECORD_COLUMNS, RawRun, micros, origin_str, parse_run_id};
use super::{BoxFuture, Created, RunRecord, RunUpdate, Store, StoreError, StoredStatus};
use crate::context::RunId;
use crate::journal::Event;

/// The most writes grouped into one transaction.
const MAX_GROUP: usize = 256;

const MIGRATIONS: &[&str] = &[
    // 1: runs and their journals.
    "CREATE TABLE runs (
        run_id          TEXT PRIMARY KEY,
        workflow        TEXT NOT NULL,
        version         INTEGER NOT NULL,
        input           TEXT NOT NULL,
        status          TEXT NOT NULL,
        idempotency_key TEXT UNIQUE,
        request_id      TEXT,
        actor           TEXT,
        origin          TEXT NOT NULL,
        additional_data TEXT,
        output          TEXT,
        error           TEXT,
        created_at      INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL
    );
    CREATE INDEX runs_by_status ON runs (status, created_at);
    CREATE TABLE events (
        run_id TEXT NOT NULL,
        seq    INTEGER NOT NULL,
        event  TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    ) WITHOUT ROWID;",
];

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

enum Request {
    Create(Box<RunRecord>, oneshot::Sender<Result<Created, StoreError>>),
    Commit(
        RunId,
        Vec<Event>,
        Option<RunUpdate>,
        oneshot::Sender<Result<(), StoreError>>,
    ),
    Load(
        RunId,
        oneshot::Sender<Result<(RunRecord, Vec<Event>), StoreError>>,
    ),
    List(
        Option<StoredStatus>,
        Option<String>,
        usize,
        bool,
        oneshot::Sender<Result<Vec<RunRecord>, StoreError>>,
    ),
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

    /// Runs `write` in its own transaction on the caller's thread if the connection is free.
    fn write_now<T: Send + 'static>(
        &self,
        write: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Option<BoxFuture<'static, Result<T, StoreError>>> {
        let mut conn = self.conn.try_lock().ok()?;
        let result = (|| {
            let tx = conn
                .transaction()
                .map_err(unavailable("begin a transaction"))?;
            let value = write(&tx)?;
            tx.commit().map_err(unavailable("commit"))?;
            Ok(value)
        })();
        Some(Box::pin(std::future::ready(result)))
    }

    fn send<T: Send + 'static>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Request,
    ) -> BoxFuture<'static, Result<T, StoreError>> {
        let (reply, response) = oneshot::channel();
        let sent = self.requests.send(make(reply));
        Box::pin(async move {
            sent.map_err(|_| stopped())?;
            response.await.map_err(|_| stopped())?
        })
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable {
        context: "reach the writer thread".into(),
        message: "the SQLite writer thread stopped".into(),
    }
}

impl Store for SqliteStore {
    fn create<'a>(&'a self, run: &'a RunRecord) -> BoxFuture<'a, Result<Created, StoreError>> {
        if let Some(done) = self.write_now(|conn| create(conn, run)) {
            return done;
        }
        let run = Box::new(run.clone());
        self.send(move |reply| Request::Create(run, reply))
    }

    fn commit<'a>(
        &'a self,
        run_id: RunId,
        events: &'a [Event],
        update: Option<RunUpdate>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        if let Some(done) = self.write_now(|conn| commit(conn, run_id, events, update.as_ref())) {
            return done;
        }
        let events = events.to_vec();
        self.send(move |reply| Request::Commit(run_id, events, update, reply))
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

fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(unavailable("read the schema version"))?;
    for (next, migration) in row::pending_migrations(MIGRATIONS, version)? {
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {migration}; PRAGMA user_version = {next}; COMMIT;"
        ))
        .map_err(unavailable("migrate the schema"))?;
    }
    Ok(())
}

/// The writer thread: answers requests in order, grouping consecutive writes into one
/// transaction.
fn writer(conn: &Mutex<Connection>, requests: mpsc::Receiver<Request>) {
    let mut next = requests.recv().ok();
    while let Some(request) = next.take() {
        // A poisoned lock only means a panic while it was held; SQLite rolled back.
        let mut conn = conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match request {
            Request::Create(..) | Request::Commit(..) => {
                let mut group = vec![request];
                while group.len() < MAX_GROUP {
                    match requests.try_recv() {
                        Ok(r @ (Request::Create(..) | Request::Commit(..))) => group.push(r),
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                write_group(&mut conn, group);
            }
            Request::Load(run_id, reply) => {
                let _ = reply.send(load(&conn, run_id));
            }
            Request::List(status, workflow, limit, oldest_first, reply) => {
                let _ = reply.send(list(
                    &conn,
                    status,
                    workflow.as_deref(),
                    limit,
                    oldest_first,
                ));
            }
        }
        // Free the connection before waiting, for writes made on their callers' threads.
        drop(conn);
        if next.is_none() {
            next = requests.recv().ok();
        }
    }
}

enum Reply {
    Created(
        oneshot::Sender<Result<Created, StoreError>>,
        Result<Created, StoreError>,
    ),
    Committed(
        oneshot::Sender<Result<(), StoreError>>,
        Result<(), StoreError>,
    ),
}

/// Writes a group in one transaction; if the transaction fails as a whole, every write in it
/// gets the error (and none is recorded).
fn write_group(conn: &mut Connection, group: Vec<Request>) {
    let mut replies = Vec::with_capacity(group.len());
    let outcome = (|| -> Result<(), StoreError> {
        let tx = conn
            .transaction()
            .map_err(unavailable("begin a transaction"))?;
        for request in group {
            match request {
                Request::Create(run, reply) => {
                    let result = create(&tx, &run);
                    replies.push(Reply::Created(reply, result));
                }
                Request::Commit(run_id, events, update, reply) => {
                    let result = commit(&tx, run_id, &events, update.as_ref());
                    replies.push(Reply::Committed(reply, result));
                }
                Request::Load(..) | Request::List(..) => {}
            }
        }
        tx.commit().map_err(unavailable("commit"))
    })();
    for reply in replies {
        match (reply, &outcome) {
            (Reply::Created(tx, result), Ok(())) => drop(tx.send(result)),
            (Reply::Committed(tx, result), Ok(())) => drop(tx.send(result)),
            (Reply::Created(tx, _), Err(err)) => drop(tx.send(Err(clone_err(err)))),
            (Reply::Committed(tx, _), Err(err)) => drop(tx.send(Err(clone_err(err)))),
        }
    }
}

fn clone_err(err: &StoreError) -> StoreError {
    StoreError::Unavailable {
        context: "commit".into(),
        message: err.to_string(),
    }
}

fn create(conn: &Connection, run: &RunRecord) -> Result<Created, StoreError> {
    if let Some(key) = &run.idempotency_key {
        let existing: Option<String> = conn
            .query_row(
                "SELECT run_id FROM runs WHERE idempotency_key = ?1",
                params![key],
                |row| row.get(0),
            )
            .optional()
            .map_err(unavailable("look up an idempotency key"))?;
        if let Some(run_id) = existing {
            let run_id = parse_run_id(&run_id)?;
            return Ok(Created::Existing(Box::new(load_record(conn, run_id)?)));
        }
    }
    let json = |v: &Option<serde_json::Value>| v.as_ref().map(serde_json::Value::to_string);
    let actor = run
        .actor
        .as_ref()
        .map(|a| serde_json::to_string(a).unwrap_or_default());
    conn.execute(
        "INSERT INTO runs (run_id, workflow, version, input, status, idempotency_key,
            request_id, actor, origin, additional_data, output, error, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        params![
            run.run_id.to_string(),
            run.workflow,
            run.version,
            run.input.to_string(),
            run.status.as_str(),
            run.idempotency_key,
            run.request_id,
            actor,
            origin_str(run.origin),
            json(&run.additional_data),
            json(&run.output),
            run.error,
            micros(run.created_at_micros),
            micros(run.updated_at_micros),
        ],
    )
    .map_err(unavailable("record a new run"))?;
    Ok(Created::New)
}

fn commit(
    conn: &Connection,
    run_id: RunId,
    events: &[Event],
    update: Option<&RunUpdate>,
) -> Result<(), StoreError> {
    let id = run_id.to_string();
    let mut insert = conn
        .prepare_cached("INSERT OR REPLACE INTO events (run_id, seq, event) VALUES (?1, ?2, ?3)")
        .map_err(unavailable("prepare an event insert"))?;
    for event in events {
        let body = serde_json::to_string(event).map_err(|e| StoreError::Corrupt {
            run_id: id.clone(),
            message: format!("event {} cannot be serialized: {e}", event.seq),
        })?;
        insert
            .execute(params![id, event.seq, body])
            .map_err(unavailable("append an event"))?;
    }
    let now = micros(crate::journal::now_micros());
    let changed = match update {
        Some(update) => conn
            .execute(
                "UPDATE runs SET status = ?2, output = ?3, error = ?4, updated_at = ?5 WHERE run_id = ?1",
                params![
                    id,
                    update.status.as_str(),
                    update.output.as_ref().map(serde_json::Value::to_string),
                    update.error,
                    now
                ],
            )
            .map_err(unavailable("update a run"))?,
        None => conn
            .execute("UPDATE runs SET updated_at = ?2 WHERE run_id = ?1", params![id, now])
            .map_err(unavailable("update a run"))?,
    };
    if changed == 0 {
        return Err(StoreError::NotFound(run_id));
    }
    Ok(())
}

fn load(conn: &Connection, run_id: RunId) -> Result<(RunRecord, Vec<Event>), StoreError> {
    let record = load_record(conn, run_id)?;
    let id = run_id.to_string();
    let mut stmt = conn
        .prepare_cached("SELECT seq, event FROM events WHERE run_id = ?1 ORDER BY seq")
        .map_err(unavailable("read a journal"))?;
    let rows = stmt
        .query_map(params![id], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
        })
        .map_err(unavailable("read a journal"))?;
    let mut events = Vec::new();
    for row in rows {
        let (seq, body) = row.map_err(unavailable("read a journal"))?;
        events.push(row::event(&id, seq, &body)?);
    }
    Ok((record, events))
}

fn load_record(conn: &Connection, run_id: RunId) -> Result<RunRecord, StoreError> {
    let row = conn
        .query_row(
            &format!("SELECT {RECORD_COLUMNS} FROM runs WHERE run_id = ?1"),
            params![run_id.to_string()],
            raw_row,
        )
        .optional()
        .map_err(unavailable("read a run"))?;
    row.ok_or(StoreError::NotFound(run_id))?.into_record()
}

fn list(
    conn: &Connection,
    status: Option<StoredStatus>,
    workflow: Option<&str>,
    limit: usize,
    oldest_first: bool,
) -> Result<Vec<RunRecord>, StoreError> {
    let order = if oldest_first { "ASC" } else { "DESC" };
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {RECORD_COLUMNS} FROM runs
             WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR workflow = ?2)
             ORDER BY created_at {order}, run_id {order} LIMIT ?3"
        ))
        .map_err(unavailable("list runs"))?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt
        .query_map(
            params![status.map(StoredStatus::as_str), workflow, limit],
            raw_row,
        )
        .map_err(unavailable("list runs"))?;
    rows.map(|row| row.map_err(unavailable("list runs"))?.into_record())
        .collect()
}

fn raw_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawRun> {
    Ok(RawRun {
        run_id: row.get(0)?,
        workflow: row.get(1)?,
        version: row.get(2)?,
        input: row.get(3)?,
        status: row.get(4)?,
        idempotency_key: row.get(5)?,
        request_id: row.get(6)?,
        actor: row.get(7)?,
        origin: row.get(8)?,
        additional_data: row.get(9)?,
        output: row.get(10)?,
        error: row.get(11)?,
        created_at: row.get(12)?,
        updated_at: row.get(13)?,
    })
}
