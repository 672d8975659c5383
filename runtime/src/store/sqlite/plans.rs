//! The SQL checks: each statement of the store, as SQLite plans it on the migrated schema,
//! reads the index it must (`EXPLAIN QUERY PLAN`), and the writes build no temporary table
//! (`EXPLAIN`). What keeps a commit to a few b-tree pages and a read from scanning a store of
//! a million runs.

use rusqlite::Connection;

use super::by_key::BY_KEY;
use super::page::page_sql;
use super::read::{EVENTS, RUN};
use super::sql::{
    DELETE_EVENTS, END_RUN, END_RUN_BY_KEY, FENCE, FENCED_EVENTS, FENCED_EVENTS_BY_KEY, FREE_RUNS,
    INSERT_EVENT, INSERT_RUN, KEY_LOOKUP, prune_select,
};
use crate::store::{RunCursor, RunFilter, StoredStatus};

fn migrated() -> Connection {
    let mut conn = Connection::open_in_memory().unwrap();
    super::schema::migrate(&mut conn).unwrap();
    conn
}

/// The steps of `sql`'s query plan, joined with `; ` (every parameter NULL but `params`).
fn plan(conn: &Connection, sql: &str, params: &[rusqlite::types::Value]) -> String {
    let mut explain = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let mut values = params.to_vec();
    values.resize(explain.parameter_count(), rusqlite::types::Value::Null);
    let steps: Vec<String> = explain
        .query_map(rusqlite::params_from_iter(values), |row| {
            row.get::<_, String>(3)
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    steps.join("; ")
}

/// The opcodes of `sql`'s program, by name.
fn opcodes(conn: &Connection, sql: &str) -> Vec<String> {
    let mut explain = conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
    let nulls = vec![rusqlite::types::Null; explain.parameter_count()];
    explain
        .query_map(rusqlite::params_from_iter(nulls), |row| {
            row.get::<_, String>(1)
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn assert_uses(plan: &str, what: &str) {
    assert!(plan.contains(what), "expected `{what}` in the plan: {plan}");
    assert!(!plan.contains("TEMP B-TREE"), "a sort in the plan: {plan}");
}

/// A run's writes build no temporary table (SQLite did, for the ended runs' index's `IN`
/// list, on every write to `runs`: a quarter of a step commit's CPU).
#[test]
fn a_runs_writes_build_no_temporary_table() {
    let conn = migrated();
    let events = [FENCED_EVENTS[0].as_str(), FENCED_EVENTS[15].as_str()];
    for sql in [
        INSERT_RUN,
        FENCE,
        END_RUN,
        INSERT_EVENT,
        events[0],
        events[1],
        END_RUN_BY_KEY,
        &FENCED_EVENTS_BY_KEY[0],
        &FENCED_EVENTS_BY_KEY[15],
    ] {
        let ops = opcodes(&conn, sql);
        assert!(
            !ops.iter().any(|op| op == "OpenEphemeral"),
            "{sql} opens a temporary table: {ops:?}"
        );
    }
}

/// A step's commit: its events inserted under the fence, the run found on the run id's
/// index (so are the fence check and the end), and an event is one entry of one b-tree (the
/// table has no index of its own).
#[test]
fn a_commit_reads_the_run_by_its_id_and_writes_by_its_key() {
    let conn = migrated();
    for sql in [FENCE, END_RUN, &FENCED_EVENTS[0], &FENCED_EVENTS[15]] {
        assert_uses(
            &plan(&conn, sql, &[]),
            "SEARCH runs USING INDEX sqlite_autoindex_runs_1 (run_id=?)",
        );
    }
    let indexes: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'events'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(indexes, 0, "the events table has an index");
}

/// The same statements by the run's key (the key a connection noted): the run's row found by
/// its rowid, not on the run id's index.
#[test]
fn a_commit_by_the_runs_key_reads_the_run_by_its_rowid() {
    let conn = migrated();
    for sql in [
        END_RUN_BY_KEY,
        &FENCED_EVENTS_BY_KEY[0],
        &FENCED_EVENTS_BY_KEY[15],
    ] {
        let plan = plan(&conn, sql, &[]);
        assert_uses(&plan, "SEARCH runs USING INTEGER PRIMARY KEY (rowid=?)");
        assert!(!plan.contains("sqlite_autoindex_runs_1"), "{plan}");
    }
}

/// A run's record (its last change among its events) and its journal: ranges of the events'
/// integer key, never a scan.
#[test]
fn a_run_and_its_journal_are_read_by_their_keys() {
    let conn = migrated();
    let run = plan(&conn, &RUN, &[]);
    assert_uses(
        &run,
        "SEARCH runs USING INDEX sqlite_autoindex_runs_1 (run_id=?)",
    );
    assert_uses(
        &run,
        "SEARCH events USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)",
    );
    assert_uses(
        &plan(&conn, EVENTS, &[]),
        "SEARCH events USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)",
    );
    assert_uses(
        &plan(&conn, DELETE_EVENTS, &[]),
        "SEARCH events USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)",
    );
}

/// An idempotency key is looked up on its partial index (runs without a key are not in it).
#[test]
fn an_idempotency_key_is_found_on_its_partial_index() {
    let conn = migrated();
    for sql in [KEY_LOOKUP, BY_KEY] {
        assert_uses(
            &plan(&conn, sql, &[]),
            "SEARCH runs USING INDEX runs_by_key (idempotency_key=?)",
        );
    }
}

/// The runs to claim are searched by status (the index `runs_by_status` was dropped for it).
#[test]
fn claiming_searches_the_runs_by_status() {
    let conn = migrated();
    let plan = plan(&conn, FREE_RUNS, &[]);
    assert!(
        plan.contains("SEARCH runs USING INDEX runs_by_status_created (status=?)"),
        "{plan}"
    );
    assert!(!plan.contains("SCAN runs"), "{plan}");
}

#[test]
fn pruning_reads_the_ended_runs_index() {
    let conn = migrated();
    let plan = plan(&conn, &prune_select(), &[0_i64.into(), 1_i64.into()]);
    assert!(plan.contains("runs_ended"), "{plan}");
}

/// Each page query searches an index in its order (no full scan, no sort of the table):
/// what keeps a page fast on a store of a million runs.
#[test]
fn every_page_query_is_served_by_an_index() {
    let conn = migrated();
    let cursor = RunCursor {
        created_at_micros: 5,
        run_id: "x".into(),
    };
    for (filter, index) in [
        (RunFilter::new(), "runs_by_created"),
        (RunFilter::new().after(cursor.clone()), "runs_by_created"),
        (
            RunFilter::new().status(StoredStatus::Compensated),
            "runs_by_status_created",
        ),
        (
            RunFilter::new()
                .status(StoredStatus::Running)
                .after(cursor.clone()),
            "runs_by_status_created",
        ),
        (
            RunFilter::new().workflow("checkout"),
            "runs_by_workflow_created",
        ),
    ] {
        let text =
            |s: Option<&str>| s.map_or(rusqlite::types::Value::Null, |s| s.to_owned().into());
        let plan = plan(
            &conn,
            &page_sql(&filter),
            &[
                text(filter.status.map(StoredStatus::as_str)),
                text(filter.workflow.as_deref()),
                rusqlite::types::Value::Null,
                rusqlite::types::Value::Null,
                filter
                    .after
                    .as_ref()
                    .map_or(rusqlite::types::Value::Null, |c| {
                        i64::try_from(c.created_at_micros).unwrap().into()
                    }),
                text(filter.after.as_ref().map(|c| c.run_id.as_str())),
                51_i64.into(),
            ],
        );
        assert_uses(&plan, &format!("USING INDEX {index}"));
        // A run's last change: its last event, by the events' key.
        assert_uses(
            &plan,
            "SEARCH events USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)",
        );
    }
}
