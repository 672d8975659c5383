//! `hookflow cancel RUN --reason ...` on a SQLite store: the request is kept with the run
//! (with the reason and the operator), and an engine that runs it then cancels it; a run
//! that has ended is left as it was, and an unknown one is an error.

use std::sync::Arc;

use hookflow::prelude::*;
use hookflow::store::Store;
use hookflow::store::sqlite::SqliteStore;
use hookflow::{RunId, StoredStatus};

mod support;

use support::{Parcel, hookflow};

#[tokio::test]
async fn cancel_asks_the_run_and_the_next_engine_carries_it_out() {
    let dir = support::tempdir("cancel", "asks");
    let path = dir.join("runs.db");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let engine = Engine::builder()
        .store(Arc::clone(&store))
        .workflow::<Parcel>()
        .build();
    let queued = engine.enqueue::<Parcel>("late".into()).await.unwrap();
    let done = engine.run::<Parcel>("on time".into()).await.run_id();

    let (code, out, err) = hookflow(
        &path,
        &["cancel", &queued.to_string(), "--reason", "too late"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("cancel requested"), "{out}");
    let (record, _) = store.load(queued).await.unwrap();
    let request = record.cancel.expect("the request is kept with the run");
    assert_eq!(request.reason, "too late");
    assert!(request.by.is_some(), "the operator is recorded");

    // The engine that runs it cancels it at its first step boundary.
    assert_eq!(engine.resume(queued).await.unwrap(), RunStatus::Cancelled);
    let (record, _) = store.load(queued).await.unwrap();
    assert_eq!(record.status, StoredStatus::Cancelled);
    assert!(record.error.unwrap_or_default().contains("too late"));

    let (code, out, _) = hookflow(&path, &["cancel", &done.to_string()]);
    assert_eq!(code, 0);
    assert!(out.contains("has ended (completed)"), "{out}");
    let (record, _) = store.load(done).await.unwrap();
    assert_eq!(record.status, StoredStatus::Completed);

    let unknown = RunId::generate().to_string();
    let (code, _, err) = hookflow(&path, &["cancel", &unknown]);
    assert_ne!(code, 0);
    assert!(err.contains("no run"), "{err}");
}
