//! Transactional steps (`#[step(transaction)]`): each attempt of the step opens a
//! transaction on the store's database ([`Store::begin`](crate::store::Store::begin)); the
//! step's code and the `before`/`after` handlers it fires write with it ([`TxContext`]); the
//! step's completion commits it together with the journal's new events, and a failure (an
//! error, a panic, a timeout) rolls it back. So a write to the application's tables in that
//! database happens exactly once, whatever crashes: a crash before the commit leaves neither
//! the rows nor the record (the step runs again on resume), one after leaves both (the step
//! is replayed from its record, not run again).
//!
//! While the transaction is open, the run's other commits (a `parallel!` sibling's) wait for
//! it and ride on its commit: the store's connection is the transaction's until it ends.

use std::future::Future;
use std::ops::Deref;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use super::commit::{Failed, commit_transaction};
use super::halt::halted;
use super::scope::{Branch, BranchScope};
use crate::context::HookRefusal;
use crate::context::{
    Halt, RunShared, StepContext, TRANSACTION_KEY, TransactionSlot, WorkflowContext,
};
use crate::hook::{Fire, HookPoint, TransactionalHook};
use crate::store::{StoreError, StoreTransaction, Transaction, TransactionError};
use crate::types::lock;
use crate::workflow::Workflow;

/// The context of a transactional step (`#[step(transaction)]`): a [`StepContext`] (it
/// dereferences to one) with the step's database transaction.
///
/// ```ignore
/// #[step(transaction)]
/// async fn create_order(ctx: &TxContext, cart: Cart) -> Result<Order, ShopError> {
///     // The `before` handlers run inside the transaction, and see it.
///     let cart = ctx.hook(Checkout::BEFORE_CREATE, cart).await?;
///     let id = ctx.sqlite(|db| {
///         db.execute("INSERT INTO orders (total) VALUES (?1)", [cart.total])?;
///         Ok(db.last_insert_rowid())
///     })?;
///     Ok(Order { id, total: cart.total })
/// }
/// ```
///
/// The transaction commits with the journal record of the step's completion: both are
/// recorded, or neither is. An error of the step (or of a handler it fired, returned with
/// `?`), a panic or a timeout rolls it back. Each attempt of a step with `retry(...)` has its
/// own transaction. The step's compensation, if it has one, runs later and outside any
/// transaction.
pub struct TxContext {
    step: StepContext,
    /// The step's workflow, as its hook firings see it (with the transaction).
    workflow: WorkflowContext,
    slot: Arc<TransactionSlot>,
    /// The store's side of the open transaction.
    open: Mutex<Option<Box<dyn StoreTransaction>>>,
    /// What the hook firings of the current attempt are keyed under.
    scope: Mutex<Option<Arc<BranchScope>>>,
}

impl TxContext {
    /// The transactional step's context, in workflow `wf`.
    pub(crate) fn new(wf: &WorkflowContext, step: StepContext) -> Self {
        let slot = Arc::new(TransactionSlot::default());
        TxContext {
            workflow: WorkflowContext {
                rc: wf.rc.clone(),
                workflow_type: wf.workflow_type,
                table: wf.table.clone(),
                frame: wf.frame,
                transaction: Some(Arc::clone(&slot)),
            },
            step,
            slot,
            open: Mutex::new(None),
            scope: Mutex::new(None),
        }
    }

    /// The step's open transaction.
    ///
    /// # Errors
    /// [`TransactionError::Ended`] outside the step's attempts (never, from the step's own
    /// code).
    pub fn transaction(&self) -> Result<Transaction, TransactionError> {
        self.slot.get().ok_or(TransactionError::Ended)
    }

