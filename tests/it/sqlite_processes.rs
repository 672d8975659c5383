//! Processes sharing one SQLite file: opening a new file at the same moment (both migrate it
//! race-free, one after the other), and starting keyed runs at the same time with different
//! worker ids (every run of both completes: a write waits for the other process's lock
//! instead of failing with "database is locked").
//!
//! The processes are this test binary run again on its ignored test `sqlite_process`: an
//! entry point, not a test of its own, which only the tests here run (`--ignored --exact`).
//! Each child says `READY` and waits for a line on its stdin, so that the parent lets both go
//! at the same moment.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use hookflow::prelude::*;
use hookflow::store::sqlite::SqliteStore;
use hookflow::store::{Store, StoredStatus};

/// What the child does: `open` (the store, then exit) or `runs`.
const CHILD: &str = "HOOKFLOW_SQLITE_CHILD";
/// The database file.
const CHILD_DB: &str = "HOOKFLOW_SQLITE_DB";
/// The child's worker id.
const CHILD_ID: &str = "HOOKFLOW_SQLITE_ID";
/// The entry point, as the test harness names it.
const CHILD_TEST: &str = "sqlite_processes::sqlite_process";
/// How many keyed runs each `runs` child starts, all at once.
const RUNS: usize = 200;

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

#[step]
async fn reserve(_ctx: &StepContext, n: u64) -> Result<u64, Never> {
    Ok(n + 1)
}

#[step]
async fn confirm(_ctx: &StepContext, n: u64) -> Result<u64, Never> {
    Ok(n * 2)
}

#[workflow]
async fn booking(ctx: &WorkflowContext, n: u64) -> Result<u64, Never> {
    let reserved = reserve(ctx, n).await?;
    confirm(ctx, reserved).await
}

fn tempdir(name: &str) -> PathBuf {
    crate::support::dirs::fresh("procs", name)
}

/// A child process, started and waiting for the parent's go.
struct Started {
    child: Child,
    stdout: BufReader<std::process::ChildStdout>,
    /// What it printed before `READY` (the harness's lines).
    before: String,
}

fn spawn(what: &str, db: &Path, id: &str) -> Started {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            CHILD_TEST,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, what)
        .env(CHILD_DB, db)
        .env(CHILD_ID, id)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut before = String::new();
    loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            panic!("child {id} ended before it was ready: {before}");
        }
        // The harness's `test ... ` comes first on the line.
        if line.trim_end().ends_with("READY") {
            break;
        }
        before.push_str(&line);
    }
    Started {
        child,
        stdout,
        before,
    }
}

/// Lets every child go at once, and returns what each printed after `READY`, once it ended
/// successfully.
fn go(mut children: Vec<Started>) -> Vec<String> {
    for started in &mut children {
        started
            .child
            .stdin
            .as_mut()
            .unwrap()
            .write_all(b"go\n")
            .unwrap();
    }
    children
        .into_iter()
        .map(|mut started| {
            let mut out = String::new();
            started.stdout.read_to_string(&mut out).unwrap();
            let mut err = String::new();
            started
                .child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            let status = started.child.wait().unwrap();
            assert!(
                status.success(),
                "a child failed ({status}):\n{}{out}\n{err}",
                started.before
            );
            out
        })
        .collect()
}

#[test]
fn processes_opening_a_new_file_together_both_migrate_it() {
    let dir = tempdir("open");
    for round in 0..10 {
        let db = dir.join(format!("new-{round}.db"));
        let children = vec![spawn("open", &db, "a"), spawn("open", &db, "b")];
        for out in go(children) {
            assert!(out.contains("OPENED"), "round {round}: {out}");
        }
        // One store, at this build's schema version.
        let store = SqliteStore::open_read_only(&db).unwrap();
        assert!(store.is_read_only());
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn processes_sharing_a_file_finish_every_run() {
    let dir = tempdir("runs");
    let db = dir.join("runs.db");
    drop(SqliteStore::open(&db).unwrap());
    let children = vec![spawn("runs", &db, "proc-a"), spawn("runs", &db, "proc-b")];
    for out in go(children) {
        assert!(out.contains(&format!("completed={RUNS} ")), "{out}");
    }
    let store = SqliteStore::open_read_only(&db).unwrap();
    let runs = store
        .list(None, Some("booking"), 10 * RUNS)
        .await
        .unwrap()
        .runs;
    assert_eq!(runs.len(), 2 * RUNS);
    for run in &runs {
        assert_eq!(run.status, StoredStatus::Completed, "{run:?}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// A child process (see the module's docs). Ignored: the tests above run it in processes of
/// their own.
#[test]
#[ignore = "child process of the sqlite_processes tests, run by them"]
fn sqlite_process() {
    let Ok(what) = std::env::var(CHILD) else {
        return; // Not a child (`--ignored` without the parent): nothing to do.
    };
    let db = PathBuf::from(std::env::var(CHILD_DB).unwrap());
    let id = std::env::var(CHILD_ID).unwrap();
    println!("READY");
    std::io::stdout().flush().unwrap();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    match what.as_str() {
        "open" => {
            SqliteStore::open(&db).unwrap();
            println!("OPENED");
        }
        "runs" => {
            let summary = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap()
                .block_on(keyed_runs(&db, &id));
            println!("{summary}");
        }
        other => panic!("unknown child task {other}"),
    }
}

/// Starts [`RUNS`] keyed runs at once as worker `id`; panics unless every one completed.
async fn keyed_runs(db: &Path, id: &str) -> String {
    let store = Arc::new(SqliteStore::open(db).unwrap());
    let engine = Engine::builder()
        .worker_id(id)
        .store(Arc::clone(&store))
        .workflow::<Booking>()
        .build();
    let runs: Vec<_> = (0..RUNS)
        .map(|i| {
            let engine = engine.clone();
            let key = format!("{id}-{i}");
            tokio::spawn(async move {
                let outcome = engine
                    .run_with::<Booking>(i as u64, RunOptions::new().idempotency_key(key))
                    .await;
                (outcome.status(), outcome.error().map(ToString::to_string))
            })
        })
        .collect();
    let (mut completed, mut failed) = (0, Vec::new());
    for run in runs {
        match run.await.unwrap() {
            (RunStatus::Completed, _) => completed += 1,
            (status, error) => failed.push(format!("{status:?}: {error:?}")),
        }
    }
    let summary = format!("completed={completed} failed={}", failed.len());
    assert!(
        failed.is_empty(),
        "{id}: {summary}, the first: {:?}",
        &failed[..failed.len().min(3)]
    );
    summary + " "
}
