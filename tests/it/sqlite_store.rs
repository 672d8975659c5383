//! The SQLite store's own faults: a file that cannot be opened, a newer schema, corrupt or
//! foreign rows, and runs that survive the store being closed and opened again.

use std::path::PathBuf;
use std::sync::Arc;

use hookflow::prelude::*;
use hookflow::store::sqlite::SqliteStore;
use hookflow::store::{Store, StoreError, StoredStatus};

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

#[step(compensate = unlabel)]
async fn label(_ctx: &StepContext, parcel: String) -> Result<StepResponse<String, String>, Never> {
    Ok(StepResponse::new(format!("label for {parcel}"), parcel))
}

async fn unlabel(_ctx: &StepContext, _parcel: String) -> Result<(), Never> {
    Ok(())
}

#[workflow]
async fn ship(ctx: &WorkflowContext, parcel: String) -> Result<String, Never> {
    label(ctx, parcel).await
}

fn tempdir(name: &str) -> PathBuf {
    crate::support::dirs::fresh("sqlite", name)
}

fn engine(store: Arc<SqliteStore>) -> Engine {
    Engine::builder()
        .worker_id("app")
        .store(store)
        .workflow::<Ship>()
        .build()
}

#[tokio::test]
async fn runs_survive_closing_and_opening_the_database() {
    let dir = tempdir("reopen");
    let path = dir.join("runs.db");
    let run_id = {
        let store = Arc::new(SqliteStore::open(&path).unwrap());
        let outcome = engine(store).run::<Ship>("p1".into()).await;
        assert!(outcome.is_completed());
        outcome.run_id()
    };
    let store = SqliteStore::open(&path).unwrap();
    let (record, events) = store.load(run_id).await.unwrap();
    assert_eq!(record.status, StoredStatus::Completed);
    assert_eq!(record.output, Some(serde_json::json!("label for p1")));
    assert!(events.len() >= 4);
    let listed = store
        .list(Some(StoredStatus::Completed), Some("ship"), 10)
        .await
        .unwrap()
        .runs;
    assert_eq!(listed.len(), 1);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_file_that_cannot_be_opened_is_a_typed_error() {
    let dir = tempdir("missing");
    let err = SqliteStore::open(dir.join("no/such/dir/runs.db")).unwrap_err();
    assert!(
        matches!(&err, StoreError::Unavailable { context, .. } if context == "open the database"),
        "{err}"
    );
    // A directory where the file should be.
    let err = SqliteStore::open(&dir).unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_database_from_a_newer_hookflow_is_refused() {
    let dir = tempdir("newer");
    let path = dir.join("runs.db");
    drop(SqliteStore::open(&path).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99;")
        .unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::IncompatibleSchema {
                found: 99,
                supported: 8
            }
        ),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn corrupt_and_foreign_rows_are_typed_errors_and_nothing_is_lost() {
    let dir = tempdir("corrupt");
    let path = dir.join("runs.db");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let done = engine(Arc::clone(&store))
        .run::<Ship>("p2".into())
        .await
        .run_id();
    let other = engine(Arc::clone(&store))
        .run::<Ship>("p3".into())
        .await
        .run_id();
    drop(store);

    let conn = rusqlite::Connection::open(&path).unwrap();
    // A journal row that is not JSON, and one written by a hookflow with an event unknown here.
    conn.execute(
        "UPDATE events SET event = 'not json' WHERE id = ((SELECT id FROM runs WHERE run_id = ?1) << 32) | 1",
        [done.to_string()],
    )
    .unwrap();
    conn.execute(
        "UPDATE events SET event = '{\"seq\":1,\"at_micros\":1,\"event\":\"teleported\"}' WHERE id = ((SELECT id FROM runs WHERE run_id = ?1) << 32) | 1",
        [other.to_string()],
    )
    .unwrap();
    drop(conn);

    let store = SqliteStore::open(&path).unwrap();
    for run_id in [done, other] {
        match store.load(run_id).await {
            Err(StoreError::Corrupt {
                run_id: id,
                message,
            }) => {
                assert_eq!(id, run_id.to_string());
                assert!(message.starts_with("event 1 cannot be read"), "{message}");
            }
            other => panic!("expected a corrupt row, got {other:?}"),
        }
    }
    // The run rows are intact: nothing is lost.
    assert_eq!(store.list(None, None, 10).await.unwrap().runs.len(), 2);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_corrupt_pending_run_is_quarantined_by_resume_not_dropped() {
    let dir = tempdir("pending");
    let path = dir.join("runs.db");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let run_id = engine(Arc::clone(&store))
        .run::<Ship>("p4".into())
        .await
        .run_id();
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE runs SET status = 'running' WHERE run_id = ?1",
        [run_id.to_string()],
    )
    .unwrap();
    conn.execute(
        "UPDATE events SET event = '{' WHERE id = ((SELECT id FROM runs WHERE run_id = ?1) << 32) | 0",
        [run_id.to_string()],
    )
    .unwrap();
    drop(conn);
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let report = engine(Arc::clone(&store)).resume_pending().await.unwrap();
    assert!(report.failed.is_empty(), "{report:?}");
    assert!(report.resumed.is_empty(), "{report:?}");
    assert_eq!(report.quarantined.len(), 1, "{report:?}");
    assert_eq!(report.quarantined[0].run_id, run_id.to_string());
    assert!(
        report.quarantined[0]
            .reason
            .starts_with("event 0 cannot be read: "),
        "{report:?}"
    );
    // Parked, not dropped: listed with its reason, no longer pending.
    assert!(store.pending().await.unwrap().is_empty());
    let parked = store
        .list(Some(StoredStatus::Parked), None, 10)
        .await
        .unwrap()
        .runs;
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].run_id, run_id);
    assert_eq!(
        parked[0].error.as_deref(),
        Some(report.quarantined[0].error().as_str())
    );
    std::fs::remove_dir_all(dir).unwrap();
}
