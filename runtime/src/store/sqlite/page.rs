//! A page of runs ([`Store::list_page`](crate::store::Store::list_page)): filtered and paged
//! in the database, read row by row.

use rusqlite::{Connection, params};

use super::read::run_row_of;
use super::unavailable;
use crate::store::row::{micros, unreadable_record};
use crate::store::{RunCursor, RunFilter, RunPage, StoreError, StoredStatus};

/// The key runs are paged on, whatever a damaged row holds: SQLite keeps any value in any
/// column, so the creation time is read as an integer (0 if it is none) and the run id as
/// text. For a row that can be read, they are its creation time and run id.
const KEY_AT: &str = "IFNULL(CAST(created_at AS INTEGER), 0)";
const KEY_ID: &str = "IFNULL(CAST(run_id AS TEXT), '')";

/// The page query for `filter`: one statement for each combination of the filters given, so
/// that each is served by an index (schema migration 6): a condition `?1 IS NULL OR status =
/// ?1` would leave SQLite no index to search. A status or a workflow: `runs_by_status_created`
/// or `runs_by_workflow_created`; neither: `runs_by_created`; the cursor is a range on the
/// index's creation-time column. Its parameters: status, workflow, created from, created
/// before, the cursor's time and run id, the number of rows.
pub(super) fn page_sql(filter: &RunFilter) -> String {
    let status = if filter.status.is_some() {
        "status = ?1"
    } else {
        "?1 IS NULL"
    };
    let workflow = if filter.workflow.is_some() {
        "workflow = ?2"
    } else {
        "?2 IS NULL"
    };
    let after = if filter.after.is_some() {
        format!("{KEY_AT} <= ?5 AND ({KEY_AT} < ?5 OR {KEY_ID} < ?6)")
    } else {
        "?5 IS NULL AND ?6 IS NULL".to_owned()
    };
    format!(
        "SELECT rowid, {}, {KEY_AT}, {KEY_ID} FROM runs
         WHERE {status} AND {workflow}
           AND (?3 IS NULL OR {KEY_AT} >= ?3) AND (?4 IS NULL OR {KEY_AT} < ?4)
           AND {after}
         ORDER BY {KEY_AT} DESC, {KEY_ID} DESC LIMIT ?7",
        *super::read::COLUMNS
    )
}

/// The runs that pass `filter`, newest first, one more than the page to know whether another
/// page follows.
pub(super) fn list_page(conn: &Connection, filter: &RunFilter) -> Result<RunPage, StoreError> {
    let size = filter.page_size();
    let fetch = i64::try_from(size.saturating_add(1)).unwrap_or(i64::MAX);
    let mut stmt = conn
        .prepare_cached(&page_sql(filter))
        .map_err(unavailable("list runs"))?;
    let (after_at, after_id) = match &filter.after {
        Some(cursor) => (
            Some(micros(cursor.created_at_micros)),
            Some(cursor.run_id.as_str()),
        ),
        None => (None, None),
    };
    let key_column = 1 + crate::store::row::record_columns().count();
    let rows = stmt
        .query_map(
            params![
                filter.status.map(StoredStatus::as_str),
                filter.workflow.as_deref(),
                filter.created_from_micros.map(micros),
                filter.created_before_micros.map(micros),
                after_at,
                after_id,
                fetch,
            ],
            |found| {
                let run = run_row_of(found)?;
                let at: i64 = found.get(key_column)?;
                let run_id: String = found.get(key_column + 1)?;
                let key = RunCursor {
                    created_at_micros: u64::try_from(at).unwrap_or(0),
                    run_id,
                };
                Ok((run, key))
            },
        )
        .map_err(unavailable("list runs"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable("list runs"))?;
    let more = rows.len() > size;
    let mut page = RunPage::default();
    for (row, key) in rows.into_iter().take(size) {
        match row.record {
            Ok(record) => page.runs.push(record),
            Err(err) => page.unreadable.push(unreadable_record(&row.run_id, err)?),
        }
        if more {
            page.next = Some(key);
        }
    }
    Ok(page)
}
