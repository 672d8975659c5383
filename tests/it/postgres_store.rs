//! The PostgreSQL store's own faults: a server that cannot be reached, a newer schema,
//! corrupt or foreign rows, idempotent starts racing, and runs that survive the store being
//! closed and connected again. The server is started once for this test binary (see
//! tests/it/support/postgres.rs); each test has a database of its own.

use std::sync::Arc;

use hookflow::prelude::*;
use hookflow::store::postgres::PostgresStore;
use hookflow::store::{Created, RunRecord, Store, StoreError, StoredStatus};

use crate::support::postgres::{pg_database, pg_psql, pg_server, pg_with_database};

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

#[step(compensate = unlabel)]
async fn label(_ctx: &StepContext, parcel: String) -> Result<StepResponse<String, String>, Never> {
    Ok(StepResponse::new(format!("label for {parcel}"), parcel))
}

async fn unlabel(_ctx: &StepContext, _parcel: String) -> Result<(), Never> {
    Ok(())
}

#[workflow]
async fn ship(ctx: &WorkflowContext, parcel: String) -> Result<String, Never> {
    label(ctx, parcel).await
}

fn run_id(n: u64) -> hookflow::RunId {
    hookflow::RunId::parse(&format!("01a21009-8e2e-7596-a1ac-{n:012x}")).unwrap()
}

fn engine(store: Arc<PostgresStore>) -> Engine {
    Engine::builder()
        .worker_id("app")
        .store(store)
        .workflow::<Ship>()
        .build()
}

#[tokio::test]
async fn runs_survive_closing_and_connecting_again() {
    let url = pg_database("reopen");
    let run_id = {
        let store = Arc::new(PostgresStore::connect(&url).await.unwrap());
        let outcome = engine(store).run::<Ship>("p1".into()).await;
        assert!(outcome.is_completed());
        outcome.run_id()
    };
    let store = PostgresStore::connect(&url).await.unwrap();
    let (record, events) = store.load(run_id).await.unwrap();
    assert_eq!(record.status, StoredStatus::Completed);
    assert_eq!(record.output, Some(serde_json::json!("label for p1")));
    assert!(events.len() >= 4);
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (0..u32::try_from(events.len()).unwrap()).collect::<Vec<_>>()
    );
    let listed = store
        .list(Some(StoredStatus::Completed), Some("ship"), 10)
        .await
        .unwrap()
        .runs;
    assert_eq!(listed.len(), 1);
    assert!(store.pending().await.unwrap().runs.is_empty());
}

#[tokio::test]
async fn a_server_that_cannot_be_reached_is_a_typed_error() {
    // Nothing listens on port 1.
    let err = PostgresStore::connect("postgres://hookflow@127.0.0.1:1/hookflow")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Unavailable { context, .. } if context == "connect to the database"),
        "{err}"
    );
    let err = PostgresStore::connect("not a url at all = =")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Unavailable { context, .. } if context == "parse the url"),
        "{err}"
    );
    // A server that is up, and a database that is not there.
    let err = PostgresStore::connect(&pg_with_database(pg_server(), "hookflow_no_such_db"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Unavailable { message, .. } if message.contains("hookflow_no_such_db")),
        "{err}"
    );
}

#[tokio::test]
async fn a_database_from_a_newer_hookflow_is_refused() {
    let url = pg_database("newer");
    drop(PostgresStore::connect(&url).await.unwrap());
    pg_psql(&url, &["UPDATE hookflow_schema SET version = 99"]);
    let err = PostgresStore::connect(&url).await.unwrap_err();
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
}

#[tokio::test]
async fn stores_connecting_together_migrate_once() {
    let url = pg_database("together");
    let stores = futures_join_all((0..8).map(|_| {
        let url = url.clone();
        async move { PostgresStore::connect(&url).await }
    }))
    .await;
    for store in stores {
        store.unwrap();
    }
}

/// Awaits every future, concurrently (no `futures` dependency here).
async fn futures_join_all<F: Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut outputs = Vec::new();
    for handle in handles {
        outputs.push(handle.await.unwrap());
    }
    outputs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_creates_with_one_idempotency_key_record_one_run() {
    let url = pg_database("race");
    let store = Arc::new(PostgresStore::connect(&url).await.unwrap());
    let record = |i: u32| RunRecord {
        run_id: run_id(u64::from(i)),
        workflow: "ship".into(),
        version: 1,
        input: serde_json::json!(format!("p{i}")),
        status: StoredStatus::Running,
        idempotency_key: Some("one-key".into()),
        request_id: None,
        actor: None,
        origin: Default::default(),
        additional_data: None,
        output: None,
        error: None,
        created_at_micros: 1,
        updated_at_micros: 1,
        owner: None,
        fence: 0,
        lease_until_micros: None,
        wake_at_micros: None,
        waiting_for: None,
        cancel: None,
        deadline_micros: None,
    };
    let creates = (0..16).map(|i| {
        let store = Arc::clone(&store);
        let run = record(i);
        async move { (run.run_id, store.create(&run, None).await.unwrap()) }
    });
    let results = futures_join_all(creates).await;
    let new: Vec<_> = results
        .iter()
        .filter(|(_, created)| matches!(created, Created::New))
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(new.len(), 1, "{results:?}");
    for (_, created) in &results {
        if let Created::Existing(existing) = created {
            assert_eq!(existing.run_id, new[0]);
        }
    }
    assert_eq!(store.list(None, None, 100).await.unwrap().runs.len(), 1);
}

