//! A PostgreSQL store, on tokio-postgres with a deadpool connection pool.
//!
//! The pool and its connections live on the store's own thread, which drives a
//! single-threaded tokio runtime: every operation is spawned there and its result awaited
//! from the caller's runtime. The caller's runtime can then be anything (a test's paused
//! clock cannot fire the pool's timeouts early, and a runtime that shuts down does not take
//! the store's connections with it). Commits go to a committer task: it takes all the
//! commits waiting and writes them with one statement, so that concurrent runs share round
//! trips and WAL flushes. Lease times are read from the database's clock, the one every
//! worker shares.
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

use super::row::{self, RECORD_COLUMNS, RawRun, micros, origin_str, parse_run_id};
use super::{
    BoxFuture, Claim, Created, Lease, RunRecord, RunUpdate, Store, StoreError, StoredRun,
    StoredStatus,
};
use crate::journal::Event;
use crate::types::{RunId, now_micros};

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
    // 2: leases (who may advance a run), their fencing tokens, and their duration (a commit
    // renews its run's lease).
    "ALTER TABLE hookflow_runs
        ADD COLUMN owner TEXT,
        ADD COLUMN fence BIGINT NOT NULL DEFAULT 0,
        ADD COLUMN lease_until BIGINT,
        ADD COLUMN lease_micros BIGINT NOT NULL DEFAULT 0;",
];

/// The database's clock, in microseconds since the Unix epoch: leases are timed by the one
/// clock every worker shares.
const NOW: &str = "(extract(epoch from clock_timestamp()) * 1000000)::BIGINT";

/// How many tasks write groups of commits at once (each on its own connection). One is the
/// fastest measured (`bench_workers`, 4 worker processes x 16 runs in flight: 2,646 runs/s
/// with one, 2,334 with two, 1,881 with four): while it writes a group, the next gathers, and
/// fewer, larger statements leave the server's CPU to the work.
const COMMITTERS: usize = 1;

