//! A PostgreSQL store, on tokio-postgres with a deadpool connection pool.
//!
//! The pool and its connections live on the store's own thread, which drives a
//! single-threaded tokio runtime: every operation is spawned there and its result awaited
//! from the caller's runtime. The caller's runtime can then be anything (a test's paused
//! clock cannot fire the pool's timeouts early, and a runtime that shuts down does not take
//! the store's connections with it). Each [`Store::commit`] is one transaction; concurrent
//! runs commit concurrently on up to [`PostgresStore::MAX_CONNECTIONS`] connections.
//!
//! The tables are `hookflow_runs` and `hookflow_events`, with JSON kept as text (exactly the
//! bytes serde_json wrote, as in the SQLite store); the schema version is the single row of
//! `hookflow_schema`. Connections are unencrypted (`NoTls`): use a local server, a private
//! network or a TLS-terminating proxy.

use std::thread;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::sync::oneshot;
use tokio_postgres::{NoTls, Row};

use super::row::{self, RECORD_COLUMNS, RawRun, micros, origin_str};
use super::{BoxFuture, Created, RunRecord, RunUpdate, Store, StoreError, StoredStatus};
use crate::context::RunId;
use crate::journal::Event;

/// The key of the advisory lock held while migrating, so that processes starting together
/// migrate one after the other.
const MIGRATION_LOCK: i64 = 0x686f_6f6b_666c_6f77; // "hookflow"

const MIGRATIONS: &[&str] = &[
    // 1: runs and their journals.
    "CREATE TABLE hookflow_runs (
        run_id          TEXT PRIMARY KEY,
        workflow        TEXT NOT NULL,
        version         BIGINT NOT NULL,
        input           TEXT NOT NULL,
        status          TEXT NOT NULL,
        idempotency_key TEXT UNIQUE,
        request_id      TEXT,
        actor           TEXT,
        origin          TEXT NOT NULL,
        additional_data TEXT,
        output          TEXT,
        error           TEXT,
        created_at      BIGINT NOT NULL,
        updated_at      BIGINT NOT NULL
    );
    CREATE INDEX hookflow_runs_by_status ON hookflow_runs (status, created_at);
    CREATE TABLE hookflow_events (
        run_id TEXT NOT NULL,
        seq    BIGINT NOT NULL,
        event  TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    );",
];

/// A [`Store`] in a PostgreSQL database.
///
/// ```no_run
/// # async fn demo() -> Result<(), hookflow_runtime::store::StoreError> {
/// use hookflow_runtime::store::postgres::PostgresStore;
/// let store = PostgresStore::connect("postgres://hookflow@localhost/hookflow").await?;
/// // Engine::builder().store(store).workflow::<Checkout>().build()
/// # drop(store); Ok(()) }
/// ```
pub struct PostgresStore {
    pool: Pool,
    runtime: tokio::runtime::Handle,
    /// Dropped with the store: its thread then stops and drops the runtime.
    _stop: oneshot::Sender<()>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("pool", &self.pool.status())
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// The most connections the pool opens.
    pub const MAX_CONNECTIONS: usize = 8;

    /// How long connecting, or waiting for a free connection, may take before the operation
    /// fails with [`StoreError::Unavailable`].
    pub const TIMEOUT: Duration = Duration::from_secs(10);