    /// Runs `write` with the store's SQLite connection, inside the step's transaction
    /// (feature `sqlite`): [`Transaction::sqlite`].
    ///
    /// # Errors
    /// As [`Transaction::sqlite`].
    #[cfg(feature = "sqlite")]
    pub fn sqlite<T>(
        &self,
        write: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> Result<T, TransactionError> {
        self.transaction()?.sqlite(write)
    }

    /// Fires a `before` or `after` hook of the step's workflow from inside the transaction
    /// (porulle's `beforeCreate`): its handlers run inside the transaction and reach it with
    /// [`HookContext::transaction`](crate::HookContext::transaction). As
    /// [`WorkflowContext::hook`] otherwise: a `before` handler's error is returned (return it
    /// with `?`, and the whole step rolls back and the run aborts, as a `before` hook aborts
    /// it); an `after` handler's is recorded.
    ///
    /// The firing's record commits with the step: a step that runs again after a crash
    /// fires it again, and a committed step is replayed without firing it.
    pub fn hook<'a, W, K>(
        &'a self,
        point: HookPoint<W, K>,
        payload: K::Payload<'a>,
    ) -> impl Future<Output = K::Output> + Send + 'a
    where
        W: Workflow,
        K: Fire<W> + TransactionalHook,
        K::Output: HookRefusal,
    {
        let scope = lock(&self.scope).clone().unwrap_or_else(|| {
            BranchScope::within_step(format!("{TRANSACTION_KEY}{}/", self.step.position))
        });
        // Another workflow's hook is refused as in the body (its handlers do not run).
        Branch::within(scope, self.workflow.hook(point, payload))
    }

    fn run(&self) -> &RunShared {
        &self.step.rc.run
    }

    /// Opens the attempt's transaction; the firings inside are keyed under `prefix`. When the
    /// engine's store has no transactions, the run fails here (its completed steps are
    /// compensated); when the store fails, the run stops, to be resumed.
    pub(crate) async fn begin(&self, prefix: String) -> Result<(), Halt> {
        let step = self.step.step;
        let Some(durable) = &self.run().durable else {
            return Err(Halt::Failed(format!(
                "step `{step}` is transactional (`#[step(transaction)]`): it needs an engine with a SQLite or PostgreSQL store, and this engine has no store"
            )));
        };
        let tx = match durable.store.begin().await {
            Ok(tx) => tx,
            Err(StoreError::Unsupported { .. }) => {
                return Err(Halt::Failed(format!(
                    "step `{step}` is transactional (`#[step(transaction)]`): it needs a SQLite or PostgreSQL store, and the engine's store has no transactions"
                )));
            }
            Err(err) => return Err(Halt::Store(err)),
        };
        self.slot.set(Some(tx.access()));
        *lock(&self.scope) = Some(BranchScope::within_step(prefix));
        *lock(&self.open) = Some(tx);
        durable.in_transaction.store(true, Ordering::Release);
        Ok(())
    }

    /// Takes the open transaction, if any: the step's code can no longer reach it.
    fn take(&self) -> Option<Box<dyn StoreTransaction>> {
        self.slot.set(None);
        lock(&self.open).take()
    }

    fn closed(&self) {
        if let Some(durable) = &self.run().durable {
            durable.in_transaction.store(false, Ordering::Release);
        }
    }

    /// Rolls the attempt's transaction back (the step failed).
    pub(crate) async fn rollback(&self) {
        let Some(tx) = self.take() else { return };
        self.closed();
        if let Err(err) = tx.rollback().await {
            // Not fatal: the transaction ended with its connection, rolled back.
            tracing::warn!(step = self.step.step, %err, "hookflow: rolling back a step's transaction failed");
        }
    }

    /// Commits the attempt's transaction with the journal's new events; `false` when no
    /// transaction is open (the run's commit goes the usual way then).
    pub(crate) async fn commit(&self) -> Result<bool, Failed> {
        let Some(tx) = self.take() else {
            return Ok(false);
        };
        let committed = commit_transaction(self.run(), tx).await;
        self.closed();
        committed.map(|()| true)
    }
}

impl TxContext {
    /// Commits the step's transaction, if one is open, with the journal's new events (the
    /// step's completion among them): called by the code `#[step(transaction)]` generates
    /// once the step finished. If the commit fails, the run halts here (to be resumed; the
    /// step's writes were rolled back with it).
    #[doc(hidden)]
    pub async fn settle(&self) {
        if let Err(failed) = self.commit().await {
            self.run().halt(failed.into());
            halted::<()>().await;
        }
    }
}

impl Drop for TxContext {
    fn drop(&mut self) {
        // The step's future was dropped with its transaction open (the run halted): the
        // transaction rolls back as it drops, and the run's commits go the usual way again.
        if self.take().is_some() {
            self.closed();
        }
    }
}

impl Deref for TxContext {
    type Target = StepContext;
    fn deref(&self) -> &StepContext {
        &self.step
    }
}

impl std::fmt::Debug for TxContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxContext")
            .field("step", &self.step.step)
            .field("position", &self.step.position)
            .field("transaction", &self.slot.get())
            .finish_non_exhaustive()
    }
}
