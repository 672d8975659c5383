//! The SQL of each write: creating, committing to, claiming, renewing, releasing and pruning
//! runs, each on a connection inside the caller's transaction (reading them back is in `read`).

use rusqlite::{Connection, OptionalExtension, params};
use smallvec::SmallVec;

use super::encoded::{Encoded, RunIdText};
use super::fixed::{Db, Param};
use super::read::{claim_key, load, load_readable, load_record, park};
use super::schema::MAX_RUN_KEY;
use super::sql::{
    DELETE_EVENTS, END_RUN, END_RUN_BY_KEY, END_RUN_BY_KEY_SLOT, END_RUN_SLOT, EVENTS_BY_KEY_SLOT,
    EVENTS_PER_INSERT, EVENTS_SLOT, FENCE, FENCED_EVENTS, FENCED_EVENTS_BY_KEY, FREE_RUNS,
    INSERT_EVENT, INSERT_RUN, INSERT_RUN_SLOT, KEY_LOOKUP, event_key, prune_select,
};
use super::{refusable, unavailable};
use crate::journal::Event;
use crate::store::row::{self, micros, origin_str, parse_run_id};
use crate::store::{
    Claim, Created, Found, Lease, RunRecord, RunUpdate, StoreError, StoredRun, StoredStatus,
    Unreadable,
};
use crate::types::{RunId, now_micros};

/// A new run's JSON columns, encoded: a create that waits for the writer thread is encoded on
/// its caller's thread (the writer, which every grouped write passes through, only writes).
pub(super) struct RunJson {
    input: String,
    actor: Option<String>,
    additional_data: Option<String>,
    output: Option<String>,
}

/// `value`'s JSON, written into a byte buffer (`Value`'s `Display`, which `to_string` uses,
/// writes through a formatter: about twice the instructions).
fn json_text(value: &serde_json::Value) -> String {
    // A `Value` always serializes (its map keys are strings).
    serde_json::to_string(value).unwrap_or_default()
}

impl RunJson {
    pub(super) fn of(run: &RunRecord) -> Self {
        let json = |v: &Option<serde_json::Value>| v.as_ref().map(json_text);
        RunJson {
            input: json_text(&run.input),
            actor: run
                .actor
                .as_ref()
                .map(|a| serde_json::to_string(a).unwrap_or_default()),
            additional_data: json(&run.additional_data),
            output: json(&run.output),
        }
    }
}

pub(super) fn create(
    conn: &Db,
    run: &RunRecord,
    lease: Option<&Lease>,
) -> Result<Created, StoreError> {
    create_encoded(conn, run, &RunJson::of(run), lease)
}

/// [`create`], with the run's JSON columns [`RunJson::of`] it.
pub(super) fn create_encoded(
    conn: &Db,
    run: &RunRecord,
    encoded: &RunJson,
    lease: Option<&Lease>,
) -> Result<Created, StoreError> {
    if let Some(key) = &run.idempotency_key {
        let existing: Option<String> = conn
            .prepare_cached(KEY_LOOKUP)
            .and_then(|mut lookup| lookup.query_row(params![key], |row| row.get(0)).optional())
            .map_err(unavailable("look up an idempotency key"))?;
        if let Some(run_id) = existing {
            let existing = load_record(conn, parse_run_id(&run_id)?)?;
            if existing.same_request(run) {
                return Ok(Created::Existing(Box::new(existing)));
            }
            return Ok(Created::KeyConflict {
                run_id: existing.run_id,
            });
        }
    }
    let until = lease.map(|l| micros(now_micros().saturating_add(l.micros())));
    // The key is free (this transaction holds the write lock): a conflict can only be the
    // run id's, and it leaves the existing run as it was.
    let id = RunIdText::of(run.run_id);
    let inserted = conn
        .execute(
            INSERT_RUN_SLOT,
            INSERT_RUN,
            &[
                Param::Text(id.as_str()),
                Param::Text(&run.workflow),
                Param::Int(i64::from(run.version)),
                Param::Text(&encoded.input),
                Param::Text(run.status.as_str()),
                Param::text(run.idempotency_key.as_deref()),
                Param::text(run.request_id.as_deref()),
                Param::text(encoded.actor.as_deref()),
                Param::Text(origin_str(run.origin)),
                Param::text(encoded.additional_data.as_deref()),
                Param::text(encoded.output.as_deref()),
                Param::text(run.error.as_deref()),
                Param::Int(micros(run.created_at_micros)),
                Param::Int(micros(run.updated_at_micros)),
                Param::text(lease.map(|l| l.owner.as_str())),
                Param::Int(i64::from(lease.is_some())),
                Param::int(until),
                Param::int(run.deadline_micros.map(micros)),
            ],
        )
        .map_err(refusable("record a new run"))?;
    if inserted == 0 {
        return Ok(Created::RunIdTaken);
    }
    // Its events are keyed `key << 32 | seq`: a larger key cannot be.
    let key = conn.last_insert_rowid();
    conn.set_run_key(run.run_id, key);
    if key > MAX_RUN_KEY {
        return Err(StoreError::Refused {
            context: "record a new run".into(),
            message: format!(
                "the store has given all its run keys: the next is {key}, above {MAX_RUN_KEY} \
                 (prune ended runs or start a new store)"
            ),
        });
    }
    Ok(Created::New)
}

