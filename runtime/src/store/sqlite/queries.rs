//! The SQL of each operation: creating, committing to, claiming, renewing, releasing,
//! loading and listing runs, each on a connection inside the caller's transaction.

use rusqlite::{Connection, OptionalExtension, params};

use super::{refusable, unavailable};
use crate::journal::Event;
use crate::store::row::{self, RECORD_COLUMNS, RawRun, micros, origin_str, parse_run_id};
use crate::store::{
    Claim, Created, Lease, RunRecord, RunUpdate, StoreError, StoredRun, StoredStatus,
};
use crate::types::{RunId, now_micros};

pub(super) fn create(
    conn: &Connection,
    run: &RunRecord,
    lease: Option<&Lease>,
) -> Result<Created, StoreError> {
    if let Some(key) = &run.idempotency_key {
        let existing: Option<String> = conn
            .query_row(
                "SELECT run_id FROM runs WHERE idempotency_key = ?1",
                params![key],
                |row| row.get(0),
            )
            .optional()
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
    let json = |v: &Option<serde_json::Value>| v.as_ref().map(serde_json::Value::to_string);
    let actor = run
        .actor
        .as_ref()
        .map(|a| serde_json::to_string(a).unwrap_or_default());
    let until = lease.map(|l| micros(now_micros().saturating_add(l.micros())));
    // The key is free (this transaction holds the write lock): a conflict can only be the
    // run id's, and it leaves the existing run as it was.
    let inserted = conn
        .prepare_cached(
            "INSERT INTO runs (run_id, workflow, version, input, status, idempotency_key,
            request_id, actor, origin, additional_data, output, error, created_at, updated_at,
            owner, fence, lease_until)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
         ON CONFLICT (run_id) DO NOTHING",
        )
        .and_then(|mut insert| {
            insert.execute(params![
                run.run_id.to_string(),
                run.workflow,
                run.version,
                run.input.to_string(),
                run.status.as_str(),
                run.idempotency_key,
                run.request_id,
                actor,
                origin_str(run.origin),
                json(&run.additional_data),
                json(&run.output),
                run.error,
                micros(run.created_at_micros),
                micros(run.updated_at_micros),
                lease.map(|l| &l.owner),
                i64::from(lease.is_some()),
                until,
            ])
        })
        .map_err(refusable("record a new run"))?;
    if inserted == 0 {
        return Ok(Created::RunIdTaken);
    }
    Ok(Created::New)
}

pub(super) fn commit(
    conn: &Connection,
    run_id: RunId,
    fence: u64,
    events: &[Event],
    update: Option<&RunUpdate>,
) -> Result<(), StoreError> {
    let id = run_id.to_string();
    let now = micros(now_micros());
    let fence_sql = micros(fence);
    // The fence first: a refused write records nothing.
    let changed = match update {
        Some(update) => {
            let keep_lease = update.status == StoredStatus::Running;
            conn.prepare_cached(
                "UPDATE runs SET status = ?3, output = ?4, error = ?5, updated_at = ?6,
                    owner = CASE WHEN ?7 THEN owner END,
                    lease_until = CASE WHEN ?7 THEN lease_until END
                 WHERE run_id = ?1 AND fence = ?2",
            )
            .and_then(|mut update_run| {
                update_run.execute(params![
                    id,
                    fence_sql,
                    update.status.as_str(),
                    update.output.as_ref().map(serde_json::Value::to_string),
                    update.error,
                    now,
                    keep_lease,
                ])
            })
            .map_err(refusable("update a run"))?
        }
        None => conn
            .prepare_cached("UPDATE runs SET updated_at = ?3 WHERE run_id = ?1 AND fence = ?2")
            .and_then(|mut touch| touch.execute(params![id, fence_sql, now]))
            .map_err(unavailable("update a run"))?,
    };
    if changed == 0 {
        return Err(refused(conn, run_id, fence));
    }
    let mut insert = conn
        .prepare_cached("INSERT OR REPLACE INTO events (run_id, seq, event) VALUES (?1, ?2, ?3)")
        .map_err(unavailable("prepare an event insert"))?;
    for event in events {
        let body = serde_json::to_string(event).map_err(|e| StoreError::Corrupt {
            run_id: id.clone(),
            message: format!("event {} cannot be serialized: {e}", event.seq),
        })?;
        insert
            .execute(params![id, event.seq, body])
            .map_err(refusable("append an event"))?;
    }
    Ok(())
}

