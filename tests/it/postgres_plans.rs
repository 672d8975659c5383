//! What the PostgreSQL store's statements cost the server, read from its statistics: a
//! commit of a running run updates the run's row in place (a HOT update, which adds no index
//! entry), and a claim reads the runs it takes (and those in flight), neither the rest of
//! the backlog nor the ended runs before them, with the plan PostgreSQL keeps for it (planned
//! once per connection, not at every claim). Each test has a database of its own; a
//! backend's statistics reach `pg_stat_user_tables` when it ends, so each measurement ends
//! its store first.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hookflow::prelude::*;
use hookflow::store::postgres::PostgresStore;
use hookflow::store::{Lease, Store};

use crate::support::postgres::{PgCluster, pg_database, pg_psql};

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

#[step]
async fn count(_ctx: &StepContext, i: u32) -> Result<u32, Never> {
    Ok(i)
}

#[workflow]
async fn tally(ctx: &WorkflowContext, n: u32) -> Result<u32, Never> {
    let mut total = 0;
    for i in 0..n {
        total += count(ctx, i).await?;
    }
    Ok(total)
}

fn engine(store: Arc<PostgresStore>) -> Engine {
    Engine::builder().store(store).workflow::<Tally>().build()
}

/// `hookflow_runs`' counters: rows inserted, updated, updated in place (HOT), and read
/// (sequential scans' rows and index scans' heap fetches).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Counters {
    inserted: i64,
    updated: i64,
    hot: i64,
    read: i64,
}

async fn counters(url: &str) -> Counters {
    let client = crate::support::pg_client::pg_client(url).await;
    let row = client
        .query_one(
            "SELECT n_tup_ins, n_tup_upd, n_tup_hot_upd,
                    coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)
             FROM pg_stat_user_tables WHERE relname = 'hookflow_runs'",
            &[],
        )
        .await
        .unwrap();
    Counters {
        inserted: row.get(0),
        updated: row.get(1),
        hot: row.get(2),
        read: row.get(3),
    }
}

/// Polls the counters until `done` holds (the backends that ended have reported).
async fn counters_once(url: &str, done: impl Fn(&Counters) -> bool) -> Counters {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = counters(url).await;
        if done(&now) {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "the statistics did not reach {now:?} in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_running_runs_commits_update_its_row_in_place() {
    let url = pg_database("hot_commits");
    let store = Arc::new(PostgresStore::connect(&url).await.unwrap());
    let outcome = engine(store).run::<Tally>(20).await;
    assert_eq!(outcome.into_result().unwrap(), 190);
    // The engine and its store are gone: their backends report as they end.
    let after = counters_once(&url, |c| c.inserted == 1 && c.updated >= 20).await;
    // Every commit but the run's end (it changes the status, which indexes name) is in place.
    assert!(
        after.hot >= after.updated - 1,
        "{} of {} updates of the run's row were HOT",
        after.hot,
        after.updated
    );
}

/// SQL inserting runs `from..=to` of `tally` with `status`, created at those microseconds.
fn runs(status: &str, from: u32, to: u32) -> String {
    format!(
        "INSERT INTO hookflow_runs (run_id, workflow, version, input, status, origin,
             created_at, updated_at)
         SELECT '01a00000-0000-7000-8000-' || lpad(to_hex(i), 12, '0'), 'tally', 1, '3',
             '{status}', 'local', i, i
         FROM generate_series({from}, {to}) AS i"
    )
}

