//! The error of a `before`/`after` hook handler that ran past its time limit.

use std::time::Duration;

/// A `before` or `after` hook handler ran past its time limit
/// ([`EngineBuilder::hook_timeout`](crate::EngineBuilder::hook_timeout), or the one given at
/// its registration): it was stopped (its future dropped at the `.await` it was waiting on)
/// and its run goes on as for any error of that handler. For a `before` hook, the run aborts
/// and its completed steps are compensated; for an `after` hook, the error is recorded in
/// [`Outcome::hook_errors`](crate::Outcome::hook_errors) and nothing is rolled back.
///
/// It is the [`HookError::source_error`](crate::HookError::source_error) of a `before` hook
/// that timed out ([`HookError::is_timeout`](crate::HookError::is_timeout) says so).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("handler `{handler}` of hook `{hook}` did not finish within its time limit of {limit:?}")]
pub struct HandlerTimeout {
    pub(crate) hook: &'static str,
    pub(crate) handler: &'static str,
    pub(crate) limit: Duration,
}

impl HandlerTimeout {
    /// The hook the handler is registered on.
    pub fn hook(&self) -> &'static str {
        self.hook
    }
    /// The handler's name.
    pub fn handler(&self) -> &'static str {
        self.handler
    }
    /// The time limit it ran past.
    pub fn limit(&self) -> Duration {
        self.limit
    }
}