    /// Connects to the database at `url` (`postgres://user:password@host:port/database`, or
    /// a libpq key-value string), migrates it, and starts the store's thread.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the url cannot be parsed or the server cannot be
    /// reached or written, [`StoreError::IncompatibleSchema`] when a newer hookflow wrote the
    /// database.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let config: tokio_postgres::Config = url.parse().map_err(pg("parse the url"))?;
        let (runtime, stop) = start_thread()?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(Self::MAX_CONNECTIONS)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(Self::TIMEOUT))
            .wait_timeout(Some(Self::TIMEOUT))
            .recycle_timeout(Some(Self::TIMEOUT))
            .build()
            .map_err(|e| StoreError::Unavailable {
                context: "build the connection pool".into(),
                message: e.to_string(),
            })?;
        let store = PostgresStore {
            pool,
            runtime,
            _stop: stop,
        };
        let pool = store.pool.clone();
        store
            .spawn(async move {
                let mut client = get(&pool).await?;
                migrate(&mut client).await
            })
            .await?;
        Ok(store)
    }

    /// Runs `work` on the store's runtime.
    fn spawn<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, StoreError>> {
        let task = self.runtime.spawn(work);
        Box::pin(async move {
            task.await.map_err(|e| StoreError::Unavailable {
                context: "reach the store's thread".into(),
                message: e.to_string(),
            })?
        })
    }
}

/// Starts the thread that drives the store's runtime until the returned sender is dropped.
fn start_thread() -> Result<(tokio::runtime::Handle, oneshot::Sender<()>), StoreError> {
    let failed = |e: std::io::Error| StoreError::Unavailable {
        context: "start the store's thread".into(),
        message: e.to_string(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(failed)?;
    let handle = runtime.handle().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    thread::Builder::new()
        .name("hookflow-postgres".into())
        .spawn(move || {
            let _ = runtime.block_on(stopped);
        })
        .map_err(failed)?;
    Ok((handle, stop))
}

impl Store for PostgresStore {
    fn create<'a>(&'a self, run: &'a RunRecord) -> BoxFuture<'a, Result<Created, StoreError>> {
        let run = run.clone();
        let pool = self.pool.clone();
        self.spawn(async move {
            let client = get(&pool).await?;
            create(&client, &run).await
        })
    }

    fn commit<'a>(
        &'a self,
        run_id: RunId,
        events: &'a [Event],
        update: Option<RunUpdate>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let id = run_id.to_string();
        let bodies = events
            .iter()
            .map(|event| {
                let body = serde_json::to_string(event).map_err(|e| StoreError::Corrupt {
                    run_id: id.clone(),
                    message: format!("event {} cannot be serialized: {e}", event.seq),
                })?;
                Ok((i64::from(event.seq), body))
            })
            .collect::<Result<Vec<_>, StoreError>>();
        let pool = self.pool.clone();
        self.spawn(async move {
            let mut client = get(&pool).await?;
            commit(&mut client, run_id, bodies?, update).await
        })
    }

    fn load(&self, run_id: RunId) -> BoxFuture<'_, Result<(RunRecord, Vec<Event>), StoreError>> {
        let pool = self.pool.clone();
        self.spawn(async move {
            let client = get(&pool).await?;
            load(&client, run_id).await
        })
    }

    fn pending(&self) -> BoxFuture<'_, Result<Vec<RunRecord>, StoreError>> {
        let pool = self.pool.clone();
        self.spawn(async move {
            let client = get(&pool).await?;
            list(&client, Some(StoredStatus::Running), None, usize::MAX, true).await
        })
    }

    fn list<'a>(
        &'a self,
        status: Option<StoredStatus>,
        workflow: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<RunRecord>, StoreError>> {
        let workflow = workflow.map(str::to_owned);
        let pool = self.pool.clone();
        self.spawn(async move {
            let client = get(&pool).await?;
            list(&client, status, workflow.as_deref(), limit, false).await
        })
    }
}

async fn get(pool: &Pool) -> Result<deadpool_postgres::Object, StoreError> {
    pool.get().await.map_err(|e| StoreError::Unavailable {
        context: "connect to the database".into(),
        message: match &e {
            deadpool_postgres::PoolError::Backend(err) => db_message(err),
            other => other.to_string(),
        },
    })
}

