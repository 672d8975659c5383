//! A SQLite store opened read-only: it reads a live store, refuses every write, never
//! creates, migrates or changes a file (another application's database, an empty file, an
//! older store), and reads a store on a medium where SQLite cannot create its `-wal` and
//! `-shm` files. "Unchanged" is checked on the file's bytes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hookflow::prelude::*;
use hookflow::store::sqlite::SqliteStore;
use hookflow::store::{Lease, Store, StoreError, StoredStatus};

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

#[step]
async fn stamp(_ctx: &StepContext, parcel: String) -> Result<String, Never> {
    Ok(format!("stamped {parcel}"))
}

#[workflow]
async fn post(ctx: &WorkflowContext, parcel: String) -> Result<String, Never> {
    stamp(ctx, parcel).await
}

fn tempdir(name: &str) -> PathBuf {
    crate::support::dirs::fresh("ro", name)
}

fn engine(store: Arc<SqliteStore>) -> Engine {
    Engine::builder()
        .worker_id("writer")
        .store(store)
        .workflow::<Post>()
        .build()
}

/// The file's bytes.
fn bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A hookflow store with one completed run, closed (no `-wal` file left).
async fn store_with_a_run(dir: &Path) -> (PathBuf, hookflow::RunId) {
    let path = dir.join("runs.db");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let outcome = engine(store).run::<Post>("p1".into()).await;
    assert!(outcome.is_completed());
    // The store's writer thread closes its connection once the store is dropped, and the
    // last connection to close checkpoints the WAL and deletes the `-wal` file.
    let wal = dir.join("runs.db-wal");
    for _ in 0..500 {
        if !wal.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (path, outcome.run_id())
}

#[tokio::test]
async fn a_read_only_store_reads_a_live_store_and_refuses_every_write() {
    let dir = tempdir("live");
    let (path, first) = store_with_a_run(&dir).await;
    let before = bytes(&path);
    let store = SqliteStore::open_read_only(&path).unwrap();
    assert!(store.is_read_only());
    let (record, events) = store.load(first).await.unwrap();
    assert_eq!(record.status, StoredStatus::Completed);
    assert!(!events.is_empty());
    assert!(store.pending().await.unwrap().runs.is_empty());

    let lease = Lease {
        owner: "reader".into(),
        duration: Duration::from_secs(5),
    };
    let refused = |result: Result<(), StoreError>, what: &str| match result {
        Err(StoreError::ReadOnly { context }) => assert_eq!(context, what),
        other => panic!("{what}: expected a read-only refusal, got {other:?}"),
    };
    refused(
        store.create(&record, None).await.map(drop),
        "record a new run",
    );
    refused(store.commit(first, 1, &events, None).await, "commit");
    refused(store.claim(first, &lease).await.map(drop), "claim a run");
    refused(
        store
            .claim_next(&lease, &[("post".into(), 1)], &[], 10)
            .await
            .map(drop),
        "claim runs",
    );
    refused(
        store.renew(&lease, &[first]).await.map(drop),
        "renew a lease",
    );
    refused(store.release(first, 1).await, "release a run");
    assert_eq!(bytes(&path), before, "a read-only store wrote to the file");

    // An engine writing to the store meanwhile: the reader sees its commits (it reads under
    // SQLite's locks, with the WAL, not a frozen copy).
    let writer = Arc::new(SqliteStore::open(&path).unwrap());
    let second = engine(writer).run::<Post>("p2".into()).await.run_id();
    let listed = store.list(None, Some("post"), 10).await.unwrap().runs;
    assert_eq!(
        listed.iter().map(|r| r.run_id).collect::<Vec<_>>(),
        [second, first]
    );
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn what_is_not_a_store_is_refused_and_left_as_it_was() {
    let dir = tempdir("foreign");
    // Another application's database, in WAL mode or not, with tables named like hookflow's
    // or not; an empty file; a file that is not a database; one with a schema version but no
    // hookflow tables.
    let cases: [(&str, Option<&str>, &str); 6] = [
        (
            "app.db",
            Some(
                "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);
                 CREATE TABLE orders (id INTEGER PRIMARY KEY, total INTEGER);
                 INSERT INTO users (name) VALUES ('alice');",
            ),
            "another application's schema (table `orders`, table `users`)",
        ),
        (
            "wal-app.db",
            Some("PRAGMA journal_mode = WAL; CREATE TABLE accounts (id INTEGER PRIMARY KEY);"),
            "another application's schema (table `accounts`)",
        ),
        (
            "runs-of-another-app.db",
            Some("CREATE TABLE runs (id INTEGER PRIMARY KEY); CREATE VIEW v AS SELECT 1;"),
            "another application's schema (table `runs`, view `v`)",
        ),
        ("empty.db", None, "the database is empty"),
        ("notes.txt", None, "it is not a SQLite database"),
        (
            "versioned.db",
            Some("CREATE TABLE items (id INTEGER); PRAGMA user_version = 3;"),
            "its schema version (user_version) is 3, but it has no table `runs` or `events`",
        ),
    ];
    for (name, sql, reason) in cases {
        let path = dir.join(name);
        match (name, sql) {
            (_, Some(sql)) => {
                let conn = rusqlite::Connection::open(&path).unwrap();
                conn.execute_batch(sql).unwrap();
            }
            ("notes.txt", None) => {
                std::fs::write(
                    &path,
                    "not a database, but a file of another program\n".repeat(50),
                )
                .unwrap();
            }
            _ => std::fs::write(&path, b"").unwrap(),
        }
        let before = bytes(&path);
        let files = listing(&dir);

        let err = SqliteStore::open_read_only(&path).unwrap_err();
        assert!(
            matches!(&err, StoreError::NotAStore { reason: r } if r.contains(reason)),
            "{name}: {err}"
        );
        assert!(
            err.to_string().starts_with("not a hookflow store: "),
            "{err}"
        );
        assert_eq!(bytes(&path), before, "{name} was written to");
        assert_eq!(listing(&dir), files, "{name}: files were created");

        // Opened for writing, another application's database is refused just the same,
        // before anything is written to it (an empty file becomes a store: that is what
        // `SqliteStore::open` is for).
        if name != "empty.db" {
            let err = SqliteStore::open(&path).unwrap_err();
            assert!(
                matches!(&err, StoreError::NotAStore { reason: r } if r.contains(reason)),
                "{name}: {err}"
            );
            assert_eq!(bytes(&path), before, "{name} was written to");
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn an_older_store_is_refused_read_only_and_migrated_when_opened_for_writing() {
    let dir = tempdir("older");
    let path = dir.join("runs.db");
    // Version 1 of the schema, as the first hookflow wrote it (before leases).
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TABLE runs (
                run_id TEXT PRIMARY KEY, workflow TEXT NOT NULL, version INTEGER NOT NULL,
                input TEXT NOT NULL, status TEXT NOT NULL, idempotency_key TEXT UNIQUE,
                request_id TEXT, actor TEXT, origin TEXT NOT NULL, additional_data TEXT,
                output TEXT, error TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
            );
            CREATE INDEX runs_by_status ON runs (status, created_at);
            CREATE TABLE events (
                run_id TEXT NOT NULL, seq INTEGER NOT NULL, event TEXT NOT NULL,
                PRIMARY KEY (run_id, seq)
            ) WITHOUT ROWID;
            PRAGMA user_version = 1;",
        )
        .unwrap();
    let before = bytes(&path);
    let err = SqliteStore::open_read_only(&path).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::SchemaOutdated {
                found: 1,
                supported: 8
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("open it once for writing"),
        "{err}"
    );
    assert_eq!(bytes(&path), before);

    drop(SqliteStore::open(&path).unwrap());
    let store = SqliteStore::open_read_only(&path).unwrap();
    assert!(store.list(None, None, 10).await.unwrap().runs.is_empty());
    drop(store);

    // A newer hookflow's store: refused read-only too.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99;")
        .unwrap();
    let err = SqliteStore::open_read_only(&path).unwrap_err();
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

/// The tests run as root, whom no file mode stops; a read-only medium is simulated by what
/// makes it one for SQLite: its `-wal` and `-shm` files cannot be created (here, because
/// their names are dangling symbolic links, which SQLite refuses to follow).
#[cfg(unix)]
#[tokio::test]
async fn a_store_on_a_read_only_medium_is_read() {
    let dir = tempdir("medium");
    let (path, run_id) = store_with_a_run(&dir).await;
    assert_eq!(listing(&dir), ["runs.db"], "closed cleanly: no -wal file");
    for suffix in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        std::os::unix::fs::symlink(dir.join("nowhere/cannot-be-created"), side).unwrap();
    }
    let before = bytes(&path);
    let store = SqliteStore::open_read_only(&path).unwrap();
    let (record, _) = store.load(run_id).await.unwrap();
    assert_eq!(record.output, Some(serde_json::json!("stamped p1")));
    assert_eq!(store.list(None, None, 10).await.unwrap().runs.len(), 1);
    drop(store);
    assert_eq!(bytes(&path), before);
    std::fs::remove_dir_all(dir).unwrap();
}
