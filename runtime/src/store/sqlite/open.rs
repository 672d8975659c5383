//! Opening the connection: for writing (created, checked, migrated, then put in WAL mode), or
//! for reading only (checked, never written; as immutable on a read-only medium).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::schema::{check, migrate};
use super::{Durability, unavailable};
use crate::store::StoreError;

/// The statements a connection keeps prepared: more than the store has.
const STATEMENT_CACHE: usize = 64;

/// The page size of a database the store creates (SQLite's default is 4096). Each commit
/// writes its changed pages to the write-ahead log whole, with a checksum of each: a
/// sequential W5 run changes 16.8 pages of 4 KiB (69 KB written, each frame spanning two of
/// the kernel's pages), or 19.5 pages of 2 KiB (40 KB), for 20% less system time. (1 KiB
/// pages write less again, 24.6 pages, 26 KB, but their deeper b-trees cost more CPU where
/// commits are grouped.) A database's page size is fixed when its first page is written: a
/// store created before keeps its own, and any SQLite reads either.
pub(super) const PAGE_SIZE: u32 = 2048;

/// The connection of a store opened for writing: the database is created if need be, checked
/// and migrated (one write lock for both), and only then put in WAL mode, so that another
/// application's database is refused before anything is written to it.
pub(super) fn read_write(
    path: &Path,
    durability: Durability,
    busy_timeout: Duration,
) -> Result<Connection, StoreError> {
    let mut conn = Connection::open(path).map_err(unavailable("open the database"))?;
    conn.busy_timeout(busy_timeout)
        .map_err(unavailable("configure the database"))?;
    // Every statement the store writes with stays prepared (rusqlite keeps 16 by default).
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // Nothing written: for a new (empty) file, the size its pages will have; for a database
    // that has pages, nothing (a page size changes only in a VACUUM, which the store never
    // runs).
    conn.execute_batch(&format!("PRAGMA page_size = {PAGE_SIZE};"))
        .map_err(unavailable("configure the database"))?;
    migrate(&mut conn)?;
    let synchronous = match durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    // Switching a new database to WAL takes an exclusive lock, and SQLite answers "busy" at
    // once (without its busy handler) when another process opening the same new file holds
    // a shared lock: try again until the busy timeout.
    let pragmas = format!("PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous};");
    let started = std::time::Instant::now();
    loop {
        match conn.execute_batch(&pragmas) {
            Ok(()) => break,
            Err(err)
                if err.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
                    && started.elapsed() < busy_timeout =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(err) => return Err(unavailable("configure the database")(err)),
        }
    }
    Ok(conn)
}

/// The connection of a store opened for reading only (`SQLITE_OPEN_READ_ONLY`, and
/// `query_only` besides), checked to be a hookflow store of this build's schema.
///
/// A WAL database is read with its `-wal` and `-shm` files, which SQLite creates if they are
/// missing. So that nothing appears beside another application's database, a file with no
/// `-wal` file (the file alone then holds everything committed) is first looked at as
/// immutable, which needs neither, and refused if it is not a hookflow store. A store is then
/// read under SQLite's locks (an engine may be writing to it), or, where the `-wal` and
/// `-shm` files cannot be created (a read-only medium) and there is no `-wal` file, as
/// immutable.
pub(super) fn read_only(path: &Path, busy_timeout: Duration) -> Result<Connection, StoreError> {
    if !path.is_file() {
        return Err(StoreError::Unavailable {
            context: "open the database".into(),
            message: format!("no file at {}", path.display()),
        });
    }
    if !has_wal(path) {
        let conn = connect(path, true, busy_timeout)?;
        if let Err(err @ StoreError::NotAStore { .. }) = check(&conn) {
            return Err(err);
        }
    }
    let conn = connect(path, false, busy_timeout)?;
    // The first read opens the file (and, for a WAL database, its -wal and -shm files).
    let first = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()));
    let conn = match first {
        Err(err)
            if matches!(
                err.sqlite_error_code(),
                Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly)
            ) && !has_wal(path) =>
        {
            drop(conn);
            connect(path, true, busy_timeout)?
        }
        _ => conn,
    };
    check(&conn)?;
    Ok(conn)
}

/// A read-only connection to `path`, `immutable` (no locks, no `-wal` and `-shm` files) or
/// not.
fn connect(path: &Path, immutable: bool, busy_timeout: Duration) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(file_uri(path, immutable), flags)
        .map_err(unavailable("open the database"))?;
    conn.busy_timeout(busy_timeout)
        .map_err(unavailable("configure the database"))?;
    conn.execute_batch("PRAGMA query_only = ON;")
        .map_err(unavailable("configure the database"))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Whether the database has a `-wal` file with something in it.
fn has_wal(path: &Path) -> bool {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(wal).is_ok_and(|m| m.len() > 0)
}

/// `path` as a SQLite URI (`file:` and the path, percent-encoded), `immutable` or not.
fn file_uri(path: &Path, immutable: bool) -> String {
    let mut uri = String::from("file:");
    for &byte in path.as_os_str().as_encoded_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'/' | b'-' | b'_' | b'.' | b'~') {
            uri.push(char::from(byte));
        } else {
            let _ = write!(uri, "%{byte:02X}");
        }
    }
    if immutable {
        uri.push_str("?immutable=1");
    }
    uri
}

#[cfg(test)]
mod tests {
    use super::file_uri;
    use std::path::Path;

    #[test]
    fn paths_become_uris_that_sqlite_reads_back() {
        assert_eq!(
            file_uri(Path::new("/tmp/a b/runs?#%.db"), false),
            "file:/tmp/a%20b/runs%3F%23%25.db"
        );
        assert_eq!(
            file_uri(Path::new("runs.db"), true),
            "file:runs.db?immutable=1"
        );
    }
}
