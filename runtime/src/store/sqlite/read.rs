//! Reading runs back, row by row: a row or a journal row that cannot be read (a column of
//! the wrong type, JSON that does not parse) makes that one run unreadable, never the whole
//! read; and quarantining such a run (parking it by its `rowid`, which stays readable when
//! its `run_id` does not).

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, params};

use super::unavailable;
use crate::journal::Event;
use crate::store::row::{
    self, RECORD_COLUMNS, RawRun, micros, unreadable_journal, unreadable_record,
};
use crate::store::{Found, RunRecord, StoreError, StoredRun, StoredStatus, Unreadable};
use crate::types::{RunId, now_micros};

/// When a run last changed, as read: the later of its row's `updated_at` (its creation, its
/// end, a claim...) and its last event's `at` (a step's commit writes only its events).
const UPDATED_AT: &str = "max(updated_at, ifnull((SELECT at FROM events
    WHERE events.id BETWEEN runs.id << 32 AND (runs.id << 32) | 4294967295
    ORDER BY events.id DESC LIMIT 1), 0))";

/// The record columns (`row::RECORD_COLUMNS`) as a run is read from `runs`: `updated_at` as
/// [`UPDATED_AT`].
pub(super) static COLUMNS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    RECORD_COLUMNS
        .split(',')
        .map(|column| match column.trim() {
            "updated_at" => UPDATED_AT,
            column => column,
        })
        .collect::<Vec<_>>()
        .join(", ")
});

/// A run by its id, with its rowid (`run_row`).
pub(super) static RUN: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("SELECT rowid, {} FROM runs WHERE run_id = ?1", *COLUMNS));

/// A run's journal, by the run's key, in order (`load_events`).
pub(super) const EVENTS: &str = "SELECT id & 4294967295, event FROM events
     WHERE id BETWEEN ?1 << 32 AND (?1 << 32) | 4294967295 ORDER BY id";

/// A `runs` row: its `rowid`, its run id as stored (for messages), and its record, if it
/// can be read.
pub(super) struct RunRow {
    pub(super) rowid: i64,
    pub(super) run_id: String,
    pub(super) record: Result<RunRecord, StoreError>,
}

impl RunRow {
    /// The run, with its journal, or why it cannot be read.
    fn with_journal(self, conn: &Connection) -> Result<Result<StoredRun, Unreadable>, StoreError> {
        let record = match self.record {
            Ok(record) => record,
            Err(err) => return unreadable_record(&self.run_id, err).map(Err),
        };
        match load_events(conn, self.rowid, &self.run_id) {
            Ok(events) => Ok(Ok((record, events))),
            Err(err) => unreadable_journal(&self.run_id, err).map(Err),
        }
    }
}

/// The run `run_id` and its journal; [`StoreError::Corrupt`] when either cannot be read.
pub(super) fn load(conn: &Connection, run_id: RunId) -> Result<StoredRun, StoreError> {
    let row = run_row(conn, run_id)?;
    let record = row.record?;
    let events = load_events(conn, row.rowid, &row.run_id)?;
    Ok((record, events))
}

/// The run `run_id` and its journal, or why it cannot be read ([`Unreadable`]); `Err` only
/// when the store fails or there is no such run.
pub(super) fn load_readable(
    conn: &Connection,
    run_id: RunId,
) -> Result<Result<StoredRun, Unreadable>, StoreError> {
    run_row(conn, run_id)?.with_journal(conn)
}

/// The record of run `run_id`; [`StoreError::Corrupt`] when it cannot be read.
pub(super) fn load_record(conn: &Connection, run_id: RunId) -> Result<RunRecord, StoreError> {
    run_row(conn, run_id)?.record
}

fn run_row(conn: &Connection, run_id: RunId) -> Result<RunRow, StoreError> {
    conn.prepare_cached(&RUN)
        .and_then(|mut run| {
            run.query_row(params![run_id.to_string()], run_row_of)
                .optional()
        })
        .map_err(unavailable("read a run"))?
        .ok_or(StoreError::NotFound(run_id))
}

/// The journal of the run whose key is `key` (stored as `run_id`, for messages);
/// [`StoreError::Corrupt`] when a row of it cannot be read.
fn load_events(conn: &Connection, key: i64, run_id: &str) -> Result<Vec<Event>, StoreError> {
    let mut stmt = conn
        .prepare_cached(EVENTS)
        .map_err(unavailable("read a journal"))?;
    let mut rows = stmt
        .query(params![key])
        .map_err(unavailable("read a journal"))?;
    let mut events = Vec::new();
    while let Some(found) = rows.next().map_err(unavailable("read a journal"))? {
        let corrupt = |message: String| StoreError::Corrupt {
            run_id: run_id.to_owned(),
            message,
        };
        let seq = match found.get_ref(0).map_err(unavailable("read a journal"))? {
            ValueRef::Integer(seq) => seq,
            other => {
                let what = kind(other);
                return Err(corrupt(format!(
                    "an event cannot be read: seq: {what} where an integer belongs"
                )));
            }
        };
        let body = match found.get_ref(1).map_err(unavailable("read a journal"))? {
            ValueRef::Text(body) => std::str::from_utf8(body).map_err(|e| {
                corrupt(format!("event {seq} cannot be read: it is not UTF-8 ({e})"))
            })?,
            other => {
                let what = kind(other);
                return Err(corrupt(format!(
                    "event {seq} cannot be read: {what} where text belongs"
                )));
            }
        };
        events.push(row::event(run_id, seq, body)?);
    }
    Ok(events)
}

