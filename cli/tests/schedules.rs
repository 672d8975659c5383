//! `hookflow schedules` on a SQLite store: the schedules, by name, with their workflow, spec,
//! policies, last tick and next tick; read-only (the file is left byte for byte as it was);
//! a store without schedules says so.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use hookflow::prelude::*;
use hookflow::store::sqlite::SqliteStore;
use hookflow::{CatchUp, Overlap, ScheduleOptions, Spec};

mod support;

use support::{Parcel, hookflow};

/// Every schedule's row, as text.
fn rows(path: &std::path::Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut select = conn
        .prepare(
            "SELECT name, spec, input, anchor, last_tick, last_run_id, started, updated_at
             FROM schedules ORDER BY name",
        )
        .unwrap();
    select
        .query_map([], |row| {
            Ok(format!(
                "{:?}",
                (
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, Option<i64>>(4)?,
                    row.get::<_, Option<String>>(5)?,
                    row.get::<_, bool>(6)?,
                    row.get::<_, i64>(7)?,
                )
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn schedules_lists_each_schedule_with_its_last_and_next_tick() {
    let dir = support::tempdir("schedules", "list");
    let path = dir.join("runs.db");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let engine = Engine::builder()
        .store(Arc::clone(&store))
        .workflow::<Parcel>()
        .build();
    engine
        .schedule::<Parcel>(
            "nightly-report",
            Spec::cron("0 3 * * *").unwrap(),
            "report".into(),
        )
        .await
        .unwrap();
    engine
        .schedule_with::<Parcel>(
            "pulse",
            Spec::every(Duration::from_secs(30)).unwrap(),
            "pulse".into(),
            ScheduleOptions::new()
                .overlap(Overlap::Allow)
                .catch_up(CatchUp::Skip),
        )
        .await
        .unwrap();
    // The pulse's first tick, fired.
    let pulse = engine
        .schedules()
        .await
        .unwrap()
        .schedules
        .into_iter()
        .find(|s| s.name == "pulse")
        .unwrap();
    let tick = pulse.anchor_micros + 30_000_000;
    let fired = engine
        .fire_schedules_at(UNIX_EPOCH + Duration::from_micros(tick + 1))
        .await
        .unwrap();
    assert_eq!(fired.ticks.len(), 1, "{fired:?}");
    drop(engine);
    drop(store);
    let before = rows(&path);

    let (code, out, err) = hookflow(&path, &["schedules"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    for column in [
        "SCHEDULE",
        "WORKFLOW",
        "SPEC",
        "OVERLAP",
        "CATCH-UP",
        "LAST TICK (UTC)",
        "NEXT TICK (UTC)",
    ] {
        assert!(lines[0].contains(column), "{out}");
    }
    let cells = |line: &str| -> Vec<String> {
        line.split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect()
    };
    // By name: the nightly report first, never ticked; its next tick at 03:00 UTC.
    let nightly = cells(lines[1]);
    assert_eq!(nightly[0], "nightly-report", "{out}");
    assert_eq!(nightly[1], "parcel v1", "{out}");
    assert_eq!(nightly[2], "0 3 * * *", "{out}");
    assert_eq!(
        (nightly[3].as_str(), nightly[4].as_str()),
        ("skip", "latest")
    );
    assert_eq!(nightly[5], "-", "{out}");
    assert!(nightly[6].ends_with(" 03:00:00.000"), "{out}");
    // The pulse: its tick, and the next one 30 s after it (or after now, if that is later).
    let pulse_row = cells(lines[2]);
    assert_eq!(pulse_row[0], "pulse", "{out}");
    assert_eq!(pulse_row[2], "every 30s", "{out}");
    assert_eq!(
        (pulse_row[3].as_str(), pulse_row[4].as_str()),
        ("allow", "skip")
    );
    assert_eq!(pulse_row[5], hookflow_cli::utc(tick), "{out}");
    let now = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let next = pulse.anchor_micros
        + (now.max(tick) - pulse.anchor_micros) / 30_000_000 * 30_000_000
        + 30_000_000;
    assert_eq!(pulse_row[6], hookflow_cli::utc(next), "{out}");

    // Read-only: the schedules are as they were.
    assert_eq!(rows(&path), before);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_store_without_schedules_says_so() {
    let dir = support::tempdir("schedules", "none");
    let path = dir.join("runs.db");
    drop(SqliteStore::open(&path).unwrap());
    let (code, out, err) = hookflow(&path, &["schedules"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "(no schedules)\n");
    let _ = std::fs::remove_dir_all(dir);
}
