//! Quarantine: a run whose row (or a row of its journal) cannot be read is parked, reported,
//! and every other run goes on. Rows are corrupted by hand, in SQL: the engine refuses to
//! write such values itself (`RecordError`), but rows written by hand, by older versions or
//! damaged on disk must not poison the store.
//!
//! Each scenario runs on SQLite here and on PostgreSQL in `quarantine_postgres`:
//! - `a_poisoned_run_does_not_stop_a_worker`: additional data nested 200 levels deep (past
//!   serde_json's 128) on the oldest of 21 enqueued runs; a `Worker` runs the 20 others,
//!   parks that one with the reason and reports it to `on_error`;
//! - `resume_pending_quarantines_a_corrupt_run` (`actor = '{oops'`) and
//!   `resume_pending_quarantines_a_corrupt_journal` (an event that is not JSON): of two
//!   interrupted runs, the healthy one is resumed, the corrupt one is quarantined and in the
//!   report; `Engine::resume` says why until the row is repaired, and resumes it after.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::pg_client::pg_client as connect;
use hookflow::prelude::*;
use hookflow::store::sqlite::SqliteStore;
use hookflow::store::{Store, StoredStatus};
use hookflow::{ResumeError, Worker, WorkerError};
use tokio::sync::mpsc;

#[derive(Debug, thiserror::Error)]
#[error("never")]
pub(crate) struct Never;

/// Holds step `pack` of every run forever while `hold` is set (after saying so on
/// `started`): the run is then interrupted by dropping it, as a dying process would.
pub(crate) struct Gate {
    hold: bool,
    started: mpsc::UnboundedSender<()>,
}

#[step]
async fn weigh(_ctx: &StepContext, parcel: String) -> Result<u32, Never> {
    Ok(u32::try_from(parcel.len()).unwrap_or(0))
}

#[step]
async fn pack(ctx: &StepContext, grams: u32) -> Result<String, Never> {
    if let Ok(gate) = ctx.service::<Gate>() {
        if gate.hold {
            let _ = gate.started.send(());
            std::future::pending::<()>().await;
        }
    }
    Ok(format!("box of {grams} g"))
}

#[workflow]
pub(crate) async fn parcel(ctx: &WorkflowContext, parcel: String) -> Result<String, Never> {
    let grams = weigh(ctx, parcel).await?;
    pack(ctx, grams).await
}

/// The database under the store, reached around it to corrupt rows as a person (or a
/// damaged disk) would.
pub(crate) enum Db {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Db {
    /// The table of runs and the table of journals.
    pub(crate) fn tables(&self) -> (&'static str, &'static str) {
        match self {
            Db::Sqlite(_) => ("runs", "events"),
            Db::Postgres(_) => ("hookflow_runs", "hookflow_events"),
        }
    }

    /// The condition that selects event `seq` of run `run_id` in the table of journals
    /// (SQLite keys an event by its run's key and its sequence number in one integer).
    pub(crate) fn event(&self, run_id: &str, seq: u32) -> String {
        match self {
            Db::Sqlite(_) => {
                format!("id = ((SELECT id FROM runs WHERE run_id = '{run_id}') << 32) | {seq}")
            }
            Db::Postgres(_) => format!("run_id = '{run_id}' AND seq = {seq}"),
        }
    }

    pub(crate) async fn execute(&self, sql: &str) {
        match self {
            Db::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).unwrap();
                conn.busy_timeout(Duration::from_secs(10)).unwrap();
                conn.execute_batch(sql).unwrap();
            }
            Db::Postgres(url) => {
                let client = connect(url).await;
                client.batch_execute(sql).await.unwrap();
            }
        }
    }

    /// The text in the first column of the first row `sql` selects (NULL as `None`).
    pub(crate) async fn text(&self, sql: &str) -> Option<String> {
        match self {
            Db::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).unwrap();
                conn.query_row(sql, [], |row| row.get(0)).unwrap()
            }
            Db::Postgres(url) => connect(url).await.query_one(sql, &[]).await.unwrap().get(0),
        }
    }
}

