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
//! `hookflow_schema`. Every connection of the store (the pool's, the committers', the
//! `LISTEN`ing one) uses the url's TLS settings, with rustls: see [`PostgresStore::connect`].

mod by_key;
mod committer;
mod errors;
mod page;
mod queries;
mod read;
mod schedules;
mod schema;
mod tls;
mod transaction;
mod waiting;
mod wakeup;

pub(crate) use self::transaction::PostgresTx;

/// The tokio-postgres this store is built on: the client a transactional step writes with is
/// one of its (`Transaction::postgres`).
pub use tokio_postgres;

use std::thread;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::sync::oneshot;

use self::committer::{
    COMMITTERS, MAX_COMMIT_BYTES, PendingCommit, bytes_of, committer, event_rows,
};
use self::errors::{get, pg, pg_write, stopped};
use self::queries::{claim, claim_next, create, prune, release, renew};
use self::read::{list, load, pending};
use self::schema::{check, migrate};
use super::row::micros;
use super::{
    BoxFuture, Cancelling, Claim, Created, Delivery, Found, Lease, Message, RunRecord, RunUpdate,
    Store, StoreError, StoredRun, StoredStatus, Suspension, Wake, WakeupSignal, Wakeups,
};
use crate::journal::Event;
use crate::types::{CancelRequest, RunId};