pub(super) fn commit(
    conn: &Db,
    run_id: RunId,
    fence: u64,
    events: &[Event],
    update: Option<&RunUpdate>,
) -> Result<(), StoreError> {
    let update = update.map(EncodedUpdate::of);
    commit_encoded(
        conn,
        run_id,
        fence,
        &Encoded::of(run_id, events)?,
        update.as_ref(),
    )
}

/// A commit's new status, with its output encoded: for a write the writer thread makes, on
/// the caller's thread.
pub(super) struct EncodedUpdate {
    status: StoredStatus,
    output: Option<String>,
    error: Option<String>,
}

impl EncodedUpdate {
    fn of(update: &RunUpdate) -> Self {
        EncodedUpdate {
            status: update.status,
            output: update.output.as_ref().map(json_text),
            error: update.error.clone(),
        }
    }
}

/// [`commit`], of events [`Encoded`] already. The fence is checked by the statements that
/// write: a commit that does not end or park the run is its events' insert (a statement per
/// [`EVENTS_PER_INSERT`] events); their `at` is the run's last change, as read.
pub(super) fn commit_encoded(
    conn: &Db,
    run_id: RunId,
    fence: u64,
    events: &Encoded,
    update: Option<&EncodedUpdate>,
) -> Result<(), StoreError> {
    let now = micros(now_micros());
    let fence_sql = micros(fence);
    let id = RunIdText::of(run_id);
    let id = id.as_str();
    // The fence first: a refused write records nothing.
    if let Some(update) = update {
        let keep_lease = update.status == StoredStatus::Running;
        let mut values = [
            Param::Text(id),
            Param::Int(fence_sql),
            Param::Text(update.status.as_str()),
            Param::text(update.output.as_deref()),
            Param::text(update.error.as_deref()),
            Param::Int(now),
            Param::Int(i64::from(keep_lease)),
            // The place of the run's key (`execute_on_run`).
            Param::Null,
        ];
        let changed = conn
            .execute_on_run(
                run_id,
                (END_RUN_BY_KEY_SLOT, END_RUN_BY_KEY),
                (END_RUN_SLOT, END_RUN),
                &mut values,
            )
            .map_err(refusable("update a run"))?;
        if changed == 0 {
            return Err(refused(conn, run_id, fence));
        }
    }
    if events.is_empty() {
        let holds = update.is_some()
            || conn
                .prepare_cached(FENCE)
                .and_then(|mut check| check.exists(params![id, fence_sql]))
                .map_err(unavailable("update a run"))?;
        if !holds {
            return Err(refused(conn, run_id, fence));
        }
        return Ok(());
    }
    for (i, from) in (0..events.len()).step_by(EVENTS_PER_INSERT).enumerate() {
        let count = EVENTS_PER_INSERT.min(events.len() - from);
        let mut values: SmallVec<[Param<'_>; 12]> = SmallVec::new();
        values.extend([Param::Text(id), Param::Int(fence_sql), Param::Int(now)]);
        for (seq, body) in events.events(from, count) {
            values.extend([Param::Int(i64::from(seq)), Param::Text(body)]);
        }
        // The place of the run's key (`execute_on_run`).
        values.push(Param::Null);
        let inserted = conn
            .execute_on_run(
                run_id,
                (
                    EVENTS_BY_KEY_SLOT + count - 1,
                    &FENCED_EVENTS_BY_KEY[count - 1],
                ),
                (EVENTS_SLOT + count - 1, &FENCED_EVENTS[count - 1]),
                &mut values,
            )
            .map_err(refusable("append an event"))?;
        // The fence holds for all or none: the first statement tells.
        if i == 0 && inserted == 0 {
            return Err(refused(conn, run_id, fence));
        }
    }
    Ok(())
}

/// A commit for the writer thread: its events and output [`Encoded`] here, on the caller's thread (the
/// writer thread only writes), then [`commit_encoded`] (an event that cannot be encoded fails
/// it, each time it is applied).
pub(super) fn commit_later(
    run_id: RunId,
    fence: u64,
    events: &[Event],
    update: Option<&RunUpdate>,
) -> impl Fn(&Db) -> Result<(), StoreError> + Send + 'static {
    let update = update.map(EncodedUpdate::of);
    let events = Encoded::of(run_id, events).map_err(|err| match err {
        StoreError::Corrupt { message, .. } => message,
        other => other.to_string(),
    });
    move |conn: &Db| {
        let events = events.as_ref().map_err(|message| StoreError::Corrupt {
            run_id: run_id.to_string(),
            message: message.clone(),
        })?;
        commit_encoded(conn, run_id, fence, events, update.as_ref())
    }
}

