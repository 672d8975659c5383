//! The attempts of a transactional step (`#[step(transaction)]`): each in a transaction of
//! its own, rolled back unless the body succeeded.

use std::future::Future;
use std::sync::atomic::Ordering;

use super::{Attempt, StepRun};
use crate::run::commit::commit_deferred;
use crate::run::transaction::TxContext;
use crate::types::StepTimeout;

impl StepRun<'_> {
    /// [`execute`](Self::execute) for a transactional step: the attempt runs in a
    /// transaction of its own, rolled back unless the body succeeded.
    pub async fn execute_in_transaction<T, E, Fut, F>(
        &self,
        tx: &TxContext,
        body: F,
        on_timeout: Option<fn(StepTimeout) -> E>,
    ) -> Attempt<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        if let Some(skipped) = self.skipped() {
            return skipped;
        }
        // Before the transaction opens: while it is open, the run's commits ride on it.
        commit_deferred(self.run()).await;
        self.attempt_in_transaction(tx, 1, body, on_timeout).await
    }

    /// One attempt of a transactional step, in a transaction of its own, rolled back unless
    /// the body succeeded ([`TxContext::settle`] commits it once the step finished).
    pub(super) async fn attempt_in_transaction<T, E, Fut, F>(
        &self,
        tx: &TxContext,
        attempt: u32,
        body: F,
        on_timeout: Option<fn(StepTimeout) -> E>,
    ) -> Attempt<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        tx.attempt.store(attempt, Ordering::Relaxed);
        let run = self.run();
        let prefix = run.with_key(self.key(), |key| {
            format!("{}{key}.{attempt}/", crate::context::TRANSACTION_KEY)
        });
        if let Err(halt) = tx.begin(prefix).await {
            run.halt(halt);
            return Attempt::Halted;
        }
        let outcome = self.attempt(attempt, body, on_timeout).await;
        if !matches!(outcome, Attempt::Ok(_)) {
            tx.rollback().await;
        }
        outcome
    }
}