fn engine(store: Arc<dyn Store>, hold: bool) -> (Engine, mpsc::UnboundedReceiver<()>) {
    let (started, receiver) = mpsc::unbounded_channel();
    let engine = Engine::builder()
        .worker_id("app")
        .store(store)
        .service(Gate { hold, started })
        .workflow::<Parcel>()
        .build();
    (engine, receiver)
}

/// 21 runs enqueued, the oldest with additional data nested 200 levels deep (written by
/// hand); a worker runs the 20 others, and quarantines that one.
pub(crate) async fn a_poisoned_run_does_not_stop_a_worker(store: Arc<dyn Store>, db: Db) {
    let (runs, _) = db.tables();
    let (engine, _) = engine(Arc::clone(&store), false);
    let poisoned = engine.enqueue::<Parcel>("poisoned".into()).await.unwrap();
    let mut healthy = Vec::new();
    for i in 0..20 {
        healthy.push(engine.enqueue::<Parcel>(format!("p{i}")).await.unwrap());
    }
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    db.execute(&format!(
        "UPDATE {runs} SET additional_data = '{deep}' WHERE run_id = '{poisoned}'"
    ))
    .await;

    let reported: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let (report_to, fail_to) = (Arc::clone(&reported), Arc::clone(&failures));
    let worker = Worker::new(&engine)
        .concurrency(4)
        .poll_interval(Duration::from_millis(10))
        .on_error(move |error| match error {
            WorkerError::Quarantined { run_id, reason } => report_to
                .lock()
                .unwrap()
                .push((run_id.clone(), reason.clone())),
            other => fail_to.lock().unwrap().push(other.to_string()),
        })
        .start()
        .unwrap();
    // Until the 20 are done, or the worker fails (a bound against a hang, not a measure).
    for _ in 0..6000 {
        let completed = store
            .list(Some(StoredStatus::Completed), None, 100)
            .await
            .unwrap();
        if completed.runs.len() == 20 || !failures.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let report = worker.shutdown(Duration::from_secs(10)).await;
    assert_eq!(
        *failures.lock().unwrap(),
        Vec::<String>::new(),
        "{report:?}"
    );
    assert_eq!(report.completed, 20, "{report:?}");
    assert_eq!(report.quarantined, 1, "{report:?}");
    assert_eq!(report.store_errors, 0, "{report:?}");

    let reason =
        "the record cannot be read: additional_data: recursion limit exceeded at line 1 column 128";
    assert_eq!(
        *reported.lock().unwrap(),
        vec![(poisoned.to_string(), reason.to_owned())]
    );
    for run_id in healthy {
        let (record, _) = store.load(run_id).await.unwrap();
        assert_eq!(record.status, StoredStatus::Completed, "{run_id}");
    }
    let parked = store
        .list(Some(StoredStatus::Parked), None, 10)
        .await
        .unwrap();
    assert!(parked.runs.is_empty(), "{parked:?}");
    assert_eq!(parked.unreadable.len(), 1, "{parked:?}");
    assert_eq!(parked.unreadable[0].run_id, poisoned.to_string());
    assert_eq!(parked.unreadable[0].reason, reason);
    assert_eq!(
        db.text(&format!(
            "SELECT error FROM {runs} WHERE run_id = '{poisoned}'"
        ))
        .await
        .as_deref(),
        Some(format!("quarantined: {reason}").as_str())
    );
    // Its lease was released: nobody holds it.
    assert_eq!(
        db.text(&format!(
            "SELECT owner FROM {runs} WHERE run_id = '{poisoned}'"
        ))
        .await,
        None
    );
}

/// What is corrupted in one of two interrupted runs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Corruption {
    /// `actor = '{oops'`.
    Actor,
    /// The journal's event 1 is not JSON.
    Event,
}

