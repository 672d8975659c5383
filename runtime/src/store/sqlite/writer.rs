//! The writer thread, and how a write reaches the database: at once on the caller's thread
//! when the connection is free, otherwise through the writer, which groups the writes waiting
//! into one transaction.

use std::sync::mpsc;

use rusqlite::Connection;
use tokio::sync::{Mutex, oneshot};

use super::checkpoint::Checkpoints;
use super::fixed::Db;
use super::read::{list, load, pending};
use super::stats::Counters;
use super::{SqliteStore, unavailable};
use crate::journal::Event;
use crate::store::{BoxFuture, Found, RunRecord, StoreError, StoredStatus};
use crate::types::RunId;

/// The most writes grouped into one transaction.
const MAX_GROUP: usize = 256;

/// What the writer thread is asked: a write, or a read.
pub(super) enum Request {
    Write(Box<dyn Write>),
    Load(
        RunId,
        oneshot::Sender<Result<(RunRecord, Vec<Event>), StoreError>>,
    ),
    List(
        Option<StoredStatus>,
        Option<String>,
        usize,
        bool,
        oneshot::Sender<Result<Found<RunRecord>, StoreError>>,
    ),
    /// The pending runs of a read-only store: the unreadable ones reported, not quarantined.
    Pending(oneshot::Sender<Result<Found<RunRecord>, StoreError>>),
    /// A page of runs.
    Page(
        Box<crate::store::RunFilter>,
        oneshot::Sender<Result<crate::store::RunPage, StoreError>>,
    ),
    /// Any other read: it answers through its own channel.
    Read(Box<dyn FnOnce(&Connection) + Send>),
}

/// A write waiting for the writer thread: applied inside a group's transaction, answered
/// once the transaction committed (or failed). It may be applied twice: a group in which a
/// write fails is rolled back and applied again, each write in a savepoint.
pub(super) trait Write: Send {
    /// Applies the write (in a savepoint of its own if `savepoint`); whether it succeeded.
    fn apply(&mut self, conn: &Db, savepoint: bool) -> bool;
    fn answer(self: Box<Self>, failed: Option<&StoreError>);
}

struct WriteOp<T, F> {
    write: F,
    result: Option<Result<T, StoreError>>,
    /// The result, and the write itself: dropped by whoever awaited it, not on the writer
    /// thread (what it holds, a run's record or its events' text, is freed off the thread
    /// all writes wait for).
    reply: oneshot::Sender<(Result<T, StoreError>, F)>,
}

impl<T, F> Write for WriteOp<T, F>
where
    T: Send,
    F: Fn(&Db) -> Result<T, StoreError> + Send,
{
    fn apply(&mut self, conn: &Db, savepoint: bool) -> bool {
        let result = if savepoint {
            in_savepoint(conn, &self.write)
        } else {
            (self.write)(conn)
        };
        let succeeded = result.is_ok();
        self.result = Some(result);
        succeeded
    }

    fn answer(self: Box<Self>, failed: Option<&StoreError>) {
        let WriteOp {
            write,
            result,
            reply,
        } = *self;
        let result = match (failed, result) {
            (Some(err), _) => Err(clone_err(err)),
            (None, Some(result)) => result,
            (None, None) => Err(stopped()),
        };
        let _ = reply.send((result, write));
    }
}

/// Runs `write` so that, if it fails, nothing it wrote stays in the group's transaction.
fn in_savepoint<T>(
    conn: &Db,
    write: impl FnOnce(&Db) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    run(conn, "SAVEPOINT hookflow_write").map_err(unavailable("begin a savepoint"))?;
    let result = write(conn);
    if result.is_err() {
        run(conn, "ROLLBACK TO hookflow_write").map_err(unavailable("end a savepoint"))?;
    }
    run(conn, "RELEASE hookflow_write").map_err(unavailable("end a savepoint"))?;
    result
}

