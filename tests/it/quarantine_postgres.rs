//! The scenarios of `quarantine` on PostgreSQL: a poisoned run does not stop a worker (it
//! leases the run and its neighbours in one claim: the neighbours run, the poisoned one is
//! parked in the same transaction), and `resume_pending` quarantines a corrupt run or
//! journal and resumes the others.

use std::sync::Arc;

use hookflow::store::Store;
use hookflow::store::postgres::PostgresStore;

use crate::quarantine::{
    Corruption, Db, a_poisoned_run_does_not_stop_a_worker, resume_pending_quarantines,
};
use crate::support::postgres::pg_database;

async fn postgres(name: &str) -> (Arc<dyn Store>, Db) {
    let url = pg_database(name);
    let store: Arc<dyn Store> = Arc::new(PostgresStore::connect(&url).await.unwrap());
    (store, Db::Postgres(url))
}

#[tokio::test]
async fn a_poisoned_run_does_not_stop_a_worker_on_postgres() {
    let (store, db) = postgres("quarantine_worker").await;
    a_poisoned_run_does_not_stop_a_worker(store, db).await;
}

#[tokio::test]
async fn resume_pending_quarantines_a_corrupt_run_on_postgres() {
    let (store, db) = postgres("quarantine_actor").await;
    resume_pending_quarantines(store, db, Corruption::Actor).await;
}

#[tokio::test]
async fn resume_pending_quarantines_a_corrupt_journal_on_postgres() {
    let (store, db) = postgres("quarantine_event").await;
    resume_pending_quarantines(store, db, Corruption::Event).await;
}
