//! Transactional steps under SIGKILL, on SQLite and PostgreSQL: a child process runs
//! checkouts whose `create_order` step (`#[step(transaction)]`) writes an order row, yields,
//! fires a `before` hook whose handler writes an audit row with the same transaction,
//! yields again, and completes; the parent kills the child at random moments, over and over
//! (so that kills land before the step, inside its transaction, during its commit and
//! after it), and after every kill checks every run: the order row, the audit row and the
//! journal record of the step's completion are all there or all absent. At the end a last
//! child resumes every run to its end, and every run has exactly one order and one audit.
//!
//! `HOOKFLOW_TX_KILLS` sets the number of kills per store (20 by default).
//!
//! The children are this test binary run again on its ignored test `tx_crash_process`: an
//! entry point, not a test of its own.

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hookflow::journal::EventKind;
use hookflow::store::Store;
use hookflow::{
    Engine, HookContext, Hooks, StepContext, StoredStatus, TxContext, WorkflowContext, step,
    workflow,
};

use crate::support::child::{Killed, start};
use crate::transactions::{Cart, Db, ShopError, insert};

const CHILD_TEST: &str = "transaction_crashes::tx_crash_process";
/// `sqlite:PATH` or `postgres:URL`.
const CHILD_DB: &str = "HOOKFLOW_TX_CRASH_DB";
/// `run` (start runs until killed) or `finish` (resume every run, then exit).
const CHILD_MODE: &str = "HOOKFLOW_TX_CRASH_MODE";

#[step]
async fn price(_ctx: &StepContext, cart: Cart) -> Result<Cart, ShopError> {
    tokio::task::yield_now().await;
    Ok(cart)
}

#[step(transaction)]
async fn create_order(ctx: &TxContext, cart: Cart) -> Result<i64, ShopError> {
    let run_id = ctx.run_id().to_string();
    insert(&ctx.transaction()?, "orders", &run_id, cart.total).await?;
    tokio::time::sleep(Duration::from_millis(1)).await;
    let cart = ctx.hook(CrashCheckout::BEFORE_CREATE, cart).await?;
    tokio::task::yield_now().await;
    Ok(cart.total)
}

async fn audit(ctx: &HookContext, cart: Cart) -> Result<Cart, ShopError> {
    let run_id = ctx.run_id().to_string();
    insert(ctx.transaction()?, "audits", &run_id, cart.total).await?;
    tokio::task::yield_now().await;
    Ok(cart)
}

#[step]
async fn confirm(_ctx: &StepContext, total: i64) -> Result<i64, ShopError> {
    tokio::task::yield_now().await;
    Ok(total)
}

#[workflow(hooks(before_create: before<Cart>))]
async fn crash_checkout(ctx: &WorkflowContext, cart: Cart) -> Result<i64, ShopError> {
    let cart = price(ctx, cart).await?;
    let total = create_order(ctx, cart).await?;
    confirm(ctx, total).await
}

fn engine(store: Arc<dyn Store>) -> Engine {
    let mut hooks = Hooks::new();
    CrashCheckout::hooks(&mut hooks).before_create(audit);
    Engine::builder()
        .worker_id(format!("tx-crash-{}", std::process::id()))
        .lease(Duration::from_millis(300))
        .store(store)
        .workflow::<CrashCheckout>()
        .hooks(hooks)
        .build()
}

async fn open(db: &str) -> Arc<dyn Store> {
    match db.split_once(':') {
        Some(("sqlite", path)) => {
            Arc::new(hookflow::store::sqlite::SqliteStore::open(path).unwrap())
        }
        Some(("postgres", url)) => Arc::new(
            hookflow::store::postgres::PostgresStore::connect(url)
                .await
                .unwrap(),
        ),
        _ => panic!("{CHILD_DB} is `sqlite:PATH` or `postgres:URL`, not {db:?}"),
    }
}

/// A child process (see the module's docs). Ignored: the tests below run it.
#[test]
#[ignore = "child process of the transaction_crashes tests, run by them"]
fn tx_crash_process() {
    let (Ok(db), Ok(mode)) = (std::env::var(CHILD_DB), std::env::var(CHILD_MODE)) else {
        return; // Not a child (`--ignored` without the parent): nothing to do.
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let store = open(&db).await;
            let engine = engine(Arc::clone(&store));
            println!("STARTED");
            if mode == "finish" {
                let deadline = Instant::now() + Duration::from_secs(30);
                while !store.pending().await.unwrap().runs.is_empty() {
                    assert!(Instant::now() < deadline, "runs left unfinished");
                    engine.resume_pending().await.unwrap();
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                println!("DONE");
                return;
            }
            let mut n: i64 = 0;
            loop {
                let _ = engine.resume_pending().await;
                let runs: Vec<_> = (0..4)
                    .map(|_| {
                        n += 1;
                        let engine = engine.clone();
                        tokio::spawn(async move {
                            engine.run::<CrashCheckout>(Cart { total: n }).await;
                        })
                    })
                    .collect();
                for run in runs {
                    let _ = run.await;
                }
            }
        });
}

