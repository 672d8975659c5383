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
use super::{
    BoxFuture, Claim, Created, Lease, RunRecord, RunUpdate, Store, StoreError, StoredRun,
    StoredStatus,
};
use crate::journal::Event;
use crate::types::{RunId, now_micros};

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
    // 2: leases (who may advance a run) and their fencing tokens.
    "ALTER TABLE runs ADD COLUMN owner TEXT;
    ALTER TABLE runs ADD COLUMN fence INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN lease_until INTEGER;",
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
    Write(Box<dyn Write>),
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

/// A write waiting for the writer thread: applied inside a group's transaction, answered
/// once the transaction committed (or failed).
trait Write: Send {
    fn apply(&mut self, conn: &Connection);
    fn answer(self: Box<Self>, failed: Option<&StoreError>);
}

struct WriteOp<T, F> {
    write: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Write for WriteOp<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send,
{
    fn apply(&mut self, conn: &Connection) {
        if let Some(write) = self.write.take() {
            self.result = Some(in_savepoint(conn, write));
        }
    }

    fn answer(self: Box<Self>, failed: Option<&StoreError>) {
        let result = match (failed, self.result) {
            (Some(err), _) => Err(clone_err(err)),
            (None, Some(result)) => result,
            (None, None) => Err(stopped()),
        };
        let _ = self.reply.send(result);
    }
}

/// Runs `write` so that, if it fails, nothing it wrote stays in the group's transaction.
fn in_savepoint<T>(
    conn: &Connection,
    write: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.execute_batch("SAVEPOINT hookflow_write")
        .map_err(unavailable("begin a savepoint"))?;
    let result = write(conn);
    let end = if result.is_ok() {
        "RELEASE hookflow_write"
    } else {
        "ROLLBACK TO hookflow_write; RELEASE hookflow_write"
    };
    conn.execute_batch(end)
        .map_err(unavailable("end a savepoint"))?;
    result
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

    /// Runs `now` in its own transaction on the caller's thread if the connection is free;
    /// otherwise sends the write `later` makes to the writer thread, which groups it with the
    /// others waiting.
    fn write<T, F>(
        &self,
        now: impl FnOnce(&Connection) -> Result<T, StoreError>,
        later: impl FnOnce() -> F,
    ) -> BoxFuture<'static, Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        if let Ok(mut conn) = self.conn.try_lock() {
            let result = (|| {
                let tx = conn
                    .transaction()
                    .map_err(unavailable("begin a transaction"))?;
                let value = now(&tx)?;
                tx.commit().map_err(unavailable("commit"))?;
                Ok(value)
            })();
            return Box::pin(std::future::ready(result));
        }
        let write = later();
        self.send(move |reply| {
            Request::Write(Box::new(WriteOp {
                write: Some(write),
                result: None,
                reply,
            }))
        })
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
            Request::Write(write) => {
                let mut group = vec![write];
                while group.len() < MAX_GROUP {
                    match requests.try_recv() {
                        Ok(Request::Write(write)) => group.push(write),
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

/// Writes a group in one transaction; if the transaction fails as a whole, every write in it
/// gets the error (and none is recorded).
fn write_group(conn: &mut Connection, mut group: Vec<Box<dyn Write>>) {
    let outcome = (|| -> Result<(), StoreError> {
        let tx = conn
            .transaction()
            .map_err(unavailable("begin a transaction"))?;
        for write in &mut group {
            write.apply(&tx);
        }
        tx.commit().map_err(unavailable("commit"))
    })();
    for write in group {
        write.answer(outcome.as_ref().err());
    }
}

fn clone_err(err: &StoreError) -> StoreError {
    StoreError::Unavailable {
        context: "commit".into(),
        message: err.to_string(),
    }
}

fn create(
    conn: &Connection,
    run: &RunRecord,
    lease: Option<&Lease>,
) -> Result<Created, StoreError> {
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
    let until = lease.map(|l| micros(now_micros().saturating_add(l.micros())));
    conn.prepare_cached(
        "INSERT INTO runs (run_id, workflow, version, input, status, idempotency_key,
            request_id, actor, origin, additional_data, output, error, created_at, updated_at,
            owner, fence, lease_until)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    )
    .and_then(|mut insert| {
        insert.execute(params![
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
            lease.map(|l| &l.owner),
            i64::from(lease.is_some()),
            until,
        ])
    })
    .map_err(unavailable("record a new run"))?;
    Ok(Created::New)
}

fn commit(
    conn: &Connection,
    run_id: RunId,
    fence: u64,
    events: &[Event],
    update: Option<&RunUpdate>,
) -> Result<(), StoreError> {
    let id = run_id.to_string();
    let now = micros(now_micros());
    let fence_sql = micros(fence);
    // The fence first: a refused write records nothing.
    let changed = match update {
        Some(update) => {
            let keep_lease = update.status == StoredStatus::Running;
            conn.prepare_cached(
                "UPDATE runs SET status = ?3, output = ?4, error = ?5, updated_at = ?6,
                    owner = CASE WHEN ?7 THEN owner END,
                    lease_until = CASE WHEN ?7 THEN lease_until END
                 WHERE run_id = ?1 AND fence = ?2",
            )
            .and_then(|mut update_run| {
                update_run.execute(params![
                    id,
                    fence_sql,
                    update.status.as_str(),
                    update.output.as_ref().map(serde_json::Value::to_string),
                    update.error,
                    now,
                    keep_lease,
                ])
            })
            .map_err(unavailable("update a run"))?
        }
        None => conn
            .prepare_cached("UPDATE runs SET updated_at = ?3 WHERE run_id = ?1 AND fence = ?2")
            .and_then(|mut touch| touch.execute(params![id, fence_sql, now]))
            .map_err(unavailable("update a run"))?,
    };
    if changed == 0 {
        return Err(refused(conn, run_id, fence));
    }
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
    Ok(())
}

/// Why a fenced write to `run_id` changed nothing: the run is gone, or its lease moved on.
fn refused(conn: &Connection, run_id: RunId, fence: u64) -> StoreError {
    let current: Option<i64> = conn
        .query_row(
            "SELECT fence FROM runs WHERE run_id = ?1",
            params![run_id.to_string()],
            |row| row.get(0),
        )
        .optional()
        .unwrap_or(None);
    match current {
        None => StoreError::NotFound(run_id),
        Some(current) => StoreError::Fenced {
            run_id,
            fence,
            current: u64::try_from(current).unwrap_or(0),
        },
    }
}

fn claim(conn: &Connection, run_id: RunId, lease: &Lease) -> Result<Claim, StoreError> {
    let record = load_record(conn, run_id)?;
    let now = now_micros();
    if record.status.is_finished() {
        let (record, events) = load(conn, run_id)?;
        return Ok(Claim::Finished(Box::new(record), events));
    }
    if let (Some(owner), Some(until)) = (&record.owner, record.lease_until_micros) {
        if *owner != lease.owner && until > now {
            return Ok(Claim::Held {
                owner: owner.clone(),
                until_micros: until,
            });
        }
    }
    take(conn, run_id, record.fence, lease, now)?;
    let (record, events) = load(conn, run_id)?;
    Ok(Claim::Acquired(Box::new(record), events))
}

/// Gives run `run_id`'s lease, at generation `fence`, to `lease.owner`: generation `fence + 1`.
fn take(
    conn: &Connection,
    run_id: RunId,
    fence: u64,
    lease: &Lease,
    now: u64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE runs SET owner = ?3, fence = fence + 1, lease_until = ?4
         WHERE run_id = ?1 AND fence = ?2",
    )
    .and_then(|mut take| {
        take.execute(params![
            run_id.to_string(),
            micros(fence),
            lease.owner,
            micros(now.saturating_add(lease.micros()))
        ])
    })
    .map_err(unavailable("claim a run"))?;
    Ok(())
}

fn claim_next(
    conn: &Connection,
    lease: &Lease,
    workflows: &[(String, u32)],
    skip: &[RunId],
    limit: usize,
) -> Result<Vec<StoredRun>, StoreError> {
    let now = now_micros();
    let mut free = conn
        .prepare_cached(
            "SELECT run_id, workflow, version, fence FROM runs
             WHERE status = 'running' AND (owner IS NULL OR lease_until IS NULL OR lease_until <= ?1)
             ORDER BY created_at, run_id",
        )
        .map_err(unavailable("find runs to claim"))?;
    let rows = free
        .query_map(params![micros(now)], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
            ))
        })
        .map_err(unavailable("find runs to claim"))?;
    let mut chosen = Vec::new();
    for row in rows {
        if chosen.len() >= limit {
            break;
        }
        let (run_id, workflow, version, fence) = row.map_err(unavailable("find runs to claim"))?;
        let run_id = parse_run_id(&run_id)?;
        if workflows
            .iter()
            .any(|(w, v)| *w == workflow && i64::from(*v) == version)
            && !skip.contains(&run_id)
        {
            chosen.push((run_id, u64::try_from(fence).unwrap_or(0)));
        }
    }
    drop(free);
    let mut claimed = Vec::with_capacity(chosen.len());
    for (run_id, fence) in chosen {
        take(conn, run_id, fence, lease, now)?;
        claimed.push(load(conn, run_id)?);
    }
    Ok(claimed)
}

fn renew(conn: &Connection, lease: &Lease, runs: &[RunId]) -> Result<usize, StoreError> {
    let until = micros(now_micros().saturating_add(lease.micros()));
    let mut renew = conn
        .prepare_cached("UPDATE runs SET lease_until = ?3 WHERE run_id = ?1 AND owner = ?2")
        .map_err(unavailable("renew a lease"))?;
    let mut renewed = 0;
    for run_id in runs {
        renewed += renew
            .execute(params![run_id.to_string(), lease.owner, until])
            .map_err(unavailable("renew a lease"))?;
    }
    Ok(renewed)
}

fn release(conn: &Connection, run_id: RunId, fence: u64) -> Result<(), StoreError> {
    let changed = conn
        .execute(
            "UPDATE runs SET owner = NULL, lease_until = NULL WHERE run_id = ?1 AND fence = ?2",
            params![run_id.to_string(), micros(fence)],
        )
        .map_err(unavailable("release a run"))?;
    if changed == 0 {
        return Err(refused(conn, run_id, fence));
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
        owner: row.get(14)?,
        fence: row.get(15)?,
        lease_until: row.get(16)?,
    })
}
