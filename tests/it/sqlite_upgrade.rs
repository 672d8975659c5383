//! A SQLite store written by an older hookflow (schema version 7: `runs` keyed by `run_id`,
//! `events` by `(run_id, seq)`) is migrated to version 8 when a store opens it for writing:
//! every run and journal reads back as it was, a run stopped midway resumes from its journal
//! (its completed step is not executed again), its idempotency key still finds it; and the
//! run keys version 8 gives are bounded (a run past the last one is refused, not written).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hookflow::RunId;
use hookflow::prelude::*;
use hookflow::store::sqlite::SqliteStore;
use hookflow::store::{Store, StoreError, StoredStatus};
use rusqlite::types::Value;

use crate::support::records;

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

/// The steps executed, in order (this module's own: no other test runs these workflows).
static EXECUTED: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn executed(what: String) {
    EXECUTED.lock().unwrap().push(what);
}

#[step]
async fn weigh(_ctx: &StepContext, parcel: String) -> Result<String, Never> {
    executed(format!("weigh {parcel}"));
    Ok(format!("{parcel}: 1 kg"))
}

#[step]
async fn stamp(_ctx: &StepContext, weighed: String) -> Result<String, Never> {
    executed(format!("stamp {weighed}"));
    Ok(format!("stamped {weighed}"))
}

#[workflow]
async fn post(ctx: &WorkflowContext, parcel: String) -> Result<String, Never> {
    let weighed = weigh(ctx, parcel).await?;
    stamp(ctx, weighed).await
}

fn tempdir(name: &str) -> PathBuf {
    crate::support::dirs::fresh("sqlite-upgrade", name)
}

fn engine(store: Arc<SqliteStore>) -> Engine {
    Engine::builder()
        .worker_id("app")
        .store(store)
        .workflow::<Post>()
        .build()
}

