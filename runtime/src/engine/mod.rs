//! Layer 5, the engine: the handle an application keeps ([`Engine`]), how it is built
//! ([`EngineBuilder`]), how runs start ([`start`]), resume ([`resume`]) and are enqueued,
//! and the leases of the runs in flight here ([`lease`]). The [`Worker`](crate::Worker) asks
//! it to claim and resume runs. A run itself sees only the [`RunEnv`] the engine gives it.

mod builder;
mod error;
mod in_flight;
mod lease;
mod lookup;
mod operator;
mod resume;
mod schedule;
mod scheduler;
mod signal;
mod start;

use std::any::Any;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::context::RunEnv;
use crate::run::Outcome;
use crate::store::{Lease, Store};
use crate::types::{MissingService, RunOptions, Slot};
use crate::workflow::Workflow;

pub use builder::EngineBuilder;
pub use error::{EnqueueError, PruneError, ResumeError, SpawnError};
use in_flight::InFlight;
pub use lease::DEFAULT_LEASE;
use lease::Heartbeat;
pub use lookup::{LookupError, RunSummary};
pub use operator::Retried;
pub use resume::ResumeReport;
use resume::Resumer;
pub(crate) use resume::{ClaimedRun, WorkReadiness};
pub use schedule::{
    FireReport, MAX_SCHEDULE_NAME, ScheduleError, ScheduleOptions, Tick, TickAction, schedule_key,
};
pub(crate) use scheduler::run_scheduler;
pub use signal::{Cancel, CancelError, SendError, Sent};

/// Runs workflows with the hooks, services and job dispatcher it was built with.
///
/// Cheap to clone (an `Arc`); share one per application.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<EngineInner>,
}

struct EngineInner {
    /// What each run is given.
    env: Arc<RunEnv>,
    /// How to resume a stored run, by workflow name and version (shared with the engine's
    /// restarts, under the feature `testing`).
    resumers: Arc<std::collections::HashMap<(String, u32), Resumer>>,
    in_flight: Arc<InFlight>,
    /// The lease this engine's runs are advanced under (its worker id and duration).
    lease: Lease,
    /// Started with the first durable run.
    heartbeat: OnceLock<Option<Heartbeat>>,
}

impl Engine {
    /// A builder.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// An engine with no hooks, no services and no job dispatcher.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Runs workflow `W` with `input` and default [`RunOptions`], to its end. The run begins
    /// when the returned future is first polled ([`Engine::run_with`]).
    pub fn run<W: Workflow>(&self, input: W::Input) -> impl Future<Output = Outcome<W>> + '_ {
        self.run_with::<W>(input, RunOptions::default())
    }

    /// Starts a run of `W` on the current tokio runtime and returns its handle. The run goes
    /// on to its end (completed, or failed and compensated) even if the handle is dropped.
    ///
    /// # Errors
    /// [`SpawnError`] when called outside a tokio runtime.
    pub fn spawn<W: Workflow>(
        &self,
        input: W::Input,
        options: RunOptions,
    ) -> Result<tokio::task::JoinHandle<Outcome<W>>, SpawnError>
    where
        W::Output: Send,
        W::Error: Send,
    {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| SpawnError {
            workflow: W::META.name(),
        })?;
        let engine = self.clone();
        Ok(handle.spawn(async move { engine.run_with::<W>(input, options).await }))
    }

    /// This engine's worker id: the owner of the leases of the runs it advances.
    pub fn worker_id(&self) -> &str {
        &self.inner.lease.owner
    }

    /// How long a lease of this engine holds without a heartbeat.
    pub fn lease_duration(&self) -> Duration {
        self.inner.lease.duration
    }

    /// Deletes the ended runs (completed, compensated, or compensation failed) of the
    /// engine's store that last changed more than `older_than` ago, with their journals, in
    /// batches of [`PRUNE_BATCH`](crate::store::PRUNE_BATCH) until none is left; returns
    /// how many. Runs that are running (interrupted, or enqueued and not started yet) or
    /// parked are never pruned, however old. Call it from time to time (a daily job) to keep
    /// the store from growing with every run.
    ///
    /// # Errors
    /// [`PruneError::NoStore`] without a store, [`PruneError::Store`] when it fails.
    pub async fn prune(&self, older_than: Duration) -> Result<usize, PruneError> {
        let store = self.store().ok_or(crate::types::NoStore)?;
        Ok(crate::store::prune_older_than(&**store, older_than).await?)
    }

    /// The engine's service of type `T`, as steps and hooks get it with `ctx.service::<T>()`.
    ///
    /// # Errors
    /// [`MissingService`], naming `T`, when there is none.
    pub fn service<T: Any + Send + Sync>(&self) -> Result<&T, MissingService> {
        self.inner.env.services.get::<T>()
    }

    /// The registered handlers of workflow `W`'s hook `hook`, in the order they run:
    /// `(slot, handler name, plugin name)`.
    pub fn handlers_of<W: Workflow>(&self, hook: &str) -> Vec<(Slot, &'static str, Option<&str>)> {
        self.inner.env.registry.handlers_of::<W>(hook)
    }

    /// How many hook handlers the engine holds, on all workflows.
    pub fn handler_count(&self) -> usize {
        self.inner.env.registry.handler_count()
    }

    /// This engine restarted, as a process restarted with the same configuration: the same
    /// hooks, services, job dispatcher and store, and nothing of this engine's runs (none in
    /// flight, a lease heartbeat of its own). The crash checks of [`testing`](crate::testing)
    /// resume a crashed run on it: the services play the outside world, which outlives the
    /// process.
    #[cfg(feature = "testing")]
    pub(crate) fn restarted(&self) -> Engine {
        Engine {
            inner: Arc::new(EngineInner {
                env: Arc::clone(&self.inner.env),
                resumers: Arc::clone(&self.inner.resumers),
                in_flight: Arc::default(),
                lease: self.inner.lease.clone(),
                heartbeat: OnceLock::new(),
            }),
        }
    }

    /// What the engine's runs are given: for the views built on the engine.
    pub(crate) fn env(&self) -> &RunEnv {
        &self.inner.env
    }

    /// The engine's store, if it has one.
    pub(crate) fn store(&self) -> Option<&Arc<dyn Store>> {
        self.inner.env.store.as_ref()
    }

    /// Starts the heartbeat that renews the leases of the runs in flight here, once.
    fn keep_leases(&self, store: &Arc<dyn Store>) {
        self.inner.heartbeat.get_or_init(|| {
            Heartbeat::start(
                Arc::clone(store),
                self.inner.lease.clone(),
                Arc::clone(&self.inner.in_flight),
            )
        });
    }
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env = &self.inner.env;
        let plugins: Vec<&str> = env.registry.plugins().iter().map(|p| &**p).collect();
        f.debug_struct("Engine")
            .field("handlers", &env.registry.handler_count())
            .field("plugins", &plugins)
            .field("services", &env.services.len())
            .field("record_data", &env.record_data)
            .finish()
    }
}
