//! Looking runs up without reaching into the store: `Engine::status` (a run at a glance, with
//! the step it is at) and `Engine::runs` / `Store::list_page` (filtered pages, newest first,
//! each run once across pages, none skipped, whatever is created meanwhile; an unreadable row
//! reported, never failing its page). On every store, and with damaged rows on SQLite and
//! PostgreSQL.

use std::collections::HashSet;
use std::sync::Arc;

use crate::quarantine::Db;
use crate::retry::{Agency, Trip, TripError};
use hookflow::prelude::*;
use hookflow::store::sqlite::SqliteStore;
use hookflow::store::{Created, RunRecord, Store};
use hookflow::{LookupError, RunCursor, RunFilter, RunId, StoredStatus};

/// Run `n`: created at `1_000 + n / 3` µs (three runs to each instant, so that pages split
/// instants), of workflow `a` or `b`, completed, compensated or running.
fn record(n: u64) -> RunRecord {
    RunRecord {
        run_id: RunId::parse(&format!("01900000-0000-7000-8000-{n:012}")).unwrap(),
        workflow: if n.is_multiple_of(2) { "a" } else { "b" }.into(),
        version: 1,
        input: serde_json::json!(n),
        status: [
            StoredStatus::Completed,
            StoredStatus::Compensated,
            StoredStatus::Running,
        ][usize::try_from(n % 3).unwrap()],
        idempotency_key: None,
        request_id: None,
        actor: None,
        origin: Default::default(),
        additional_data: None,
        output: None,
        error: None,
        created_at_micros: 1_000 + n / 3,
        updated_at_micros: 1_000 + n / 3,
        owner: None,
        fence: 0,
        lease_until_micros: None,
        wake_at_micros: None,
        waiting_for: None,
        cancel: None,
        deadline_micros: None,
    }
}

/// The ids of the runs `filter` selects, newest first, as the stores must page them.
fn expected(all: &[RunRecord], filter: &RunFilter) -> Vec<String> {
    let mut runs: Vec<&RunRecord> = all.iter().filter(|r| filter.matches(r)).collect();
    runs.sort_by_key(|r| std::cmp::Reverse(RunCursor::of(r)));
    runs.iter().map(|r| r.run_id.to_string()).collect()
}

/// Every page of `filter`, in order: the ids of each page's runs (readable or not).
async fn pages(store: &dyn Store, filter: &RunFilter) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut filter = filter.clone();
    loop {
        let page = store.list_page(&filter).await.unwrap();
        let mut ids: Vec<String> = page.runs.iter().map(|r| r.run_id.to_string()).collect();
        ids.extend(page.unreadable.iter().map(|u| u.run_id.clone()));
        pages.push(ids);
        match page.next {
            Some(next) => filter = filter.after(next),
            None => return pages,
        }
        assert!(pages.len() < 100, "pages never end");
    }
}

async fn pages_cover_every_run_once_newest_first<S: Store>(store: Arc<S>) {
    let all: Vec<RunRecord> = (0..23).map(record).collect();
    for run in &all {
        assert_eq!(store.create(run, None).await.unwrap(), Created::New);
    }

    // All of them, five to a page: 5, 5, 5, 5, 3, none twice, none left out, and a run
    // created after the first page does not shift the others.
    let filter = RunFilter::new().limit(5);
    let first = store.list_page(&filter).await.unwrap();
    let mut newer = record(99);
    newer.created_at_micros = 9_999;
    store.create(&newer, None).await.unwrap();
    let mut seen: Vec<String> = first.runs.iter().map(|r| r.run_id.to_string()).collect();
    let rest = pages(&*store, &filter.clone().after(first.next.unwrap())).await;
    assert_eq!(rest.iter().map(Vec::len).collect::<Vec<_>>(), [5, 5, 5, 3]);
    seen.extend(rest.into_iter().flatten());
    assert_eq!(seen, expected(&all, &filter));
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 23);

    // Filtered: by status, workflow and creation time, two to a page.
    let mut everything = all.clone();
    everything.push(newer);
    for filter in [
        RunFilter::new().status(StoredStatus::Running).limit(2),
        RunFilter::new().workflow("a").limit(2),
        RunFilter::new()
            .created_from(1_002)
            .created_before(1_006)
            .limit(2),
        RunFilter::new()
            .status(StoredStatus::Completed)
            .workflow("b")
            .created_from(1_001)
            .limit(2),
        RunFilter::new().limit(0),
    ] {
        let want = expected(&everything, &filter);
        assert!(!want.is_empty(), "{filter:?}");
        let got = pages(&*store, &filter).await;
        let size = filter.page_size();
        // Full pages but the last; no empty page at the end.
        assert!(
            got.iter().rev().skip(1).all(|p| p.len() == size),
            "{filter:?}: {got:?}"
        );
        assert!(!got.last().unwrap().is_empty(), "{filter:?}: {got:?}");
        assert_eq!(got.concat(), want, "{filter:?}");
    }
}