/// Appends `events` to run `run_id`'s journal (the caller checked the fence).
pub(super) fn commit_events(
    conn: &Connection,
    run_id: RunId,
    events: &[Event],
) -> Result<(), StoreError> {
    let key = conn
        .prepare_cached("SELECT id FROM runs WHERE run_id = ?1")
        .and_then(|mut find| {
            find.query_row(params![run_id.to_string()], |row| row.get::<_, i64>(0))
                .optional()
        })
        .map_err(unavailable("append an event"))?
        .ok_or(StoreError::NotFound(run_id))?;
    insert_events(
        conn,
        key,
        micros(now_micros()),
        &Encoded::of(run_id, events)?,
    )
}

/// Appends encoded `events` to the journal of the run whose key is `key`, written `at`.
fn insert_events(conn: &Connection, key: i64, at: i64, events: &Encoded) -> Result<(), StoreError> {
    let mut insert = conn
        .prepare_cached(INSERT_EVENT)
        .map_err(unavailable("prepare an event insert"))?;
    for (seq, body) in events.events(0, events.len()) {
        insert
            .execute(params![event_key(key, seq), at, body])
            .map_err(refusable("append an event"))?;
    }
    Ok(())
}

/// Why a fenced write to `run_id` changed nothing: the run is gone, or its lease moved on.
pub(super) fn refused(conn: &Connection, run_id: RunId, fence: u64) -> StoreError {
    let current: Option<i64> = conn
        .query_row(
            "SELECT fence FROM runs WHERE run_id = ?1",
            params![run_id.to_string()],
            |row| row.get(0),
        )
        .optional()
        .unwrap_or(None);
    match current {
        None => StoreError::NotFound(run_id),
        Some(current) => StoreError::Fenced {
            run_id,
            fence,
            current: u64::try_from(current).unwrap_or(0),
        },
    }
}

pub(super) fn claim(conn: &Connection, run_id: RunId, lease: &Lease) -> Result<Claim, StoreError> {
    let record = match load_record(conn, run_id) {
        Ok(record) => record,
        Err(err @ StoreError::Corrupt { .. }) => {
            let unreadable = row::unreadable_record(&run_id.to_string(), err)?;
            return quarantine(conn, run_id, lease, unreadable);
        }
        Err(err) => return Err(err),
    };
    let now = now_micros();
    if record.status.is_finished() {
        let (record, events) = load(conn, run_id)?;
        return Ok(Claim::Finished(Box::new(record), events));
    }
    if let (Some(owner), Some(until)) = (&record.owner, record.lease_until_micros) {
        if *owner != lease.owner && until > now {
            return Ok(Claim::Held {
                owner: owner.clone(),
                until_micros: until,
            });
        }
    }
    take(conn, run_id, record.fence, lease, now)?;
    match load_readable(conn, run_id)? {
        Ok((record, events)) => Ok(Claim::Acquired(Box::new(record), events)),
        Err(unreadable) => quarantine(conn, run_id, lease, unreadable),
    }
}

/// Quarantines run `run_id`, which cannot be read, for a claim by `lease.owner`: unless it
/// is finished or another owner's live lease holds it ([`StoreError::Corrupt`] then), it is
/// parked, its lease released and its generation incremented. A lease whose expiry cannot be
/// read counts as lapsed.
fn quarantine(
    conn: &Connection,
    run_id: RunId,
    lease: &Lease,
    unreadable: Unreadable,
) -> Result<Claim, StoreError> {
    let parked = conn
        .execute(
            "UPDATE runs SET status = 'parked', error = ?2, owner = NULL, lease_until = NULL,
                fence = fence + 1, updated_at = ?3
             WHERE run_id = ?1
                AND status NOT IN ('completed', 'compensated', 'compensation_failed', 'cancelled')
                AND (owner IS NULL OR owner = ?4 OR typeof(lease_until) <> 'integer'
                    OR lease_until <= ?3)",
            params![
                run_id.to_string(),
                unreadable.error(),
                micros(now_micros()),
                lease.owner
            ],
        )
        .map_err(unavailable("quarantine a run"))?;
    if parked == 0 {
        return Err(row::corrupt(unreadable));
    }
    tracing::warn!(run_id = %unreadable.run_id, reason = %unreadable.reason, "hookflow: run quarantined");
    Ok(Claim::Quarantined(unreadable))
}