#[tokio::test]
async fn a_claim_reads_only_the_runs_it_takes() {
    let url = pg_database("claim_reads");
    drop(PostgresStore::connect(&url).await.unwrap());
    // 50,000 runs ended, then 200 enqueued (a backlog behind a history).
    pg_psql(
        &url,
        &[
            &runs("completed", 1, 50_000),
            &runs("running", 50_001, 50_200),
            "ANALYZE hookflow_runs",
        ],
    );
    let before = counters_once(&url, |c| c.inserted == 50_200).await;
    let store = PostgresStore::connect(&url).await.unwrap();
    let lease = Lease {
        owner: "claimer".into(),
        duration: Duration::from_secs(30),
    };
    let found = store
        .claim_next(&lease, &[("tally".into(), 1)], &[], 16)
        .await
        .unwrap();
    // The oldest 16 of the backlog.
    let claimed: Vec<String> = found
        .runs
        .iter()
        .map(|(run, _)| run.run_id.to_string())
        .collect();
    let oldest: Vec<String> = (50_001..50_017)
        .map(|i: u32| format!("01a00000-0000-7000-8000-{i:012x}"))
        .collect();
    assert_eq!(claimed, oldest);
    drop(store);
    let after = counters_once(&url, |c| c.updated >= before.updated + 16).await;
    // Each run taken is read a few times (found, locked, updated); the other 184 enqueued and
    // the 50,000 ended are not.
    assert!(
        after.read - before.read <= 100,
        "the claim read {} rows of hookflow_runs to take 16",
        after.read - before.read
    );
}

/// Takes `claims` claims of 16 runs of `tally` from the database at `url` (whose
/// `hookflow_runs` holds `inserted` rows), each finding 16: the runs taken, and the rows of
/// `hookflow_runs` the claims read (from the table's statistics counters).
async fn claims_of_16(url: &str, inserted: i64, claims: i64) -> (i64, i64) {
    let before = counters_once(url, |c| c.inserted == inserted).await;
    let store = PostgresStore::connect(url).await.unwrap();
    let lease = Lease {
        owner: "claimer".into(),
        duration: Duration::from_secs(60),
    };
    for _ in 0..claims {
        let found = store
            .claim_next(&lease, &[("tally".into(), 1)], &[], 16)
            .await
            .unwrap();
        assert_eq!(found.runs.len(), 16);
    }
    drop(store);
    let taken = 16 * claims;
    let after = counters_once(url, |c| c.updated >= before.updated + taken).await;
    (taken, after.read - before.read)
}

/// Makes a database named after `name` whose backlog `setup` makes (its `hookflow_runs` never
/// analyzed by autovacuum), then takes 5 claims of 16 from it: the rows of `hookflow_runs` they
/// read, at most what they take and pass (the runs the claims before them hold).
async fn five_claims_read_only_what_they_take(name: &str, setup: &[&str], inserted: i64) {
    let url = pg_database(name);
    drop(PostgresStore::connect(&url).await.unwrap());
    let mut commands = vec!["ALTER TABLE hookflow_runs SET (autovacuum_enabled = off)"];
    commands.extend_from_slice(setup);
    pg_psql(&url, &commands);
    let claims = 5;
    let (taken, read) = claims_of_16(&url, inserted, claims).await;
    // Each run taken is read a few times (found, locked, updated), and each claim passes the
    // runs the claims before it hold; the rest of the backlog is not read, nor sorted.
    assert!(
        read <= claims * (taken + 100),
        "{claims} claims read {read} rows of hookflow_runs to take {taken}"
    );
}

#[tokio::test]
async fn a_claim_on_a_backlog_the_planner_has_no_statistics_of_reads_only_the_runs_it_takes() {
    // 8,000 runs enqueued into a new table, never analyzed (as workers meet a backlog
    // enqueued moments before): the planner guesses how many are ready.
    five_claims_read_only_what_they_take("claim_unanalyzed", &[&runs("running", 1, 8_000)], 8_000)
        .await;
}

#[tokio::test]
async fn a_claim_on_a_backlog_the_statistics_do_not_know_reads_only_the_runs_it_takes() {
    // 8,000 ended runs analyzed, then as many enqueued (here: the same rows made ready): the
    // statistics say that no run is ready (as after a burst since autovacuum's last ANALYZE).
    five_claims_read_only_what_they_take(
        "claim_stale_statistics",
        &[
            &runs("completed", 1, 8_000),
            "ANALYZE hookflow_runs",
            "UPDATE hookflow_runs SET status = 'running'",
        ],
        8_000,
    )
    .await;
}

