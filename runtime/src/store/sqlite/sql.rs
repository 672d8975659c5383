//! The SQL of the writes in `queries`, and the slots of those kept prepared in [`Db`].

#[cfg(doc)]
use super::fixed::Db;
use super::fixed::KEPT;

/// The run holding an idempotency key (`create`), on the key's partial index.
pub(super) const KEY_LOOKUP: &str = "SELECT run_id FROM runs WHERE idempotency_key = ?1";

/// The runs free to claim, oldest first (`claim_next`). A lease whose expiry cannot be read
/// counts as lapsed: the run is not stuck forever.
pub(super) const FREE_RUNS: &str = "SELECT rowid, run_id, workflow, version, fence FROM runs
     WHERE (status = 'running' OR (status = 'waiting' AND wake_at <= ?1))
        AND (owner IS NULL OR typeof(lease_until) <> 'integer' OR lease_until <= ?1)
     ORDER BY created_at, run_id";

/// A pruned run's journal, by its key (`prune`).
pub(super) const DELETE_EVENTS: &str =
    "DELETE FROM events WHERE id BETWEEN ?1 << 32 AND (?1 << 32) | 4294967295";

/// A new run (`create`).
pub(super) const INSERT_RUN: &str = "INSERT INTO runs (run_id, workflow, version, input, status,
        idempotency_key, request_id, actor, origin, additional_data, output, error, created_at,
        updated_at, owner, fence, lease_until, deadline)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)
     ON CONFLICT (run_id) DO NOTHING";

/// The check of a commit with neither events nor a new status: the run's fence (the
/// generation of its lease) is the writer's.
pub(super) const FENCE: &str = "SELECT 1 FROM runs WHERE run_id = ?1 AND fence = ?2";

/// The update of [`END_RUN`] and [`END_RUN_BY_KEY`], before their `WHERE`.
macro_rules! end_run {
    () => {
        "UPDATE runs SET status = ?3, output = ?4, error = ?5, updated_at = ?6,
            owner = CASE WHEN ?7 THEN owner END,
            lease_until = CASE WHEN ?7 THEN lease_until END"
    };
}

/// A commit with the run's new status (its end, a park), under its fence.
pub(super) const END_RUN: &str = concat!(end_run!(), " WHERE run_id = ?1 AND fence = ?2");

/// [`END_RUN`], the run found by its key (`?8`), its id still checked.
pub(super) const END_RUN_BY_KEY: &str =
    concat!(end_run!(), " WHERE id = ?8 AND run_id = ?1 AND fence = ?2");

/// The most events one statement of [`FENCED_EVENTS`] inserts.
pub(super) const EVENTS_PER_INSERT: usize = 16;

/// The slots of the statements kept prepared in [`Db`] (`Db::execute`): a run's insert, its
/// end, and its events' inserts (of 1 to [`EVENTS_PER_INSERT`] events), each by the run's id
/// and by its key.
pub(super) const INSERT_RUN_SLOT: usize = 0;
pub(super) const END_RUN_SLOT: usize = 1;
pub(super) const EVENTS_SLOT: usize = 2;
pub(super) const END_RUN_BY_KEY_SLOT: usize = EVENTS_SLOT + EVENTS_PER_INSERT;
pub(super) const EVENTS_BY_KEY_SLOT: usize = END_RUN_BY_KEY_SLOT + 1;
const _: () = assert!(EVENTS_BY_KEY_SLOT + EVENTS_PER_INSERT == KEPT);

/// A commit's events, `n` of them in one statement (the `n - 1`th), under the run's fence:
/// `?1` the run id, `?2` the fence, `?3` when they are written, then each event's sequence
/// number and JSON. Each is keyed by the run's key and its sequence number. It inserts
/// nothing when the fence is not the run's: a step's commit is this one statement.
pub(super) static FENCED_EVENTS: std::sync::LazyLock<Vec<String>> =
    std::sync::LazyLock::new(|| fenced_events(false));

/// [`FENCED_EVENTS`], the run found by its key (the last parameter, after the events) rather
/// than by its id (which it still checks: a key the connection noted may be another run's
/// now): one index lookup fewer.
pub(super) static FENCED_EVENTS_BY_KEY: std::sync::LazyLock<Vec<String>> =
    std::sync::LazyLock::new(|| fenced_events(true));

fn fenced_events(by_key: bool) -> Vec<String> {
    (1..=EVENTS_PER_INSERT)
        .map(|n| {
            let rows: Vec<String> = (0..n)
                .map(|i| format!("(?{}, ?{})", 4 + 2 * i, 5 + 2 * i))
                .collect();
            let key = if by_key {
                format!("runs.id = ?{} AND ", 4 + 2 * n)
            } else {
                String::new()
            };
            format!(
                "INSERT OR REPLACE INTO events (id, at, event)
                 SELECT (runs.id << 32) | v.column1, ?3, v.column2
                 FROM runs, (VALUES {}) AS v
                 WHERE {key}runs.run_id = ?1 AND runs.fence = ?2",
                rows.join(", ")
            )
        })
        .collect()
}

/// One journal event, keyed `run key << 32 | seq`, with when it was written.
pub(super) const INSERT_EVENT: &str =
    "INSERT OR REPLACE INTO events (id, at, event) VALUES (?1, ?2, ?3)";

/// The key of event `seq` of the run whose key is `key`.
pub(super) fn event_key(key: i64, seq: u32) -> i64 {
    (key << 32) | i64::from(seq)
}

/// The ended runs to prune, oldest first, on the ended runs' index (its condition word for
/// word).
pub(super) fn prune_select() -> String {
    format!(
        "SELECT id FROM runs
         WHERE {} AND updated_at < ?1
         ORDER BY updated_at, run_id
         LIMIT ?2",
        super::schema::ended()
    )
}