/// Gives run `run_id`'s lease, at generation `fence`, to `lease.owner`: generation `fence + 1`.
fn take(
    conn: &Connection,
    run_id: RunId,
    fence: u64,
    lease: &Lease,
    now: u64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE runs SET owner = ?3, fence = fence + 1, lease_until = ?4,
            status = CASE WHEN status = 'waiting' THEN 'running' ELSE status END,
            wake_at = NULL, waiting_for = NULL
         WHERE run_id = ?1 AND fence = ?2",
    )
    .and_then(|mut take| {
        take.execute(params![
            run_id.to_string(),
            micros(fence),
            lease.owner,
            micros(now.saturating_add(lease.micros()))
        ])
    })
    .map_err(unavailable("claim a run"))?;
    Ok(())
}

pub(super) fn claim_next(
    conn: &Connection,
    lease: &Lease,
    workflows: &[(String, u32)],
    skip: &[RunId],
    limit: usize,
) -> Result<Found<StoredRun>, StoreError> {
    let now = now_micros();
    let mut free = conn
        .prepare_cached(FREE_RUNS)
        .map_err(unavailable("find runs to claim"))?;
    let rows = free
        .query_map(params![micros(now)], claim_key)
        .map_err(unavailable("find runs to claim"))?;
    let mut chosen = Vec::new();
    let mut unreadable = Vec::new();
    for row in rows {
        if chosen.len() >= limit {
            break;
        }
        match row.map_err(unavailable("find runs to claim"))? {
            (rowid, Err(this)) => unreadable.push((rowid, this)),
            (rowid, Ok((run_id, workflow, version, fence))) => {
                if workflows
                    .iter()
                    .any(|(w, v)| *w == workflow && i64::from(*v) == version)
                    && !skip.contains(&run_id)
                {
                    chosen.push((rowid, run_id, fence));
                }
            }
        }
    }
    drop(free);
    let mut found = Found::default();
    for (rowid, this) in unreadable {
        park(conn, rowid, &this)?;
        found.unreadable.push(this);
    }
    for (rowid, run_id, fence) in chosen {
        take(conn, run_id, fence, lease, now)?;
        match load_readable(conn, run_id)? {
            Ok(run) => found.runs.push(run),
            Err(this) => {
                park(conn, rowid, &this)?;
                found.unreadable.push(this);
            }
        }
    }
    Ok(found)
}

pub(super) fn renew(conn: &Connection, lease: &Lease, runs: &[RunId]) -> Result<usize, StoreError> {
    let until = micros(now_micros().saturating_add(lease.micros()));
    let mut renew = conn
        .prepare_cached("UPDATE runs SET lease_until = ?3 WHERE run_id = ?1 AND owner = ?2")
        .map_err(unavailable("renew a lease"))?;
    let mut renewed = 0;
    for run_id in runs {
        renewed += renew
            .execute(params![run_id.to_string(), lease.owner, until])
            .map_err(unavailable("renew a lease"))?;
    }
    Ok(renewed)
}

pub(super) fn release(conn: &Connection, run_id: RunId, fence: u64) -> Result<(), StoreError> {
    let changed = conn
        .execute(
            "UPDATE runs SET owner = NULL, lease_until = NULL WHERE run_id = ?1 AND fence = ?2",
            params![run_id.to_string(), micros(fence)],
        )
        .map_err(unavailable("release a run"))?;
    if changed == 0 {
        return Err(refused(conn, run_id, fence));
    }
    Ok(())
}

/// Deletes up to `limit` ended runs that last changed before `ended_before`, oldest first,
/// with their journals; returns how many. Running and parked runs are never selected.
pub(super) fn prune(
    conn: &Connection,
    ended_before: u64,
    limit: usize,
) -> Result<usize, StoreError> {
    let context = "prune ended runs";
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut select = conn
        .prepare_cached(&prune_select())
        .map_err(unavailable(context))?;
    let ids = select
        .query_map(params![micros(ended_before), limit], |row| {
            row.get::<_, i64>(0)
        })
        .map_err(unavailable(context))?
        .collect::<Result<Vec<i64>, _>>()
        .map_err(unavailable(context))?;
    let mut events = conn
        .prepare_cached(DELETE_EVENTS)
        .map_err(unavailable(context))?;
    let mut runs = conn
        .prepare_cached("DELETE FROM runs WHERE id = ?1")
        .map_err(unavailable(context))?;
    let mut inbox = conn
        .prepare_cached("DELETE FROM inbox WHERE run_id = (SELECT run_id FROM runs WHERE id = ?1)")
        .map_err(unavailable(context))?;
    for id in &ids {
        events.execute([id]).map_err(unavailable(context))?;
        inbox.execute([id]).map_err(unavailable(context))?;
        runs.execute([id]).map_err(unavailable(context))?;
    }
    Ok(ids.len())
}
