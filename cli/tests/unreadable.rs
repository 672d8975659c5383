//! `hookflow runs` on a store with a row it cannot read (written by hand: `actor = '{oops'`):
//! the other runs are listed, that one is marked with why, and the command succeeds. Once an
//! engine has quarantined it, `runs --status parked` finds it, and `show` says why it cannot
//! be shown.

use std::path::PathBuf;
use std::sync::Arc;

use hookflow::prelude::*;
use hookflow::store::sqlite::SqliteStore;

mod support;

use support::{Parcel, hookflow};

fn tempdir(name: &str) -> PathBuf {
    support::tempdir("unreadable", name)
}

const REASON: &str = "the record cannot be read: actor: key must be a string at line 1 column 2";

#[tokio::test]
async fn runs_lists_the_readable_runs_and_marks_the_unreadable_one() {
    let dir = tempdir("runs");
    let path = dir.join("runs.db");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let engine = Engine::builder()
        .store(Arc::clone(&store))
        .workflow::<Parcel>()
        .build();
    let mut completed = Vec::new();
    for parcel in ["box", "crate", "tube"] {
        completed.push(engine.run::<Parcel>(parcel.into()).await.run_id());
    }
    let corrupt = engine.enqueue::<Parcel>("sack".into()).await.unwrap();
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE runs SET actor = '{oops' WHERE run_id = ?1",
            [corrupt.to_string()],
        )
        .unwrap();

    let (code, out, err) = hookflow(&path, &["runs"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert!(lines[0].starts_with("RUN"), "{out}");
    for run_id in &completed {
        let line = lines
            .iter()
            .find(|l| l.starts_with(&run_id.to_string()))
            .unwrap_or_else(|| panic!("{run_id} is not listed: {out}"));
        assert!(line.contains(" completed "), "{line}");
    }
    assert_eq!(lines[4], format!("{corrupt}  unreadable: {REASON}"));

    // Not parked yet: a viewer only looks.
    let (code, out, _) = hookflow(&path, &["runs", "--status", "parked"]);
    assert_eq!(code, 0);
    assert!(out.ends_with("(no runs)\n"), "{out}");

    // An engine quarantines it; the command finds it among the parked runs.
    let report = engine.resume_pending().await.unwrap();
    assert_eq!(report.quarantined.len(), 1, "{report:?}");
    let (code, out, err) = hookflow(&path, &["runs", "--status", "parked"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>()[1..],
        [format!("{corrupt}  unreadable: {REASON}")],
        "{out}"
    );
    let (code, out, err) = hookflow(&path, &["show", &corrupt.to_string()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains("actor: key must be a string at line 1 column 2"),
        "{err}"
    );
    drop(engine);
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}
