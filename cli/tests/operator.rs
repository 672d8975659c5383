//! `hookflow retry RUN` and `hookflow fork RUN --from-step N` on a SQLite store: the binary
//! has no workflow code, so it records the request (who asked, the run made claimable) and
//! says who carries it out; an engine that registers the workflow then does. A retry of a run
//! that did not end compensation_failed, and a fork from a step the run never started, are
//! refused with what to do, and write nothing.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use hookflow::prelude::*;
use hookflow::store::Store;
use hookflow::store::sqlite::SqliteStore;
use hookflow::{EventKind, RunId, StoredStatus};

mod support;

use support::{hookflow, tempdir};

/// Whether the partner refuses cancellations.
static DOWN: AtomicBool = AtomicBool::new(false);
/// Whether the payment is declined.
static DECLINE: AtomicBool = AtomicBool::new(false);
static BOOKED: AtomicUsize = AtomicUsize::new(0);
static CANCELLED: AtomicUsize = AtomicUsize::new(0);
static PAID: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug, thiserror::Error)]
enum BookingError {
    #[error("the partner is down")]
    Down,
    #[error("declined")]
    Declined,
}

#[step(compensate = cancel)]
async fn book(
    _ctx: &StepContext,
    room: String,
) -> Result<StepResponse<String, String>, BookingError> {
    BOOKED.fetch_add(1, Ordering::SeqCst);
    Ok(StepResponse::new(room.clone(), room))
}

async fn cancel(_ctx: &StepContext, _room: String) -> Result<(), BookingError> {
    if DOWN.load(Ordering::SeqCst) {
        return Err(BookingError::Down);
    }
    CANCELLED.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[step]
async fn pay(_ctx: &StepContext, room: String) -> Result<String, BookingError> {
    if DECLINE.load(Ordering::SeqCst) {
        return Err(BookingError::Declined);
    }
    PAID.fetch_add(1, Ordering::SeqCst);
    Ok(format!("paid {room}"))
}

#[workflow]
async fn booking(ctx: &WorkflowContext, room: String) -> Result<String, BookingError> {
    let room = book(ctx, room).await?;
    pay(ctx, room).await
}

fn open_engine(path: &Path) -> (Arc<SqliteStore>, Engine) {
    let store = Arc::new(SqliteStore::open(path).unwrap());
    let engine = Engine::builder()
        .store(Arc::clone(&store))
        .workflow::<Booking>()
        .build();
    (store, engine)
}

// One test: the counters are the process's.
#[tokio::test]
async fn retry_and_fork_are_recorded_by_the_cli_and_carried_out_by_an_engine() {
    let dir = tempdir("operator", "retry-fork");
    let path = dir.join("runs.db");

    // A booking whose payment is declined while the partner is down: the cancellation fails.
    DOWN.store(true, Ordering::SeqCst);
    DECLINE.store(true, Ordering::SeqCst);
    let (store, engine) = open_engine(&path);
    let stuck = engine.run::<Booking>("room 12".into()).await;
    assert_eq!(stuck.status(), RunStatus::CompensationFailed);
    let run = stuck.run_id().to_string();
    drop((engine, store));

    let (code, out, err) = hookflow(&path, &["retry", &run, "--as", "alice"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("retry of its failed compensations recorded"),
        "{out}"
    );
    assert!(
        out.contains("registers workflow `booking` version 1"),
        "{out}"
    );

    // Recorded, with who asked; the run is running again, and nothing ran.
    let (store, engine) = open_engine(&path);
    let run_id = RunId::parse(&run).unwrap();
    let (record, events) = store.load(run_id).await.unwrap();
    assert_eq!(record.status, StoredStatus::Running);
    assert!(
        events.iter().any(
            |e| matches!(&e.kind, EventKind::RetryRequested { actor } if actor.id() == "alice")
        )
    );
    assert_eq!(CANCELLED.load(Ordering::SeqCst), 0);

    // The partner is back: the engine that knows the workflow carries the retry out.
    DOWN.store(false, Ordering::SeqCst);
    let report = engine.resume_pending().await.unwrap();
    assert_eq!(report.resumed, [(run_id, RunStatus::Compensated)]);
    assert_eq!(CANCELLED.load(Ordering::SeqCst), 1);
    drop((engine, store));

    // Nothing left to retry: refused, nothing written.
    let (code, out, err) = hookflow(&path, &["retry", &run]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(
        err.contains("is compensated, not compensation_failed"),
        "{err}"
    );

    // A fork of the compensated run from its payment, now accepted: the booking replays.
    DECLINE.store(false, Ordering::SeqCst);
    let (code, out, err) = hookflow(&path, &["fork", &run, "--from-step", "1", "--as", "bob"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("run {run} forked from step #1: new run ")),
        "{out}"
    );
    assert!(
        out.contains("registers workflow `booking` version 1 runs it"),
        "{out}"
    );
    let forked = out
        .split("new run ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|id| RunId::parse(id).ok())
        .unwrap();
    let (_, engine) = open_engine(&path);
    assert_eq!(engine.resume(forked).await.unwrap(), RunStatus::Completed);
    assert_eq!(
        BOOKED.load(Ordering::SeqCst),
        1,
        "the booking is not made again"
    );
    assert_eq!(PAID.load(Ordering::SeqCst), 1);
    drop(engine);

    let (code, _, err) = hookflow(&path, &["fork", &run, "--from-step", "9"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("has no step #9: it started 2 step(s)"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
