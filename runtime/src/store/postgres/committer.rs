//! The committers: the tasks that take the commits waiting and write them together, one
//! statement for the step commits of many runs.

use deadpool_postgres::Pool;
use tokio::sync::oneshot;

use super::queries::refused;
use super::{NOW, get, pg, pg_write, stopped};
use crate::journal::Event;
use crate::store::row::micros;
use crate::store::{RunUpdate, StoreError};
use crate::types::{RunId, now_micros};

/// How many tasks write groups of commits at once (each on its own connection). One is the
/// fastest measured (`bench_workers`, 4 worker processes x 16 runs in flight: 2,646 runs/s
/// with one, 2,334 with two, 1,881 with four): while it writes a group, the next gathers, and
/// fewer, larger statements leave the server's CPU to the work.
pub(super) const COMMITTERS: usize = 1;

/// The most commits written in one statement.
const MAX_GROUP: usize = 512;

/// The most bytes of data gathered into one statement: a larger commit is written alone.
const MAX_GROUP_BYTES: usize = 64 << 20;

/// The largest commit sent: PostgreSQL reads no message over 1 GB (and drops the connection
/// that sends one, which would look like an outage), so a larger commit is refused before it
/// is sent ([`StoreError::Refused`]).
pub(super) const MAX_COMMIT_BYTES: usize = (1 << 30) - (1 << 20);

/// A commit waiting for a committer.
pub(super) struct PendingCommit {
    pub(super) run_id: RunId,
    pub(super) fence: i64,
    pub(super) events: Vec<(i64, String)>,
    pub(super) update: Option<RunUpdate>,
    /// The update's output as JSON: serialized once, for [`bytes_of`] and the statement.
    pub(super) output: Option<String>,
    /// The size of its data ([`bytes_of`]).
    pub(super) bytes: usize,
    pub(super) reply: oneshot::Sender<Result<(), StoreError>>,
}

/// The bytes of a commit's data: its events and its update's output (as JSON) and error.
pub(super) fn bytes_of(
    events: &[(i64, String)],
    output: Option<&str>,
    update: Option<&RunUpdate>,
) -> usize {
    let update =
        output.map_or(0, str::len) + update.map_or(0, |u| u.error.as_ref().map_or(0, String::len));
    events.iter().map(|(_, body)| body.len()).sum::<usize>() + update
}

/// The rows of `events` for run `id`'s journal: `(seq, JSON)`.
pub(super) fn event_rows(id: &str, events: &[Event]) -> Result<Vec<(i64, String)>, StoreError> {
    events
        .iter()
        .map(|event| {
            let body = serde_json::to_string(event).map_err(|e| StoreError::Corrupt {
                run_id: id.to_owned(),
                message: format!("event {} cannot be serialized: {e}", event.seq),
            })?;
            Ok((i64::from(event.seq), body))
        })
        .collect()
}

