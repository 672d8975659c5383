//! Writes a store refuses for good: a value too large for it (SQLite's "string or blob too
//! big", PostgreSQL's 1 GB limit) or not valid for it (a NUL in PostgreSQL text). A step
//! output whose commit is refused parks the run with the reason (`RecordError::Refused`)
//! instead of leaving it `running` to run the step again on every resume; nothing resumes it
//! by itself, `engine.resume` does after a fix. A new run's record that is refused rejects
//! the start, with nothing written.
//!
//! Without gigabyte values: the SQLite store is opened with a small `max_length` (SQLite's
//! `SQLITE_LIMIT_LENGTH`), and the PostgreSQL test narrows the journal's column to
//! `VARCHAR(20000)`, so that the server itself refuses a longer event with a data exception
//! (22001, `string_data_right_truncation`), as it refuses a value over 1 GB.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hookflow::prelude::*;
use hookflow::store::sqlite::SqliteStore;
use hookflow::store::{Store, StoredStatus};
use hookflow::{EnqueueError, EventKind, RecordError, Rejection, RunError, RunId};
use serde::{Deserialize, Serialize};

/// How many times `pack` ran.
#[derive(Default)]
struct Packed(AtomicUsize);

impl Packed {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Debug, thiserror::Error)]
enum ShipError {
    #[error(transparent)]
    Service(#[from] hookflow::MissingService),
    #[error("{0}")]
    Refused(String),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Order {
    /// Anything: to make the input large.
    note: String,
    /// The output of `pack` is a string of this many bytes.
    output_bytes: usize,
    /// `pack` fails with this message.
    fail_with: Option<String>,
}

fn order(output_bytes: usize) -> Order {
    Order {
        output_bytes,
        ..Order::default()
    }
}

#[step]
async fn pack(ctx: &StepContext, order: Order) -> Result<String, ShipError> {
    ctx.service::<Arc<Packed>>()?
        .0
        .fetch_add(1, Ordering::SeqCst);
    if let Some(message) = order.fail_with {
        return Err(ShipError::Refused(message));
    }
    Ok("x".repeat(order.output_bytes))
}

#[workflow]
async fn ship(ctx: &WorkflowContext, order: Order) -> Result<usize, ShipError> {
    Ok(pack(ctx, order).await?.len())
}

fn engine(store: Arc<dyn Store>, packed: &Arc<Packed>) -> Engine {
    Engine::builder()
        .worker_id("refused")
        .store(store)
        .service(Arc::clone(packed))
        .workflow::<Ship>()
        .build()
}

/// The refusal a parked run carries.
fn refusal(outcome: &Outcome<Ship>) -> (String, String) {
    assert_eq!(outcome.status(), RunStatus::Parked, "{:?}", outcome.error());
    match outcome.error() {
        Some(RunError::Record(RecordError::Refused { what, message })) => {
            (what.clone(), message.clone())
        }
        other => panic!("expected RecordError::Refused, got {other:?}"),
    }
}

/// What a parked run whose step output was refused holds: parked with the reason, the
/// events committed before the refusal and its `RunParked`, numbered without a gap, and no
/// completion of `pack`.
async fn assert_parked_without_the_output(store: &dyn Store, run_id: RunId, reason: &str) {
    let (record, events) = store.load(run_id).await.unwrap();
    assert_eq!(record.status, StoredStatus::Parked);
    assert!(
        record.error.as_deref().unwrap().contains(reason),
        "{record:?}"
    );
    assert_eq!(record.owner, None, "parking releases the lease");
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event.seq as usize, i, "{events:?}");
    }
    assert!(
        !events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::StepCompleted { .. })),
        "{events:?}"
    );
    assert!(
        matches!(&events.last().unwrap().kind, EventKind::RunParked { reason: r } if r.contains(reason)),
        "{events:?}"
    );
}

fn tempdir(name: &str) -> PathBuf {
    crate::support::dirs::fresh("refused", name)
}