/// Two runs interrupted in step `pack`; one of them corrupted; `resume_pending` resumes the
/// other and quarantines it; once repaired, it is resumed by hand.
pub(crate) async fn resume_pending_quarantines(
    store: Arc<dyn Store>,
    db: Db,
    corruption: Corruption,
) {
    let (runs, events) = db.tables();
    // Two runs interrupted in `pack`: their engine is dropped with them.
    let (first, second) = {
        let (engine, mut started) = engine(Arc::clone(&store), true);
        let spawned: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|parcel| {
                let engine = engine.clone();
                tokio::spawn(async move { engine.run::<Parcel>(parcel.into()).await })
            })
            .collect();
        started.recv().await.unwrap();
        started.recv().await.unwrap();
        for task in &spawned {
            task.abort();
        }
        let pending = store.pending().await.unwrap();
        assert_eq!(pending.runs.len(), 2, "{pending:?}");
        (pending.runs[0].run_id, pending.runs[1].run_id)
    };
    let (corrupt, healthy) = (first, second);
    let (damage, repair, reason) = match corruption {
        Corruption::Actor => (
            format!("UPDATE {runs} SET actor = '{{oops' WHERE run_id = '{corrupt}'"),
            format!("UPDATE {runs} SET actor = NULL WHERE run_id = '{corrupt}'"),
            "the record cannot be read: actor: key must be a string at line 1 column 2",
        ),
        Corruption::Event => {
            let event = db.event(&corrupt.to_string(), 1);
            let select = format!("SELECT event FROM {events} WHERE {event}");
            let original = db.text(&select).await.unwrap().replace('\'', "''");
            (
                format!("UPDATE {events} SET event = '{{\"seq\": 1,' WHERE {event}"),
                format!("UPDATE {events} SET event = '{original}' WHERE {event}"),
                "event 1 cannot be read: EOF while parsing a value at line 1 column 10",
            )
        }
    };
    db.execute(&damage).await;

    let (engine, _) = engine(Arc::clone(&store), false);
    let report = engine.resume_pending().await.unwrap();
    assert_eq!(report.resumed, vec![(healthy, RunStatus::Completed)]);
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(report.quarantined.len(), 1, "{report:?}");
    assert_eq!(report.quarantined[0].run_id, corrupt.to_string());
    assert_eq!(report.quarantined[0].reason, reason);
    let select = |column: &str| format!("SELECT {column} FROM {runs} WHERE run_id = '{corrupt}'");
    assert_eq!(db.text(&select("status")).await.as_deref(), Some("parked"));
    assert_eq!(
        db.text(&select("error")).await,
        Some(format!("quarantined: {reason}"))
    );
    assert!(store.pending().await.unwrap().is_empty());

    // Resumed by hand before the repair: quarantined again, and why.
    match engine.resume(corrupt).await {
        Err(ResumeError::Quarantined {
            run_id,
            reason: why,
        }) => {
            assert_eq!(run_id, corrupt);
            assert_eq!(why, reason);
        }
        other => panic!("expected a quarantined run, got {other:?}"),
    }
    // Repaired, it resumes where it was.
    db.execute(&repair).await;
    assert_eq!(engine.resume(corrupt).await.unwrap(), RunStatus::Completed);
    let (record, _) = store.load(corrupt).await.unwrap();
    assert_eq!(record.output, Some(serde_json::json!("box of 1 g")));
}

fn tempdir(name: &str) -> PathBuf {
    crate::support::dirs::fresh("quarantine", name)
}

fn sqlite(name: &str) -> (Arc<dyn Store>, Db, PathBuf) {
    let dir = tempdir(name);
    let path = dir.join("runs.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    (store, Db::Sqlite(path), dir)
}

#[tokio::test]
async fn a_poisoned_run_does_not_stop_a_worker_on_sqlite() {
    let (store, db, dir) = sqlite("worker");
    a_poisoned_run_does_not_stop_a_worker(store, db).await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn resume_pending_quarantines_a_corrupt_run_on_sqlite() {
    let (store, db, dir) = sqlite("actor");
    resume_pending_quarantines(store, db, Corruption::Actor).await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn resume_pending_quarantines_a_corrupt_journal_on_sqlite() {
    let (store, db, dir) = sqlite("event");
    resume_pending_quarantines(store, db, Corruption::Event).await;
    std::fs::remove_dir_all(dir).unwrap();
}
