//! Transactional steps (`#[step(transaction)]`) on SQLite and PostgreSQL: the step's writes
//! to the application's tables and the journal record of its completion commit in one
//! database transaction; a `before` handler fired from inside the step writes with the same
//! transaction, and its error rolls the whole step back (and aborts the run, compensating
//! what completed before); a committed step is replayed, not run again. On an engine whose
//! store has no transactions, the step fails the run with a clear error.
//!
//! The crash loop (SIGKILL at every point of the step) is `tests/it/transaction_crashes.rs`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use hookflow::journal::EventKind;
use hookflow::store::Store;
use hookflow::{
    Engine, HookContext, HookError, Hooks, RunStatus, StepContext, StepResponse, StoredStatus,
    Transaction, TransactionError, TxContext, WaitError, WorkflowContext, step, workflow,
};
use serde::{Deserialize, Serialize};

use crate::support::postgres::pg_database;
use crate::waits::until_status;

#[derive(Debug, thiserror::Error)]
pub enum ShopError {
    #[error(transparent)]
    Transaction(#[from] TransactionError),
    #[error(transparent)]
    Postgres(#[from] tokio_postgres::Error),
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    Wait(#[from] WaitError),
    #[error("{0}")]
    Refused(String),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Cart {
    pub total: i64,
}

/// What the steps did, outside any database: how often each ran.
#[derive(Default)]
pub struct Effects {
    pub reserved: AtomicU32,
    pub released: AtomicU32,
    pub create_order_runs: AtomicU32,
}

fn effects(ctx: &StepContext) -> Result<&Arc<Effects>, ShopError> {
    ctx.service::<Arc<Effects>>()
        .map_err(|e| ShopError::Refused(e.to_string()))
}

#[step(compensate = release)]
async fn reserve(ctx: &StepContext, cart: Cart) -> Result<StepResponse<Cart, ()>, ShopError> {
    effects(ctx)?.reserved.fetch_add(1, Ordering::SeqCst);
    Ok(StepResponse::new(cart, ()))
}

async fn release(ctx: &StepContext, (): ()) -> Result<(), ShopError> {
    effects(ctx)?.released.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

/// Inserts a row of the application's table `table` with the transaction, whatever the store.
pub async fn insert(
    tx: &Transaction,
    table: &str,
    run_id: &str,
    total: i64,
) -> Result<(), ShopError> {
    let sql = format!("INSERT INTO {table} (run_id, total) VALUES ($1, $2)");
    match tx.store() {
        "sqlite" => {
            tx.sqlite(|db| db.execute(&sql, rusqlite::params![run_id, total]))?;
        }
        _ => {
            tx.postgres()?.execute(&sql, &[&run_id, &total]).await?;
        }
    }
    Ok(())
}

/// The order: written first, then the `before_create` handlers run inside the same
/// transaction (and may refuse it).
#[step(transaction)]
async fn create_order(ctx: &TxContext, cart: Cart) -> Result<i64, ShopError> {
    effects(ctx)?
        .create_order_runs
        .fetch_add(1, Ordering::SeqCst);
    let run_id = ctx.run_id().to_string();
    insert(&ctx.transaction()?, "orders", &run_id, cart.total).await?;
    let cart = ctx.hook(TxCheckout::BEFORE_CREATE, cart).await?;
    Ok(cart.total)
}

/// porulle's minimum-amount `before` handler: it writes an audit row with the step's
/// transaction, then refuses a cart under 10.
async fn minimum(ctx: &HookContext, cart: Cart) -> Result<Cart, ShopError> {
    let run_id = ctx.run_id().to_string();
    insert(ctx.transaction()?, "audits", &run_id, cart.total).await?;
    if cart.total < 10 {
        return Err(ShopError::Refused(format!(
            "the order total {} is under the minimum of 10",
            cart.total
        )));
    }
    Ok(cart)
}

#[workflow(hooks(before_create: before<Cart>), events(go: bool))]
async fn tx_checkout(ctx: &WorkflowContext, cart: Cart) -> Result<i64, ShopError> {
    let cart = reserve(ctx, cart).await?;
    let total = create_order(ctx, cart).await?;
    ctx.wait(TxCheckout::GO).await?;
    Ok(total)
}

/// The application's database, as the tests read it.
pub enum Db {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Db {
    pub fn sqlite(name: &str) -> (Db, hookflow::store::sqlite::SqliteStore) {
        let dir = std::env::temp_dir().join(format!("hookflow-tx-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("shop.db");
        let store = hookflow::store::sqlite::SqliteStore::open(&path).unwrap();
        let db = Db::Sqlite(path);
        db.sqlite_conn()
            .execute_batch(
                "CREATE TABLE orders (run_id TEXT NOT NULL, total BIGINT NOT NULL);
                 CREATE TABLE audits (run_id TEXT NOT NULL, total BIGINT NOT NULL);",
            )
            .unwrap();
        (db, store)
    }

    pub async fn postgres(name: &str) -> (Db, hookflow::store::postgres::PostgresStore) {
        let url = pg_database(name);
        let store = hookflow::store::postgres::PostgresStore::connect(&url)
            .await
            .unwrap();
        let db = Db::Postgres(url);
        db.pg_client()
            .await
            .batch_execute(
                "CREATE TABLE orders (run_id TEXT NOT NULL, total BIGINT NOT NULL);
                 CREATE TABLE audits (run_id TEXT NOT NULL, total BIGINT NOT NULL);",
            )
            .await
            .unwrap();
        (db, store)
    }

    fn sqlite_conn(&self) -> rusqlite::Connection {
        match self {
            Db::Sqlite(path) => rusqlite::Connection::open(path).unwrap(),
            Db::Postgres(_) => unreachable!("a SQLite database"),
        }
    }

    async fn pg_client(&self) -> tokio_postgres::Client {
        match self {
            Db::Postgres(url) => crate::support::pg_client::pg_client(url).await,
            Db::Sqlite(_) => unreachable!("a PostgreSQL database"),
        }
    }

    /// How many rows of `table` run `run_id` has.
    pub async fn count(&self, table: &str, run_id: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE run_id = $1");
        match self {
            Db::Sqlite(_) => self
                .sqlite_conn()
                .query_row(&sql, [run_id], |row| row.get(0))
                .unwrap(),
            Db::Postgres(_) => self
                .pg_client()
                .await
                .query_one(&sql, &[&run_id])
                .await
                .unwrap()
                .get(0),
        }
    }
}

fn engine(store: Arc<impl Store>, effects: &Arc<Effects>) -> Engine {
    let mut hooks = Hooks::new();
    TxCheckout::hooks(&mut hooks).before_create(minimum);
    Engine::builder()
        .store(store)
        .workflow::<TxCheckout>()
        .hooks(hooks)
        .service(Arc::clone(effects))
        .build()
}

/// Whether the journal of `run_id` records `create_order`'s completion.
async fn create_order_recorded(store: &Arc<impl Store>, run_id: hookflow::RunId) -> bool {
    let (_, events) = store.load(run_id).await.unwrap();
    events.iter().any(
        |e| matches!(&e.kind, EventKind::StepCompleted { step, .. } if &**step == "create_order"),
    )
}

/// The step and its handler write with one transaction, committed with the step's record;
/// the run, resumed by replay after it waited, does not run the step again.
async fn committed_step_is_replayed_not_run_again(db: Db, store: Arc<impl Store>) {
    let effects = Arc::new(Effects::default());
    let engine = engine(Arc::clone(&store), &effects);
    let outcome = engine.run::<TxCheckout>(Cart { total: 25 }).await;
    assert_eq!(
        outcome.status(),
        RunStatus::Waiting,
        "{:?}",
        outcome.error()
    );
    let run_id = outcome.run_id();
    let id = run_id.to_string();
    assert_eq!(db.count("orders", &id).await, 1, "the step's row");
    assert_eq!(db.count("audits", &id).await, 1, "the handler's row");
    assert!(create_order_recorded(&store, run_id).await);

    engine.send(run_id, TxCheckout::GO, true).await.unwrap();
    let record = until_status(
        &store,
        run_id,
        StoredStatus::Completed,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(record.output, Some(serde_json::json!(25)));
    assert_eq!(
        effects.create_order_runs.load(Ordering::SeqCst),
        1,
        "the committed transactional step is replayed, not run again"
    );
    assert_eq!(db.count("orders", &id).await, 1);
    assert_eq!(db.count("audits", &id).await, 1);
}

/// A `before` handler's error inside the step rolls back the step's own write and the
/// handler's, and the run fails as a `before` hook aborts it: what completed is compensated.
async fn handler_error_rolls_the_step_back(db: Db, store: Arc<impl Store>) {
    let effects = Arc::new(Effects::default());
    let engine = engine(Arc::clone(&store), &effects);
    let outcome = engine.run::<TxCheckout>(Cart { total: 5 }).await;
    assert_eq!(
        outcome.status(),
        RunStatus::Compensated,
        "{:?}",
        outcome.error()
    );
    let error = outcome.error().map(ToString::to_string).unwrap_or_default();
    assert!(error.contains("under the minimum of 10"), "{error}");
    let id = outcome.run_id().to_string();
    assert_eq!(
        db.count("orders", &id).await,
        0,
        "the step's row rolled back"
    );
    assert_eq!(db.count("audits", &id).await, 0, "the handler's row too");
    assert!(!create_order_recorded(&store, outcome.run_id()).await);
    assert_eq!(effects.released.load(Ordering::SeqCst), 1, "reserve undone");
}

#[tokio::test]
async fn sqlite_committed_step_is_replayed_not_run_again() {
    let (db, store) = Db::sqlite("replayed");
    committed_step_is_replayed_not_run_again(db, Arc::new(store)).await;
}

#[tokio::test]
async fn postgres_committed_step_is_replayed_not_run_again() {
    let (db, store) = Db::postgres("tx_replayed").await;
    committed_step_is_replayed_not_run_again(db, Arc::new(store)).await;
}

#[tokio::test]
async fn sqlite_handler_error_rolls_the_step_back() {
    let (db, store) = Db::sqlite("rolled_back");
    handler_error_rolls_the_step_back(db, Arc::new(store)).await;
}

#[tokio::test]
async fn postgres_handler_error_rolls_the_step_back() {
    let (db, store) = Db::postgres("tx_rolled_back").await;
    handler_error_rolls_the_step_back(db, Arc::new(store)).await;
}

/// On the memory store, or without a store, the transactional step fails the run with an
/// error that says what it needs; what completed before is compensated.
#[tokio::test]
async fn without_a_database_the_step_fails_the_run_clearly() {
    for (engine, needs) in [
        (
            engine(
                Arc::new(hookflow::store::MemoryStore::new()),
                &Arc::new(Effects::default()),
            ),
            "the engine's store has no transactions",
        ),
        (
            {
                let mut hooks = Hooks::new();
                TxCheckout::hooks(&mut hooks).before_create(minimum);
                Engine::builder()
                    .hooks(hooks)
                    .service(Arc::new(Effects::default()))
                    .build()
            },
            "this engine has no store",
        ),
    ] {
        let outcome = engine.run::<TxCheckout>(Cart { total: 25 }).await;
        assert_eq!(outcome.status(), RunStatus::Compensated);
        let error = outcome.error().map(ToString::to_string).unwrap_or_default();
        assert!(
            error.contains("step `create_order` is transactional") && error.contains(needs),
            "{error}"
        );
    }
}

/// A handler that reads the transaction outside a transactional step is told so.
#[tokio::test]
async fn a_hook_fired_from_the_body_has_no_transaction() {
    #[workflow(hooks(check: before<Cart>))]
    async fn plain(ctx: &WorkflowContext, cart: Cart) -> Result<i64, ShopError> {
        Ok(ctx.hook(Plain::CHECK, cart).await?.total)
    }
    async fn check(ctx: &HookContext, cart: Cart) -> Result<Cart, ShopError> {
        ctx.transaction()?;
        Ok(cart)
    }
    let mut hooks = Hooks::new();
    Plain::hooks(&mut hooks).check(check);
    let engine = Engine::builder().hooks(hooks).build();
    let outcome = engine.run::<Plain>(Cart { total: 1 }).await;
    let error = outcome.error().map(ToString::to_string).unwrap_or_default();
    assert!(error.contains("no transaction here"), "{error}");
}

/// porulle bounds a handler's time: a `before` handler inside a transactional step that runs
/// past its limit fails the step like an error of its own, and what it and the step wrote
/// in the transaction is rolled back.
#[tokio::test]
async fn a_handler_past_its_time_limit_rolls_the_step_back() {
    async fn stalls(ctx: &HookContext, cart: Cart) -> Result<Cart, ShopError> {
        let run_id = ctx.run_id().to_string();
        insert(ctx.transaction()?, "audits", &run_id, cart.total).await?;
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok(cart)
    }
    let (db, store) = Db::sqlite("timed_out");
    let store = Arc::new(store);
    let effects = Arc::new(Effects::default());
    let mut hooks = Hooks::new();
    TxCheckout::hooks(&mut hooks)
        .before_create(stalls)
        .timeout(Duration::from_millis(50));
    let engine = Engine::builder()
        .store(Arc::clone(&store))
        .workflow::<TxCheckout>()
        .hooks(hooks)
        .service(Arc::clone(&effects))
        .build();
    let outcome = tokio::time::timeout(
        Duration::from_secs(10),
        engine.run::<TxCheckout>(Cart { total: 25 }),
    )
    .await
    .expect("the handler's time limit applies inside the transaction");
    assert_eq!(outcome.status(), RunStatus::Compensated);
    let error = outcome.error().map(ToString::to_string).unwrap_or_default();
    assert!(error.contains("time limit"), "{error}");
    let id = outcome.run_id().to_string();
    assert_eq!(
        db.count("orders", &id).await,
        0,
        "the step's row rolled back"
    );
    assert_eq!(db.count("audits", &id).await, 0, "the handler's row too");
    assert_eq!(effects.released.load(Ordering::SeqCst), 1, "reserve undone");
}