#[tokio::test]
async fn a_step_output_sqlite_refuses_parks_the_run_which_runs_again_only_by_hand() {
    let dir = tempdir("output");
    let path = dir.join("runs.db");
    let limited: Arc<dyn Store> = Arc::new(
        SqliteStore::builder()
            .max_length(64 * 1024)
            .open(&path)
            .unwrap(),
    );
    let packed = Arc::new(Packed::default());
    let engine = engine(limited.clone(), &packed);

    // Below the engine's own bound (16 MiB), over the store's.
    let outcome = engine.run::<Ship>(order(100_000)).await;
    let (what, message) = refusal(&outcome);
    assert!(what.contains("the output of step `pack` #0"), "{what}");
    assert!(message.contains("too big"), "{message}");
    let reason = outcome.error().unwrap().to_string();
    assert!(
        reason.starts_with("the store refused the output of step `pack`"),
        "{reason}"
    );
    assert_eq!(packed.count(), 1);
    let run_id = outcome.run_id();
    assert_parked_without_the_output(&*limited, run_id, "string or blob too big").await;

    // Nothing runs it again by itself.
    assert!(limited.pending().await.unwrap().is_empty());
    let report = engine.resume_pending().await.unwrap();
    assert!(report.resumed.is_empty(), "{report:?}");
    assert_eq!(packed.count(), 1, "the step ran exactly once");

    // The fix (no limit): resumed by hand, the step runs again and the run completes.
    drop(engine);
    drop(limited);
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    let fixed = self::engine(store.clone(), &packed);
    assert_eq!(fixed.resume(run_id).await.unwrap(), RunStatus::Completed);
    assert_eq!(packed.count(), 2);
    let (record, _) = store.load(run_id).await.unwrap();
    assert_eq!(record.output, Some(serde_json::json!(100_000)));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn an_input_sqlite_refuses_rejects_the_start_and_writes_nothing() {
    let dir = tempdir("input");
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::builder()
            .max_length(64 * 1024)
            .open(dir.join("runs.db"))
            .unwrap(),
    );
    let packed = Arc::new(Packed::default());
    let engine = engine(store.clone(), &packed);
    let big = Order {
        note: "n".repeat(100_000),
        ..Order::default()
    };
    let outcome = engine.run::<Ship>(big.clone()).await;
    assert_eq!(
        outcome.status(),
        RunStatus::Rejected,
        "{:?}",
        outcome.error()
    );
    assert!(
        matches!(outcome.error(), Some(RunError::Rejected(Rejection::Record(RecordError::Refused { what, .. }))) if what.contains("a new run of `ship`")),
        "{:?}",
        outcome.error()
    );
    let enqueued = engine.enqueue::<Ship>(big).await;
    assert!(
        matches!(
            enqueued,
            Err(EnqueueError::Rejected(Rejection::Record(
                RecordError::Refused { .. }
            )))
        ),
        "{enqueued:?}"
    );
    assert_eq!(packed.count(), 0);
    assert!(store.list(None, None, 10).await.unwrap().is_empty());
    let _ = std::fs::remove_dir_all(dir);
}

mod postgres {
    use super::*;
    use crate::support::postgres::{pg_database, pg_psql};
    use hookflow::store::postgres::PostgresStore;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_step_output_postgres_refuses_parks_that_run_only() {
        let url = pg_database("refused_output");
        let store: Arc<dyn Store> = Arc::new(PostgresStore::connect(&url).await.unwrap());
        pg_psql(
            &url,
            &["ALTER TABLE hookflow_events ALTER COLUMN event TYPE VARCHAR(20000)"],
        );
        let packed = Arc::new(Packed::default());
        let engine = engine(store.clone(), &packed);

        // The refused run's commits go with the others' when they are written together: only
        // its own is refused.
        let mut runs = vec![tokio::spawn({
            let engine = engine.clone();
            async move { engine.run::<Ship>(order(30_000)).await }
        })];
        for _ in 0..6 {
            let engine = engine.clone();
            runs.push(tokio::spawn(
                async move { engine.run::<Ship>(order(10)).await },
            ));
        }
        let mut outcomes = Vec::new();
        for run in runs {
            outcomes.push(run.await.unwrap());
        }
        let big = outcomes.remove(0);
        for small in &outcomes {
            assert_eq!(small.status(), RunStatus::Completed, "{:?}", small.error());
        }
        let (what, message) = refusal(&big);
        assert!(what.contains("the output of step `pack` #0"), "{what}");
        assert!(message.contains("character varying(20000)"), "{message}");
        assert_eq!(packed.count(), 7);
        assert_parked_without_the_output(&*store, big.run_id(), "character varying(20000)").await;

        assert!(store.pending().await.unwrap().is_empty());
        let report = engine.resume_pending().await.unwrap();
        assert!(report.resumed.is_empty(), "{report:?}");
        assert_eq!(packed.count(), 7, "the step ran exactly once");

        pg_psql(
            &url,
            &["ALTER TABLE hookflow_events ALTER COLUMN event TYPE TEXT"],
        );
        assert_eq!(
            engine.resume(big.run_id()).await.unwrap(),
            RunStatus::Completed
        );
        assert_eq!(packed.count(), 8);
    }

