//! Opening the store a `--db` names.

use std::path::Path;
use std::sync::Arc;

use hookflow_runtime::Store;
use hookflow_runtime::store::postgres::PostgresStore;
use hookflow_runtime::store::sqlite::SqliteStore;

use crate::CliError;

/// The store at `db`: a `postgres://` (or `postgresql://`) URL, or the path of an existing
/// SQLite file (never created here: a typo must not leave an empty database behind).
///
/// # Errors
/// [`CliError::NoDatabase`] for a missing file, [`CliError::Open`] when the store cannot
/// be opened or reached.
pub async fn open(db: &str) -> Result<Arc<dyn Store>, CliError> {
    let failed = |source| CliError::Open {
        db: db.to_owned(),
        source,
    };
    if db.starts_with("postgres://") || db.starts_with("postgresql://") {
        let store = PostgresStore::connect(db).await.map_err(failed)?;
        return Ok(Arc::new(store));
    }
    let path = Path::new(db);
    if !path.is_file() {
        return Err(CliError::NoDatabase(path.to_path_buf()));
    }
    Ok(Arc::new(SqliteStore::open(path).map_err(failed)?))
}