/// A tokio-postgres error's message, with the server's or the socket's error it wraps.
fn db_message(err: &tokio_postgres::Error) -> String {
    match (err.as_db_error(), std::error::Error::source(err)) {
        (Some(db), _) => format!("{err}: {}", db.message()),
        (None, Some(source)) => format!("{err}: {source}"),
        (None, None) => err.to_string(),
    }
}

fn pg(context: &'static str) -> impl Fn(tokio_postgres::Error) -> StoreError {
    move |err| StoreError::Unavailable {
        context: context.to_owned(),
        message: db_message(&err),
    }
}

async fn migrate(client: &mut deadpool_postgres::Object) -> Result<(), StoreError> {
    let tx = client
        .transaction()
        .await
        .map_err(pg("begin a transaction"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg("lock the schema"))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS hookflow_schema (
            id      INTEGER PRIMARY KEY CHECK (id = 1),
            version BIGINT NOT NULL
        );
        INSERT INTO hookflow_schema (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;",
    )
    .await
    .map_err(pg("create the schema table"))?;
    let version: i64 = tx
        .query_one("SELECT version FROM hookflow_schema WHERE id = 1", &[])
        .await
        .map_err(pg("read the schema version"))?
        .get(0);
    for (next, migration) in row::pending_migrations(MIGRATIONS, version)? {
        tx.batch_execute(migration)
            .await
            .map_err(pg("migrate the schema"))?;
        tx.execute(
            "UPDATE hookflow_schema SET version = $1 WHERE id = 1",
            &[&next],
        )
        .await
        .map_err(pg("migrate the schema"))?;
    }
    tx.commit().await.map_err(pg("migrate the schema"))
}

async fn create(client: &tokio_postgres::Client, run: &RunRecord) -> Result<Created, StoreError> {
    let json = |v: &Option<serde_json::Value>| v.as_ref().map(serde_json::Value::to_string);
    let actor = run
        .actor
        .as_ref()
        .map(|a| serde_json::to_string(a).unwrap_or_default());
    let inserted = client
        .execute(
            "INSERT INTO hookflow_runs (run_id, workflow, version, input, status,
                idempotency_key, request_id, actor, origin, additional_data, output, error,
                created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
             ON CONFLICT (idempotency_key) DO NOTHING",
            &[
                &run.run_id.to_string(),
                &run.workflow,
                &i64::from(run.version),
                &run.input.to_string(),
                &run.status.as_str(),
                &run.idempotency_key,
                &run.request_id,
                &actor,
                &origin_str(run.origin),
                &json(&run.additional_data),
                &json(&run.output),
                &run.error,
                &micros(run.created_at_micros),
                &micros(run.updated_at_micros),
            ],
        )
        .await
        .map_err(pg("record a new run"))?;
    if inserted == 1 {
        return Ok(Created::New);
    }
    // A run with this idempotency key exists (the insert waited for it to be committed).
    let row = client
        .query_opt(
            &format!("SELECT {RECORD_COLUMNS} FROM hookflow_runs WHERE idempotency_key = $1"),
            &[&run.idempotency_key],
        )
        .await
        .map_err(pg("look up an idempotency key"))?
        .ok_or_else(|| StoreError::Unavailable {
            context: "look up an idempotency key".into(),
            message: "the run holding the key disappeared".into(),
        })?;
    Ok(Created::Existing(Box::new(record(&row)?)))
}

async fn commit(
    client: &mut deadpool_postgres::Object,
    run_id: RunId,
    events: Vec<(i64, String)>,
    update: Option<RunUpdate>,
) -> Result<(), StoreError> {
    let id = run_id.to_string();
    let now = micros(crate::journal::now_micros());
    let tx = client
        .transaction()
        .await
        .map_err(pg("begin a transaction"))?;
    let changed = match &update {
        Some(update) => tx
            .execute(
                "UPDATE hookflow_runs SET status = $2, output = $3, error = $4, updated_at = $5
                 WHERE run_id = $1",
                &[
                    &id,
                    &update.status.as_str(),
                    &update.output.as_ref().map(serde_json::Value::to_string),
                    &update.error,
                    &now,
                ],
            )
            .await
            .map_err(pg("update a run"))?,
        None => tx
            .execute(
                "UPDATE hookflow_runs SET updated_at = $2 WHERE run_id = $1",
                &[&id, &now],
            )
            .await
            .map_err(pg("update a run"))?,
    };
    if changed == 0 {
        // Dropping the transaction rolls it back.
        return Err(StoreError::NotFound(run_id));
    }
    if !events.is_empty() {
        let (seqs, bodies): (Vec<i64>, Vec<String>) = events.into_iter().unzip();
        tx.execute(
            "INSERT INTO hookflow_events (run_id, seq, event)
             SELECT $1, seq, event FROM UNNEST($2::BIGINT[], $3::TEXT[]) AS e (seq, event)
             ON CONFLICT (run_id, seq) DO UPDATE SET event = EXCLUDED.event",
            &[&id, &seqs, &bodies],
        )
        .await
        .map_err(pg("append an event"))?;
    }
    tx.commit().await.map_err(pg("commit"))
}

async fn load(
    client: &tokio_postgres::Client,
    run_id: RunId,
) -> Result<(RunRecord, Vec<Event>), StoreError> {
    let id = run_id.to_string();
    let row = client
        .query_opt(
            &format!("SELECT {RECORD_COLUMNS} FROM hookflow_runs WHERE run_id = $1"),
            &[&id],
        )
        .await
        .map_err(pg("read a run"))?
        .ok_or(StoreError::NotFound(run_id))?;
    let record = record(&row)?;
    let rows = client
        .query(
            "SELECT seq, event FROM hookflow_events WHERE run_id = $1 ORDER BY seq",
            &[&id],
        )
        .await
        .map_err(pg("read a journal"))?;
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        let seq: i64 = row.try_get(0).map_err(pg("read a journal"))?;
        let body: &str = row.try_get(1).map_err(pg("read a journal"))?;
        events.push(row::event(&id, seq, body)?);
    }
    Ok((record, events))
}

