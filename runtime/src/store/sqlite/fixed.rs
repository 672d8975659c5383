//! The store's connection with its two most frequent statements, `BEGIN IMMEDIATE` and
//! `COMMIT`, kept prepared outside rusqlite's statement cache: a write transaction ran each
//! through `prepare_cached`, which hashes the SQL, copies it into a new key and moves the
//! statement out of its LRU list and back (about 1,100 instructions a statement, 14 times a
//! sequential W5 run). Both are finalized before the connection closes (a connection with a
//! statement left would not close).
//!
//! So are the statements of a run's hot path ([`Db::execute`]: a run's insert, its events'
//! inserts, its end), each prepared at its first use, with their parameters bound as they
//! are (text not copied: it is bound for the one step that reads it).

use std::cell::Cell;
use std::ffi::{CStr, c_int};
use std::ops::Deref;
use std::ptr::NonNull;

use rusqlite::{Connection, ffi};

use crate::types::RunId;

/// How many statements [`Db::execute`] keeps (its slots).
pub(super) const KEPT: usize = 35;

/// A store's connection and its prepared `BEGIN IMMEDIATE` and `COMMIT`, and the statements
/// [`Db::execute`] keeps.
pub(super) struct Db {
    // Dropped first: finalized before the connection closes.
    fixed: Option<Fixed>,
    kept: Kept,
    /// The key (`runs.id`) of the run last created on this connection: a hint, checked by
    /// every statement that uses it (with the run's id), as the row may be gone since.
    run_key: Cell<Option<(RunId, i64)>>,
    conn: Connection,
}

/// The statements [`Db::execute`] prepared, by slot.
struct Kept([Cell<Option<NonNull<ffi::sqlite3_stmt>>>; KEPT]);

/// A parameter of a statement [`Db::execute`] runs.
#[derive(Clone, Copy, Debug)]
pub(super) enum Param<'a> {
    Null,
    Int(i64),
    Text(&'a str),
}

impl<'a> Param<'a> {
    /// `text`, or NULL.
    pub(super) fn text(text: Option<&'a str>) -> Self {
        text.map_or(Param::Null, Param::Text)
    }

