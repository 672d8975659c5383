//! The schema: its migrations, how a database is brought up to date (under one write lock,
//! so that processes opening a new file together migrate it once), and how a database opened
//! read-only is checked without writing.

use rusqlite::{Connection, TransactionBehavior};

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
    // 3: long-running runs: suspended runs and when they wake, cancellation requests,
    // deadlines, and the events sent to runs (their inbox).
    "ALTER TABLE runs ADD COLUMN wake_at INTEGER;
    ALTER TABLE runs ADD COLUMN waiting_for TEXT;
    ALTER TABLE runs ADD COLUMN cancel TEXT;
    ALTER TABLE runs ADD COLUMN deadline INTEGER;
    CREATE INDEX runs_waking ON runs (wake_at) WHERE status = 'waiting';
    CREATE TABLE inbox (
        run_id       TEXT NOT NULL,
        seq          INTEGER NOT NULL,
        event        TEXT NOT NULL,
        delivery_key TEXT,
        message      TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX inbox_by_delivery ON inbox (run_id, delivery_key)
        WHERE delivery_key IS NOT NULL;
    CREATE INDEX inbox_by_event ON inbox (run_id, event, seq);",
    // 4: pruning finds the ended runs by last change, oldest first. Partial: a commit of a
    // running run (it changes `updated_at`) does not touch it; only a run's end does. The
    // condition is the prune query's, word for word (`row::finished_statuses`), so that
    // SQLite uses it.
    "CREATE INDEX runs_ended ON runs (updated_at)
        WHERE status IN ('completed', 'compensated', 'compensation_failed', 'cancelled');",
    // 5: schedules (recurring runs), each with the last tick decided.
    "CREATE TABLE schedules (
        name        TEXT PRIMARY KEY,
        workflow    TEXT NOT NULL,
        version     INTEGER NOT NULL,
        spec        TEXT NOT NULL,
        input       TEXT NOT NULL,
        overlap     TEXT NOT NULL,
        catch_up    TEXT NOT NULL,
        anchor      INTEGER NOT NULL,
        last_tick   INTEGER,
        last_run_id TEXT,
        started     INTEGER NOT NULL DEFAULT 1,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL
    );",
    // 6: pages of runs, newest first (`Store::list_page`, the dashboard's runs page), on the
    // key they are paged on, word for word as the page query computes it (`page::KEY_AT`,
    // `page::KEY_ID`): every run, the runs of a status, the runs of a workflow. Each page
    // reads its rows in index order and stops, on a store of any size.
    "CREATE INDEX runs_by_created ON runs
        (IFNULL(CAST(created_at AS INTEGER), 0), IFNULL(CAST(run_id AS TEXT), ''));
    CREATE INDEX runs_by_status_created ON runs
        (status, IFNULL(CAST(created_at AS INTEGER), 0), IFNULL(CAST(run_id AS TEXT), ''));
    CREATE INDEX runs_by_workflow_created ON runs
        (workflow, IFNULL(CAST(created_at AS INTEGER), 0), IFNULL(CAST(run_id AS TEXT), ''));",
    // 7: the ended runs' index of migration 4, on a condition SQLite evaluates without a
    // temporary table. For `status IN (four values)` it built one (twice for an UPDATE: the
    // old row and the new) on every write to `runs`: a quarter of a step commit's CPU. The
    // condition is the prune query's, word for word (`ENDED`).
    "DROP INDEX runs_ended;
    CREATE INDEX runs_ended ON runs (updated_at)
        WHERE CASE status WHEN 'completed' THEN 1 WHEN 'compensated' THEN 1 WHEN 'compensation_failed' THEN 1 WHEN 'cancelled' THEN 1 ELSE 0 END;",
    // 8: fewer b-trees written per commit. `runs` keyed by its rowid (`id`, kept from the
    // old table), the idempotency key's index partial (runs without a key are not in it),
    // `runs_by_status` dropped (the claim and list queries read `runs_by_status_created`);
    // `events` keyed by one integer, `id << 32 | seq` (an event is one b-tree entry, no
    // separate index), with the time it was written (`at`): a step's commit writes only its
    // events, and a run's last change is the later of its row's `updated_at` and its last
    // event's `at` (`read::UPDATED_AT`). The events carried over keep `at = 0`: the row's
    // `updated_at` counts their commits. An event whose `seq` is not a 32-bit sequence
    // number (a damaged row: its run could not be read) is carried over under the last
    // sequence number, its text prefixed with why (`seq 'x' is not a sequence number: ...`):
    // not JSON, so that its run still cannot be read, and nothing is lost. No NOT NULL on `events`: with one,
    // a commit's insert of several events could fail midway, and SQLite would keep a statement
    // journal for each (the store writes no NULL there, and reads one as a damaged row).
    "CREATE TABLE runs_v8 (
        id              INTEGER PRIMARY KEY,
        run_id          TEXT UNIQUE,
        workflow        TEXT NOT NULL,
        version         INTEGER NOT NULL,
        input           TEXT NOT NULL,
        status          TEXT NOT NULL,
        idempotency_key TEXT,
        request_id      TEXT,
        actor           TEXT,
        origin          TEXT NOT NULL,
        additional_data TEXT,
        output          TEXT,
        error           TEXT,
        created_at      INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL,
        owner           TEXT,
        fence           INTEGER NOT NULL DEFAULT 0,
        lease_until     INTEGER,
        wake_at         INTEGER,
        waiting_for     TEXT,
        cancel          TEXT,
        deadline        INTEGER
    );
    INSERT INTO runs_v8 (id, run_id, workflow, version, input, status, idempotency_key,
        request_id, actor, origin, additional_data, output, error, created_at, updated_at,
        owner, fence, lease_until, wake_at, waiting_for, cancel, deadline)
    SELECT rowid, run_id, workflow, version, input, status, idempotency_key,
        request_id, actor, origin, additional_data, output, error, created_at, updated_at,
        owner, fence, lease_until, wake_at, waiting_for, cancel, deadline
    FROM runs;
    CREATE TABLE events_v8 (
        id    INTEGER PRIMARY KEY,
        at    INTEGER,
        event TEXT
    );
    INSERT OR IGNORE INTO events_v8 (id, at, event)
    SELECT (r.id << 32) | CASE WHEN e.ok THEN e.seq ELSE 4294967295 END, 0,
        CASE WHEN e.ok THEN e.event
            ELSE 'seq ' || quote(e.seq) || ' is not a sequence number: ' || e.event END
    FROM (SELECT *, typeof(seq) = 'integer' AND seq BETWEEN 0 AND 4294967294 AS ok
          FROM events) e
    JOIN runs_v8 r ON r.run_id = e.run_id;
    DROP TABLE events;
    DROP TABLE runs;
    ALTER TABLE runs_v8 RENAME TO runs;
    ALTER TABLE events_v8 RENAME TO events;
    CREATE UNIQUE INDEX runs_by_key ON runs (idempotency_key) WHERE idempotency_key IS NOT NULL;
    CREATE INDEX runs_waking ON runs (wake_at) WHERE status = 'waiting';
    CREATE INDEX runs_ended ON runs (updated_at)
        WHERE CASE status WHEN 'completed' THEN 1 WHEN 'compensated' THEN 1 WHEN 'compensation_failed' THEN 1 WHEN 'cancelled' THEN 1 ELSE 0 END;
    CREATE INDEX runs_by_created ON runs
        (IFNULL(CAST(created_at AS INTEGER), 0), IFNULL(CAST(run_id AS TEXT), ''));
    CREATE INDEX runs_by_status_created ON runs
        (status, IFNULL(CAST(created_at AS INTEGER), 0), IFNULL(CAST(run_id AS TEXT), ''));
    CREATE INDEX runs_by_workflow_created ON runs
        (workflow, IFNULL(CAST(created_at AS INTEGER), 0), IFNULL(CAST(run_id AS TEXT), ''));",
];

