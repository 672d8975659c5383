//! Property test of quarantine on SQLite: random values (bytes as blobs and as text that is
//! not UTF-8, random text, random JSON, JSON nested past serde_json's limit, integers, reals,
//! NULL, and words a column expects) written into every column of a run row and of a row of
//! its journal. Whatever they hold:
//! - `load` returns the run or a typed error (`Corrupt`, or `NotFound` once its id changed);
//! - `list` never fails as a whole: every row is a run or reported unreadable, and the healthy
//!   run is a run;
//! - `pending` never fails as a whole: every running row is a run or quarantined, the
//!   quarantined ones are parked with `quarantined: <reason>`, and a second `pending` finds
//!   nothing more to quarantine;
//! - `claim_next` then claims the healthy enqueued run.
//!
//! Nothing panics anywhere (a panic fails the case).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hookflow::RunId;
use hookflow::prelude::*;
use hookflow::store::sqlite::SqliteStore;
use hookflow::store::{Lease, Store, StoreError};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rusqlite::types::Value;

use crate::quarantine::Parcel;

/// The columns of a run row in SQLite.
const RUN_COLUMNS: [&str; 17] = [
    "run_id",
    "workflow",
    "version",
    "input",
    "status",
    "idempotency_key",
    "request_id",
    "actor",
    "origin",
    "additional_data",
    "output",
    "error",
    "created_at",
    "updated_at",
    "owner",
    "fence",
    "lease_until",
];

/// The columns of a journal row.
const EVENT_COLUMNS: [&str; 3] = ["id", "at", "event"];

#[derive(Debug, Clone)]
enum Target {
    Run(&'static str),
    Event(&'static str),
}

#[derive(Debug, Clone)]
struct Write {
    target: Target,
    value: Value,
    /// Stored with `CAST(? AS TEXT)`: a blob becomes text that need not be UTF-8.
    as_text: bool,
}

fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(Into::into),
        ".{0,8}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(".{0,6}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::Integer),
        any::<f64>().prop_map(Value::Real),
        prop::collection::vec(any::<u8>(), 0..24).prop_map(Value::Blob),
        ".{0,24}".prop_map(Value::Text),
        json().prop_map(|j| Value::Text(j.to_string())),
        (100usize..260).prop_map(|d| Value::Text(format!("{}{}", "[".repeat(d), "]".repeat(d)))),
        prop::sample::select(vec![
            "running",
            "parked",
            "completed",
            "api",
            "local",
            "parcel",
            "{}",
            "null",
            "\"x\"",
            "{\"id\":\"u\",\"kind\":\"user\"}",
        ])
        .prop_map(|s| Value::Text(s.to_owned())),
    ]
}

fn write() -> impl Strategy<Value = Write> {
    let target = prop_oneof![
        3 => prop::sample::select(RUN_COLUMNS.to_vec()).prop_map(Target::Run),
        1 => prop::sample::select(EVENT_COLUMNS.to_vec()).prop_map(Target::Event),
    ];
    (target, value(), any::<bool>()).prop_map(|(target, value, as_text)| Write {
        target,
        as_text: as_text && matches!(value, Value::Blob(_)),
        value,
    })
}

/// A store with two runs: `damaged` (completed, then set running again by hand: a pending
/// run with a journal) and `healthy` (enqueued), checkpointed into the one file.
struct Template {
    path: PathBuf,
    damaged: RunId,
    healthy: RunId,
}

fn template(runtime: &tokio::runtime::Runtime, dir: &Path) -> Template {
    let path = dir.join("template.db");
    let (damaged, healthy) = runtime.block_on(async {
        let store = Arc::new(SqliteStore::open(&path).unwrap());
        let engine = Engine::builder()
            .store(Arc::clone(&store))
            .workflow::<Parcel>()
            .build();
        let options = RunOptions::new()
            .actor(Actor::user("usr_1"))
            .additional_data(serde_json::json!({ "note": "fragile" }));
        let damaged = engine
            .run_with::<Parcel>("vase".into(), options)
            .await
            .run_id();
        let healthy = engine.enqueue::<Parcel>("book".into()).await.unwrap();
        (damaged, healthy)
    });
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE runs SET status = 'running', output = NULL WHERE run_id = ?1",
        [damaged.to_string()],
    )
    .unwrap();
    let busy: i64 = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))
        .unwrap();
    assert_eq!(busy, 0, "the template is all in its file");
    Template {
        path,
        damaged,
        healthy,
    }
}