/// The database's clock, in microseconds since the Unix epoch: leases are timed by the one
/// clock every worker shares.
const NOW: &str = "(extract(epoch from clock_timestamp()) * 1000000)::BIGINT";

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
    /// Connected with [`PostgresStore::connect_read_only`]: every write is refused.
    read_only: bool,
    /// Its workers' wake-ups, from its `LISTEN`ing connection (`None` read-only): see [`wakeup`].
    wakeup: Option<std::sync::Arc<WakeupSignal>>,
    /// Dropped with the store: its thread then stops and drops the runtime.
    _stop: oneshot::Sender<()>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("pool", &self.pool.status())
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// The most connections the pool opens.
    pub const MAX_CONNECTIONS: usize = 8;

    /// How long connecting may take when the url sets no `connect_timeout`, and how long an
    /// operation waits for a free connection, before it fails: with
    /// [`StoreError::NoAnswer`] when the server did not answer, [`StoreError::Unavailable`]
    /// otherwise.
    pub const TIMEOUT: Duration = Duration::from_secs(10);

    /// Connects to the database at `url` (`postgres://user:password@host:port/database`, or
    /// a libpq key-value string), migrates it, and starts the store's thread.
    ///
    /// The url's `connect_timeout` (in seconds; [`PostgresStore::TIMEOUT`] if it has none)
    /// bounds each connection's whole establishment, the server's answers included: a
    /// server that accepts the connection and never answers is reported as
    /// [`StoreError::NoAnswer`] once it elapsed. No error of the store contains the url's
    /// password (see [`redact`](crate::store::redact) to print the url itself).
    ///
    /// TLS is set by the url's `sslmode` as libpq reads it: `disable`, `prefer` (the
    /// default: TLS if the server accepts it, a plain connection if not, no certificate
    /// check), `require` (TLS, no certificate check), `verify-ca` (the server's certificate
    /// is signed by the CA) and `verify-full` (and valid for the host name). `sslrootcert`
    /// names the CA's PEM file; without it, or with `sslrootcert=system`, the system's roots
    /// are the CAs. With `sslrootcert` set, `require` checks the CA as `verify-ca` does
    /// (libpq's rule). `sslsni=0` sends no host name. TLS is rustls's (ring): no OpenSSL.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the url cannot be parsed, its TLS settings are not
    /// valid (an unknown `sslmode`), the CA file cannot be read or holds no certificate, the
    /// server's certificate is refused (not signed by the CA, not valid for the host name),
    /// the server refuses TLS under `require` or `verify-*` (or a plain connection under
    /// `disable`), or the server cannot be reached or written, [`StoreError::NoAnswer`] when it did not answer in time,
    /// [`StoreError::IncompatibleSchema`] when a newer hookflow wrote the database.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, false).await
    }

    /// Connects to the database at `url` to read it only: nothing is created or migrated,
    /// every session is read-only (`default_transaction_read_only`), and every write
    /// ([`Store::create`], [`Store::commit`], claims...) fails with [`StoreError::ReadOnly`].
    ///
    /// # Errors
    /// As [`PostgresStore::connect`], and [`StoreError::NotAStore`] for a database without
    /// hookflow's tables, [`StoreError::SchemaOutdated`] for one an older hookflow wrote
    /// (connecting for writing once migrates it).
    pub async fn connect_read_only(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, true).await
    }

    async fn connect_with(url: &str, read_only: bool) -> Result<Self, StoreError> {
        let (config, tls, tls_settings) = tls::configure(url)?;
        let timeout = config
            .get_connect_timeout()
            .copied()
            .unwrap_or(Self::TIMEOUT);
        let (runtime, stop) = start_thread()?;
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        // Claims, commits and fencing tokens are only as good as the commits are durable:
        // a server configured with `synchronous_commit = off` can lose acknowledged claims
        // when it crashes, and two workers could then both hold generation 1.
        let session = if read_only {
            "SET synchronous_commit = on; SET default_transaction_read_only = on"
        } else {
            "SET synchronous_commit = on"
        };
        let pool = Pool::builder(manager)
            .max_size(Self::MAX_CONNECTIONS)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(timeout))
            .wait_timeout(Some(Self::TIMEOUT))
            .recycle_timeout(Some(timeout))
            .post_create(deadpool_postgres::Hook::async_fn(move |client, _| {
                Box::pin(async move {
                    client
                        .batch_execute(session)
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
        if !read_only {
            for _ in 0..COMMITTERS {
                runtime.spawn(committer(pool.clone(), std::sync::Arc::clone(&pending)));
            }
        }
        let mut store = PostgresStore {
            pool,
            commits,
            runtime,
            read_only,
            wakeup: None,
            _stop: stop,
        };
        let pool = store.pool.clone();
        store
            .spawn(async move {
                let connected = tokio::time::timeout(timeout, async {
                    let mut client = get(&pool).await?;
                    if read_only {
                        check(&client).await
                    } else {
                        migrate(&mut client).await
                    }
                });
                connected.await.unwrap_or(Err(StoreError::NoAnswer {
                    context: "connect to the database".into(),
                    timeout,
                }))
            })
            .await
            .map_err(|err| tls_settings.explain(err))?;
        store.wakeup = (!read_only).then(|| wakeup::start(&store.runtime, config, tls, timeout));
        Ok(store)
    }

    /// Whether the store was connected read-only ([`PostgresStore::connect_read_only`]).
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Refuses `what` (a write) on a read-only store.
    fn writable<T: Send + 'static>(
        &self,
        what: &str,
    ) -> Result<(), BoxFuture<'static, Result<T, StoreError>>> {
        if self.read_only {
            let refused = StoreError::ReadOnly {
                context: what.to_owned(),
            };
            return Err(Box::pin(std::future::ready(Err(refused))));
        }
        Ok(())
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
        if let Err(refused) = self.writable("record a new run") {
            return refused;
        }
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
        if let Err(refused) = self.writable("commit") {
            return refused;
        }
        let id = run_id.to_string();
        // A message for people: a NUL in it (which PostgreSQL text cannot hold) is not worth
        // refusing the run's end for.
        let update = update.map(|mut update| {
            if let Some(error) = update.error.as_mut().filter(|e| e.contains('\0')) {
                *error = error.replace('\0', "\u{FFFD}");
            }
            update
        });
        let output = (update.as_ref())
            .and_then(|u| u.output.as_ref())
            .map(serde_json::Value::to_string);
        let bodies = event_rows(&id, events).and_then(|events| {
            let bytes = bytes_of(&events, output.as_deref(), update.as_ref());
            if bytes > MAX_COMMIT_BYTES {
                return Err(StoreError::Refused {
                    context: "commit".into(),
                    message: format!(
                        "the commit is {bytes} bytes, and PostgreSQL reads no message over 1 GB"
                    ),
                });
            }
            Ok((events, bytes))
        });
        let (reply, response) = oneshot::channel();
        let sent = bodies.and_then(|(events, bytes)| {
            self.commits
                .send(PendingCommit {
                    run_id,
                    fence: micros(fence),
                    events,
                    update,
                    output,
                    bytes,
                    reply,
                })
                .map_err(|_| stopped())
        });
        Box::pin(async move {
            sent?;
            response.await.map_err(|_| stopped())?
        })
    }

    fn claim<'a>(
        &'a self,
        run_id: RunId,
        lease: &'a Lease,
    ) -> BoxFuture<'a, Result<Claim, StoreError>> {
        if let Err(refused) = self.writable("claim a run") {
            return refused;
        }
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
    ) -> BoxFuture<'a, Result<Found<StoredRun>, StoreError>> {
        if let Err(refused) = self.writable("claim runs") {
            return refused;
        }
        let lease = lease.clone();
        let workflows = workflows.to_vec();
        let skip: Vec<String> = skip.iter().map(ToString::to_string).collect();
        let pool = self.pool.clone();
        self.spawn(async move {
            let mut client = get(&pool).await?;
            claim_next(&mut client, &lease, &workflows, &skip, limit).await
        })
    }

    fn renew<'a>(
        &'a self,
        lease: &'a Lease,
        runs: &'a [RunId],
    ) -> BoxFuture<'a, Result<usize, StoreError>> {
        if let Err(refused) = self.writable("renew a lease") {
            return refused;
        }
        let lease = lease.clone();
        let ids: Vec<String> = runs.iter().map(ToString::to_string).collect();
        let pool = self.pool.clone();
        self.spawn(async move {
            let client = get(&pool).await?;
            renew(&client, &lease, &ids).await
        })
    }

    fn release(&self, run_id: RunId, fence: u64) -> BoxFuture<'_, Result<(), StoreError>> {
        if let Err(refused) = self.writable("release a run") {
            return refused;
        }
        let pool = self.pool.clone();
        self.spawn(async move {
            let client = get(&pool).await?;
            release(&client, run_id, fence).await
        })
    }

    fn load(&self, run_id: RunId) -> BoxFuture<'_, Result<(RunRecord, Vec<Event>), StoreError>> {
        let pool = self.pool.clone();
        self.spawn(async move {
            let client = get(&pool).await?;
            load(&client, run_id).await
        })
    }

    fn pending(&self) -> BoxFuture<'_, Result<Found<RunRecord>, StoreError>> {
        let pool = self.pool.clone();
        // A read-only store reports the unreadable runs without quarantining them.
        let quarantine = !self.read_only;
        self.spawn(async move {
            let client = get(&pool).await?;
            pending(&client, quarantine).await
        })
    }

    fn list<'a>(
        &'a self,
        status: Option<StoredStatus>,
        workflow: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Found<RunRecord>, StoreError>> {
        let workflow = workflow.map(str::to_owned);
        let pool = self.pool.clone();
        self.spawn(async move {
            let client = get(&pool).await?;
            list(&client, status, workflow.as_deref(), limit, false).await
        })
    }

    fn prune(
        &self,
        ended_before_micros: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<usize, StoreError>> {
        if let Err(refused) = self.writable("prune ended runs") {
            return refused;
        }
        let pool = self.pool.clone();
        self.spawn(async move {
            let mut client = get(&pool).await?;
            prune(&mut client, ended_before_micros, limit).await
        })
    }

    fn suspend<'a>(
        &'a self,
        run_id: RunId,
        fence: u64,
        events: &'a [Event],
        suspension: &'a Suspension,
    ) -> BoxFuture<'a, Result<Option<Wake>, StoreError>> {
        if let Err(refused) = self.writable("suspend a run") {
            return refused;
        }
        let events = events.to_vec();
        let suspension = suspension.clone();
        let pool = self.pool.clone();
        self.spawn(async move {
            let mut client = get(&pool).await?;
            waiting::suspend(&mut client, run_id, fence, &events, &suspension).await
        })
    }

    fn deliver<'a>(
        &'a self,
        run_id: RunId,
        workflow: &'a str,
        message: &'a Message,
    ) -> BoxFuture<'a, Result<Delivery, StoreError>> {
        if let Err(refused) = self.writable("deliver an event") {
            return refused;
        }
        let workflow = workflow.to_owned();
        let message = message.clone();
        let pool = self.pool.clone();
        self.spawn(async move {
            let mut client = get(&pool).await?;
            waiting::deliver(&mut client, run_id, &workflow, &message).await
        })
    }

    fn message<'a>(
        &'a self,
        run_id: RunId,
        event: &'a str,
        index: u32,
    ) -> BoxFuture<'a, Result<Option<Message>, StoreError>> {
        let event = event.to_owned();
        let pool = self.pool.clone();
        self.spawn(async move {
            let client = get(&pool).await?;
            waiting::message(&client, run_id, &event, index).await
        })
    }

    fn cancel<'a>(
        &'a self,
        run_id: RunId,
        request: &'a CancelRequest,
    ) -> BoxFuture<'a, Result<Cancelling, StoreError>> {
        if let Err(refused) = self.writable("cancel a run") {
            return refused;
        }
        let request = request.clone();
        let pool = self.pool.clone();
        self.spawn(async move {
            let mut client = get(&pool).await?;
            waiting::cancel(&mut client, run_id, &request).await
        })
    }

    fn cancel_requests<'a>(
        &'a self,
        runs: &'a [RunId],
    ) -> BoxFuture<'a, Result<Vec<(RunId, CancelRequest)>, StoreError>> {
        let runs = runs.to_vec();
        let pool = self.pool.clone();
        self.spawn(async move {
            let client = get(&pool).await?;
            waiting::cancel_requests(&client, &runs).await
        })
    }

    fn list_page<'a>(
        &'a self,
        filter: &'a super::RunFilter,
    ) -> BoxFuture<'a, Result<super::RunPage, StoreError>> {
        let filter = filter.clone();
        let pool = self.pool.clone();
        self.spawn(async move {
            let client = get(&pool).await?;
            page::list_page(&client, &filter).await
        })
    }

    fn wakeups(&self) -> Wakeups {
        (self.wakeup.as_deref()).map_or_else(Wakeups::never, WakeupSignal::subscribe)
    }

    fn begin(&self) -> BoxFuture<'_, Result<Box<dyn super::StoreTransaction>, StoreError>> {
        self.begin_transaction()
    }
    crate::store::schedules::forward_schedules!();

    fn find_by_idempotency_key<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<RunRecord>, StoreError>> {
        let key = key.to_owned();
        let pool = self.pool.clone();
        self.spawn(async move {
            let client = get(&pool).await?;
            by_key::find(&client, &key).await
        })
    }
}