    /// Commits made at once are written together, in one statement, which the server refuses
    /// whole: each is then written alone, and only the one with the refused data fails.
    #[tokio::test]
    async fn a_refused_commit_fails_alone_among_those_written_with_it() {
        use hookflow::Event;
        use hookflow::store::{Lease, RunRecord, StoreError};
        let url = pg_database("refused_group");
        let store = PostgresStore::connect(&url).await.unwrap();
        pg_psql(
            &url,
            &["ALTER TABLE hookflow_events ALTER COLUMN event TYPE VARCHAR(20000)"],
        );
        let lease = Lease {
            owner: "refused".into(),
            duration: std::time::Duration::from_secs(60),
        };
        let mut ids = Vec::new();
        for _ in 0..4 {
            let run_id = RunId::generate();
            let record = RunRecord {
                input: serde_json::json!({}),
                ..crate::support::records::running(run_id, "ship")
            };
            store.create(&record, Some(&lease)).await.unwrap();
            ids.push(run_id);
        }
        let event = |bytes: usize| {
            vec![Event {
                seq: 0,
                at_micros: 1,
                kind: EventKind::RunFailed {
                    error: "e".repeat(bytes),
                },
            }]
        };
        let (small, big) = (event(10), event(30_000));
        // Each commit is handed to the committer when it is made: the four wait together.
        let commits: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(i, &id)| store.commit(id, 1, if i == 1 { &big } else { &small }, None))
            .collect();
        let mut results = Vec::new();
        for commit in commits {
            results.push(commit.await);
        }
        for (i, result) in results.iter().enumerate() {
            if i == 1 {
                assert!(
                    matches!(result, Err(StoreError::Refused { .. })),
                    "{results:?}"
                );
            } else {
                assert!(result.is_ok(), "{results:?}");
            }
        }
        for (i, &id) in ids.iter().enumerate() {
            let (_, events) = store.load(id).await.unwrap();
            assert_eq!(events.len(), usize::from(i != 1));
        }
    }

    #[tokio::test]
    async fn a_nul_in_an_idempotency_key_rejects_the_start_and_writes_nothing() {
        let url = pg_database("refused_key");
        let store: Arc<dyn Store> = Arc::new(PostgresStore::connect(&url).await.unwrap());
        let packed = Arc::new(Packed::default());
        let engine = engine(store.clone(), &packed);
        let keyed = || RunOptions::new().idempotency_key("order\0 7");
        let outcome = engine.run_with::<Ship>(order(1), keyed()).await;
        assert_eq!(
            outcome.status(),
            RunStatus::Rejected,
            "{:?}",
            outcome.error()
        );
        match outcome.error() {
            Some(RunError::Rejected(Rejection::Record(RecordError::Refused {
                message, ..
            }))) => {
                assert!(message.contains("0x00"), "{message}");
            }
            other => panic!("expected a refused record, got {other:?}"),
        }
        let enqueued = engine.enqueue_with::<Ship>(order(1), keyed()).await;
        assert!(
            matches!(enqueued, Err(EnqueueError::Rejected(Rejection::Record(_)))),
            "{enqueued:?}"
        );
        assert_eq!(packed.count(), 0);
        assert!(store.list(None, None, 10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_failure_whose_message_holds_a_nul_ends_as_it_would_elsewhere() {
        let url = pg_database("nul_error");
        let store: Arc<dyn Store> = Arc::new(PostgresStore::connect(&url).await.unwrap());
        let packed = Arc::new(Packed::default());
        let engine = engine(store.clone(), &packed);
        let failing = Order {
            fail_with: Some("bad\0label".into()),
            ..Order::default()
        };
        let outcome = engine.run::<Ship>(failing).await;
        assert_eq!(
            outcome.status(),
            RunStatus::Compensated,
            "{:?}",
            outcome.error()
        );
        let (record, events) = store.load(outcome.run_id()).await.unwrap();
        assert_eq!(record.status, StoredStatus::Compensated);
        assert_eq!(record.error.as_deref(), Some("bad\u{FFFD}label"));
        // The journal, JSON, keeps the message as it was.
        assert!(
            events.iter().any(
                |e| matches!(&e.kind, EventKind::RunFailed { error } if error == "bad\0label")
            )
        );
    }
}
