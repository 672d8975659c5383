//! What a SQLite store's commit wrote is in the database's files when the commit returns
//! (whatever the store keeps in memory: its prepared statements, its log's frames), and a
//! dropped store closes its connections: the files as a killed process leaves them hold
//! every commit made.

use std::path::{Path, PathBuf};

use hookflow::store::Store;
use hookflow::store::sqlite::{Durability, SqliteStore};
use hookflow::{Event, EventKind, RunId};

use crate::support::records;

/// `db` and its log copied into `to` as they are on disk now (no `-shm`: the copy's log is
/// read back from its frames and their checksums, as after a crash).
fn copy_files(db: &Path, to: &Path) -> PathBuf {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    let copy = to.join("runs.db");
    std::fs::copy(db, &copy).unwrap();
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let mut wal_copy = copy.as_os_str().to_owned();
    wal_copy.push("-wal");
    std::fs::copy(&wal, &wal_copy).unwrap();
    copy
}

/// After each commit, a copy of the database and its log taken at once holds the commit's
/// events: every frame of it is written whole (its header with its page) when the commit
/// returns, so a process killed then loses nothing. With either durability (`Full` syncs the
/// log at each commit).
#[tokio::test]
async fn each_commit_is_whole_in_the_files_when_it_returns() {
    for (name, durability) in [("normal", Durability::Normal), ("full", Durability::Full)] {
        let dir = crate::support::dirs::fresh("wal_frames", name);
        let path = dir.join("runs.db");
        let store = SqliteStore::builder()
            .durability(durability)
            .open(&path)
            .unwrap();
        let run_id = RunId::generate();
        store
            .create(&records::running(run_id, "frames"), None)
            .await
            .unwrap();
        for seq in 0..12_u32 {
            // Small and large events: one frame, then several.
            let bytes = if seq % 3 == 2 { 9_000 } else { 40 };
            let event = Event {
                seq,
                at_micros: 1,
                kind: EventKind::RunFailed {
                    error: "e".repeat(bytes),
                },
            };
            store.commit(run_id, 0, &[event], None).await.unwrap();
            let copy = copy_files(&path, &dir.join(format!("copy-{seq}")));
            let copied = SqliteStore::open(&copy).unwrap();
            let (_, events) = copied.load(run_id).await.unwrap();
            assert_eq!(
                events.len(),
                seq as usize + 1,
                "{name}: the copy taken after commit {seq} lacks a commit"
            );
            drop(copied);
        }
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A store dropped closes its connections: its log is checkpointed and removed, as SQLite
/// does when the last connection to a database closes. (The store keeps `BEGIN IMMEDIATE`
/// and `COMMIT` prepared outside rusqlite's cache: a statement not finalized first would keep
/// its connection from closing, and the log would stay.)
#[tokio::test]
async fn a_dropped_store_closes_and_removes_its_log() {
    let dir = crate::support::dirs::fresh("wal_frames", "closed");
    let path = dir.join("runs.db");
    let store = SqliteStore::open(&path).unwrap();
    let run_id = RunId::generate();
    store
        .create(&records::running(run_id, "closed"), None)
        .await
        .unwrap();
    let event = Event {
        seq: 0,
        at_micros: 1,
        kind: EventKind::RunFailed { error: "e".into() },
    };
    store.commit(run_id, 0, &[event], None).await.unwrap();
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal = PathBuf::from(wal);
    assert!(wal.exists(), "no log while the store is open");
    drop(store);
    // The writer and checkpoint threads end after the store: their connections close then.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while wal.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the log is still there: a connection was not closed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let reopened = SqliteStore::open(&path).unwrap();
    assert_eq!(reopened.load(run_id).await.unwrap().1.len(), 1);
    drop(reopened);
    let _ = std::fs::remove_dir_all(dir);
}