/// Takes the commits waiting (all of them, up to [`MAX_GROUP`]) and writes them in one
/// statement: one round trip and one WAL flush for the step commits of many runs. While it
/// writes, the next commits gather for the next committer.
pub(super) async fn committer(
    pool: Pool,
    pending: std::sync::Arc<
        tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<PendingCommit>>,
    >,
) {
    // A commit taken that did not fit in the last group: the first of the next one.
    let mut carried: Option<PendingCommit> = None;
    loop {
        let group = {
            let mut pending = pending.lock().await;
            let first = match carried.take() {
                Some(first) => first,
                None => match pending.recv().await {
                    Some(first) => first,
                    None => return,
                },
            };
            let mut bytes = first.bytes;
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match pending.try_recv() {
                    Ok(next) if bytes + next.bytes > MAX_GROUP_BYTES => {
                        carried = Some(next);
                        break;
                    }
                    Ok(next) => {
                        bytes += next.bytes;
                        group.push(next);
                    }
                    Err(_) => break,
                }
            }
            group
        };
        let results = match get(&pool).await {
            Ok(client) => match write_group(&client, &group, false).await {
                // The server refused one commit's data, and the statement with it: each is
                // written alone, so that only that one is refused.
                Err(err) if err.is_refused() && group.len() > 1 => {
                    let mut results = Vec::with_capacity(group.len());
                    for commit in &group {
                        results.push(
                            match write_group(&client, std::slice::from_ref(commit), false).await {
                                Ok(mut result) => result.pop().unwrap_or_else(|| Err(stopped())),
                                Err(err) => Err(err),
                            },
                        );
                    }
                    Ok(results)
                }
                written => written,
            },
            Err(err) => Err(err),
        };
        match results {
            Ok(results) => {
                for (commit, result) in group.into_iter().zip(results) {
                    let _ = commit.reply.send(result);
                }
            }
            Err(err) => {
                for commit in group {
                    let _ = commit.reply.send(Err(match &err {
                        StoreError::Refused { context, message } => StoreError::Refused {
                            context: context.clone(),
                            message: message.clone(),
                        },
                        other => StoreError::Unavailable {
                            context: "commit".into(),
                            message: other.to_string(),
                        },
                    }));
                }
            }
        }
    }
}

/// The fenced update of each commit's run row, the CTE `u` (the ids of the rows updated), of
/// both statements of [`write_group`].
fn fenced_update() -> String {
    format!(
        "WITH c AS (
            SELECT * FROM UNNEST($1::TEXT[], $2::BIGINT[], $3::BOOL[], $4::TEXT[],
                $5::TEXT[], $6::TEXT[]) AS c (run_id, fence, has_update, status, output, error)
        ), u AS (
            UPDATE hookflow_runs r SET
                status = CASE WHEN c.has_update THEN c.status ELSE r.status END,
                output = CASE WHEN c.has_update THEN c.output ELSE r.output END,
                error = CASE WHEN c.has_update THEN c.error ELSE r.error END,
                owner = CASE WHEN c.has_update AND c.status <> 'running'
                    THEN NULL ELSE r.owner END,
                lease_until = CASE WHEN c.has_update AND c.status <> 'running'
                    THEN NULL ELSE {NOW} + r.lease_micros END,
                updated_at = $7
            FROM c WHERE r.run_id = c.run_id AND r.fence = c.fence
            RETURNING r.run_id
        )"
    )
}

/// The statement of [`write_group`] for commits that are not sent again: the events of each
/// run updated inserted plainly, no lookup of what its journal holds. A commit sent again
/// (events it wrote already) breaks the primary key, and the group is written by [`COMMIT`]
/// instead.
static APPEND: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "{}, appended AS (
            INSERT INTO hookflow_events (run_id, seq, event)
            SELECT ev.run_id, ev.seq, ev.event
            FROM UNNEST($8::TEXT[], $9::BIGINT[], $10::TEXT[]) AS ev (run_id, seq, event)
            WHERE ev.run_id IN (SELECT run_id FROM u)
        )
        SELECT run_id FROM u",
        fenced_update()
    )
});

/// The statement of [`write_group`] that takes commits sent again: each run's last event read
/// first, the events after it inserted, those at or before it replaced.
static COMMIT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "{}, last AS MATERIALIZED (
            SELECT u.run_id, (SELECT max(seq) FROM hookflow_events s
                WHERE s.run_id = u.run_id) AS seq
            FROM u
        ), ev AS (
            SELECT ev.run_id, ev.seq, ev.event, last.seq AS last
            FROM UNNEST($8::TEXT[], $9::BIGINT[], $10::TEXT[]) AS ev (run_id, seq, event)
            JOIN last ON last.run_id = ev.run_id
        ), appended AS (
            INSERT INTO hookflow_events (run_id, seq, event)
            SELECT run_id, seq, event FROM ev WHERE last IS NULL OR seq > last
        ), again AS (
            INSERT INTO hookflow_events (run_id, seq, event)
            SELECT run_id, seq, event FROM ev WHERE seq <= last
            ON CONFLICT (run_id, seq) DO UPDATE SET event = EXCLUDED.event
        )
        SELECT run_id FROM u",
        fenced_update()
    )
});