    /// `int`, or NULL.
    pub(super) fn int(int: Option<i64>) -> Self {
        int.map_or(Param::Null, Param::Int)
    }
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
            prepare(&conn, "BEGIN IMMEDIATE").ok(),
            prepare(&conn, "COMMIT").ok(),
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
        Db {
            fixed,
            kept: Kept(std::array::from_fn(|_| Cell::new(None))),
            run_key: Cell::new(None),
            conn,
        }
    }

    /// Notes `key` as run `run_id`'s key ([`Db::run_key`]).
    pub(super) fn set_run_key(&self, run_id: RunId, key: i64) {
        self.run_key.set(Some((run_id, key)));
    }

    /// Run `run_id`'s key, if it is the one this connection last created: a hint (the row
    /// may have gone, and its key to another run, since), for statements that check the run's
    /// id too.
    fn run_key(&self, run_id: RunId) -> Option<i64> {
        self.run_key
            .get()
            .and_then(|(id, key)| (id == run_id).then_some(key))
    }

    /// Runs a statement on run `run_id`'s row, as [`Db::execute`]: found by the key this
    /// connection noted for the run (`by_key`, with `params`, whose last place is set to the
    /// key), or, with no key noted or when that changed nothing (not the run's row any more,
    /// or its fence refused), found by the run's id (`by_id`, with `params` but the last), the
    /// noted key then forgotten. How many rows it changed.
    pub(super) fn execute_on_run(
        &self,
        run_id: RunId,
        by_key: (usize, &str),
        by_id: (usize, &str),
        params: &mut [Param<'_>],
    ) -> rusqlite::Result<usize> {
        let by_id_count = params.len().saturating_sub(1);
        if let (Some(key), Some(key_place)) = (self.run_key(run_id), params.last_mut()) {
            *key_place = Param::Int(key);
            let changed = self.execute(by_key.0, by_key.1, params)?;
            if changed > 0 {
                return Ok(changed);
            }
        }
        self.run_key.set(None);
        self.execute(by_id.0, by_id.1, &params[..by_id_count])
    }

    /// Runs `sql` (a statement that returns no rows), kept prepared in `slot` (below
    /// [`KEPT`]; one `sql` a slot), with `params` bound; how many rows it changed. Its errors
    /// are rusqlite's, as `Statement::execute`'s.
    pub(super) fn execute(
        &self,
        slot: usize,
        sql: &str,
        params: &[Param<'_>],
    ) -> rusqlite::Result<usize> {
        let stmt = self.kept(slot, sql)?;
        // SAFETY: `stmt` was prepared on this connection and is alive (finalized only when
        // `self` is dropped); the connection is used by this thread alone (`&Db`, not `Sync`).
        // Each text is bound `SQLITE_STATIC`: it outlives the step that reads it, and the
        // bindings are cleared before this returns.
        unsafe {
            let stmt = stmt.as_ptr();
            let expected = ffi::sqlite3_bind_parameter_count(stmt);
            let result = if usize::try_from(expected) != Ok(params.len()) {
                Err(rusqlite::Error::InvalidParameterCount(
                    params.len(),
                    usize::try_from(expected).unwrap_or(0),
                ))
            } else {
                let mut rc = ffi::SQLITE_OK;
                for (i, param) in (1..).zip(params) {
                    rc = match *param {
                        Param::Null => ffi::sqlite3_bind_null(stmt, i),
                        Param::Int(int) => ffi::sqlite3_bind_int64(stmt, i, int),
                        Param::Text(text) => ffi::sqlite3_bind_text64(
                            stmt,
                            i,
                            text.as_ptr().cast(),
                            text.len() as u64,
                            ffi::SQLITE_STATIC(),
                            ffi::SQLITE_UTF8 as std::ffi::c_uchar,
                        ),
                    };
                    if rc != ffi::SQLITE_OK {
                        break;
                    }
                }
                if rc == ffi::SQLITE_OK {
                    rc = ffi::sqlite3_step(stmt);
                }
                match rc {
                    ffi::SQLITE_DONE => Ok(usize::try_from(ffi::sqlite3_changes64(
                        self.conn.handle(),
                    ))
                    .unwrap_or(0)),
                    ffi::SQLITE_ROW => Err(rusqlite::Error::ExecuteReturnedResults),
                    rc => Err(error(&self.conn, rc)),
                }
            };
            ffi::sqlite3_reset(stmt);
            ffi::sqlite3_clear_bindings(stmt);
            result
        }
    }

    /// The statement kept in `slot`, prepared from `sql` if it is not yet.
    fn kept(&self, slot: usize, sql: &str) -> rusqlite::Result<NonNull<ffi::sqlite3_stmt>> {
        let cell = self
            .kept
            .0
            .get(slot)
            .ok_or(rusqlite::Error::InvalidParameterCount(slot, KEPT))?;
        if let Some(stmt) = cell.get() {
            return Ok(stmt);
        }
        let stmt = prepare(&self.conn, sql)?;
        cell.set(Some(stmt));
        Ok(stmt)
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
                Err(error(&self.conn, rc))
            };
            ffi::sqlite3_reset(stmt.as_ptr());
            result
        }
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        for stmt in self.0.iter().filter_map(Cell::take) {
            // SAFETY: prepared on the connection, which is still open (`Db` drops `kept`
            // before `conn`), and finalized once (taken out of its slot).
            unsafe { ffi::sqlite3_finalize(stmt.as_ptr()) };
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

/// `sql` prepared on `conn` to be kept, or SQLite's error.
fn prepare(conn: &Connection, sql: &str) -> rusqlite::Result<NonNull<ffi::sqlite3_stmt>> {
    let len = c_int::try_from(sql.len())
        .map_err(|_| rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_TOOBIG), None))?;
    let mut stmt = std::ptr::null_mut();
    // SAFETY: `conn`'s handle is open; `sql` is `len` bytes long.
    let rc = unsafe {
        ffi::sqlite3_prepare_v3(
            conn.handle(),
            sql.as_ptr().cast(),
            len,
            ffi::SQLITE_PREPARE_PERSISTENT,
            &raw mut stmt,
            std::ptr::null_mut(),
        )
    };
    if rc != ffi::SQLITE_OK {
        // SAFETY: null, or prepared on `conn` (a statement despite the error) and never used.
        unsafe { ffi::sqlite3_finalize(stmt) };
        return Err(error(conn, rc));
    }
    NonNull::new(stmt).ok_or(rusqlite::Error::InvalidQuery)
}

/// `conn`'s error `rc`, with SQLite's message, as rusqlite gives it.
fn error(conn: &Connection, rc: c_int) -> rusqlite::Error {
    // SAFETY: the connection's handle is open; SQLite's message is NUL-terminated.
    let message = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(conn.handle())) }
        .to_string_lossy()
        .into_owned();
    rusqlite::Error::SqliteFailure(ffi::Error::new(rc), Some(message))
}