/// Why a fenced write to `run_id` changed nothing: the run is gone, or its lease moved on.
fn refused(conn: &Connection, run_id: RunId, fence: u64) -> StoreError {
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
    let record = load_record(conn, run_id)?;
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
    let (record, events) = load(conn, run_id)?;
    Ok(Claim::Acquired(Box::new(record), events))
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
        "UPDATE runs SET owner = ?3, fence = fence + 1, lease_until = ?4
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
) -> Result<Vec<StoredRun>, StoreError> {
    let now = now_micros();
    let mut free = conn
        .prepare_cached(
            "SELECT run_id, workflow, version, fence FROM runs
             WHERE status = 'running' AND (owner IS NULL OR lease_until IS NULL OR lease_until <= ?1)
             ORDER BY created_at, run_id",
        )
        .map_err(unavailable("find runs to claim"))?;
    let rows = free
        .query_map(params![micros(now)], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
            ))
        })
        .map_err(unavailable("find runs to claim"))?;
    let mut chosen = Vec::new();
    for row in rows {
        if chosen.len() >= limit {
            break;
        }
        let (run_id, workflow, version, fence) = row.map_err(unavailable("find runs to claim"))?;
        let run_id = parse_run_id(&run_id)?;
        if workflows
            .iter()
            .any(|(w, v)| *w == workflow && i64::from(*v) == version)
            && !skip.contains(&run_id)
        {
            chosen.push((run_id, u64::try_from(fence).unwrap_or(0)));
        }
    }
    drop(free);
    let mut claimed = Vec::with_capacity(chosen.len());
    for (run_id, fence) in chosen {
        take(conn, run_id, fence, lease, now)?;
        claimed.push(load(conn, run_id)?);
    }
    Ok(claimed)
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

pub(super) fn load(
    conn: &Connection,
    run_id: RunId,
) -> Result<(RunRecord, Vec<Event>), StoreError> {
    let record = load_record(conn, run_id)?;
    let id = run_id.to_string();
    let mut stmt = conn
        .prepare_cached("SELECT seq, event FROM events WHERE run_id = ?1 ORDER BY seq")
        .map_err(unavailable("read a journal"))?;
    let rows = stmt
        .query_map(params![id], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
        })
        .map_err(unavailable("read a journal"))?;
    let mut events = Vec::new();
    for row in rows {
        let (seq, body) = row.map_err(unavailable("read a journal"))?;
        events.push(row::event(&id, seq, &body)?);
    }
    Ok((record, events))
}

fn load_record(conn: &Connection, run_id: RunId) -> Result<RunRecord, StoreError> {
    let row = conn
        .query_row(
            &format!("SELECT {RECORD_COLUMNS} FROM runs WHERE run_id = ?1"),
            params![run_id.to_string()],
            raw_row,
        )
        .optional()
        .map_err(unavailable("read a run"))?;
    row.ok_or(StoreError::NotFound(run_id))?.into_record()
}

pub(super) fn list(
    conn: &Connection,
    status: Option<StoredStatus>,
    workflow: Option<&str>,
    limit: usize,
    oldest_first: bool,
) -> Result<Vec<RunRecord>, StoreError> {
    let order = if oldest_first { "ASC" } else { "DESC" };
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {RECORD_COLUMNS} FROM runs
             WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR workflow = ?2)
             ORDER BY created_at {order}, run_id {order} LIMIT ?3"
        ))
        .map_err(unavailable("list runs"))?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt
        .query_map(
            params![status.map(StoredStatus::as_str), workflow, limit],
            raw_row,
        )
        .map_err(unavailable("list runs"))?;
    rows.map(|row| row.map_err(unavailable("list runs"))?.into_record())
        .collect()
}

fn raw_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawRun> {
    Ok(RawRun {
        run_id: row.get(0)?,
        workflow: row.get(1)?,
        version: row.get(2)?,
        input: row.get(3)?,
        status: row.get(4)?,
        idempotency_key: row.get(5)?,
        request_id: row.get(6)?,
        actor: row.get(7)?,
        origin: row.get(8)?,
        additional_data: row.get(9)?,
        output: row.get(10)?,
        error: row.get(11)?,
        created_at: row.get(12)?,
        updated_at: row.get(13)?,
        owner: row.get(14)?,
        fence: row.get(15)?,
        lease_until: row.get(16)?,
    })
}