#[tokio::test]
async fn corrupt_and_foreign_rows_are_typed_errors_and_nothing_is_lost() {
    let url = pg_database("corrupt");
    let store = Arc::new(PostgresStore::connect(&url).await.unwrap());
    let done = engine(Arc::clone(&store))
        .run::<Ship>("p2".into())
        .await
        .run_id();
    let other = engine(Arc::clone(&store))
        .run::<Ship>("p3".into())
        .await
        .run_id();
    drop(store);

    // A journal row that is not JSON, and one written by a hookflow with an event unknown here.
    pg_psql(
        &url,
        &[
            &format!(
                "UPDATE hookflow_events SET event = 'not json' WHERE run_id = '{done}' AND seq = 1"
            ),
            &format!(
                "UPDATE hookflow_events SET event = '{{\"seq\":1,\"at_micros\":1,\"event\":\"teleported\"}}' WHERE run_id = '{other}' AND seq = 1"
            ),
        ],
    );

    let store = PostgresStore::connect(&url).await.unwrap();
    for run_id in [done, other] {
        match store.load(run_id).await {
            Err(StoreError::Corrupt {
                run_id: id,
                message,
            }) => {
                assert_eq!(id, run_id.to_string());
                assert!(message.starts_with("event 1 cannot be read"), "{message}");
            }
            other => panic!("expected a corrupt row, got {other:?}"),
        }
    }
    // The run rows are intact: nothing is lost.
    assert_eq!(store.list(None, None, 10).await.unwrap().runs.len(), 2);

    // A corrupt run row.
    pg_psql(
        &url,
        &[&format!(
            "UPDATE hookflow_runs SET status = 'teleported' WHERE run_id = '{done}'"
        )],
    );
    match store.load(done).await {
        Err(StoreError::Corrupt { message, .. }) => {
            assert!(message.starts_with("status"), "{message}")
        }
        other => panic!("expected a corrupt row, got {other:?}"),
    }
}

#[tokio::test]
async fn a_corrupt_pending_run_is_quarantined_by_resume_not_dropped() {
    let url = pg_database("pending");
    let store = Arc::new(PostgresStore::connect(&url).await.unwrap());
    let run_id = engine(Arc::clone(&store))
        .run::<Ship>("p4".into())
        .await
        .run_id();
    drop(store);
    pg_psql(
        &url,
        &[
            &format!("UPDATE hookflow_runs SET status = 'running' WHERE run_id = '{run_id}'"),
            &format!(
                "UPDATE hookflow_events SET event = '{{' WHERE run_id = '{run_id}' AND seq = 0"
            ),
        ],
    );
    let store = Arc::new(PostgresStore::connect(&url).await.unwrap());
    let report = engine(Arc::clone(&store)).resume_pending().await.unwrap();
    assert!(report.failed.is_empty(), "{report:?}");
    assert!(report.resumed.is_empty(), "{report:?}");
    assert_eq!(report.quarantined.len(), 1, "{report:?}");
    assert_eq!(report.quarantined[0].run_id, run_id.to_string());
    assert!(
        report.quarantined[0]
            .reason
            .starts_with("event 0 cannot be read: "),
        "{report:?}"
    );
    // Parked, not dropped: listed with its reason, no longer pending.
    assert!(store.pending().await.unwrap().is_empty());
    let parked = store
        .list(Some(StoredStatus::Parked), None, 10)
        .await
        .unwrap()
        .runs;
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].run_id, run_id);
    assert_eq!(
        parked[0].error.as_deref(),
        Some(report.quarantined[0].error().as_str())
    );
}

#[tokio::test]
async fn a_commit_for_an_unknown_run_is_not_found_and_records_nothing() {
    let url = pg_database("unknown");
    let store = PostgresStore::connect(&url).await.unwrap();
    let run_id = run_id(99);
    let err = store.commit(run_id, 0, &[], None).await.unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound(id) if id == run_id),
        "{err}"
    );
    assert!(matches!(
        store.load(run_id).await,
        Err(StoreError::NotFound(_))
    ));
}

/// A journal event for the tests that commit by hand: `count` tells its sendings apart.
fn event(seq: u32, count: u32) -> hookflow::Event {
    serde_json::from_value(serde_json::json!({
        "seq": seq, "at_micros": 1, "event": "jobs_dispatched", "count": count
    }))
    .unwrap()
}

#[tokio::test]
async fn a_commit_sent_again_replaces_what_it_wrote_and_appends_the_rest() {
    let url = pg_database("sent_again");
    let store = PostgresStore::connect(&url).await.unwrap();
    let id = run_id(7);
    let lease = hookflow::store::Lease {
        owner: "app".into(),
        duration: std::time::Duration::from_secs(60),
    };
    let created = store
        .create(&crate::support::records::running(id, "ship"), Some(&lease))
        .await
        .unwrap();
    assert!(matches!(created, Created::New), "{created:?}");
    // Generation 1: the run created under a lease.
    store
        .commit(id, 1, &[event(0, 0), event(1, 1), event(2, 2)], None)
        .await
        .unwrap();
    // Its reply lost, the commit is sent again with what the run has now: events 1 and 2
    // (changed since) and two new ones.
    store
        .commit(
            id,
            1,
            &[event(1, 10), event(2, 20), event(3, 30), event(4, 40)],
            None,
        )
        .await
        .unwrap();
    let (_, events) = store.load(id).await.unwrap();
    assert_eq!(
        events,
        [
            event(0, 0),
            event(1, 10),
            event(2, 20),
            event(3, 30),
            event(4, 40)
        ]
    );
    // A run's first commit appends after nothing; a later one after what is stored.
    store.commit(id, 1, &[event(5, 50)], None).await.unwrap();
    assert_eq!(store.load(id).await.unwrap().1.len(), 6);
}
