//! `hookflow prune --older-than AGE` on a SQLite store: the ended runs (completed,
//! compensated, compensation failed) older than the age go, with their journals; the newer
//! ones, the parked one and the enqueued one stay, however old. A bad age is refused with
//! what an age is, and nothing is written.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hookflow::prelude::*;
use hookflow::store::sqlite::SqliteStore;

mod support;

use support::{Parcel, hookflow};

/// `(run_id, status, events)` of every run, by run id.
fn rows(path: &Path) -> Vec<(String, String, i64)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut select = conn
        .prepare(
            "SELECT run_id, status, (SELECT COUNT(*) FROM events e WHERE e.id >> 32 = r.id)
             FROM runs r ORDER BY run_id",
        )
        .unwrap();
    select
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn events_of(path: &Path, run_id: &str) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM events WHERE id >> 32 = (SELECT id FROM runs WHERE run_id = ?1)",
            [run_id],
            |row| row.get(0),
        )
        .unwrap()
}

#[tokio::test]
async fn prune_deletes_only_the_ended_runs_older_than_the_age() {
    let dir = support::tempdir("prune", "older-than");
    let path = dir.join("runs.db");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let engine = Engine::builder()
        .store(Arc::clone(&store))
        .workflow::<Parcel>()
        .build();
    let mut ids = Vec::new();
    for parcel in ["a", "bb", "ccc", "dddd", "eeeee", "ffffff"] {
        let outcome = engine.run::<Parcel>(parcel.into()).await;
        assert_eq!(outcome.status(), RunStatus::Completed);
        ids.push(outcome.run_id().to_string());
    }
    let waiting = engine
        .enqueue::<Parcel>("g".into())
        .await
        .unwrap()
        .to_string();
    drop(engine);
    drop(store);

    let forty_days_ago = i64::try_from(
        (SystemTime::now().duration_since(UNIX_EPOCH).unwrap() - Duration::from_secs(40 * 86_400))
            .as_micros(),
    )
    .unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    for (run_id, status, old) in [
        (&ids[0], "completed", true),
        (&ids[1], "compensated", true),
        (&ids[2], "compensation_failed", true),
        (&ids[3], "parked", true),
        (&ids[4], "completed", false),
        (&ids[5], "compensation_failed", false),
        (&waiting, "running", true),
    ] {
        conn.execute(
            "UPDATE runs SET status = ?2,
                updated_at = CASE WHEN ?3 THEN ?4 ELSE updated_at END
             WHERE run_id = ?1",
            rusqlite::params![run_id, status, old, forty_days_ago],
        )
        .unwrap();
    }
    drop(conn);
    for run_id in &ids {
        assert!(events_of(&path, run_id) > 0, "run {run_id} has a journal");
    }
    let before = rows(&path);
    assert_eq!(before.len(), 7);

    let (code, out, err) = hookflow(&path, &["prune", "--older-than", "30d"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "pruned 3 ended runs older than 30d\n");
    let after = rows(&path);
    let kept: Vec<_> = before
        .iter()
        .filter(|(run_id, _, _)| !ids[..3].contains(run_id))
        .cloned()
        .collect();
    assert_eq!(after, kept);
    // The pruned runs' journals are gone: every event left is a kept run's.
    let events: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM events", [], |row| row.get(0))
        .unwrap();
    assert_eq!(events, after.iter().map(|(_, _, n)| n).sum::<i64>());

    // Nothing else is that old; the newer ended runs go with a smaller age.
    let (code, out, err) = hookflow(&path, &["prune", "--older-than", "12h"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "pruned 0 ended runs older than 12h\n"),
        "{err}"
    );
    let (code, out, err) = hookflow(&path, &["prune", "--older-than", "0s"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "pruned 2 ended runs older than 0s\n"),
        "{err}"
    );
    let left: Vec<String> = rows(&path).into_iter().map(|(id, _, _)| id).collect();
    let mut expected = vec![ids[3].clone(), waiting];
    expected.sort();
    assert_eq!(left, expected);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn prune_refuses_a_bad_age_and_writes_nothing() {
    let dir = support::tempdir("prune", "bad-age");
    let path = dir.join("runs.db");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let engine = Engine::builder()
        .store(Arc::clone(&store))
        .workflow::<Parcel>()
        .build();
    engine.run::<Parcel>("box".into()).await;
    drop(engine);
    drop(store);
    let before = rows(&path);
    for bad in ["30", "30x", "-1d", "1.5h", "d"] {
        let arg = format!("--older-than={bad}");
        let (code, out, err) = hookflow(&path, &["prune", &arg]);
        assert_eq!(code, 2, "{bad}: {out}");
        assert!(err.contains("--older-than"), "{bad}: {err}");
        assert!(
            err.contains("d (days), h (hours), m (minutes) or s (seconds)"),
            "{bad}: {err}"
        );
    }
    let (code, _, err) = hookflow(&path, &["prune"]);
    assert_eq!(code, 2);
    assert!(err.contains("--older-than"), "{err}");
    assert_eq!(rows(&path), before);
    let _ = std::fs::remove_dir_all(dir);
}
