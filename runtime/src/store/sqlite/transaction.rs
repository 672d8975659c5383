//! A transactional step's transaction on SQLite: the store's own connection, taken for the
//! whole step (`BEGIN IMMEDIATE` .. the step's journal .. `COMMIT`). Meanwhile the store's
//! other writes wait for it (on the writer thread, never on the caller's), as SQLite has one
//! writer at a time anyway.

use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::OwnedMutexGuard;

use super::checkpoint::Checkpoints;
use super::fixed::Db;
use super::queries::commit;
use super::{SqliteStore, unavailable};
use crate::journal::Event;
use crate::store::{BoxFuture, StoreError, StoreTransaction, Transaction, TransactionError};
use crate::types::{RunId, lock};

/// The connection of an open transaction, as the step's code reaches it; `None` once the
/// transaction ended.
pub(crate) struct SqliteTx {
    conn: Mutex<Option<OwnedMutexGuard<Db>>>,
}

impl SqliteTx {
    /// Runs `write` on the connection, inside the transaction.
    pub(crate) fn with<T>(
        &self,
        write: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, TransactionError> {
        let conn = lock(&self.conn);
        let conn = conn.as_deref().ok_or(TransactionError::Ended)?;
        if conn.is_autocommit() {
            return Err(TransactionError::EndedByStep);
        }
        write(conn).map_err(TransactionError::Sqlite)
    }

    /// Takes the connection: the transaction ends here, whoever still holds the handle.
    fn take(&self) -> Option<OwnedMutexGuard<Db>> {
        lock(&self.conn).take()
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        if let Some(conn) = self.take() {
            rollback(&conn);
        }
    }
}

fn rollback(conn: &Connection) {
    if !conn.is_autocommit() {
        if let Err(err) = conn.execute_batch("ROLLBACK") {
            tracing::warn!(%err, "hookflow: rolling back a step's SQLite transaction failed");
        }
    }
}

/// The store's side of the transaction.
struct SqliteTransaction {
    tx: Arc<SqliteTx>,
    /// The store's checkpoints, for once it committed.
    checkpoints: Option<Arc<Checkpoints>>,
}

impl StoreTransaction for SqliteTransaction {
    fn access(&self) -> Transaction {
        Transaction::sqlite_tx(Arc::clone(&self.tx))
    }

    fn commit<'a>(
        self: Box<Self>,
        run_id: RunId,
        fence: u64,
        events: &'a [Event],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let result = match self.tx.take() {
            None => Err(ended()),
            Some(conn) if conn.is_autocommit() => Err(StoreError::Unavailable {
                context: "commit a step's transaction".into(),
                message: TransactionError::EndedByStep.to_string(),
            }),
            Some(conn) => {
                let written = commit(&conn, run_id, fence, events, None).and_then(|()| {
                    conn.commit()
                        .map_err(unavailable("commit a step's transaction"))?;
                    if let Some(checkpoints) = &self.checkpoints {
                        checkpoints.committed(&conn);
                    }
                    Ok(())
                });
                if written.is_err() {
                    rollback(&conn);
                }
                written
            }
        };
        Box::pin(std::future::ready(result))
    }

    fn rollback(self: Box<Self>) -> BoxFuture<'static, Result<(), StoreError>> {
        let result = match self.tx.take() {
            None => Ok(()),
            Some(conn) if conn.is_autocommit() => Ok(()),
            Some(conn) => conn
                .execute_batch("ROLLBACK")
                .map_err(unavailable("roll back a step's transaction")),
        };
        Box::pin(std::future::ready(result))
    }
}

fn ended() -> StoreError {
    StoreError::Unavailable {
        context: "commit a step's transaction".into(),
        message: TransactionError::Ended.to_string(),
    }
}

impl SqliteStore {
    /// Takes the connection (once the writes before are done) and begins an immediate
    /// transaction on it.
    pub(super) fn begin_transaction(
        &self,
    ) -> BoxFuture<'_, Result<Box<dyn StoreTransaction>, StoreError>> {
        if self.read_only {
            return Box::pin(std::future::ready(Err(StoreError::ReadOnly {
                context: "open a transaction for a transactional step".into(),
            })));
        }
        let conn = Arc::clone(&self.conn);
        let checkpoints = self.checkpoints.clone();
        Box::pin(async move {
            let conn = conn.lock_owned().await;
            conn.begin()
                .map_err(unavailable("begin a step's transaction"))?;
            let tx = SqliteTx {
                conn: Mutex::new(Some(conn)),
            };
            Ok(Box::new(SqliteTransaction {
                tx: Arc::new(tx),
                checkpoints,
            }) as Box<dyn StoreTransaction>)
        })
    }
}