async fn list(
    client: &tokio_postgres::Client,
    status: Option<StoredStatus>,
    workflow: Option<&str>,
    limit: usize,
    oldest_first: bool,
) -> Result<Vec<RunRecord>, StoreError> {
    let order = if oldest_first { "ASC" } else { "DESC" };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = client
        .query(
            &format!(
                "SELECT {RECORD_COLUMNS} FROM hookflow_runs
                 WHERE ($1::TEXT IS NULL OR status = $1) AND ($2::TEXT IS NULL OR workflow = $2)
                 ORDER BY created_at {order}, run_id {order} LIMIT $3"
            ),
            &[&status.map(StoredStatus::as_str), &workflow, &limit],
        )
        .await
        .map_err(pg("list runs"))?;
    rows.iter().map(record).collect()
}

/// Reads a `hookflow_runs` row selected with [`RECORD_COLUMNS`].
fn record(row: &Row) -> Result<RunRecord, StoreError> {
    let read = pg("read a run");
    RawRun {
        run_id: row.try_get(0).map_err(&read)?,
        workflow: row.try_get(1).map_err(&read)?,
        version: row.try_get(2).map_err(&read)?,
        input: row.try_get(3).map_err(&read)?,
        status: row.try_get(4).map_err(&read)?,
        idempotency_key: row.try_get(5).map_err(&read)?,
        request_id: row.try_get(6).map_err(&read)?,
        actor: row.try_get(7).map_err(&read)?,
        origin: row.try_get(8).map_err(&read)?,
        additional_data: row.try_get(9).map_err(&read)?,
        output: row.try_get(10).map_err(&read)?,
        error: row.try_get(11).map_err(&read)?,
        created_at: row.try_get(12).map_err(&read)?,
        updated_at: row.try_get(13).map_err(&read)?,
    }
    .into_record()
}