async fn the_status_of_a_run_says_where_it_is<S: Store>(store: Arc<S>) {
    let agency = Arc::new(Agency::default());
    let engine = Engine::builder()
        .store(Arc::clone(&store))
        .service(Arc::clone(&agency))
        .build();
    let done = engine.run::<Trip>("ada".into()).await;
    let summary = engine.status(done.run_id()).await.unwrap();
    assert_eq!(summary.run_id, done.run_id());
    assert_eq!((summary.workflow.as_str(), summary.version), ("trip", 1));
    assert_eq!(summary.status, StoredStatus::Completed);
    assert!(summary.has_output);
    assert_eq!(summary.error, None);
    assert!(summary.created_at_micros <= summary.updated_at_micros);
    let step = summary.current_step.unwrap();
    assert_eq!(
        (step.name.as_str(), step.position, step.in_flight),
        ("pay", 3, false)
    );

    let unknown = RunId::generate();
    assert!(matches!(
        engine.status(unknown).await,
        Err(LookupError::UnknownRun(id)) if id == unknown
    ));

    // Looked up through the engine: the trips, newest first.
    let second = engine.run::<Trip>("bo".into()).await;
    let page = engine
        .runs(&RunFilter::new().workflow("trip"))
        .await
        .unwrap();
    let ids: Vec<RunId> = page.runs.iter().map(|r| r.run_id).collect();
    assert_eq!(ids, [second.run_id(), done.run_id()]);
    assert_eq!(page.next, None);
}

/// Told when step `wait_for_go` starts; lets it end.
#[derive(Default)]
struct Go {
    entered: tokio::sync::Notify,
    go: tokio::sync::Notify,
}

#[step]
async fn wait_for_go(ctx: &StepContext, n: u32) -> Result<u32, TripError> {
    let go = ctx.service::<Arc<Go>>()?;
    go.entered.notify_one();
    go.go.notified().await;
    Ok(n)
}

#[workflow]
async fn slow(ctx: &WorkflowContext, n: u32) -> Result<u32, TripError> {
    let n = crate::retry::pay(ctx, n).await?;
    wait_for_go(ctx, n).await
}

async fn the_status_of_a_running_run_names_where_its_journal_is<S: Store>(store: Arc<S>) {
    let go = Arc::new(Go::default());
    let engine = Engine::builder()
        .store(Arc::clone(&store))
        .service(Arc::new(Agency::default()))
        .service(Arc::clone(&go))
        .build();
    let run_id = RunId::generate();
    let running = engine
        .spawn::<Slow>(7, RunOptions::new().run_id(run_id))
        .unwrap();
    go.entered.notified().await;
    let summary = engine.status(run_id).await.unwrap();
    assert_eq!(summary.status, StoredStatus::Running);
    assert!(!summary.has_output);
    // What the store has: a step's completion is committed before the next step's body
    // runs, with that step's start, so the step running now is where the run is, in flight.
    let step = summary.current_step.unwrap();
    assert_eq!(
        (step.name.as_str(), step.position, step.in_flight),
        ("wait_for_go", 1, true)
    );
    go.go.notify_one();
    assert_eq!(running.await.unwrap().status(), RunStatus::Completed);
    let step = engine.status(run_id).await.unwrap().current_step.unwrap();
    assert_eq!(
        (step.name.as_str(), step.position, step.in_flight),
        ("wait_for_go", 1, false)
    );
}

on_every_store!(
    #[tokio::test]
    pages_cover_every_run_once_newest_first,
    the_status_of_a_run_says_where_it_is,
    the_status_of_a_running_run_names_where_its_journal_is,
);

#[tokio::test]
async fn an_engine_without_a_store_looks_nothing_up() {
    let engine = Engine::new();
    assert!(matches!(
        engine.status(RunId::generate()).await,
        Err(LookupError::NoStore(_))
    ));
    assert!(matches!(
        engine.runs(&RunFilter::new()).await,
        Err(LookupError::NoStore(_))
    ));
}

/// Damages run 7's actor (and, on SQLite, which keeps any value in any column, run 11's
/// creation time): every run is still paged once, the damaged ones reported.
async fn damaged_rows_are_reported_in_their_page(store: &dyn Store, db: &Db) {
    let all: Vec<RunRecord> = (0..15).map(record).collect();
    for run in &all {
        store.create(run, None).await.unwrap();
    }
    let (runs, _) = db.tables();
    let id = |n: u64| record(n).run_id.to_string();
    db.execute(&format!(
        "UPDATE {runs} SET actor = '{{oops' WHERE run_id = '{}'",
        id(7)
    ))
    .await;
    let mut damaged = vec![id(7)];
    if let Db::Sqlite(_) = db {
        db.execute(&format!(
            "UPDATE {runs} SET created_at = 'soon' WHERE run_id = '{}'",
            id(11)
        ))
        .await;
        damaged.push(id(11));
    }
    let mut unreadable = Vec::new();
    let mut seen = Vec::new();
    let mut filter = RunFilter::new().limit(2);
    loop {
        let page = store.list_page(&filter).await.unwrap();
        seen.extend(page.runs.iter().map(|r| r.run_id.to_string()));
        seen.extend(page.unreadable.iter().map(|u| u.run_id.clone()));
        unreadable.extend(page.unreadable.into_iter().map(|u| u.run_id));
        let Some(next) = page.next else { break };
        filter = filter.after(next);
    }
    unreadable.sort();
    damaged.sort();
    assert_eq!(unreadable, damaged);
    assert_eq!(seen.len(), 15, "{seen:?}");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 15);
}

#[tokio::test]
async fn damaged_rows_are_reported_in_their_page_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("hookflow-lookup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("runs.db");
    let store = SqliteStore::open(&path).unwrap();
    damaged_rows_are_reported_in_their_page(&store, &Db::Sqlite(path)).await;
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn damaged_rows_are_reported_in_their_page_on_postgres() {
    let url = crate::support::postgres::pg_database("lookup_damaged_rows");
    let store = hookflow::store::postgres::PostgresStore::connect(&url)
        .await
        .unwrap();
    damaged_rows_are_reported_in_their_page(&store, &Db::Postgres(url)).await;
}
