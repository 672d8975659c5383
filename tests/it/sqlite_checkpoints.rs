//! The SQLite store's checkpoints, made off the committing thread (issue 20, fourth pass):
//! what its commits write to the write-ahead log reaches the database file without another
//! commit, and under commits that follow each other closely the log stays bounded (it is
//! written again from its start), with nothing lost.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hookflow::store::Store;
use hookflow::store::sqlite::SqliteStore;
use hookflow::{Event, EventKind, RunId};

use crate::support::records;

fn tempdir(name: &str) -> PathBuf {
    crate::support::dirs::fresh("checkpoints", name)
}

/// The size of `path` in bytes (0 if it is missing).
fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// The page size of the database at `db`, from its file's header (bytes 16-17, big-endian;
/// 1 for 65,536).
fn page_size(db: &Path) -> u64 {
    let mut header = [0; 18];
    std::io::Read::read_exact(&mut std::fs::File::open(db).unwrap(), &mut header).unwrap();
    match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        size => u64::from(size),
    }
}

/// The pages in the write-ahead log of the database at `db` (each frame a page with its
/// 24-byte header, after the log's 32-byte header).
fn wal_pages(db: &Path) -> u64 {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    size(Path::new(&wal)).saturating_sub(32) / (page_size(db) + 24)
}

/// One journal event of about `bytes` bytes.
fn event(seq: u32, bytes: usize) -> Vec<Event> {
    vec![Event {
        seq,
        at_micros: 1,
        kind: EventKind::RunFailed {
            error: "e".repeat(bytes),
        },
    }]
}

/// A store in a fresh directory named after `name` (the directory, the database's path, the
/// store), holding one running run (its id).
async fn a_store_with_a_run(name: &str) -> (PathBuf, PathBuf, SqliteStore, RunId) {
    let dir = tempdir(name);
    let path = dir.join("runs.db");
    let store = SqliteStore::open(&path).unwrap();
    let run_id = RunId::generate();
    store
        .create(&records::running(run_id, "log"), None)
        .await
        .unwrap();
    (dir, path, store, run_id)
}

/// Commits until the log holds 1,000 pages, and none after: the store's checkpoint thread
/// copies them into the database file (not the commit that reached them: the store's
/// commits do not wait for the disk's syncs a checkpoint makes).
#[tokio::test]
async fn the_log_reaches_the_database_file_without_another_commit() {
    let (dir, path, store, run_id) = a_store_with_a_run("background").await;
    let before = size(&path);
    let mut seq = 0;
    while wal_pages(&path) < 1_000 {
        store
            .commit(run_id, 0, &event(seq, 16_000), None)
            .await
            .unwrap();
        seq += 1;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    // The events' text at least.
    while size(&path) < before + u64::from(seq) * 16_000 {
        assert!(
            Instant::now() < deadline,
            "not checkpointed: the database file is {} bytes, {before} before the commits",
            size(&path)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (_, events) = store.load(run_id).await.unwrap();
    assert_eq!(events.len(), seq as usize);
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}

/// 7,000 commits of 16 KB each (35,000 pages of 4 KiB, 63,000 of 2 KiB), each at once after the
/// other: the log never holds much more than 16,000 pages (from 8,000, a commit checkpoints what the
/// checkpoint thread left, from 16,000 it waits for the thread to end first, and the next
/// commit starts the log again), and every event is there.
#[tokio::test]
async fn the_log_stays_bounded_under_commits_that_never_stop() {
    let (dir, path, store, run_id) = a_store_with_a_run("bounded").await;
    for seq in 0..7_000 {
        store
            .commit(run_id, 0, &event(seq, 16_000), None)
            .await
            .unwrap();
    }
    // The log's file keeps its largest size when it is written again from its start.
    let largest = wal_pages(&path);
    assert!(largest <= 16_100, "the log grew to {largest} pages");
    let (_, events) = store.load(run_id).await.unwrap();
    assert_eq!(events.len(), 7_000);
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}
