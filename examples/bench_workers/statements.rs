//! The SQL bench_workers sends itself (the floor's loop, resetting the tables between
//! phases, and the progress polls), apart from the store's.

/// The floor's table, made again for each measurement.
pub const FLOOR_TABLE: &str =
    "DROP TABLE IF EXISTS bench_floor; CREATE TABLE bench_floor (id BIGINT, body TEXT)";

/// One row of the floor's loop: a bare insert, committed alone.
pub const FLOOR_INSERT: &str = "INSERT INTO bench_floor (id, body) VALUES ($1, $2)";

/// Empties the store's tables between measurements.
pub const RESET: &str = "TRUNCATE hookflow_runs, hookflow_events";

/// The runs completed, and those ended otherwise (or parked, waiting...).
pub const FINISHED: &str = "SELECT count(*) FILTER (WHERE status = 'completed'),
        count(*) FILTER (WHERE status <> 'running' AND status <> 'completed')
    FROM hookflow_runs";

/// Whether a run is still running: the workers phase's progress poll, every 10 ms. It stops
/// at the first running run the status index gives (a count would read them all at each
/// poll, CPU the server then does not give the workers).
pub const ANY_RUNNING: &str =
    "SELECT EXISTS (SELECT 1 FROM hookflow_runs WHERE status = 'running')";

/// The database's counters: transactions committed, WAL writes, WAL flushes, the WAL's
/// position in bytes.
pub const DB_COUNTERS: &str = "SELECT (SELECT xact_commit FROM pg_stat_database
            WHERE datname = current_database())::float8,
        wal_write::float8, wal_sync::float8,
        (pg_current_wal_lsn() - '0/0'::pg_lsn)::float8
    FROM pg_stat_wal";

/// Transactions committed in the database so far, and the WAL's position in bytes.
pub const XACTS_AND_WAL: &str = "SELECT xact_commit,
        (pg_current_wal_lsn() - '0/0'::pg_lsn)::float8
    FROM pg_stat_database WHERE datname = current_database()";

/// How many runs the worker `$1` holds.
pub const HELD_BY: &str =
    "SELECT count(*) FROM hookflow_runs WHERE owner = $1 AND status = 'running'";

/// The runs the worker `$1` holds.
pub const HELD_RUNS: &str =
    "SELECT run_id FROM hookflow_runs WHERE owner = $1 AND status = 'running'";

/// Which of the runs `$1` another worker than `$2` holds now.
pub const TAKEN_FROM: &str = "SELECT run_id FROM hookflow_runs
    WHERE run_id = ANY($1) AND owner IS DISTINCT FROM $2";
