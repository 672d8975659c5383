//! Store transactions: what a transactional step (`#[step(transaction)]`) writes to the
//! store's own database commits in one database transaction with the journal record of the
//! step's completion, so that both are there or neither is, whatever crashes.
//!
//! A store that keeps runs in a database opens one with [`Store::begin`](super::Store::begin):
//! the SQLite store on its connection (rusqlite), the PostgreSQL store on a connection of its
//! pool (tokio-postgres). The step's code and the hook handlers it fires reach it as a
//! [`Transaction`]; the engine commits it with the step's journal, or rolls it back when the
//! step fails. A store without a database (the memory store) has none.

use std::fmt;
// Only the SQL stores hold their transactions in an `Arc`.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
use std::sync::Arc;

use super::{BoxFuture, StoreError};
use crate::journal::Event;
use crate::types::RunId;

/// A transaction a store opened for a transactional step: the engine commits it with the
/// step's journal events, or rolls it back. Dropped without either, it is rolled back.
pub trait StoreTransaction: Send + Sync {
    /// The transaction as the step's code and its hook handlers see it.
    fn access(&self) -> Transaction;

    /// Appends `events` to run `run_id`'s journal in the transaction, if `fence` is still the
    /// run's lease generation, then commits the transaction: the step's writes and its journal
    /// events are recorded together, or none is ([`StoreError::Fenced`] when the lease moved
    /// on, and the step's writes are rolled back with it).
    fn commit<'a>(
        self: Box<Self>,
        run_id: RunId,
        fence: u64,
        events: &'a [Event],
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Rolls the transaction back: nothing the step wrote in it stays.
    fn rollback(self: Box<Self>) -> BoxFuture<'static, Result<(), StoreError>>;
}

/// The database transaction of a transactional step (`#[step(transaction)]`), as the step's
/// code ([`TxContext`](crate::TxContext)) and the `before`/`after` handlers it fires
/// ([`HookContext::transaction`](crate::HookContext::transaction)) reach it: write the
/// application's tables with it, and the writes commit with the step's journal record, or
/// roll back with the step's failure.
///
/// On SQLite, [`Transaction::sqlite`] lends the store's connection; on PostgreSQL,
/// [`Transaction::postgres`] the client of the transaction's connection. Do not commit or roll
/// back the transaction yourself (`COMMIT`, `ROLLBACK`): the engine does, with the journal.
/// Cheap to clone; it is usable until the step ends.
#[derive(Clone)]
pub struct Transaction {
    access: Access,
}

#[derive(Clone)]
enum Access {
    #[cfg(feature = "sqlite")]
    Sqlite(Arc<super::sqlite::SqliteTx>),
    #[cfg(feature = "postgres")]
    Postgres(Arc<super::postgres::PostgresTx>),
    /// Keeps the type inhabited when no SQL store is compiled in.
    #[allow(dead_code)]
    None(std::convert::Infallible),
}

impl Transaction {
    #[cfg(feature = "sqlite")]
    pub(crate) fn sqlite_tx(tx: Arc<super::sqlite::SqliteTx>) -> Self {
        Transaction {
            access: Access::Sqlite(tx),
        }
    }

    #[cfg(feature = "postgres")]
    pub(crate) fn postgres_tx(tx: Arc<super::postgres::PostgresTx>) -> Self {
        Transaction {
            access: Access::Postgres(tx),
        }
    }

    /// Which store's transaction this is: `"sqlite"` or `"postgres"`.
    pub fn store(&self) -> &'static str {
        match &self.access {
            #[cfg(feature = "sqlite")]
            Access::Sqlite(_) => "sqlite",
            #[cfg(feature = "postgres")]
            Access::Postgres(_) => "postgres",
            Access::None(never) => match *never {},
        }
    }

    /// Runs `write` with the SQLite connection, inside the transaction (feature `sqlite`):
    /// `tx.sqlite(|conn| conn.execute("INSERT INTO orders ...", params![..]))`.
    ///
    /// The connection is the store's own: while the step runs, the store's other writes wait
    /// for its transaction to end, so keep transactional steps short.
    ///
    /// # Errors
    /// [`TransactionError::Sqlite`] with what `write` returned; [`TransactionError::WrongStore`]
    /// when the store is PostgreSQL; [`TransactionError::Ended`] after the step ended.
    #[cfg(feature = "sqlite")]
    pub fn sqlite<T>(
        &self,
        write: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> Result<T, TransactionError> {
        match &self.access {
            Access::Sqlite(tx) => tx.with(write),
            #[cfg(feature = "postgres")]
            Access::Postgres(_) => Err(TransactionError::WrongStore {
                asked: "sqlite",
                store: "postgres",
            }),
            Access::None(never) => match *never {},
        }
    }

    /// The PostgreSQL client of the transaction's connection (feature `postgres`): every
    /// statement it runs is inside the transaction.
    ///
    /// # Errors
    /// [`TransactionError::WrongStore`] when the store is SQLite;
    /// [`TransactionError::Ended`] after the step ended.
    #[cfg(feature = "postgres")]
    pub fn postgres(&self) -> Result<&tokio_postgres::Client, TransactionError> {
        match &self.access {
            Access::Postgres(tx) => tx.client(),
            #[cfg(feature = "sqlite")]
            Access::Sqlite(_) => Err(TransactionError::WrongStore {
                asked: "postgres",
                store: "sqlite",
            }),
            Access::None(never) => match *never {},
        }
    }
}

impl fmt::Debug for Transaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction")
            .field("store", &self.store())
            .finish()
    }
}

/// Why a transactional step's code could not use its transaction.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransactionError {
    /// A statement on the SQLite connection failed.
    #[cfg(feature = "sqlite")]
    #[error("a statement in the step's SQLite transaction failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The code asked for one store's connection, and the engine's store is another.
    #[error("the step asked for a {asked} transaction, but the engine's store is {store}")]
    WrongStore {
        /// The store asked for.
        asked: &'static str,
        /// The engine's store.
        store: &'static str,
    },
    /// The code is not running inside a transactional step (a hook handler fired from the
    /// workflow body rather than from a `#[step(transaction)]`).
    #[error(
        "no transaction here: only a `#[step(transaction)]` and the `before`/`after` handlers it fires have one"
    )]
    NotInTransaction,
    /// The step ended (its transaction committed or rolled back): a handle kept past it
    /// cannot write.
    #[error("the step's transaction has ended (committed or rolled back)")]
    Ended,
    /// The step's code ended the transaction itself (`COMMIT` or `ROLLBACK`): the engine
    /// commits it, with the step's journal.
    #[error(
        "the step's code ended its transaction itself (COMMIT or ROLLBACK); the engine commits it with the step's journal"
    )]
    EndedByStep,
}
