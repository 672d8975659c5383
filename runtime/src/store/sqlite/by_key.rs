//! A run found by its idempotency key
//! ([`Store::find_by_idempotency_key`](crate::store::Store::find_by_idempotency_key)), through
//! the key's partial unique index (`runs_by_key`, migration 8).

use rusqlite::{Connection, OptionalExtension};

use super::read::load_record;
use super::unavailable;
use crate::store::row::parse_run_id;
use crate::store::{RunRecord, StoreError};

/// The run holding a key, on the key's partial index.
pub(super) const BY_KEY: &str = "SELECT run_id FROM runs WHERE idempotency_key = ?1";

/// The record of the run holding `key`, if one does; [`StoreError::Corrupt`] when its row
/// cannot be read.
pub(super) fn find(conn: &Connection, key: &str) -> Result<Option<RunRecord>, StoreError> {
    let id: Option<String> = conn
        .prepare_cached(BY_KEY)
        .and_then(|mut stmt| stmt.query_row([key], |row| row.get(0)).optional())
        .map_err(unavailable("find a run by idempotency key"))?;
    match id {
        Some(id) => load_record(conn, parse_run_id(&id)?).map(Some),
        None => Ok(None),
    }
}
