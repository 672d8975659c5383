//! The page size of a SQLite store's file (issue 20, sixth pass): a store the store creates has
//! 2 KiB pages (a commit writes its changed pages whole to the log: smaller pages, fewer bytes
//! a commit), and a store created before, with SQLite's 4 KiB pages, keeps them: it opens,
//! migrates, runs and resumes as before, and what other processes read (SQLite's own
//! connections, the CLI) is the same either way.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hookflow::prelude::*;
use hookflow::store::sqlite::SqliteStore;
use hookflow::store::{Store, StoredStatus};

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

#[step]
async fn fold(_ctx: &StepContext, sheet: String) -> Result<String, Never> {
    Ok(format!("folded {sheet}"))
}

#[workflow]
async fn origami(ctx: &WorkflowContext, sheet: String) -> Result<String, Never> {
    let folded = fold(ctx, sheet).await?;
    fold(ctx, folded).await
}

fn tempdir(name: &str) -> PathBuf {
    crate::support::dirs::fresh("sqlite-page-size", name)
}

fn engine(store: Arc<SqliteStore>) -> Engine {
    Engine::builder()
        .worker_id("app")
        .store(store)
        .workflow::<Origami>()
        .build()
}

/// The page size of the database at `path`, as SQLite reads it.
fn page_size(path: &Path) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("PRAGMA page_size", [], |row| row.get(0))
        .unwrap()
}

/// Runs a workflow to its end on the store at `path`, then opens the store again and reads
/// the run back.
async fn runs_and_reads_back(path: &Path) {
    let store = Arc::new(SqliteStore::open(path).unwrap());
    let outcome = engine(Arc::clone(&store))
        .run::<Origami>("paper".to_owned())
        .await;
    assert!(outcome.is_completed());
    let run_id = outcome.run_id();
    drop(store);
    let store = SqliteStore::open(path).unwrap();
    let (record, events) = store.load(run_id).await.unwrap();
    assert_eq!(record.status, StoredStatus::Completed);
    assert_eq!(
        record.output,
        Some(serde_json::json!("folded folded paper"))
    );
    assert!(events.len() >= 4, "{} events", events.len());
}

#[tokio::test]
async fn a_new_store_has_two_kib_pages() {
    let dir = tempdir("new");
    let path = dir.join("runs.db");
    runs_and_reads_back(&path).await;
    assert_eq!(page_size(&path), 2048);
    let _ = std::fs::remove_dir_all(dir);
}

/// A file whose first page SQLite wrote with its default page size (as every store was
/// created before): the store migrates it, runs on it and reads it back, and its pages stay
/// 4 KiB.
#[tokio::test]
async fn a_store_with_four_kib_pages_keeps_them() {
    let dir = tempdir("old");
    let path = dir.join("runs.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        // A table created and dropped: the file's first page is written, nothing is left in it.
        conn.execute_batch(
            "PRAGMA page_size = 4096; CREATE TABLE scratch (x); DROP TABLE scratch;",
        )
        .unwrap();
    }
    assert_eq!(page_size(&path), 4096);
    runs_and_reads_back(&path).await;
    assert_eq!(page_size(&path), 4096);
    let _ = std::fs::remove_dir_all(dir);
}