/// The largest run key (`runs.id`) a store gives: a run's events are keyed `id << 32 | seq`.
pub(super) const MAX_RUN_KEY: i64 = 0x7fff_ffff;

/// The condition of the ended runs' index (migration 7): the prune query says it word for
/// word, so that SQLite uses the index.
pub(super) fn ended() -> String {
    let whens: String = crate::store::StoredStatus::ALL
        .into_iter()
        .filter(|status| status.is_finished())
        .map(|status| format!(" WHEN '{}' THEN 1", status.as_str()))
        .collect();
    format!("CASE status{whens} ELSE 0 END")
}

/// The tables of a hookflow store (its first version's: later ones are added by migrations).
const TABLES: [&str; 2] = ["runs", "events"];

/// Brings the database up to date. The version is read and the migrations applied in one
/// transaction that takes the write lock first (`BEGIN IMMEDIATE`): a process that opens the
/// file at the same moment waits (up to the busy timeout), then finds it migrated.
///
/// # Errors
/// [`StoreError::NotAStore`] for another application's database (it is left as it was),
/// [`StoreError::IncompatibleSchema`] for a newer hookflow's.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(unavailable("lock the database to migrate it"))?;
    let version = user_version(&tx)?;
    let objects = objects(&tx)?;
    if version == 0 && !objects.is_empty() {
        return Err(foreign(&objects));
    }
    if version > 0 {
        has_tables(version, &objects)?;
    }
    for (next, migration) in row::pending_migrations(MIGRATIONS, version)? {
        if next == 8 {
            keys_fit(&tx)?;
        }
        tx.execute_batch(&format!("{migration}; PRAGMA user_version = {next};"))
            .map_err(unavailable("migrate the schema"))?;
    }
    tx.commit().map_err(unavailable("migrate the schema"))
}