/// Applies `writes` to the run `damaged` (its row, by rowid) and to its journal's event 1.
fn damage(path: &Path, damaged: RunId, writes: &[Write]) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let rowid: i64 = conn
        .query_row(
            "SELECT rowid FROM runs WHERE run_id = ?1",
            [damaged.to_string()],
            |row| row.get(0),
        )
        .unwrap();
    for write in writes {
        let value = if write.as_text {
            "CAST(?1 AS TEXT)"
        } else {
            "?1"
        };
        let sql = match write.target {
            Target::Run(column) => format!("UPDATE runs SET {column} = {value} WHERE rowid = ?2"),
            Target::Event(column) => format!("UPDATE events SET {column} = {value} WHERE id = ?2"),
        };
        // Event 1 of the run: keyed by the run's key and its sequence number.
        let key = match write.target {
            Target::Run(_) => rowid,
            Target::Event(_) => (rowid << 32) | 1,
        };
        // A write a constraint refuses (NOT NULL, a duplicate key) is simply not made.
        let _ = conn.execute(&sql, rusqlite::params![write.value, key]);
    }
}

fn count(path: &Path, sql: &str, param: &str) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row(sql, [param], |row| row.get(0)).unwrap()
}

async fn check(path: &Path, template: &Template) -> Result<(), TestCaseError> {
    let store = SqliteStore::open(path).map_err(|e| TestCaseError::fail(e.to_string()))?;
    match store.load(template.damaged).await {
        Ok(_) | Err(StoreError::Corrupt { .. } | StoreError::NotFound(_)) => {}
        Err(other) => return Err(TestCaseError::fail(format!("load: {other}"))),
    }

    let listed = store
        .list(None, None, 100)
        .await
        .map_err(|e| TestCaseError::fail(format!("list: {e}")))?;
    prop_assert_eq!(
        listed.runs.len() + listed.unreadable.len(),
        2,
        "{:?}",
        listed
    );
    prop_assert!(listed.runs.iter().any(|r| r.run_id == template.healthy));

    let running = count(
        path,
        "SELECT count(*) FROM runs WHERE status = ?1",
        "running",
    );
    let pending = store
        .pending()
        .await
        .map_err(|e| TestCaseError::fail(format!("pending: {e}")))?;
    prop_assert!(pending.runs.iter().any(|r| r.run_id == template.healthy));
    prop_assert_eq!(
        i64::try_from(pending.runs.len() + pending.unreadable.len()).unwrap(),
        running,
        "every running run is pending or quarantined: {:?}",
        pending
    );
    for quarantined in &pending.unreadable {
        prop_assert!(!quarantined.reason.is_empty());
        let parked = count(
            path,
            "SELECT count(*) FROM runs WHERE status = 'parked' AND error = ?1",
            &quarantined.error(),
        );
        prop_assert_eq!(parked, 1, "{:?} is parked", quarantined);
    }
    prop_assert_eq!(
        count(
            path,
            "SELECT count(*) FROM runs WHERE status = ?1",
            "running"
        ),
        i64::try_from(pending.runs.len()).unwrap()
    );
    let again = store
        .pending()
        .await
        .map_err(|e| TestCaseError::fail(format!("pending again: {e}")))?;
    prop_assert!(again.unreadable.is_empty(), "{:?}", again);
    prop_assert_eq!(again.runs.len(), pending.runs.len());

    let lease = Lease {
        owner: "prop".into(),
        duration: Duration::from_secs(30),
    };
    let claimed = store
        .claim_next(&lease, &[("parcel".into(), 1)], &[], 10)
        .await
        .map_err(|e| TestCaseError::fail(format!("claim_next: {e}")))?;
    prop_assert!(
        claimed
            .runs
            .iter()
            .any(|(r, _)| r.run_id == template.healthy)
    );
    Ok(())
}

#[test]
fn no_value_in_any_column_poisons_the_store() {
    let dir =
        std::env::temp_dir().join(format!("hookflow-quarantine-props-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let template = template(&runtime, &dir);
    let case = std::sync::atomic::AtomicU32::new(0);
    let mut runner = TestRunner::new(Config::with_cases(96));
    let result = runner.run(&prop::collection::vec(write(), 1..5), |writes| {
        let case = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // A file per case: a write-ahead log left by the last case's store must never
        // meet another file.
        let path = dir.join(format!("case-{case}.db"));
        std::fs::copy(&template.path, &path).unwrap();
        damage(&path, template.damaged, &writes);
        let checked = runtime.block_on(check(&path, &template));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        checked
    });
    std::fs::remove_dir_all(&dir).unwrap();
    if let Err(err) = result {
        panic!("{err}");
    }
}