/// Runs with `status` (any if `None`) of `workflow` (any if `None`), up to `limit`, newest or
/// oldest first: those that can be read, and those that cannot (reported, not written to).
pub(super) fn list(
    conn: &Connection,
    status: Option<StoredStatus>,
    workflow: Option<&str>,
    limit: usize,
    oldest_first: bool,
) -> Result<Found<RunRecord>, StoreError> {
    let mut found = Found::default();
    for row in select(conn, status, workflow, limit, oldest_first)? {
        match row.record {
            Ok(record) => found.runs.push(record),
            Err(err) => found.unreadable.push(unreadable_record(&row.run_id, err)?),
        }
    }
    Ok(found)
}

/// The running runs, oldest first, each with its journal read: those that cannot be read are
/// quarantined when `quarantine` (the store is writable; the caller's transaction) and
/// reported.
pub(super) fn pending(conn: &Connection, quarantine: bool) -> Result<Found<RunRecord>, StoreError> {
    let mut found = Found::default();
    let now = now_micros();
    let mut rows = select(conn, Some(StoredStatus::Running), None, usize::MAX, true)?;
    // Waiting runs that are due: their wake-up time is a plain column, read here.
    let mut waking: Vec<(i64, String)> = conn
        .prepare_cached(
            "SELECT created_at, run_id FROM runs WHERE status = 'waiting' AND wake_at <= ?1",
        )
        .and_then(|mut s| {
            s.query_map(params![micros(now)], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
        .map_err(unavailable("find runs to resume"))?;
    waking.sort();
    for (_, run_id) in waking {
        if let Ok(run_id) = row::parse_run_id(&run_id) {
            match run_row(conn, run_id) {
                Ok(run) => rows.push(run),
                Err(StoreError::NotFound(_)) => {}
                Err(err) => return Err(err),
            }
        }
    }
    for row in rows {
        let rowid = row.rowid;
        match row.with_journal(conn)? {
            Ok((record, _)) => found.runs.push(record),
            Err(unreadable) => {
                if quarantine {
                    park(conn, rowid, &unreadable)?;
                }
                found.unreadable.push(unreadable);
            }
        }
    }
    Ok(found)
}

fn select(
    conn: &Connection,
    status: Option<StoredStatus>,
    workflow: Option<&str>,
    limit: usize,
    oldest_first: bool,
) -> Result<Vec<RunRow>, StoreError> {
    let order = if oldest_first { "ASC" } else { "DESC" };
    let mut stmt = conn
        .prepare(&format!(
            "SELECT rowid, {} FROM runs
             WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR workflow = ?2)
             ORDER BY created_at {order}, run_id {order} LIMIT ?3",
            *COLUMNS
        ))
        .map_err(unavailable("list runs"))?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    stmt.query_map(
        params![status.map(StoredStatus::as_str), workflow, limit],
        run_row_of,
    )
    .map_err(unavailable("list runs"))?
    .map(|row| row.map_err(unavailable("list runs")))
    .collect()
}

/// Quarantines the run in row `rowid`: parked, its lease released and its generation
/// incremented (whoever held it can commit no more), the reason in its `error`.
pub(super) fn park(
    conn: &Connection,
    rowid: i64,
    unreadable: &Unreadable,
) -> Result<(), StoreError> {
    tracing::warn!(run_id = %unreadable.run_id, reason = %unreadable.reason, "hookflow: run quarantined");
    conn.prepare_cached(
        "UPDATE runs SET status = 'parked', error = ?2, owner = NULL, lease_until = NULL,
            fence = fence + 1, updated_at = ?3
         WHERE rowid = ?1",
    )
    .and_then(|mut park| park.execute(params![rowid, unreadable.error(), micros(now_micros())]))
    .map_err(unavailable("quarantine a run"))?;
    Ok(())
}

/// What a claim needs of a free row selected as `rowid, run_id, workflow, version, fence`:
/// its rowid, and its run id, workflow, version and fence, or why the run cannot be read.
pub(super) type ClaimKey = (i64, Result<(RunId, String, i64, u64), Unreadable>);

/// Reads a row selected as `rowid, run_id, workflow, version, fence` (see [`ClaimKey`]).
pub(super) fn claim_key(found: &rusqlite::Row<'_>) -> rusqlite::Result<ClaimKey> {
    let rowid: i64 = found.get(0)?;
    let stored = found.get_ref(1)?;
    let column = |i: usize, name: &'static str| -> Result<(&'static str, ValueRef<'_>), String> {
        let value = found.get_ref(i).map_err(|e| format!("{name}: {e}"))?;
        Ok((name, value))
    };
    let key = (|| -> Result<(RunId, String, i64, u64), String> {
        let run_id = text(("run_id", stored))?;
        let run_id = row::parse_run_id(&run_id).map_err(|e| match e {
            StoreError::Corrupt { message, .. } => message,
            other => other.to_string(),
        })?;
        let workflow = text(column(2, "workflow")?)?;
        let version = integer(column(3, "version")?)?;
        let fence = integer(column(4, "fence")?)?;
        let fence = u64::try_from(fence).map_err(|e| format!("fence: {e}"))?;
        Ok((run_id, workflow, version, fence))
    })();
    let key = key.map_err(|message: String| Unreadable {
        run_id: stored_id(stored),
        reason: row::record_reason(&message),
    });
    Ok((rowid, key))
}

/// Reads a row selected as `rowid, {RECORD_COLUMNS}`. Fails only when the row cannot be
/// reached at all; a column that cannot be read makes the record [`StoreError::Corrupt`].
pub(super) fn run_row_of(found: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    let rowid: i64 = found.get(0)?;
    let run_id = stored_id(found.get_ref(1)?);
    let record = raw_run(found)
        .map_err(|message| StoreError::Corrupt {
            run_id: run_id.clone(),
            message,
        })
        .and_then(RawRun::into_record);
    Ok(RunRow {
        rowid,
        run_id,
        record,
    })
}

/// The record columns of a row selected as `rowid, {RECORD_COLUMNS}`, each of the type it
/// should have; otherwise which column is not, and what it holds.
fn raw_run(found: &rusqlite::Row<'_>) -> Result<RawRun, String> {
    let names: Vec<&'static str> = row::record_columns().collect();
    // Column `i` of the record is column `i + 1` of the row (after rowid).
    let column = |i: usize| -> Result<(&'static str, ValueRef<'_>), String> {
        let name = names.get(i).copied().unwrap_or("?");
        let value = found.get_ref(i + 1).map_err(|e| format!("{name}: {e}"))?;
        Ok((name, value))
    };
    Ok(RawRun {
        run_id: text(column(0)?)?,
        workflow: text(column(1)?)?,
        version: integer(column(2)?)?,
        input: text(column(3)?)?,
        status: text(column(4)?)?,
        idempotency_key: optional(column(5)?, text)?,
        request_id: optional(column(6)?, text)?,
        actor: optional(column(7)?, text)?,
        origin: text(column(8)?)?,
        additional_data: optional(column(9)?, text)?,
        output: optional(column(10)?, text)?,
        error: optional(column(11)?, text)?,
        created_at: integer(column(12)?)?,
        updated_at: integer(column(13)?)?,
        owner: optional(column(14)?, text)?,
        fence: integer(column(15)?)?,
        lease_until: optional(column(16)?, integer)?,
        wake_at: optional(column(17)?, integer)?,
        waiting_for: optional(column(18)?, text)?,
        cancel: optional(column(19)?, text)?,
        deadline: optional(column(20)?, integer)?,
    })
}

fn text((name, value): (&str, ValueRef<'_>)) -> Result<String, String> {
    match value {
        ValueRef::Text(bytes) => std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|e| format!("{name}: it is not UTF-8 ({e})")),
        other => Err(format!("{name}: {} where text belongs", kind(other))),
    }
}

fn integer((name, value): (&str, ValueRef<'_>)) -> Result<i64, String> {
    match value {
        ValueRef::Integer(i) => Ok(i),
        other => Err(format!("{name}: {} where an integer belongs", kind(other))),
    }
}

fn optional<T>(
    (name, value): (&str, ValueRef<'_>),
    read: fn((&str, ValueRef<'_>)) -> Result<T, String>,
) -> Result<Option<T>, String> {
    match value {
        ValueRef::Null => Ok(None),
        value => read((name, value)).map(Some),
    }
}

/// What a value that is not of its column's type is.
fn kind(value: ValueRef<'_>) -> &'static str {
    match value {
        ValueRef::Null => "NULL",
        ValueRef::Integer(_) => "an integer",
        ValueRef::Real(_) => "a real number",
        ValueRef::Text(_) => "text",
        ValueRef::Blob(_) => "a blob",
    }
}

/// A run id as stored, whatever it is, for messages: text as it is (invalid UTF-8
/// replaced), a blob as a SQL literal `x'…'`.
fn stored_id(value: ValueRef<'_>) -> String {
    match value {
        ValueRef::Null => "NULL".to_owned(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => f.to_string(),
        ValueRef::Text(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        ValueRef::Blob(bytes) => {
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            format!("x'{hex}'")
        }
    }
}
