//! A SQLite store's connection notes the key (`runs.id`) of the run it last created, and finds
//! that run's row by it when it commits to the run (issue 20, sixth pass: one index lookup
//! fewer a statement). The key is a hint: the run may have been pruned since, by another
//! connection, and its key given to a new run. A commit to the pruned run is then refused as
//! it always was, and writes nothing into the new run's journal or row.

use std::path::PathBuf;

use hookflow::store::sqlite::SqliteStore;
use hookflow::store::{RunUpdate, Store, StoreError, StoredStatus};
use hookflow::{Event, EventKind, RunId};

use crate::support::records;

fn tempdir(name: &str) -> PathBuf {
    crate::support::dirs::fresh("sqlite-run-key", name)
}

fn failed(seq: u32) -> Vec<Event> {
    vec![Event {
        seq,
        at_micros: 1,
        kind: EventKind::RunFailed {
            error: format!("event {seq}"),
        },
    }]
}

#[tokio::test]
async fn a_commit_to_a_pruned_run_whose_key_went_to_a_new_run_is_refused() {
    let dir = tempdir("pruned");
    let path = dir.join("runs.db");
    let this = SqliteStore::open(&path).unwrap();
    let other = SqliteStore::open(&path).unwrap();

    // Created, committed to and ended on `this` connection, which notes its key.
    let old = RunId::generate();
    this.create(&records::running(old, "old"), None)
        .await
        .unwrap();
    this.commit(old, 0, &failed(0), None).await.unwrap();
    let end = RunUpdate {
        status: StoredStatus::Completed,
        output: Some(serde_json::json!("done")),
        error: None,
    };
    this.commit(old, 0, &failed(1), Some(end)).await.unwrap();

    // Pruned on the other connection; the new run created there takes its key (the largest
    // key plus one: the table is empty).
    let later = crate::prune::now_micros() + 60_000_000;
    assert_eq!(other.prune(later, 10).await.unwrap(), 1);
    let new = RunId::generate();
    other
        .create(&records::running(new, "new"), None)
        .await
        .unwrap();

    // A late commit to the pruned run, and a late end, from `this` connection: refused.
    let commit = this.commit(old, 0, &failed(2), None).await;
    assert!(
        matches!(commit, Err(StoreError::NotFound(id)) if id == old),
        "{commit:?}"
    );
    let end = RunUpdate {
        status: StoredStatus::Completed,
        output: Some(serde_json::json!("late")),
        error: None,
    };
    let ended = this.commit(old, 0, &failed(3), Some(end)).await;
    assert!(
        matches!(ended, Err(StoreError::NotFound(id)) if id == old),
        "{ended:?}"
    );

    // The new run is as it was created: running, no output, no events.
    let (record, events) = other.load(new).await.unwrap();
    assert_eq!(record.status, StoredStatus::Running);
    assert_eq!(record.output, None);
    assert!(events.is_empty(), "{events:?}");

    // And commits to it, from either connection, are its own.
    this.commit(new, 0, &failed(0), None).await.unwrap();
    other.commit(new, 0, &failed(1), None).await.unwrap();
    let (_, events) = this.load(new).await.unwrap();
    assert_eq!(events.len(), 2);
    drop((this, other));
    let _ = std::fs::remove_dir_all(dir);
}
