//! The schema: its migrations, how a database is brought up to date under an advisory
//! lock, and how a database connected read-only is checked without writing.

use super::pg;
use crate::store::{StoreError, row};

/// The key of the advisory lock held while migrating, so that processes starting together
/// migrate one after the other.
const MIGRATION_LOCK: i64 = 0x686f_6f6b_666c_6f77; // "hookflow"

const MIGRATIONS: &[&str] = &[
    // 1: runs and their journals.
    "CREATE TABLE hookflow_runs (
        run_id          TEXT PRIMARY KEY,
        workflow        TEXT NOT NULL,
        version         BIGINT NOT NULL,
        input           TEXT NOT NULL,
        status          TEXT NOT NULL,
        idempotency_key TEXT UNIQUE,
        request_id      TEXT,
        actor           TEXT,
        origin          TEXT NOT NULL,
        additional_data TEXT,
        output          TEXT,
        error           TEXT,
        created_at      BIGINT NOT NULL,
        updated_at      BIGINT NOT NULL
    );
    CREATE INDEX hookflow_runs_by_status ON hookflow_runs (status, created_at);
    CREATE TABLE hookflow_events (
        run_id TEXT NOT NULL,
        seq    BIGINT NOT NULL,
        event  TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    );",
    // 2: leases (who may advance a run), their fencing tokens, and their duration (a commit
    // renews its run's lease).
    "ALTER TABLE hookflow_runs
        ADD COLUMN owner TEXT,
        ADD COLUMN fence BIGINT NOT NULL DEFAULT 0,
        ADD COLUMN lease_until BIGINT,
        ADD COLUMN lease_micros BIGINT NOT NULL DEFAULT 0;",
    // 3: long-running runs: suspended runs and when they wake, cancellation requests,
    // deadlines, and the events sent to runs (their inbox).
    "ALTER TABLE hookflow_runs
        ADD COLUMN wake_at BIGINT,
        ADD COLUMN waiting_for TEXT,
        ADD COLUMN cancel TEXT,
        ADD COLUMN deadline BIGINT;
    CREATE INDEX hookflow_runs_waking ON hookflow_runs (wake_at) WHERE status = 'waiting';
    CREATE TABLE hookflow_inbox (
        run_id       TEXT NOT NULL,
        seq          BIGINT NOT NULL,
        event        TEXT NOT NULL,
        delivery_key TEXT,
        message      TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    );
    CREATE UNIQUE INDEX hookflow_inbox_by_delivery ON hookflow_inbox (run_id, delivery_key)
        WHERE delivery_key IS NOT NULL;
    CREATE INDEX hookflow_inbox_by_event ON hookflow_inbox (run_id, event, seq);",
    // 4: pruning finds the ended runs by last change, oldest first. Partial: a commit of a
    // running run (it changes `updated_at`) does not touch it; only a run's end does.
    "CREATE INDEX hookflow_runs_ended ON hookflow_runs (updated_at)
        WHERE status IN ('completed', 'compensated', 'compensation_failed', 'cancelled');",
    // 5: schedules (recurring runs), each with the last tick decided.
    "CREATE TABLE hookflow_schedules (
        name        TEXT PRIMARY KEY,
        workflow    TEXT NOT NULL,
        version     BIGINT NOT NULL,
        spec        TEXT NOT NULL,
        input       TEXT NOT NULL,
        overlap     TEXT NOT NULL,
        catch_up    TEXT NOT NULL,
        anchor      BIGINT NOT NULL,
        last_tick   BIGINT,
        last_run_id TEXT,
        started     BOOLEAN NOT NULL DEFAULT TRUE,
        created_at  BIGINT NOT NULL,
        updated_at  BIGINT NOT NULL
    );",
    // 6: pages of runs, newest first (`Store::list_page`, the dashboard's runs page), in the
    // order they are paged in (run ids byte by byte): every run, the runs of a workflow. (The
    // runs of a status: `hookflow_runs_by_status`.) Each page reads its rows in index order
    // and stops, on a store of any size.
    "CREATE INDEX hookflow_runs_by_created ON hookflow_runs (created_at, run_id COLLATE \"C\");
    CREATE INDEX hookflow_runs_by_workflow ON hookflow_runs
        (workflow, created_at, run_id COLLATE \"C\");",
    // 7: a commit of a running run updates its row in place (a HOT update: no new index
    // entries), which it cannot while it changes a column an index names. Migration 4's
    // index named `updated_at`, which every commit changes: pruning now finds the ended runs
    // by `ended_at`, computed by the server from the status and `updated_at` and null while
    // the run is not ended. Rows keep a fifth of each page free for their next versions.
    "ALTER TABLE hookflow_runs ADD COLUMN ended_at BIGINT GENERATED ALWAYS AS (
        CASE WHEN status IN ('completed', 'compensated', 'compensation_failed', 'cancelled')
            THEN updated_at END) STORED;
    DROP INDEX hookflow_runs_ended;
    CREATE INDEX hookflow_runs_ended_at ON hookflow_runs (ended_at, run_id)
        WHERE ended_at IS NOT NULL;
    ALTER TABLE hookflow_runs SET (fillfactor = 80);",
    // 8: a claim takes the oldest free runs of a status by `(created_at, run_id)`. An index
    // in that whole order lets it read them in order and stop after its limit whatever the
    // planner estimates; with migration 1's `(status, created_at)`, a planner without
    // statistics (a table just filled: no `ANALYZE` yet) read and sorted the whole backlog
    // at every claim. It serves the listings by status as the index it replaces did.
    "CREATE INDEX hookflow_runs_by_status_created ON hookflow_runs (status, created_at, run_id);
    DROP INDEX hookflow_runs_by_status;",
];