#[tokio::test]
async fn a_database_of_schema_7_is_migrated_and_its_backlog_claimed() {
    let url = pg_database("from_schema_7");
    drop(PostgresStore::connect(&url).await.unwrap());
    // The database as schema 7 left it (its status index on `(status, created_at)`), with a
    // backlog of 3 enqueued runs.
    pg_psql(
        &url,
        &[
            "DROP INDEX hookflow_runs_by_status_created",
            "CREATE INDEX hookflow_runs_by_status ON hookflow_runs (status, created_at)",
            "UPDATE hookflow_schema SET version = 7",
            &runs("running", 1, 3),
        ],
    );
    let store = PostgresStore::connect(&url).await.unwrap();
    let client = crate::support::pg_client::pg_client(&url).await;
    let row = client
        .query_one(
            "SELECT (SELECT version FROM hookflow_schema),
                to_regclass('hookflow_runs_by_status_created') IS NOT NULL,
                to_regclass('hookflow_runs_by_status') IS NOT NULL",
            &[],
        )
        .await
        .unwrap();
    let (version, new_index, old_index): (i64, bool, bool) = (row.get(0), row.get(1), row.get(2));
    assert_eq!((version, new_index, old_index), (8, true, false));
    let lease = Lease {
        owner: "claimer".into(),
        duration: Duration::from_secs(30),
    };
    let found = store
        .claim_next(&lease, &[("tally".into(), 1)], &[], 16)
        .await
        .unwrap();
    let claimed: Vec<String> = found
        .runs
        .iter()
        .map(|(run, _)| run.run_id.to_string())
        .collect();
    let backlog: Vec<String> = (1..=3)
        .map(|i: u32| format!("01a00000-0000-7000-8000-{i:012x}"))
        .collect();
    assert_eq!(claimed, backlog);
}

/// The statement statistics of a cluster started with `pg_stat_statements` (and its planning
/// counted): how many times the statements whose text starts with `start` ran, and were
/// planned.
async fn calls_and_plans(url: &str, start: &str) -> (i64, i64) {
    let client = crate::support::pg_client::pg_client(url).await;
    let row = client
        .query_one(
            "SELECT coalesce(sum(calls), 0)::BIGINT, coalesce(sum(plans), 0)::BIGINT
             FROM pg_stat_statements WHERE starts_with(query, $1)",
            &[&start],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test]
async fn claims_past_the_plan_caches_switch_still_read_only_the_runs_they_take() {
    // A cluster of its own: pg_stat_statements must be loaded when the server starts.
    let cluster = PgCluster::start_with(
        "cached_claims",
        Some(
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off \
             -c shared_preload_libraries=pg_stat_statements \
             -c pg_stat_statements.track_planning=on",
        ),
    );
    let url = cluster.url();
    drop(PostgresStore::connect(url).await.unwrap());
    // 50,000 runs ended, then a backlog of 20,000 enqueued.
    pg_psql(
        url,
        &[
            "CREATE EXTENSION pg_stat_statements",
            &runs("completed", 1, 50_000),
            &runs("running", 50_001, 70_000),
            "ANALYZE hookflow_runs",
            "SELECT pg_stat_statements_reset()",
        ],
    );
    let claims = 30;
    let (taken, read) = claims_of_16(url, 70_000, claims).await;
    // PostgreSQL plans a prepared statement at each of its first five executions, then may
    // keep a generic plan, which cannot know the limit (it would read the backlog and sort
    // it): the claims after the fifth must be planned as well as the first.
    let (calls, plans) = calls_and_plans(url, "WITH ready AS").await;
    assert_eq!(calls, claims, "the claims counted ({plans} plans)");
    // The runs taken are read, and those in flight before them; the rest of the backlog
    // (19,520 runs never taken) and the 50,000 ended are not, at any claim.
    assert!(
        read <= claims * (taken + 100),
        "{claims} claims read {read} rows of hookflow_runs to take {taken}"
    );
}
