//! The retry loop of a step with `retry(...)`: attempts until one succeeds, fails for good
//! or the policy has none left, sleeping between them.

use std::fmt::Display;
use std::future::Future;

use super::{Attempt, StepRun};
use crate::journal::{EventKind, Retry};
use crate::run::commit::commit_deferred;
use crate::run::transaction::TxContext;
use crate::types::StepTimeout;

impl StepRun<'_> {
    /// Runs the body until it succeeds, fails with a permanent error (`transient` says no),
    /// panics, or the step's retry policy has no attempt left, sleeping between attempts.
    pub async fn execute_retrying<T, E, Fut, F>(
        &self,
        body: F,
        transient: Option<fn(&E) -> bool>,
        on_timeout: Option<fn(StepTimeout) -> E>,
    ) -> Attempt<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Display,
    {
        self.retrying(None, body, transient, on_timeout).await
    }

    /// [`execute_retrying`](Self::execute_retrying) for a transactional step: each attempt
    /// in a transaction of its own.
    pub async fn execute_retrying_in_transaction<T, E, Fut, F>(
        &self,
        tx: &TxContext,
        body: F,
        transient: Option<fn(&E) -> bool>,
        on_timeout: Option<fn(StepTimeout) -> E>,
    ) -> Attempt<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Display,
    {
        self.retrying(Some(tx), body, transient, on_timeout).await
    }

    /// The retry loop, of a transactional step (`tx`) or not.
    async fn retrying<T, E, Fut, F>(
        &self,
        tx: Option<&TxContext>,
        mut body: F,
        transient: Option<fn(&E) -> bool>,
        on_timeout: Option<fn(StepTimeout) -> E>,
    ) -> Attempt<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Display,
    {
        if let Some(skipped) = self.skipped() {
            return skipped;
        }
        commit_deferred(self.run()).await;
        let Some(policy) = self.meta.retry().copied() else {
            return match tx {
                Some(tx) => self.attempt_in_transaction(tx, 1, body, on_timeout).await,
                None => self.attempt(1, body, on_timeout).await,
            };
        };
        let mut attempt = 1;
        loop {
            let outcome = match tx {
                Some(tx) => {
                    self.attempt_in_transaction(tx, attempt, &mut body, on_timeout)
                        .await
                }
                None => self.attempt(attempt, &mut body, on_timeout).await,
            };
            let error = match &outcome {
                Attempt::Err(err) if transient.is_none_or(|t| t(err)) => err.to_string(),
                // Injected failures and timeouts are transient.
                Attempt::Injected(fault) => fault.message(),
                _ => return outcome,
            };
            if attempt >= policy.max_attempts() {
                return outcome;
            }
            let delay = policy.jittered_delay(attempt);
            tracing::debug!(parent: &self.span, attempt, %error, ?delay, "hookflow: retrying step");
            self.run().record(EventKind::StepRetrying {
                step: self.meta.name().into(),
                position: self.ctx.position,
                attempt,
                retry: Box::new(Retry {
                    error,
                    delay_micros: u64::try_from(delay.as_micros()).unwrap_or(u64::MAX),
                }),
            });
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }
}
