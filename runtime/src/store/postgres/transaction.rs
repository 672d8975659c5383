//! A transactional step's transaction on PostgreSQL: a connection of the store's pool, held
//! for the whole step (`BEGIN` .. the step's journal, fenced .. `COMMIT`). A transaction
//! dropped unfinished (the step's future dropped, a panic) closes its connection rather than
//! return it to the pool: the server then rolls it back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use deadpool_postgres::Object;
use tokio::sync::oneshot;

use super::PostgresStore;
use super::committer::{PendingCommit, event_rows, write_group};
use super::errors::{get, pg_write, stopped};
use crate::journal::Event;
use crate::store::row::micros;
use crate::store::{BoxFuture, StoreError, StoreTransaction, Transaction, TransactionError};
use crate::types::RunId;

/// The connection of an open transaction, as the step's code reaches it.
pub(crate) struct PostgresTx {
    client: Option<Object>,
    /// Committed or rolled back: the connection goes back to the pool when dropped.
    ended: AtomicBool,
}

impl PostgresTx {
    /// The transaction's client, while it is open.
    pub(crate) fn client(&self) -> Result<&tokio_postgres::Client, TransactionError> {
        match &self.client {
            Some(client) if !self.ended.load(Ordering::Acquire) => Ok(client),
            _ => Err(TransactionError::Ended),
        }
    }

    fn object(&self) -> Result<&Object, StoreError> {
        match &self.client {
            Some(client) if !self.ended.load(Ordering::Acquire) => Ok(client),
            _ => Err(StoreError::Unavailable {
                context: "end a step's transaction".into(),
                message: TransactionError::Ended.to_string(),
            }),
        }
    }
}

impl Drop for PostgresTx {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            if !self.ended.load(Ordering::Acquire) {
                // Not back to the pool with a transaction open: closed, and so rolled back.
                drop(Object::take(client));
            }
        }
    }
}

/// The store's side of the transaction.
struct PostgresTransaction {
    tx: Arc<PostgresTx>,
}

impl StoreTransaction for PostgresTransaction {
    fn access(&self) -> Transaction {
        Transaction::postgres_tx(Arc::clone(&self.tx))
    }

    fn commit<'a>(
        self: Box<Self>,
        run_id: RunId,
        fence: u64,
        events: &'a [Event],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let client = self.tx.object()?;
            let written = async {
                let id = run_id.to_string();
                let (reply, _) = oneshot::channel();
                let commit = PendingCommit {
                    run_id,
                    fence: micros(fence),
                    events: event_rows(&id, events)?,
                    update: None,
                    output: None,
                    bytes: 0,
                    reply,
                };
                write_group(client, std::slice::from_ref(&commit), true)
                    .await?
                    .pop()
                    .unwrap_or_else(|| Err(stopped()))?;
                client
                    .batch_execute("COMMIT")
                    .await
                    .map_err(pg_write("commit a step's transaction"))
            }
            .await;
            match written {
                Ok(()) => {
                    self.tx.ended.store(true, Ordering::Release);
                    Ok(())
                }
                // Dropped unfinished: the connection is closed and the server rolls back.
                Err(err) => Err(err),
            }
        })
    }

    fn rollback(self: Box<Self>) -> BoxFuture<'static, Result<(), StoreError>> {
        Box::pin(async move {
            let client = self.tx.object()?;
            client
                .batch_execute("ROLLBACK")
                .await
                .map_err(pg_write("roll back a step's transaction"))?;
            self.tx.ended.store(true, Ordering::Release);
            Ok(())
        })
    }
}

impl PostgresStore {
    /// Takes a connection of the pool (on the store's thread, where its connection task
    /// runs) and begins a transaction on it.
    pub(super) fn begin_transaction(
        &self,
    ) -> BoxFuture<'_, Result<Box<dyn StoreTransaction>, StoreError>> {
        if let Err(refused) = self.writable("open a transaction for a transactional step") {
            return refused;
        }
        let pool = self.pool.clone();
        let tx = self.spawn(async move {
            // Held from here: dropped before the step gets it, it closes the connection.
            let tx = PostgresTx {
                client: Some(get(&pool).await?),
                ended: AtomicBool::new(false),
            };
            tx.object()?
                .batch_execute("BEGIN")
                .await
                .map_err(pg_write("begin a step's transaction"))?;
            Ok(tx)
        });
        Box::pin(async move {
            let tx = Arc::new(tx.await?);
            Ok(Box::new(PostgresTransaction { tx }) as Box<dyn StoreTransaction>)
        })
    }
}
