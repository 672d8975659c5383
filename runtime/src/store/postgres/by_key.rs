//! A run found by its idempotency key
//! ([`Store::find_by_idempotency_key`](crate::store::Store::find_by_idempotency_key)), through
//! the key's unique index (`hookflow_runs.idempotency_key UNIQUE`).

use super::pg;
use super::read::load;
use crate::store::row::parse_run_id;
use crate::store::{RunRecord, StoreError};

/// The record of the run holding `key`, if one does; [`StoreError::Corrupt`] when its row
/// or journal cannot be read.
pub(super) async fn find(
    client: &deadpool_postgres::Client,
    key: &str,
) -> Result<Option<RunRecord>, StoreError> {
    let select = client
        .prepare_cached("SELECT run_id FROM hookflow_runs WHERE idempotency_key = $1")
        .await
        .map_err(pg("prepare a read"))?;
    let row = client
        .query_opt(&select, &[&key])
        .await
        .map_err(pg("find a run by idempotency key"))?;
    let Some(row) = row else {
        return Ok(None);
    };
    let id: String = row
        .try_get(0)
        .map_err(pg("find a run by idempotency key"))?;
    let (record, _) = load(client, parse_run_id(&id)?).await?;
    Ok(Some(record))
}