/// Checks, without writing, that the database is a hookflow store of this build's schema
/// version, with the columns a run is read from.
///
/// # Errors
/// [`StoreError::NotAStore`] for an empty file or another application's database,
/// [`StoreError::SchemaOutdated`] or [`StoreError::IncompatibleSchema`] for an older or a
/// newer hookflow's.
pub(super) fn check(conn: &Connection) -> Result<(), StoreError> {
    // One read transaction: the version and the tables of one moment.
    let tx = conn
        .unchecked_transaction()
        .map_err(unavailable("read the schema"))?;
    let version = user_version(&tx)?;
    let objects = objects(&tx)?;
    if version == 0 {
        return Err(if objects.is_empty() {
            StoreError::NotAStore {
                reason: "the database is empty: no hookflow engine has written to it".into(),
            }
        } else {
            foreign(&objects)
        });
    }
    has_tables(version, &objects)?;
    row::current_schema(MIGRATIONS, version)?;
    let mut columns = tx
        .prepare("SELECT name FROM pragma_table_info('runs')")
        .map_err(unavailable("read the schema"))?;
    let columns = columns
        .query_map([], |row| row.get::<_, String>(0))
        .map_err(unavailable("read the schema"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable("read the schema"))?;
    if let Some(missing) = row::record_columns().find(|c| !columns.iter().any(|have| have == c)) {
        return Err(StoreError::NotAStore {
            reason: format!(
                "its table `runs` has no column `{missing}`: it is not the one hookflow writes"
            ),
        });
    }
    Ok(())
}

/// Before migration 8: every run's rowid fits the events' key (`id << 32 | seq`). SQLite
/// gives rowids counting up from 1, so only a row inserted by hand with a larger one fails.
fn keys_fit(conn: &Connection) -> Result<(), StoreError> {
    let largest: Option<i64> = conn
        .query_row("SELECT max(rowid) FROM runs", [], |row| row.get(0))
        .map_err(unavailable("migrate the schema"))?;
    match largest {
        Some(key) if key > MAX_RUN_KEY => Err(StoreError::Refused {
            context: "migrate the schema to version 8".into(),
            message: format!(
                "a run's rowid is {key}, above {MAX_RUN_KEY}: version 8 keys a run's events by it"
            ),
        }),
        _ => Ok(()),
    }
}

fn user_version(conn: &Connection) -> Result<i64, StoreError> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(unavailable("read the schema version"))
}

/// The database's tables, views, indexes and triggers (SQLite's own excepted), by name.
fn objects(conn: &Connection) -> Result<Vec<(String, String)>, StoreError> {
    let mut stmt = conn
        .prepare(
            "SELECT type, name FROM sqlite_schema WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
             ORDER BY type <> 'table', name",
        )
        .map_err(unavailable("read the schema"))?;
    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .map_err(unavailable("read the schema"))?
        .collect::<Result<_, _>>()
        .map_err(unavailable("read the schema"))
}

/// Another application's database: what it holds, by name (the first few).
fn foreign(objects: &[(String, String)]) -> StoreError {
    const SHOWN: usize = 5;
    let mut names: Vec<String> = objects
        .iter()
        .take(SHOWN)
        .map(|(kind, name)| format!("{kind} `{name}`"))
        .collect();
    if objects.len() > SHOWN {
        names.push(format!("{} more", objects.len() - SHOWN));
    }
    StoreError::NotAStore {
        reason: format!(
            "it holds another application's schema ({}) and no hookflow schema version",
            names.join(", ")
        ),
    }
}

/// A database with a schema version must have hookflow's tables: another application may
/// use `user_version` too.
fn has_tables(version: i64, objects: &[(String, String)]) -> Result<(), StoreError> {
    let missing: Vec<&str> = TABLES
        .into_iter()
        .filter(|table| {
            !objects
                .iter()
                .any(|(kind, name)| kind == "table" && name == table)
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(StoreError::NotAStore {
        reason: format!(
            "its schema version (user_version) is {version}, but it has no table {}",
            missing
                .iter()
                .map(|t| format!("`{t}`"))
                .collect::<Vec<_>>()
                .join(" or ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;
    use crate::store::row;

    #[test]
    fn the_ended_runs_index_has_the_prune_querys_condition() {
        let condition = format!("WHERE status IN ({})", row::finished_statuses());
        assert!(
            MIGRATIONS[3].contains(&condition),
            "migration 4 must say `{condition}` for SQLite to use it"
        );
    }

    #[test]
    fn the_ended_runs_index_of_migration_7_has_the_prune_querys_condition() {
        let condition = format!("WHERE {}", super::ended());
        assert!(
            MIGRATIONS[6].contains(&condition),
            "migration 7 must say `{condition}` for SQLite to use it"
        );
    }

    #[test]
    fn the_ended_runs_index_of_migration_8_has_the_prune_querys_condition() {
        let condition = format!("WHERE {}", super::ended());
        assert!(
            MIGRATIONS[7].contains(&condition),
            "migration 8 must say `{condition}` for SQLite to use it"
        );
    }
}
