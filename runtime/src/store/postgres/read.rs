//! Reading runs back, row by row: a row or a journal row that cannot be read makes that one
//! run unreadable, never the whole read; and quarantining such a run.

use std::collections::HashMap;

use tokio_postgres::types::FromSql;
use tokio_postgres::{GenericClient, Row};

use super::{NOW, pg};
use crate::journal::Event;
use crate::store::row::{
    self, RECORD_COLUMNS, RawRun, micros, unreadable_journal, unreadable_record,
};
use crate::store::{Found, RunRecord, StoreError, StoredRun, StoredStatus, Unreadable};
use crate::types::{RunId, now_micros};

/// The run `run_id` and its journal; [`StoreError::Corrupt`] when either cannot be read.
pub(super) async fn load(
    client: &deadpool_postgres::Client,
    run_id: RunId,
) -> Result<StoredRun, StoreError> {
    let (record, events) = load_parts(client, run_id).await?;
    Ok((record?, events?))
}

/// The run `run_id` and its journal, or why it cannot be read ([`Unreadable`]); `Err` only
/// when the store fails or there is no such run.
pub(super) async fn load_readable(
    client: &deadpool_postgres::Client,
    run_id: RunId,
) -> Result<Result<StoredRun, Unreadable>, StoreError> {
    let id = run_id.to_string();
    Ok(match load_parts(client, run_id).await? {
        (Err(err), _) => Err(unreadable_record(&id, err)?),
        (_, Err(err)) => Err(unreadable_journal(&id, err)?),
        (Ok(record), Ok(events)) => Ok((record, events)),
    })
}

/// The record of run `run_id` and its journal, each [`StoreError::Corrupt`] if it cannot be
/// read; `Err` when the store fails or there is no such run.
#[allow(clippy::type_complexity)] // two results, one per part
async fn load_parts(
    client: &deadpool_postgres::Client,
    run_id: RunId,
) -> Result<
    (
        Result<RunRecord, StoreError>,
        Result<Vec<Event>, StoreError>,
    ),
    StoreError,
> {
    let id = run_id.to_string();
    let select_run = client
        .prepare_cached(&format!(
            "SELECT {RECORD_COLUMNS} FROM hookflow_runs WHERE run_id = $1"
        ))
        .await
        .map_err(pg("prepare a read"))?;
    let select_events = client
        .prepare_cached("SELECT seq, event FROM hookflow_events WHERE run_id = $1 ORDER BY seq")
        .await
        .map_err(pg("prepare a read"))?;
    let row = client
        .query_opt(&select_run, &[&id])
        .await
        .map_err(pg("read a run"))?
        .ok_or(StoreError::NotFound(run_id))?;
    let rows = client
        .query(&select_events, &[&id])
        .await
        .map_err(pg("read a journal"))?;
    let events = rows.iter().map(|row| event(&id, row, 0)).collect();
    Ok((record(&row), events))
}

/// The event in `row`, whose columns from `first` on are `seq, event`.
pub(super) fn event(run_id: &str, row: &Row, first: usize) -> Result<Event, StoreError> {
    let corrupt = |message: String| StoreError::Corrupt {
        run_id: run_id.to_owned(),
        message,
    };
    let seq: i64 = row
        .try_get(first)
        .map_err(|e| corrupt(format!("an event cannot be read: seq: {e}")))?;
    let body: &str = row
        .try_get(first + 1)
        .map_err(|e| corrupt(format!("event {seq} cannot be read: {e}")))?;
    row::event(run_id, seq, body)
}

/// Runs with `status` (any if `None`) of `workflow` (any if `None`), up to `limit`, newest or
/// oldest first: those that can be read, and those that cannot (reported, not written to).
pub(super) async fn list(
    client: &tokio_postgres::Client,
    status: Option<StoredStatus>,
    workflow: Option<&str>,
    limit: usize,
    oldest_first: bool,
) -> Result<Found<RunRecord>, StoreError> {
    let order = if oldest_first { "ASC" } else { "DESC" };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = client
        .query(
            &format!(
                "SELECT {RECORD_COLUMNS} FROM hookflow_runs
                 WHERE ($1::TEXT IS NULL OR status = $1) AND ($2::TEXT IS NULL OR workflow = $2)
                 ORDER BY created_at {order}, run_id {order} LIMIT $3"
            ),
            &[&status.map(StoredStatus::as_str), &workflow, &limit],
        )
        .await
        .map_err(pg("list runs"))?;
    let mut found = Found::default();
    for row in &rows {
        match record(row) {
            Ok(record) => found.runs.push(record),
            Err(err) => found
                .unreadable
                .push(unreadable_record(&stored_id(row), err)?),
        }
    }
    Ok(found)
}

/// The running runs, oldest first, each with its journal read: those that cannot be read are
/// quarantined when `quarantine` (the store is writable), and reported.
pub(super) async fn pending(
    client: &tokio_postgres::Client,
    quarantine: bool,
) -> Result<Found<RunRecord>, StoreError> {
    let mut listed = list(client, Some(StoredStatus::Running), None, usize::MAX, true).await?;
    // Waiting runs that are due to be claimed.
    let now = now_micros();
    let waiting = list(client, Some(StoredStatus::Waiting), None, usize::MAX, true).await?;
    listed.runs.extend(
        waiting
            .runs
            .into_iter()
            .filter(|r| r.wake_at_micros.is_some_and(|at| at <= now)),
    );
    let mut unreadable = listed.unreadable;
    let mut runs: Vec<StoredRun> = listed.runs.into_iter().map(|r| (r, Vec::new())).collect();
    let mut broken = read_journals(client, &mut runs, false).await?;
    let runs = runs
        .into_iter()
        .filter_map(
            |(record, _)| match broken.remove(&record.run_id.to_string()) {
                Some(this) => {
                    unreadable.push(this);
                    None
                }
                None => Some(record),
            },
        )
        .collect();
    if quarantine {
        for this in &unreadable {
            park(client, this, None).await?;
        }
    }
    Ok(Found { runs, unreadable })
}