/// The schema of version 7, as hookflow's migrations 1 to 7 left it.
const VERSION_7: &str = "
    CREATE TABLE runs (
        run_id TEXT PRIMARY KEY, workflow TEXT NOT NULL, version INTEGER NOT NULL,
        input TEXT NOT NULL, status TEXT NOT NULL, idempotency_key TEXT UNIQUE,
        request_id TEXT, actor TEXT, origin TEXT NOT NULL, additional_data TEXT, output TEXT,
        error TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
        owner TEXT, fence INTEGER NOT NULL DEFAULT 0, lease_until INTEGER,
        wake_at INTEGER, waiting_for TEXT, cancel TEXT, deadline INTEGER
    );
    CREATE INDEX runs_by_status ON runs (status, created_at);
    CREATE TABLE events (
        run_id TEXT NOT NULL, seq INTEGER NOT NULL, event TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    ) WITHOUT ROWID;
    CREATE INDEX runs_waking ON runs (wake_at) WHERE status = 'waiting';
    CREATE TABLE inbox (
        run_id TEXT NOT NULL, seq INTEGER NOT NULL, event TEXT NOT NULL, delivery_key TEXT,
        message TEXT NOT NULL, PRIMARY KEY (run_id, seq)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX inbox_by_delivery ON inbox (run_id, delivery_key)
        WHERE delivery_key IS NOT NULL;
    CREATE INDEX inbox_by_event ON inbox (run_id, event, seq);
    CREATE TABLE schedules (
        name TEXT PRIMARY KEY, workflow TEXT NOT NULL, version INTEGER NOT NULL,
        spec TEXT NOT NULL, input TEXT NOT NULL, overlap TEXT NOT NULL,
        catch_up TEXT NOT NULL, anchor INTEGER NOT NULL, last_tick INTEGER,
        last_run_id TEXT, started INTEGER NOT NULL DEFAULT 1,
        created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
    );
    CREATE INDEX runs_by_created ON runs
        (IFNULL(CAST(created_at AS INTEGER), 0), IFNULL(CAST(run_id AS TEXT), ''));
    CREATE INDEX runs_by_status_created ON runs
        (status, IFNULL(CAST(created_at AS INTEGER), 0), IFNULL(CAST(run_id AS TEXT), ''));
    CREATE INDEX runs_by_workflow_created ON runs
        (workflow, IFNULL(CAST(created_at AS INTEGER), 0), IFNULL(CAST(run_id AS TEXT), ''));
    CREATE INDEX runs_ended ON runs (updated_at)
        WHERE CASE status WHEN 'completed' THEN 1 WHEN 'compensated' THEN 1 WHEN 'compensation_failed' THEN 1 WHEN 'cancelled' THEN 1 ELSE 0 END;
    PRAGMA user_version = 7;";

/// The columns of a version 7 `runs` row.
const RUN_COLUMNS: &str = "run_id, workflow, version, input, status, idempotency_key,
    request_id, actor, origin, additional_data, output, error, created_at, updated_at, owner,
    fence, lease_until, wake_at, waiting_for, cancel, deadline";

/// Copies the runs and journals of the store at `from` (this version's) into a new file at
/// `to` in version 7's layout, as an older hookflow wrote them; `stop` is cut short: running
/// again, its journal up to where its `stamp` step started (a crash there).
fn write_version_7(from: &Path, to: &Path, stop: RunId) {
    let source = rusqlite::Connection::open(from).unwrap();
    let old = rusqlite::Connection::open(to).unwrap();
    old.execute_batch(VERSION_7).unwrap();
    let mut runs = source
        .prepare(&format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY id"))
        .unwrap();
    let rows: Vec<Vec<Value>> = runs
        .query_map([], |row| (0..21).map(|i| row.get::<_, Value>(i)).collect())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let placeholders = (1..=21).map(|i| format!("?{i}")).collect::<Vec<_>>();
    let insert = format!(
        "INSERT INTO runs ({RUN_COLUMNS}) VALUES ({})",
        placeholders.join(", ")
    );
    for mut row in rows {
        if row[0] == Value::Text(stop.to_string()) {
            row[4] = Value::Text("running".into());
            row[10] = Value::Null;
        }
        old.execute(&insert, rusqlite::params_from_iter(row))
            .unwrap();
    }
    let mut events = source
        .prepare(
            "SELECT r.run_id, e.id & 4294967295, e.event FROM events e
             JOIN runs r ON r.id = e.id >> 32 ORDER BY e.id",
        )
        .unwrap();
    let events: Vec<(String, i64, String)> = events
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut cut = false;
    for (run_id, seq, event) in events {
        if run_id == stop.to_string() {
            let json: serde_json::Value = serde_json::from_str(&event).unwrap();
            cut |= json["event"] == "step_started" && json["step"] == "stamp";
            if cut {
                continue;
            }
        }
        old.execute(
            "INSERT INTO events (run_id, seq, event) VALUES (?1, ?2, ?3)",
            rusqlite::params![run_id, seq, event],
        )
        .unwrap();
    }
    let stopped = rows_have(&old, stop);
    assert_eq!(cut, stopped, "the run to stop has a `stamp` step");
}

/// Whether the version 7 file has run `run_id`.
fn rows_have(old: &rusqlite::Connection, run_id: RunId) -> bool {
    old.query_row(
        "SELECT count(*) FROM runs WHERE run_id = ?1",
        [run_id.to_string()],
        |row| row.get::<_, i64>(0),
    )
    .unwrap()
        > 0
}

fn user_version(path: &Path) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap()
}

#[tokio::test]
async fn a_version_7_store_is_migrated_and_its_runs_read_and_resume() {
    let dir = tempdir("v7");
    let (new, old) = (dir.join("new.db"), dir.join("old.db"));
    let source = Arc::new(SqliteStore::open(&new).unwrap());
    let keyed = engine(Arc::clone(&source))
        .run_with::<Post>("a".into(), RunOptions::new().idempotency_key("order-a"))
        .await
        .run_id();
    let stopped = engine(Arc::clone(&source))
        .run::<Post>("b".into())
        .await
        .run_id();
    let queued = engine(Arc::clone(&source))
        .enqueue::<Post>("c".into())
        .await
        .unwrap();
    let mut expected = Vec::new();
    for run_id in [keyed, stopped, queued] {
        expected.push(source.load(run_id).await.unwrap());
    }
    drop(source);
    write_version_7(&new, &old, stopped);
    assert_eq!(user_version(&old), 7);

    let store = Arc::new(SqliteStore::open(&old).unwrap());
    assert_eq!(
        user_version(&old),
        8,
        "opened for writing, the file is migrated"
    );
    // The finished run and the queued one read back as they were written, journal and all.
    assert_eq!(store.load(keyed).await.unwrap(), expected[0]);
    assert_eq!(store.load(queued).await.unwrap(), expected[2]);
    let (record, events) = store.load(stopped).await.unwrap();
    assert_eq!(record.status, StoredStatus::Running);
    assert_eq!(record.updated_at_micros, expected[1].0.updated_at_micros);
    assert!(!events.is_empty() && events.len() < expected[1].1.len());
    assert_eq!(events[..], expected[1].1[..events.len()]);
    assert_eq!(
        store
            .find_by_idempotency_key("order-a")
            .await
            .unwrap()
            .map(|r| r.run_id),
        Some(keyed)
    );
    assert_eq!(store.list(None, None, 10).await.unwrap().runs.len(), 3);

    // The stopped run resumes from its journal, the queued one starts.
    EXECUTED.lock().unwrap().clear();
    let report = engine(Arc::clone(&store)).resume_pending().await.unwrap();
    let mut resumed = report.resumed.clone();
    resumed.sort_by_key(|(id, _)| id.to_string());
    let mut want = vec![
        (stopped, RunStatus::Completed),
        (queued, RunStatus::Completed),
    ];
    want.sort_by_key(|(id, _)| id.to_string());
    assert_eq!(resumed, want, "{report:?}");
    let mut steps = EXECUTED.lock().unwrap().clone();
    steps.sort();
    assert_eq!(
        steps,
        ["stamp b: 1 kg", "stamp c: 1 kg", "weigh c"],
        "the stopped run's completed step is not executed again"
    );
    let (record, _) = store.load(stopped).await.unwrap();
    assert_eq!(record.output, Some(serde_json::json!("stamped b: 1 kg")));
    // The same key again: the recorded run, not a new one.
    let again = engine(Arc::clone(&store))
        .run_with::<Post>("a".into(), RunOptions::new().idempotency_key("order-a"))
        .await;
    assert_eq!(again.run_id(), keyed);
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A run's events are keyed `key << 32 | seq`: once the store has given key 2^31 - 1, a new
/// run is refused with a typed error, and nothing of it is written.
#[tokio::test]
async fn a_run_past_the_last_run_key_is_refused() {
    let dir = tempdir("keys");
    let path = dir.join("runs.db");
    let store = SqliteStore::open(&path).unwrap();
    let first = RunId::parse("01900000-0000-7000-8000-000000000001").unwrap();
    store
        .create(&records::running(first, "post"), None)
        .await
        .unwrap();
    // The last key, taken by a row of its own (as after two billion runs).
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute(
            "INSERT INTO runs (id, run_id, workflow, version, input, status, origin,
                created_at, updated_at)
             VALUES (2147483647, '01900000-0000-7000-8000-00000000ffff', 'post', 1, '1',
                'completed', 'local', 1, 1)",
            [],
        )
        .unwrap();
    let next = RunId::parse("01900000-0000-7000-8000-000000000002").unwrap();
    match store.create(&records::running(next, "post"), None).await {
        Err(StoreError::Refused { context, message }) => {
            assert_eq!(context, "record a new run");
            assert!(message.contains("above 2147483647"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(matches!(
        store.load(next).await,
        Err(StoreError::NotFound(id)) if id == next
    ));
    // The runs before it are untouched, and commit as before.
    store.commit(first, 0, &[], None).await.unwrap();
    assert_eq!(
        store.load(first).await.unwrap().0.status,
        StoredStatus::Running
    );
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A step's commit writes only the run's events: the run's last change, as read, is the
/// later of its row's and its last event's (a commit moves it on; so does the run's end).
#[tokio::test]
async fn a_commit_moves_the_runs_last_change_on() {
    let dir = tempdir("updated");
    let store = SqliteStore::open(dir.join("runs.db")).unwrap();
    let run_id = RunId::parse("01900000-0000-7000-8000-000000000003").unwrap();
    store
        .create(&records::running(run_id, "post"), None)
        .await
        .unwrap();
    assert_eq!(store.load(run_id).await.unwrap().0.updated_at_micros, 1);
    let before = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros(),
    )
    .unwrap();
    let event = hookflow::Event {
        seq: 0,
        at_micros: 1,
        kind: hookflow::EventKind::RunFailed { error: "e".into() },
    };
    store
        .commit(run_id, 0, std::slice::from_ref(&event), None)
        .await
        .unwrap();
    let (record, events) = store.load(run_id).await.unwrap();
    assert!(record.updated_at_micros >= before, "{record:?}");
    assert_eq!(events, [event]);
    let listed = store.list(None, None, 10).await.unwrap().runs;
    assert_eq!(listed[0].updated_at_micros, record.updated_at_micros);
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A version 7 file with a run whose rowid does not fit version 8's event keys (only a row
/// inserted by hand has one) is not migrated: refused, and left at version 7.
#[tokio::test]
async fn a_file_whose_run_keys_do_not_fit_is_not_migrated() {
    let dir = tempdir("unfit");
    let path = dir.join("old.db");
    let old = rusqlite::Connection::open(&path).unwrap();
    old.execute_batch(VERSION_7).unwrap();
    old.execute(
        "INSERT INTO runs (rowid, run_id, workflow, version, input, status, origin,
            created_at, updated_at)
         VALUES (2147483648, '01900000-0000-7000-8000-000000000004', 'post', 1, '1',
            'completed', 'local', 1, 1)",
        [],
    )
    .unwrap();
    drop(old);
    match SqliteStore::open(&path) {
        Err(StoreError::Refused { context, message }) => {
            assert_eq!(context, "migrate the schema to version 8");
            assert!(message.contains("2147483648"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(user_version(&path), 7);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A version 7 journal row whose `seq` is not a sequence number (a damaged row: its run could
/// not be read) is carried over, its text kept, and its run still cannot be read; the other
/// runs read as before.
#[tokio::test]
async fn a_damaged_journal_row_stays_unreadable_across_the_migration() {
    let dir = tempdir("damaged");
    let (new, old) = (dir.join("new.db"), dir.join("old.db"));
    let source = Arc::new(SqliteStore::open(&new).unwrap());
    let damaged = engine(Arc::clone(&source))
        .run::<Post>("d".into())
        .await
        .run_id();
    let healthy = engine(Arc::clone(&source))
        .run::<Post>("e".into())
        .await
        .run_id();
    drop(source);
    let placeholder = RunId::parse("01900000-0000-7000-8000-000000000005").unwrap();
    write_version_7(&new, &old, placeholder);
    rusqlite::Connection::open(&old)
        .unwrap()
        .execute(
            "UPDATE events SET seq = 'x' WHERE run_id = ?1 AND seq = 1",
            [damaged.to_string()],
        )
        .unwrap();
    let store = SqliteStore::open(&old).unwrap();
    match store.load(damaged).await {
        Err(StoreError::Corrupt { message, .. }) => {
            assert!(
                message.starts_with("event 4294967295 cannot be read"),
                "{message}"
            );
        }
        other => panic!("expected a corrupt journal, got {other:?}"),
    }
    // The row's text is kept, after why it was set aside.
    let kept: String = rusqlite::Connection::open(&old)
        .unwrap()
        .query_row(
            "SELECT event FROM events
             WHERE id = ((SELECT id FROM runs WHERE run_id = ?1) << 32) | 4294967295",
            [damaged.to_string()],
            |row| row.get(0),
        )
        .unwrap();
    assert!(
        kept.starts_with("seq 'x' is not a sequence number: {"),
        "{kept}"
    );
    assert_eq!(
        store.load(healthy).await.unwrap().0.status,
        StoredStatus::Completed
    );
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}