/// Runs `write` in a write transaction that takes the write lock up front (`BEGIN
/// IMMEDIATE`): it waits for another process's transaction (up to the busy timeout) instead
/// of failing at its first write, as a deferred transaction that read first does when another
/// process wrote since. Committed if `write` succeeds, rolled back otherwise (nothing of it
/// stays). The statements are the connection's cached ones: none is parsed again. Once it
/// committed, the log is checkpointed as `checkpoints` says.
pub(super) fn in_transaction<T>(
    conn: &Db,
    checkpoints: Option<&Checkpoints>,
    write: impl FnOnce(&Db) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.begin().map_err(unavailable("begin a transaction"))?;
    let result = write(conn).and_then(|value| {
        conn.commit().map_err(unavailable("commit"))?;
        if let Some(checkpoints) = checkpoints {
            checkpoints.committed(conn);
        }
        Ok(value)
    });
    if result.is_err() && !conn.is_autocommit() {
        if let Err(err) = run(conn, "ROLLBACK") {
            tracing::warn!(%err, "hookflow: rolling back a failed SQLite write failed");
        }
    }
    result
}

/// Runs one statement without parameters or rows, prepared once per connection.
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

impl SqliteStore {
    /// Runs `now` in its own transaction on the caller's thread if the connection is free, no
    /// write is waiting for the writer thread and its last group had a single write;
    /// otherwise sends the write `later` makes to the writer thread, which groups it with the
    /// others waiting. So a lone run's writes take no thread hop, and once writes of
    /// concurrent runs arrive together they keep sharing transactions instead of taking the
    /// connection one by one on the runtime's threads. A store opened read-only refuses it
    /// (`what` it is, for the error).
    pub(super) fn write<T, F>(
        &self,
        what: &'static str,
        now: impl FnOnce(&Db) -> Result<T, StoreError>,
        later: impl FnOnce() -> F,
    ) -> BoxFuture<'static, Result<T, StoreError>>
    where
        T: Send + 'static,
        F: Fn(&Db) -> Result<T, StoreError> + Send + 'static,
    {
        self.written_here(what, now)
            .unwrap_or_else(|| self.to_writer(later()))
    }

    /// [`SqliteStore::write`] of a write that goes to the writer thread as it is, if it goes.
    pub(super) fn write_now<T, F>(
        &self,
        what: &'static str,
        write: F,
    ) -> BoxFuture<'static, Result<T, StoreError>>
    where
        T: Send + 'static,
        F: Fn(&Db) -> Result<T, StoreError> + Send + 'static,
    {
        self.written_here(what, &write)
            .unwrap_or_else(|| self.to_writer(write))
    }

    /// The answer to a write that needs no writer thread: refused by a store opened read-only,
    /// or `now` run in its own transaction on the caller's thread if the connection is free
    /// ([`SqliteStore::free_connection`]). `None`: it goes to the writer thread.
    fn written_here<T: Send + 'static>(
        &self,
        what: &'static str,
        now: impl FnOnce(&Db) -> Result<T, StoreError>,
    ) -> Option<BoxFuture<'static, Result<T, StoreError>>> {
        if self.read_only {
            return Some(refused(what));
        }
        let conn = self.free_connection()?;
        let result = in_transaction(&conn, self.checkpoints.as_deref(), now);
        Some(Box::pin(std::future::ready(result)))
    }

    /// The connection, for a write on the caller's thread: if it is free, no write is waiting
    /// for the writer thread and its last group had a single write.
    fn free_connection(&self) -> Option<tokio::sync::MutexGuard<'_, Db>> {
        if self.counters.to_writer() {
            return None;
        }
        let conn = self.conn.try_lock().ok()?;
        self.counters.on_callers_thread();
        Some(conn)
    }

    /// Sends `write` to the writer thread, to be grouped with the others waiting.
    fn to_writer<T, F>(&self, write: F) -> BoxFuture<'static, Result<T, StoreError>>
    where
        T: Send + 'static,
        F: Fn(&Db) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, response) = oneshot::channel();
        let request = Request::Write(Box::new(WriteOp {
            write,
            result: None,
            reply,
        }));
        self.counters.queue();
        if self.requests.send(request).is_err() {
            // No writer thread to answer: the next writes try the caller's thread again.
            self.counters.unqueue();
            return Box::pin(std::future::ready(Err(stopped())));
        }
        Box::pin(async move {
            let (result, write) = response.await.map_err(|_| stopped())?;
            drop(write);
            result
        })
    }

    pub(super) fn send<T: Send + 'static>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Request,
    ) -> BoxFuture<'static, Result<T, StoreError>> {
        let (reply, response) = oneshot::channel();
        let sent = self.requests.send(make(reply));
        Box::pin(async move {
            sent.map_err(|_| stopped())?;
            response.await.map_err(|_| stopped())?
        })
    }
}