/// Reads the journals of the `claimed` runs (all of them, or those with `fence > 1` when
/// `only_reclaimed`: a run claimed the first time has none yet) into them, and returns
/// the runs whose journal cannot be read, by run id (their events left incomplete).
pub(super) async fn read_journals(
    client: &impl GenericClient,
    claimed: &mut [StoredRun],
    only_reclaimed: bool,
) -> Result<HashMap<String, Unreadable>, StoreError> {
    let mut broken = HashMap::new();
    let index: HashMap<String, usize> = claimed
        .iter()
        .enumerate()
        .filter(|(_, (r, _))| !only_reclaimed || r.fence > 1)
        .map(|(i, (r, _))| (r.run_id.to_string(), i))
        .collect();
    if index.is_empty() {
        return Ok(broken);
    }
    let ids: Vec<&str> = index.keys().map(String::as_str).collect();
    let rows = client
        .query(
            "SELECT run_id, seq, event FROM hookflow_events WHERE run_id = ANY($1)
             ORDER BY run_id, seq",
            &[&ids],
        )
        .await
        .map_err(pg("read journals"))?;
    for row in rows {
        let id: String = row.try_get(0).map_err(pg("read a journal"))?;
        let Some(&i) = index.get(&id) else { continue };
        if broken.contains_key(&id) {
            continue;
        }
        match event(&id, &row, 1) {
            Ok(event) => claimed[i].1.push(event),
            Err(err) => {
                let this = unreadable_journal(&id, err)?;
                broken.insert(id, this);
            }
        }
    }
    Ok(broken)
}

/// Quarantines a run that cannot be read: parked, its lease released and its generation
/// incremented (whoever held it can commit no more), the reason in its `error`. For
/// [`pending`] (`claimer` is `None`), only while it is still running; for a claim by
/// `claimer`, only if it is not finished and no other owner's live lease holds it. Returns
/// whether it was.
pub(super) async fn park(
    client: &impl GenericClient,
    unreadable: &Unreadable,
    claimer: Option<&str>,
) -> Result<bool, StoreError> {
    let condition = match claimer {
        None => "status = 'running'".to_owned(),
        Some(_) => format!(
            "status NOT IN ('completed', 'compensated', 'compensation_failed', 'cancelled')
                AND (owner IS NULL OR owner = $4 OR lease_until IS NULL OR lease_until <= {NOW})"
        ),
    };
    let sql = format!(
        "UPDATE hookflow_runs SET status = 'parked', error = $2, owner = NULL,
            lease_until = NULL, updated_at = $3,
            fence = CASE WHEN fence < {max} THEN fence + 1 ELSE fence END
         WHERE run_id = $1 AND {condition}",
        max = i64::MAX
    );
    let error = unreadable.error();
    let now = micros(now_micros());
    let parked = match claimer {
        None => {
            client
                .execute(&sql, &[&unreadable.run_id, &error, &now])
                .await
        }
        Some(owner) => {
            client
                .execute(&sql, &[&unreadable.run_id, &error, &now, &owner])
                .await
        }
    }
    .map_err(pg("quarantine a run"))?;
    if parked > 0 {
        tracing::warn!(run_id = %unreadable.run_id, reason = %unreadable.reason, "hookflow: run quarantined");
    }
    Ok(parked > 0)
}

/// A `hookflow_runs` row's run id, as stored, for messages.
pub(super) fn stored_id(row: &Row) -> String {
    row.try_get::<_, String>(0).unwrap_or_default()
}

/// Reads a `hookflow_runs` row selected with [`RECORD_COLUMNS`]; [`StoreError::Corrupt`]
/// when a column cannot be read.
pub(super) fn record(row: &Row) -> Result<RunRecord, StoreError> {
    // The column's name only for an error: a claim reads many rows.
    let column = |i: usize| row::record_columns().nth(i).unwrap_or("?");
    let corrupt = |i: usize, e: &dyn std::fmt::Display| StoreError::Corrupt {
        run_id: stored_id(row),
        message: format!("{}: {e}", column(i)),
    };
    fn get<'a, T: FromSql<'a>>(
        row: &'a Row,
        i: usize,
        corrupt: &impl Fn(usize, &dyn std::fmt::Display) -> StoreError,
    ) -> Result<T, StoreError> {
        row.try_get(i).map_err(|e| corrupt(i, &e))
    }
    RawRun {
        run_id: get(row, 0, &corrupt)?,
        workflow: get(row, 1, &corrupt)?,
        version: get(row, 2, &corrupt)?,
        input: get(row, 3, &corrupt)?,
        status: get(row, 4, &corrupt)?,
        idempotency_key: get(row, 5, &corrupt)?,
        request_id: get(row, 6, &corrupt)?,
        actor: get(row, 7, &corrupt)?,
        origin: get(row, 8, &corrupt)?,
        additional_data: get(row, 9, &corrupt)?,
        output: get(row, 10, &corrupt)?,
        error: get(row, 11, &corrupt)?,
        created_at: get(row, 12, &corrupt)?,
        updated_at: get(row, 13, &corrupt)?,
        owner: get(row, 14, &corrupt)?,
        fence: get(row, 15, &corrupt)?,
        lease_until: get(row, 16, &corrupt)?,
        wake_at: get(row, 17, &corrupt)?,
        waiting_for: get(row, 18, &corrupt)?,
        cancel: get(row, 19, &corrupt)?,
        deadline: get(row, 20, &corrupt)?,
    }
    .into_record()
}
