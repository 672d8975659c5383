//! Opening the store a `--db` names: read-only to look at it, for writing only to resume a
//! run.

use std::path::Path;
use std::sync::Arc;

use hookflow_runtime::store::postgres::PostgresStore;
use hookflow_runtime::store::redact;
use hookflow_runtime::store::sqlite::SqliteStore;
use hookflow_runtime::{Store, StoreError};

use crate::CliError;

/// The store at `db`, opened read-only: a `postgres://` (or `postgresql://`) URL, connected
/// in read-only sessions, or the path of an existing SQLite file, opened with
/// `SQLITE_OPEN_READ_ONLY`. Nothing is created, migrated or written: a file that is not a
/// hookflow store (empty, or another application's) is refused and left as it was.
///
/// # Errors
/// [`CliError::NoDatabase`] for a missing file, [`CliError::NotAStore`] for what is not a
/// hookflow store, [`CliError::Open`] when the store cannot be opened or reached.
pub async fn open_read_only(db: &str) -> Result<Arc<dyn Store>, CliError> {
    if is_postgres(db) {
        let store = PostgresStore::connect_read_only(db)
            .await
            .map_err(|source| failed(db, source))?;
        return Ok(Arc::new(store));
    }
    let path = existing(db)?;
    let store = SqliteStore::open_read_only(path).map_err(|source| failed(db, source))?;
    Ok(Arc::new(store))
}

/// The store at `db`, opened for writing (to resume a run): a URL as for
/// [`open_read_only`], or the path of an existing SQLite file (never created here: a typo
/// must not leave an empty database behind), which must already be a hookflow store: an
/// empty file or another application's database is refused and left as it was. A store of
/// an older hookflow is migrated.
///
/// # Errors
/// As [`open_read_only`].
pub async fn open(db: &str) -> Result<Arc<dyn Store>, CliError> {
    if is_postgres(db) {
        let store = PostgresStore::connect(db)
            .await
            .map_err(|source| failed(db, source))?;
        return Ok(Arc::new(store));
    }
    let path = existing(db)?;
    // An empty file would become a hookflow database: look before writing. (The library
    // refuses another application's database by itself.)
    if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
        return Err(CliError::NotAStore {
            db: redact(db),
            reason: "the database is empty: no hookflow engine has written to it".into(),
        });
    }
    let store = SqliteStore::open(path).map_err(|source| failed(db, source))?;
    Ok(Arc::new(store))
}

fn is_postgres(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

fn existing(db: &str) -> Result<&Path, CliError> {
    let path = Path::new(db);
    if !path.is_file() {
        return Err(CliError::NoDatabase(redact(db).into()));
    }
    Ok(path)
}

/// The error of opening `db`, which names it without its password.
fn failed(db: &str, source: StoreError) -> CliError {
    match source {
        StoreError::NotAStore { reason } => CliError::NotAStore {
            db: redact(db),
            reason,
        },
        source => CliError::Open {
            db: redact(db),
            source,
        },
    }
}