/// A write refused by a store opened read-only (`what` it is).
fn refused<T: Send + 'static>(what: &'static str) -> BoxFuture<'static, Result<T, StoreError>> {
    Box::pin(std::future::ready(Err(StoreError::ReadOnly {
        context: what.into(),
    })))
}

fn stopped() -> StoreError {
    StoreError::Unavailable {
        context: "reach the writer thread".into(),
        message: "the SQLite writer thread stopped".into(),
    }
}

/// The writer thread: answers requests in order, grouping consecutive writes into one
/// transaction.
pub(super) fn writer(
    conn: &Mutex<Db>,
    requests: mpsc::Receiver<Request>,
    counters: &Counters,
    checkpoints: Option<&Checkpoints>,
) {
    let mut next = requests.recv().ok();
    // The group's list, kept from one group to the next (not grown again for each).
    let mut group: Vec<Box<dyn Write>> = Vec::new();
    while let Some(request) = next.take() {
        // Waits for a transactional step's transaction to end (a plain thread: blocking is
        // what it is for).
        let conn = conn.blocking_lock();
        match request {
            Request::Write(write) => {
                group.push(write);
                while group.len() < MAX_GROUP {
                    match requests.try_recv() {
                        Ok(Request::Write(write)) => group.push(write),
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                write_group(&conn, checkpoints, counters, &mut group);
            }
            Request::Load(run_id, reply) => {
                let _ = reply.send(load(&conn, run_id));
            }
            Request::List(status, workflow, limit, oldest_first, reply) => {
                let _ = reply.send(list(
                    &conn,
                    status,
                    workflow.as_deref(),
                    limit,
                    oldest_first,
                ));
            }
            Request::Pending(reply) => {
                let _ = reply.send(pending(&conn, false));
            }
            Request::Page(filter, reply) => {
                let _ = reply.send(super::page::list_page(&conn, &filter));
            }
            Request::Read(read) => read(&conn),
        }
        // Free the connection before waiting, for writes made on their callers' threads.
        drop(conn);
        if next.is_none() {
            next = requests.recv().ok();
        }
    }
}

/// Writes a group in one transaction, the writes applied in turn. If one fails, the
/// transaction is rolled back and the group written again, each write in a savepoint: the one
/// that fails fails alone, the others are written. (A savepoint per write in every group cost
/// three statements a write.) If the transaction fails as a whole, every write in it gets the
/// error (and none is recorded).
///
/// The group is counted in `counters` before its writes are answered: whoever awaited one of
/// them finds it in [`SqliteStore::write_stats`].
fn write_group(
    conn: &Db,
    checkpoints: Option<&Checkpoints>,
    counters: &Counters,
    group: &mut Vec<Box<dyn Write>>,
) {
    let mut failed = false;
    let mut outcome = in_transaction(conn, checkpoints, |conn| {
        failed = !group.iter_mut().all(|write| write.apply(conn, false));
        if failed {
            return Err(StoreError::Unavailable {
                context: "write a group".into(),
                message: "a write failed: the group is written again".into(),
            });
        }
        Ok(())
    });
    if failed {
        outcome = in_transaction(conn, checkpoints, |conn| {
            for write in group.iter_mut() {
                write.apply(conn, true);
            }
            Ok(())
        });
    }
    counters.grouped(group.len());
    for write in group.drain(..) {
        write.answer(outcome.as_ref().err());
    }
}

fn clone_err(err: &StoreError) -> StoreError {
    StoreError::Unavailable {
        context: "commit".into(),
        message: err.to_string(),
    }
}