pub(super) async fn migrate(client: &mut deadpool_postgres::Object) -> Result<(), StoreError> {
    let tx = client
        .transaction()
        .await
        .map_err(pg("begin a transaction"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg("lock the schema"))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS hookflow_schema (
            id      INTEGER PRIMARY KEY CHECK (id = 1),
            version BIGINT NOT NULL
        );
        INSERT INTO hookflow_schema (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;",
    )
    .await
    .map_err(pg("create the schema table"))?;
    let version: i64 = tx
        .query_one("SELECT version FROM hookflow_schema WHERE id = 1", &[])
        .await
        .map_err(pg("read the schema version"))?
        .get(0);
    for (next, migration) in row::pending_migrations(MIGRATIONS, version)? {
        tx.batch_execute(migration)
            .await
            .map_err(pg("migrate the schema"))?;
        tx.execute(
            "UPDATE hookflow_schema SET version = $1 WHERE id = 1",
            &[&next],
        )
        .await
        .map_err(pg("migrate the schema"))?;
    }
    tx.commit().await.map_err(pg("migrate the schema"))
}

/// Checks, without writing, that the database has hookflow's tables at this build's schema
/// version.
///
/// # Errors
/// [`StoreError::NotAStore`] for a database without them, [`StoreError::SchemaOutdated`] or
/// [`StoreError::IncompatibleSchema`] for an older or a newer hookflow's.
pub(super) async fn check(client: &deadpool_postgres::Object) -> Result<(), StoreError> {
    let tables = client
        .query_one(
            "SELECT to_regclass('hookflow_schema') IS NOT NULL,
                to_regclass('hookflow_runs') IS NOT NULL,
                to_regclass('hookflow_events') IS NOT NULL",
            &[],
        )
        .await
        .map_err(pg("read the schema"))?;
    let (schema, runs, events): (bool, bool, bool) = (tables.get(0), tables.get(1), tables.get(2));
    if !schema {
        return Err(StoreError::NotAStore {
            reason:
                "the database has no table `hookflow_schema`: no hookflow engine has written to it"
                    .into(),
        });
    }
    let version: i64 = client
        .query_opt("SELECT version FROM hookflow_schema WHERE id = 1", &[])
        .await
        .map_err(pg("read the schema version"))?
        .map_or(0, |row| row.get(0));
    row::current_schema(MIGRATIONS, version)?;
    if !runs || !events {
        return Err(StoreError::NotAStore {
            reason: format!(
                "its schema version is {version}, but it has no table `hookflow_runs` or `hookflow_events`"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;
    use crate::store::row;

    #[test]
    fn ended_at_is_set_for_exactly_the_ended_statuses() {
        let condition = format!("CASE WHEN status IN ({})", row::finished_statuses());
        assert!(
            MIGRATIONS[6].contains(&condition),
            "migration 7 must say `{condition}`: pruning finds the ended runs by `ended_at`"
        );
    }
}