/// Writes `group` in one statement: each commit's run row is updated if its fence holds, and
/// its events are inserted only then (`in_transaction`: in a step's transaction, which
/// commits them). Returns each commit's result, in order.
///
/// Outside a step's transaction, the group is first written by [`APPEND`], its events
/// inserted plainly (no lookup of each run's last event: ~10% of the committer's CPU). If one
/// was written already (a commit sent again: a retried commit whose reply was lost), the
/// primary key refuses the statement, which wrote nothing, and the group is written by
/// [`COMMIT`]: the events after the last one the run has stored are inserted plainly, those at
/// or before it replace what the first sending wrote. Only these take `ON CONFLICT`, which
/// costs every row it inserts one more WAL record (its speculative insertion confirmed) than a
/// plain insert. In a step's transaction, which a refused statement would abort, [`COMMIT`]
/// only.
pub(super) async fn write_group(
    client: &deadpool_postgres::Client,
    group: &[PendingCommit],
    in_transaction: bool,
) -> Result<Vec<Result<(), StoreError>>, StoreError> {
    let now = micros(now_micros());
    let mut ids = Vec::with_capacity(group.len());
    let mut fences = Vec::with_capacity(group.len());
    let mut updates = Vec::with_capacity(group.len());
    let mut statuses = Vec::with_capacity(group.len());
    let mut outputs = Vec::with_capacity(group.len());
    let mut errors = Vec::with_capacity(group.len());
    let (mut event_ids, mut seqs, mut bodies) = (Vec::new(), Vec::new(), Vec::new());
    for commit in group {
        let id = commit.run_id.to_string();
        for (seq, body) in &commit.events {
            event_ids.push(id.clone());
            seqs.push(*seq);
            bodies.push(body.as_str());
        }
        ids.push(id);
        fences.push(commit.fence);
        updates.push(commit.update.is_some());
        statuses.push(commit.update.as_ref().map(|u| u.status.as_str()));
        outputs.push(commit.output.as_deref());
        errors.push(commit.update.as_ref().and_then(|u| u.error.as_deref()));
    }
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 10] = [
        &ids, &fences, &updates, &statuses, &outputs, &errors, &now, &event_ids, &seqs, &bodies,
    ];
    let appended = if in_transaction {
        None
    } else {
        let append = client
            .prepare_cached(&APPEND)
            .await
            .map_err(pg("prepare a commit"))?;
        match client.query(&append, &params).await {
            Err(err) if err.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
                None
            }
            rows => Some(rows),
        }
    };
    let rows = match appended {
        Some(rows) => rows,
        None => {
            let statement = client
                .prepare_cached(&COMMIT)
                .await
                .map_err(pg("prepare a commit"))?;
            match client.query(&statement, &params).await {
                // A commit sent again while its first sending was still being written (it
                // read the run's last event before the first committed, then inserted the
                // same events plainly): written once more, it replaces them. Not inside a
                // step's transaction, which the failed statement aborted.
                Err(err)
                    if !in_transaction
                        && err.code()
                            == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) =>
                {
                    client.query(&statement, &params).await
                }
                rows => rows,
            }
        }
    }
    .map_err(pg_write("commit"))?;
    let written: std::collections::HashSet<&str> = rows
        .iter()
        .filter_map(|row| row.try_get::<_, &str>(0).ok())
        .collect();
    let mut results = Vec::with_capacity(group.len());
    for (commit, id) in group.iter().zip(&ids) {
        results.push(if written.contains(id.as_str()) {
            Ok(())
        } else {
            Err(refused(
                client,
                commit.run_id,
                u64::try_from(commit.fence).unwrap_or(0),
            )
            .await)
        });
    }
    Ok(results)
}