fn child(db: &str, mode: &str) -> Killed {
    // Once it runs (the store opened), so that the kill lands in its work.
    let env = [(CHILD_DB, OsStr::new(db)), (CHILD_MODE, OsStr::new(mode))];
    start(CHILD_TEST, &env, |line| {
        line.contains("STARTED").then_some(())
    })
    .0
}

/// Every run: its order row, its audit row and its journal's record of `create_order` are
/// all there or all absent. Returns (runs, with the step committed).
async fn check_all_or_nothing(db: &Db, store: &Arc<dyn Store>) -> (usize, usize) {
    let runs = store.list(None, None, usize::MAX).await.unwrap().runs;
    let mut committed = 0;
    for run in &runs {
        let (_, events) = store.load(run.run_id).await.unwrap();
        let recorded = events.iter().any(|e| {
            matches!(&e.kind, EventKind::StepCompleted { step, .. } if &**step == "create_order")
        });
        let id = run.run_id.to_string();
        let orders = db.count("orders", &id).await;
        let audits = db.count("audits", &id).await;
        let expected = i64::from(recorded);
        assert!(
            orders == expected && audits == expected,
            "run {id} ({}): create_order recorded: {recorded}, orders: {orders}, audits: {audits}",
            run.status
        );
        committed += usize::from(recorded);
    }
    (runs.len(), committed)
}

async fn crash_loop(db: Db, store: Arc<dyn Store>, child_db: String) {
    let kills: usize = std::env::var("HOOKFLOW_TX_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(20);
    let mut interrupted_before_commit = 0;
    for kill in 0..kills {
        let running = child(&child_db, "run");
        // 5 to 120 ms: a few runs, then the kill, somewhere in one.
        let delay = 5 + (kill * 37 + kill * kill * 11) % 116;
        std::thread::sleep(Duration::from_millis(delay as u64));
        drop(running); // SIGKILL, then reaped
        let (runs, committed) = check_all_or_nothing(&db, &store).await;
        // Runs whose price step committed but not create_order: killed before or inside the
        // transaction (or in its commit).
        let pending = store.pending().await.unwrap().runs;
        for run in pending {
            let (_, events) = store.load(run.run_id).await.unwrap();
            let priced = events.iter().any(
                |e| matches!(&e.kind, EventKind::StepCompleted { step, .. } if &**step == "price"),
            );
            let ordered = events.iter().any(|e| {
                matches!(&e.kind, EventKind::StepCompleted { step, .. } if &**step == "create_order")
            });
            interrupted_before_commit += usize::from(priced && !ordered);
        }
        assert!(runs >= committed);
    }
    let mut finish = child(&child_db, "finish");
    let status = finish.0.wait().unwrap();
    assert!(status.success(), "the finishing child failed: {status}");
    let (runs, committed) = check_all_or_nothing(&db, &store).await;
    assert_eq!(
        runs, committed,
        "every run committed its order once resumed"
    );
    let all = store.list(None, None, usize::MAX).await.unwrap().runs;
    for run in &all {
        assert_eq!(run.status, StoredStatus::Completed, "{run:?}");
    }
    println!(
        "{kills} kills: {runs} runs, each with one order and one audit; {interrupted_before_commit} times a run was found priced but not ordered after a kill"
    );
    assert!(runs > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_transactional_step_survives_kills() {
    let (db, store) = Db::sqlite("crashes");
    let path = match &db {
        Db::Sqlite(path) => path.display().to_string(),
        Db::Postgres(_) => unreachable!(),
    };
    crash_loop(db, Arc::new(store), format!("sqlite:{path}")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_transactional_step_survives_kills() {
    let (db, store) = Db::postgres("tx_crashes").await;
    let url = match &db {
        Db::Postgres(url) => url.clone(),
        Db::Sqlite(_) => unreachable!(),
    };
    crash_loop(db, Arc::new(store), format!("postgres:{url}")).await;
}