/// The most commits written in one statement.
const MAX_GROUP: usize = 512;

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
    /// Commits go to the committers, which write those waiting together in one statement.
    commits: tokio::sync::mpsc::UnboundedSender<PendingCommit>,
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
            // Claims, commits and fencing tokens are only as good as the commits are durable:
            // a server configured with `synchronous_commit = off` can lose acknowledged
            // claims when it crashes, and two workers could then both hold generation 1.
            .post_create(deadpool_postgres::Hook::async_fn(|client, _| {
                Box::pin(async move {
                    client
                        .batch_execute("SET synchronous_commit = on")
                        .await
                        .map_err(deadpool_postgres::HookError::Backend)
                })
            }))
            .build()
            .map_err(|e| StoreError::Unavailable {
                context: "build the connection pool".into(),
                message: e.to_string(),
            })?;
        let (commits, pending) = tokio::sync::mpsc::unbounded_channel();
        let pending = std::sync::Arc::new(tokio::sync::Mutex::new(pending));
        for _ in 0..COMMITTERS {
            runtime.spawn(committer(pool.clone(), std::sync::Arc::clone(&pending)));
        }
        let store = PostgresStore {
            pool,
            commits,
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
    fn create<'a>(
        &'a self,
        run: &'a RunRecord,
        lease: Option<&'a Lease>,
    ) -> BoxFuture<'a, Result<Created, StoreError>> {
        let run = run.clone();
        let lease = lease.cloned();
        let pool = self.pool.clone();
        self.spawn(async move {
            let client = get(&pool).await?;
            create(&client, &run, lease.as_ref()).await
        })
    }

    fn commit<'a>(
        &'a self,
        run_id: RunId,
        fence: u64,
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
        let (reply, response) = oneshot::channel();
        let sent = bodies.map(|events| {
            self.commits.send(PendingCommit {
                run_id,
                fence: micros(fence),
                events,
                update,
                reply,
            })
        });
        Box::pin(async move {
            sent?.map_err(|_| stopped())?;
            response.await.map_err(|_| stopped())?
        })
    }

    fn claim<'a>(
        &'a self,
        run_id: RunId,
        lease: &'a Lease,
    ) -> BoxFuture<'a, Result<Claim, StoreError>> {
        let lease = lease.clone();
        let pool = self.pool.clone();
        self.spawn(async move {
            let client = get(&pool).await?;
            claim(&client, run_id, &lease).await
        })
    }

    fn claim_next<'a>(
        &'a self,
        lease: &'a Lease,
        workflows: &'a [(String, u32)],
        skip: &'a [RunId],
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<StoredRun>, StoreError>> {
        let lease = lease.clone();
        let workflows = workflows.to_vec();
        let skip: Vec<String> = skip.iter().map(ToString::to_string).collect();
        let pool = self.pool.clone();
        self.spawn(async move {
            let client = get(&pool).await?;
            claim_next(&client, &lease, &workflows, &skip, limit).await
        })
    }

    fn renew<'a>(
        &'a self,
        lease: &'a Lease,
        runs: &'a [RunId],
    ) -> BoxFuture<'a, Result<usize, StoreError>> {
        let lease = lease.clone();
        let ids: Vec<String> = runs.iter().map(ToString::to_string).collect();
        let pool = self.pool.clone();
        self.spawn(async move {
            let client = get(&pool).await?;
            // Rows a commit is writing are skipped (that commit renews them): no lock waits,
            // no deadlock with the committers.
            let renewed = client
                .execute(
                    &format!(
                        "UPDATE hookflow_runs SET lease_until = {NOW} + $2, lease_micros = $2
                         WHERE run_id IN (SELECT run_id FROM hookflow_runs
                             WHERE run_id = ANY($3) AND owner = $1 FOR UPDATE SKIP LOCKED)"
                    ),
                    &[&lease.owner, &micros(lease.micros()), &ids],
                )
                .await
                .map_err(pg("renew leases"))?;
            Ok(usize::try_from(renewed).unwrap_or(usize::MAX))
        })
    }

    fn release(&self, run_id: RunId, fence: u64) -> BoxFuture<'_, Result<(), StoreError>> {
        let pool = self.pool.clone();
        self.spawn(async move {
            let client = get(&pool).await?;
            let changed = client
                .execute(
                    "UPDATE hookflow_runs SET owner = NULL, lease_until = NULL
                     WHERE run_id = $1 AND fence = $2",
                    &[&run_id.to_string(), &micros(fence)],
                )
                .await
                .map_err(pg("release a run"))?;
            if changed == 0 {
                return Err(refused(&client, run_id, fence).await);
            }
            Ok(())
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

async fn create(
    client: &deadpool_postgres::Client,
    run: &RunRecord,
    lease: Option<&Lease>,
) -> Result<Created, StoreError> {
    let json = |v: &Option<serde_json::Value>| v.as_ref().map(serde_json::Value::to_string);
    let actor = run
        .actor
        .as_ref()
        .map(|a| serde_json::to_string(a).unwrap_or_default());
    let statement = client
        .prepare_cached(&format!(
            "INSERT INTO hookflow_runs (run_id, workflow, version, input, status,
                idempotency_key, request_id, actor, origin, additional_data, output, error,
                created_at, updated_at, owner, fence, lease_until, lease_micros)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                $15, $16, CASE WHEN $15::TEXT IS NULL THEN NULL ELSE {NOW} + $17 END, $17)
             ON CONFLICT (idempotency_key) DO NOTHING"
        ))
        .await
        .map_err(pg("prepare an insert"))?;
    let inserted = client
        .execute(
            &statement,
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
                &lease.map(|l| &l.owner),
                &i64::from(lease.is_some()),
                &micros(lease.map_or(0, Lease::micros)),
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

/// A commit waiting for a committer.
struct PendingCommit {
    run_id: RunId,
    fence: i64,
    events: Vec<(i64, String)>,
    update: Option<RunUpdate>,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

fn stopped() -> StoreError {
    StoreError::Unavailable {
        context: "reach the store's thread".into(),
        message: "the PostgreSQL store stopped".into(),
    }
}

/// Takes the commits waiting (all of them, up to [`MAX_GROUP`]) and writes them in one
/// statement: one round trip and one WAL flush for the step commits of many runs. While it
/// writes, the next commits gather for the next committer.
async fn committer(
    pool: Pool,
    pending: std::sync::Arc<
        tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<PendingCommit>>,
    >,
) {
    loop {
        let group = {
            let mut pending = pending.lock().await;
            let Some(first) = pending.recv().await else {
                return;
            };
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match pending.try_recv() {
                    Ok(next) => group.push(next),
                    Err(_) => break,
                }
            }
            group
        };
        let results = match get(&pool).await {
            Ok(client) => write_group(&client, &group).await,
            Err(err) => Err(err),
        };
        match results {
            Ok(results) => {
                for (commit, result) in group.into_iter().zip(results) {
                    let _ = commit.reply.send(result);
                }
            }
            Err(err) => {
                for commit in group {
                    let _ = commit.reply.send(Err(StoreError::Unavailable {
                        context: "commit".into(),
                        message: err.to_string(),
                    }));
                }
            }
        }
    }
}

/// Writes `group` in one statement: each commit's run row is updated if its fence holds, and
/// its events are inserted only then. Returns each commit's result, in order.
async fn write_group(
    client: &deadpool_postgres::Client,
    group: &[PendingCommit],
) -> Result<Vec<Result<(), StoreError>>, StoreError> {
    let now = micros(now_micros());
    let mut ids = Vec::with_capacity(group.len());
    let mut fences = Vec::with_capacity(group.len());
    let mut updates = Vec::with_capacity(group.len());
    let mut statuses = Vec::with_capacity(group.len());
    let mut outputs = Vec::with_capacity(group.len());
    let mut errors = Vec::with_capacity(group.len());
    let (mut event_ids, mut seqs, mut bodies) = (Vec::new(), Vec::new(), Vec::new());
    for commit in group {
        let id = commit.run_id.to_string();
        for (seq, body) in &commit.events {
            event_ids.push(id.clone());
            seqs.push(*seq);
            bodies.push(body.as_str());
        }
        ids.push(id);
        fences.push(commit.fence);
        updates.push(commit.update.is_some());
        statuses.push(commit.update.as_ref().map(|u| u.status.as_str()));
        outputs.push(
            commit
                .update
                .as_ref()
                .and_then(|u| u.output.as_ref())
                .map(serde_json::Value::to_string),
        );
        errors.push(commit.update.as_ref().and_then(|u| u.error.as_deref()));
    }
    let statement = client
        .prepare_cached(&format!(
                "WITH c AS (
                    SELECT * FROM UNNEST($1::TEXT[], $2::BIGINT[], $3::BOOL[], $4::TEXT[],
                        $5::TEXT[], $6::TEXT[]) AS c (run_id, fence, has_update, status, output, error)
                ), u AS (
                    UPDATE hookflow_runs r SET
                        status = CASE WHEN c.has_update THEN c.status ELSE r.status END,
                        output = CASE WHEN c.has_update THEN c.output ELSE r.output END,
                        error = CASE WHEN c.has_update THEN c.error ELSE r.error END,
                        owner = CASE WHEN c.has_update AND c.status <> 'running'
                            THEN NULL ELSE r.owner END,
                        lease_until = CASE WHEN c.has_update AND c.status <> 'running'
                            THEN NULL ELSE {NOW} + r.lease_micros END,
                        updated_at = $7
                    FROM c WHERE r.run_id = c.run_id AND r.fence = c.fence
                    RETURNING r.run_id
                ), e AS (
                    INSERT INTO hookflow_events (run_id, seq, event)
                    SELECT ev.run_id, ev.seq, ev.event
                    FROM UNNEST($8::TEXT[], $9::BIGINT[], $10::TEXT[]) AS ev (run_id, seq, event)
                    WHERE ev.run_id IN (SELECT run_id FROM u)
                    ON CONFLICT (run_id, seq) DO UPDATE SET event = EXCLUDED.event
                )
                SELECT run_id FROM u"
            ))
        .await
        .map_err(pg("prepare a commit"))?;
    let rows = client
        .query(
            &statement,
            &[
                &ids, &fences, &updates, &statuses, &outputs, &errors, &now, &event_ids, &seqs,
                &bodies,
            ],
        )
        .await
        .map_err(pg("commit"))?;
    let written: std::collections::HashSet<&str> = rows
        .iter()
        .filter_map(|row| row.try_get::<_, &str>(0).ok())
        .collect();
    let mut results = Vec::with_capacity(group.len());
    for (commit, id) in group.iter().zip(&ids) {
        results.push(if written.contains(id.as_str()) {
            Ok(())
        } else {
            Err(refused(
                client,
                commit.run_id,
                u64::try_from(commit.fence).unwrap_or(0),
            )
            .await)
        });
    }
    Ok(results)
}

/// Why a fenced write to `run_id` changed nothing: the run is gone, or its lease moved on.
async fn refused(client: &tokio_postgres::Client, run_id: RunId, fence: u64) -> StoreError {
    match client
        .query_opt(
            "SELECT fence FROM hookflow_runs WHERE run_id = $1",
            &[&run_id.to_string()],
        )
        .await
    {
        Ok(None) => StoreError::NotFound(run_id),
        Ok(Some(row)) => StoreError::Fenced {
            run_id,
            fence,
            current: row
                .try_get::<_, i64>(0)
                .ok()
                .and_then(|f| u64::try_from(f).ok())
                .unwrap_or(0),
        },
        Err(err) => pg("read a run's lease")(err),
    }
}

async fn claim(
    client: &deadpool_postgres::Client,
    run_id: RunId,
    lease: &Lease,
) -> Result<Claim, StoreError> {
    let id = run_id.to_string();
    let taken = client
        .execute(
            &format!(
                "UPDATE hookflow_runs SET owner = $2, fence = fence + 1,
                    lease_until = {NOW} + $3, lease_micros = $3
                 WHERE run_id = $1 AND status IN ('running', 'parked')
                    AND (owner IS NULL OR owner = $2 OR lease_until IS NULL
                        OR lease_until <= {NOW})"
            ),
            &[&id, &lease.owner, &micros(lease.micros())],
        )
        .await
        .map_err(pg("claim a run"))?;
    let (record, events) = load(client, run_id).await?;
    if taken == 1 {
        return Ok(Claim::Acquired(Box::new(record), events));
    }
    if record.status.is_finished() {
        return Ok(Claim::Finished(Box::new(record), events));
    }
    Ok(Claim::Held {
        owner: record.owner.clone().unwrap_or_default(),
        until_micros: record.lease_until_micros.unwrap_or(0),
    })
}

async fn claim_next(
    client: &deadpool_postgres::Client,
    lease: &Lease,
    workflows: &[(String, u32)],
    skip: &[String],
    limit: usize,
) -> Result<Vec<StoredRun>, StoreError> {
    let names: Vec<&str> = workflows.iter().map(|(w, _)| w.as_str()).collect();
    let versions: Vec<i64> = workflows.iter().map(|(_, v)| i64::from(*v)).collect();
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let statement = client
        .prepare_cached(&format!(
            "UPDATE hookflow_runs SET owner = $1, fence = fence + 1,
                    lease_until = {NOW} + $2, lease_micros = $2
                 WHERE run_id IN (
                    SELECT run_id FROM hookflow_runs
                    WHERE status = 'running'
                        AND (owner IS NULL OR lease_until IS NULL OR lease_until <= {NOW})
                        AND (workflow, version) IN
                            (SELECT * FROM UNNEST($3::TEXT[], $4::BIGINT[]))
                        AND run_id <> ALL($6)
                    ORDER BY created_at, run_id
                    LIMIT $5
                    FOR UPDATE SKIP LOCKED)
                 RETURNING {RECORD_COLUMNS}"
        ))
        .await
        .map_err(pg("prepare a claim"))?;
    let rows = client
        .query(
            &statement,
            &[
                &lease.owner,
                &micros(lease.micros()),
                &names,
                &versions,
                &limit,
                &skip,
            ],
        )
        .await
        .map_err(pg("claim runs"))?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut claimed: Vec<StoredRun> = Vec::with_capacity(rows.len());
    for row in &rows {
        claimed.push((record(row)?, Vec::new()));
    }
    claimed.sort_by_key(|(r, _)| (r.created_at_micros, r.run_id));
    // A run claimed for the first time (generation 1: enqueued, never started) has no
    // journal yet: read only the others'.
    let ids: Vec<String> = claimed
        .iter()
        .filter(|(r, _)| r.fence > 1)
        .map(|(r, _)| r.run_id.to_string())
        .collect();
    if ids.is_empty() {
        return Ok(claimed);
    }
    let statement = client
        .prepare_cached(
            "SELECT run_id, seq, event FROM hookflow_events WHERE run_id = ANY($1)
             ORDER BY run_id, seq",
        )
        .await
        .map_err(pg("prepare a journal read"))?;
    let events = client
        .query(&statement, &[&ids])
        .await
        .map_err(pg("read journals"))?;
    let index: std::collections::HashMap<RunId, usize> = claimed
        .iter()
        .enumerate()
        .map(|(i, (r, _))| (r.run_id, i))
        .collect();
    for row in events {
        let id: &str = row.try_get(0).map_err(pg("read a journal"))?;
        let seq: i64 = row.try_get(1).map_err(pg("read a journal"))?;
        let body: &str = row.try_get(2).map_err(pg("read a journal"))?;
        let run_id = parse_run_id(id)?;
        if let Some(&i) = index.get(&run_id) {
            claimed[i].1.push(row::event(id, seq, body)?);
        }
    }
    Ok(claimed)
}

async fn load(
    client: &deadpool_postgres::Client,
    run_id: RunId,
) -> Result<(RunRecord, Vec<Event>), StoreError> {
    let id = run_id.to_string();
    let select_run = client
        .prepare_cached(&format!(
            "SELECT {RECORD_COLUMNS} FROM hookflow_runs WHERE run_id = $1"
        ))
        .await
        .map_err(pg("prepare a read"))?;
    let select_events = client
        .prepare_cached("SELECT seq, event FROM hookflow_events WHERE run_id = $1 ORDER BY seq")
        .await
        .map_err(pg("prepare a read"))?;
    let row = client
        .query_opt(&select_run, &[&id])
        .await
        .map_err(pg("read a run"))?
        .ok_or(StoreError::NotFound(run_id))?;
    let record = record(&row)?;
    let rows = client
        .query(&select_events, &[&id])
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
        owner: row.try_get(14).map_err(&read)?,
        fence: row.try_get(15).map_err(&read)?,
        lease_until: row.try_get(16).map_err(&read)?,
    }
    .into_record()
}
