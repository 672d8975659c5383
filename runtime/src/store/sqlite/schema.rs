//! The schema: its migrations, and how a database is brought up to date.

use rusqlite::Connection;

use super::unavailable;
use crate::store::{StoreError, row};

const MIGRATIONS: &[&str] = &[
    // 1: runs and their journals.
    "CREATE TABLE runs (
        run_id          TEXT PRIMARY KEY,
        workflow        TEXT NOT NULL,
        version         INTEGER NOT NULL,
        input           TEXT NOT NULL,
        status          TEXT NOT NULL,
        idempotency_key TEXT UNIQUE,
        request_id      TEXT,
        actor           TEXT,
        origin          TEXT NOT NULL,
        additional_data TEXT,
        output          TEXT,
        error           TEXT,
        created_at      INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL
    );
    CREATE INDEX runs_by_status ON runs (status, created_at);
    CREATE TABLE events (
        run_id TEXT NOT NULL,
        seq    INTEGER NOT NULL,
        event  TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    ) WITHOUT ROWID;",
    // 2: leases (who may advance a run) and their fencing tokens.
    "ALTER TABLE runs ADD COLUMN owner TEXT;
    ALTER TABLE runs ADD COLUMN fence INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN lease_until INTEGER;",
];

pub(super) fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(unavailable("read the schema version"))?;
    for (next, migration) in row::pending_migrations(MIGRATIONS, version)? {
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {migration}; PRAGMA user_version = {next}; COMMIT;"
        ))
        .map_err(unavailable("migrate the schema"))?;
    }
    Ok(())
}
