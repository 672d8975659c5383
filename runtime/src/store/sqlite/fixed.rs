//! The store's connection with its two most frequent statements, `BEGIN IMMEDIATE` and
//! `COMMIT`, kept prepared outside rusqlite's statement cache: a write transaction ran each
//! through `prepare_cached`, which hashes the SQL, copies it into a new key and moves the
//! statement out of its LRU list and back (about 1,100 instructions a statement, 14 times a
//! sequential W5 run). Both are finalized before the connection closes (a connection with a
//! statement left would not close).

use std::ffi::CStr;
use std::ops::Deref;
use std::ptr::NonNull;

use rusqlite::{Connection, ffi};

/// A store's connection and its prepared `BEGIN IMMEDIATE` and `COMMIT`.
pub(super) struct Db {
    // Dropped first: finalized before the connection closes.
    fixed: Option<Fixed>,
    conn: Connection,
}

struct Fixed {
    begin: NonNull<ffi::sqlite3_stmt>,
    commit: NonNull<ffi::sqlite3_stmt>,
}

// SAFETY: the statements belong to the connection and are used only through `&Db`, which is
// not `Sync` (a `Connection` is not): one thread at a time, whichever holds the connection,
// as SQLite allows.
unsafe impl Send for Db {}

impl Deref for Db {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl Db {
    /// `conn` with its statements prepared (without them, if SQLite refuses to prepare one:
    /// they then go through the statement cache).
    pub(super) fn new(conn: Connection) -> Db {
        let fixed = match (
            prepare(&conn, c"BEGIN IMMEDIATE"),
            prepare(&conn, c"COMMIT"),
        ) {
            (Some(begin), Some(commit)) => Some(Fixed { begin, commit }),
            (begin, commit) => {
                for stmt in [begin, commit].into_iter().flatten() {
                    // SAFETY: prepared on `conn`, never used.
                    unsafe { ffi::sqlite3_finalize(stmt.as_ptr()) };
                }
                None
            }
        };
        Db { fixed, conn }
    }

    /// `BEGIN IMMEDIATE`.
    pub(super) fn begin(&self) -> rusqlite::Result<()> {
        match &self.fixed {
            Some(fixed) => self.step(fixed.begin),
            None => self.conn.execute_batch("BEGIN IMMEDIATE"),
        }
    }

    /// `COMMIT`.
    pub(super) fn commit(&self) -> rusqlite::Result<()> {
        match &self.fixed {
            Some(fixed) => self.step(fixed.commit),
            None => self.conn.execute_batch("COMMIT"),
        }
    }

    /// Runs `stmt` (a statement of no rows and no parameters) once.
    fn step(&self, stmt: NonNull<ffi::sqlite3_stmt>) -> rusqlite::Result<()> {
        // SAFETY: `stmt` was prepared on this connection and is alive (finalized only when
        // `self` is dropped); the connection is used by this thread alone (`&Db`, not `Sync`).
        unsafe {
            let rc = ffi::sqlite3_step(stmt.as_ptr());
            let result = if rc == ffi::SQLITE_DONE {
                Ok(())
            } else {
                let message = CStr::from_ptr(ffi::sqlite3_errmsg(self.conn.handle()))
                    .to_string_lossy()
                    .into_owned();
                Err(rusqlite::Error::SqliteFailure(
                    ffi::Error::new(rc),
                    Some(message),
                ))
            };
            ffi::sqlite3_reset(stmt.as_ptr());
            result
        }
    }
}

impl Drop for Fixed {
    fn drop(&mut self) {
        // SAFETY: prepared on the connection, which is still open (`Db` drops `fixed` first),
        // and finalized once.
        unsafe {
            ffi::sqlite3_finalize(self.begin.as_ptr());
            ffi::sqlite3_finalize(self.commit.as_ptr());
        }
    }
}

/// `sql` prepared on `conn` to be kept (`None` if SQLite refuses).
fn prepare(conn: &Connection, sql: &CStr) -> Option<NonNull<ffi::sqlite3_stmt>> {
    let mut stmt = std::ptr::null_mut();
    // SAFETY: `conn`'s handle is open; `sql` is NUL-terminated (`-1`: read to the NUL).
    let rc = unsafe {
        ffi::sqlite3_prepare_v3(
            conn.handle(),
            sql.as_ptr(),
            -1,
            ffi::SQLITE_PREPARE_PERSISTENT,
            &raw mut stmt,
            std::ptr::null_mut(),
        )
    };
    if rc == ffi::SQLITE_OK {
        NonNull::new(stmt)
    } else {
        if !stmt.is_null() {
            // SAFETY: prepared on `conn` (a statement despite the error), never used.
            unsafe { ffi::sqlite3_finalize(stmt) };
        }
        None
    }
}
