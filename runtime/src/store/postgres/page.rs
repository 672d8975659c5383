//! A page of runs ([`Store::list_page`](crate::store::Store::list_page)): filtered and paged
//! in the database, read row by row.

use super::pg;
use super::read::{record, stored_id};
use crate::store::row::{RECORD_COLUMNS, micros, unreadable_record};
use crate::store::{RunCursor, RunFilter, RunPage, StoreError, StoredStatus};

/// The runs that pass `filter`, newest first, one more than the page to know whether another
/// page follows. Run ids compare byte by byte (`COLLATE "C"`), as the cursor does.
pub(super) async fn list_page(
    client: &tokio_postgres::Client,
    filter: &RunFilter,
) -> Result<RunPage, StoreError> {
    let size = filter.page_size();
    let fetch = i64::try_from(size.saturating_add(1)).unwrap_or(i64::MAX);
    let (after_at, after_id) = match &filter.after {
        Some(cursor) => (
            Some(micros(cursor.created_at_micros)),
            Some(cursor.run_id.as_str()),
        ),
        None => (None, None),
    };
    let rows = client
        .query(
            &format!(
                "SELECT {RECORD_COLUMNS} FROM hookflow_runs
                 WHERE ($1::TEXT IS NULL OR status = $1) AND ($2::TEXT IS NULL OR workflow = $2)
                   AND ($3::BIGINT IS NULL OR created_at >= $3)
                   AND ($4::BIGINT IS NULL OR created_at < $4)
                   AND ($5::BIGINT IS NULL OR created_at < $5
                        OR (created_at = $5 AND run_id COLLATE \"C\" < $6::TEXT COLLATE \"C\"))
                 ORDER BY created_at DESC, run_id COLLATE \"C\" DESC LIMIT $7"
            ),
            &[
                &filter.status.map(StoredStatus::as_str),
                &filter.workflow.as_deref(),
                &filter.created_from_micros.map(micros),
                &filter.created_before_micros.map(micros),
                &after_at,
                &after_id,
                &fetch,
            ],
        )
        .await
        .map_err(pg("list runs"))?;
    let mut page = RunPage::default();
    for row in rows.iter().take(size) {
        match record(row) {
            Ok(record) => page.runs.push(record),
            Err(err) => page
                .unreadable
                .push(unreadable_record(&stored_id(row), err)?),
        }
    }
    if rows.len() > size {
        if let Some(last) = rows.get(size - 1) {
            page.next = Some(key(last)?);
        }
    }
    Ok(page)
}

/// The cursor just past `row`: its creation time and run id, which the schema keeps typed
/// (`BIGINT NOT NULL`, `TEXT PRIMARY KEY`) even when the rest of the row cannot be read.
fn key(row: &tokio_postgres::Row) -> Result<RunCursor, StoreError> {
    let at: i64 = row.try_get("created_at").map_err(pg("list runs"))?;
    Ok(RunCursor {
        created_at_micros: u64::try_from(at).unwrap_or(0),
        run_id: stored_id(row),
    })
}
